"""Her own pages in a real browser on a phone (Debian's Chromium, 390x844, touch) in her
language: she revokes a grant and it is gone, withdraws an approval, answers her risk
assessment, checks in; the quick exit lands on a neutral page and Back shows nothing of hers;
axe on every one of her pages (zero serious or critical); Arabic right to left; her pages load
no htmx and stay small. Nothing may leave 127.0.0.1.

This module runs its own demo site (the session's `web_site` is overridden here): it adds
incidents, assessments and grants to the demo women, which other modules must not see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import NetworkGuard, WebSite, assert_accessible, running_site, shot
from tests.conftest import figure

pytestmark = pytest.mark.heavy

PHONE = {"width": 390, "height": 844}
HER_PAGES = ("/me", "/me/consent", "/me/safety", "/me/history")
PAGE_BUDGET = 30_000  # bytes over the wire for one of her pages, with what it loads
LEADS = {"rosa": "embassy", "amani": "unpc", "leyla": "wpn"}
ORG_IDS = "{ organisations(first: 50) { edges { node { id slug } } } }"


@pytest.fixture(scope="module")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSite]:
    """A demo site of this module's own, with her data set up through the API."""
    with running_site(tmp_path_factory.mktemp("her-site")) as site:
        for pseudonym in LEADS:
            prepare(site, pseudonym)
        yield site


def her_token(site: WebSite, pseudonym: str) -> str:
    response = httpx.post(site.url("/auth/login"), timeout=30, json={
        "login": pseudonym, "password": site.her_password(pseudonym)})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def ok(body: dict[str, Any], field: str) -> dict[str, Any]:
    assert not body.get("errors") and body["data"][field]["userErrors"] == [], body
    return body["data"][field]  # type: ignore[no-any-return]


def prepare(site: WebSite, pseudonym: str) -> None:
    """What her lead organisation and she herself did before she opens her page: an incident,
    a risk assessment shared with her, a check-in schedule, a grant of hers to the fund, an
    approval of a public statement by her lead organisation."""
    lead = LEADS[pseudonym]
    staff = site.token(lead, "caseworker")
    her = her_token(site, pseudonym)
    case = site.graphql("{ me { cases { id } } }", token=her)["data"]["me"]["cases"][0]["id"]
    orgs = {e["node"]["slug"]: e["node"]["id"]
            for e in site.graphql(ORG_IDS, token=staff)["data"]["organisations"]["edges"]}
    ok(site.graphql("""mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
        incident { id } userErrors { code } } }""", token=staff, variables={"i": {
        "caseId": case, "type": "SURVEILLANCE", "severity": "HIGH", "reportedBy": "herself",
        "reportedVia": "secure_messenger", "description": "A car outside the office."}}),
       "reportIncident")
    review = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    drafted = ok(site.graphql("""mutation($i: DraftRiskAssessmentInput!) {
        draftRiskAssessment(input: $i) { assessment { id } userErrors { code } } }""",
        token=staff, variables={"i": {"caseId": case, "level": "HIGH", "reviewAt": review,
                                      "threats": [{"likelihood": "HIGH", "impact": "HIGH",
                                                   "facts": "A car outside the office."}]}}),
        "draftRiskAssessment")
    ok(site.graphql("""mutation($id: ID!) { shareRiskAssessment(input: {id: $id}) {
        assessment { id } userErrors { code } } }""", token=staff,
                    variables={"id": drafted["assessment"]["id"]}), "shareRiskAssessment")
    ok(site.graphql("""mutation($i: AgreeCheckInScheduleInput!) { agreeCheckInSchedule(input: $i)
        { schedule { id } userErrors { code } } }""", token=staff, variables={"i": {
        "caseId": case, "intervalMinutes": 24 * 60, "channel": "APP", "agreedVia": "IN_PERSON",
        "missedAction": "CALL_SAFETY_CONTACT"}}), "agreeCheckInSchedule")
    ok(site.graphql("""mutation($i: GrantConsentInput!) { grantConsent(input: $i) {
        grant { id } userErrors { code } } }""", token=her, variables={"i": {
        "peacebuilderId": site.graphql("{ me { peacebuilder { id } } }", token=her)
        ["data"]["me"]["peacebuilder"]["id"], "recipientOrganisationId": orgs["fund"],
        "categories": ["INCIDENT_DETAILS"], "purposes": ["PROTECTION"]}}), "grantConsent")
    ok(site.graphql("""mutation($i: RecordApprovalInput!) { recordApproval(input: $i) {
        approval { id } userErrors { code } } }""", token=her, variables={"i": {
        "act": "public_statement", "organisationId": orgs[lead],
        "description": "A statement of solidarity."}}), "recordApproval")


@pytest.fixture
def phone_for(browser: Any, network_guard: NetworkGuard, web_site: WebSite,
              request: pytest.FixtureRequest) -> Iterator[Any]:
    """phone_for(locale) -> a fresh page on a phone-sized, touch, guarded browser context."""
    contexts: list[Any] = []

    def open_phone(locale: str) -> Any:
        context = browser.new_context(base_url=web_site.base_url, locale=locale,
                                      viewport=PHONE, is_mobile=True, has_touch=True,
                                      device_scale_factor=2, service_workers="block")
        context.set_default_timeout(15_000)
        network_guard.attach(context)
        context.on("page", network_guard.watch)
        contexts.append(context)
        return context.new_page()

    yield open_phone
    report = getattr(request.node, "rep_call", None)
    for context in contexts:
        if report is not None and report.failed:
            for tab in context.pages:
                shot(tab, f"FAILED-{request.node.name}")
        context.close()
    assert not network_guard.blocked, network_guard.blocked
    assert not network_guard.page_errors, network_guard.page_errors


def sign_in(page: Any, site: WebSite, pseudonym: str) -> None:
    page.goto("/signin")
    form = page.locator("form:has(input[name=who][value=her])")
    form.locator("input[name=login]").fill(pseudonym)
    form.locator("input[name=password]").fill(site.her_password(pseudonym))
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/me$"))


def weigh(page: Any, path: str) -> tuple[int, list[str]]:
    """Bytes of the page and everything it loaded (bodies), and the URLs it loaded."""
    loaded: list[Any] = []

    def finished(request: Any) -> None:
        loaded.append(request)

    page.on("requestfinished", finished)
    page.goto(path)
    page.wait_for_load_state("load")
    page.remove_listener("requestfinished", finished)
    sizes = [len(r.response().body()) for r in loaded if r.response() is not None]
    return sum(sizes), [r.url for r in loaded]


def test_her_pages_on_a_phone_in_spanish_she_revokes_a_grant(phone_for: Any,
                                                             web_site: WebSite) -> None:
    page = phone_for("es-ES")
    sign_in(page, web_site, "rosa")
    assert page.evaluate("document.documentElement.lang") == "es"  # her profile's language
    expect(page.get_by_role("link", name="Salida rápida")).to_be_visible()
    expect(page.locator("h1")).to_have_text("Mi página")
    expect(page.get_by_text("Vigilancia")).to_be_visible()  # her incident, labelled in Spanish
    assert page.locator("script[src*=htmx]").count() == 0
    assert_accessible(page)
    shot(page, "her-page-phone-es")
    sizes = {}
    for path in HER_PAGES:
        size, urls = weigh(page, path)
        assert size < PAGE_BUDGET, (path, size)
        sizes[path] = size
        assert not [u for u in urls if "htmx" in u or "uPlot" in u], urls
        # The quick exit is on screen without scrolling, on every one of her pages.
        exit_box = page.get_by_role("link", name="Salida rápida").bounding_box()
        assert exit_box is not None and exit_box["y"] < 100
        assert_accessible(page)
    figure("her pages in Chromium (es, phone), bytes loaded with everything they fetch: "
           + ", ".join(f"{p} {n}" for p, n in sizes.items()))
    page.goto("/me/consent")
    shot(page, "her-grants-phone-es")
    fund = page.locator("article.grant", has_text="Rapid Response Fund")
    expect(fund).to_have_count(1)
    fund.get_by_role("button", name="Revocar").click()
    # She is asked first: to whom, what stops being shared; "no" takes her back unchanged.
    expect(page.locator("h1")).to_have_text("¿Dejar de compartir?")
    expect(page.locator("main")).to_contain_text("Rapid Response Fund")
    assert_accessible(page)
    shot(page, "her-grant-revoke-confirm-es")
    page.get_by_role("link", name="No, seguir compartiendo").click()
    page.wait_for_url(re.compile(r"/me/consent$"))
    fund = page.locator("article.grant", has_text="Rapid Response Fund")
    expect(fund).to_have_count(1)
    fund.get_by_role("button", name="Revocar").click()
    page.get_by_role("button", name="Sí, dejar de compartir").click()
    page.wait_for_url(re.compile(r"/me/consent\?done=revoked$"))
    expect(page.get_by_role("status")).to_contain_text("revocado")
    # It is no longer among who may see her data (only among the ended ones, without a button).
    expect(page.locator("article.grant", has_text="Rapid Response Fund")).to_have_count(0)
    expect(page.locator("#ended-h")).to_be_visible()
    assert_accessible(page)
    shot(page, "her-grants-revoked")
    # She withdraws her approval of a public statement.
    page.get_by_role("button", name="Retirar mi aprobación").click()
    expect(page.get_by_role("status")).to_contain_text("retirada")
    expect(page.get_by_role("button", name="Retirar mi aprobación")).to_have_count(0)
    # She answers her risk assessment: she agrees.
    page.goto("/me/safety")
    assert_accessible(page)
    shot(page, "her-safety-phone-es")
    page.get_by_label("Estoy de acuerdo", exact=True).check()
    page.get_by_role("button", name="Enviar mi respuesta").click()
    expect(page.get_by_role("status")).to_contain_text("registrada")
    expect(page.get_by_role("button", name="Enviar mi respuesta")).to_have_count(0)


def test_her_page_in_swahili_she_checks_in(phone_for: Any, web_site: WebSite) -> None:
    page = phone_for("en-GB")  # the browser's language does not matter: her profile's does
    sign_in(page, web_site, "amani")
    assert page.evaluate("document.documentElement.lang") == "sw"
    expect(page.get_by_role("link", name="Toka haraka")).to_be_visible()
    expect(page.get_by_text("Ufuatiliaji")).to_be_visible()
    assert_accessible(page)
    shot(page, "her-page-sw-phone")
    page.get_by_role("button", name="Niko salama: ripoti").click()
    page.wait_for_url(re.compile(r"/me\?done=checked_in$"))
    expect(page.get_by_role("status")).to_contain_text("Asante")
    for path in HER_PAGES[1:]:
        page.goto(path)
        assert page.evaluate("document.documentElement.lang") == "sw"
        assert_accessible(page)
    page.goto("/me/history")
    expect(page.locator("ul.history li").first).to_be_visible()
    shot(page, "her-history-sw-phone")


def test_her_page_in_arabic_is_right_to_left(phone_for: Any, web_site: WebSite) -> None:
    page = phone_for("ar-EG")
    sign_in(page, web_site, "leyla")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    expect(page.get_by_role("link", name="خروج سريع")).to_be_visible()
    for path in HER_PAGES:
        page.goto(path)
        assert_accessible(page)
    page.goto("/me")
    shot(page, "her-page-ar-phone")


def test_quick_exit_leads_to_a_neutral_page_and_back_shows_nothing(phone_for: Any,
                                                                   web_site: WebSite) -> None:
    page = phone_for("es-ES")
    sign_in(page, web_site, "rosa")
    page.goto("/me/safety")
    page.get_by_role("link", name="Salida rápida").click()
    page.wait_for_url(re.compile(r"/weather$"))
    assert page.title() == "El tiempo"
    text = page.locator("body").inner_text()
    assert "Safety Net" not in text and "Vigilancia" not in text
    assert not [c for c in page.context.cookies() if c["name"] == "__Host-sn-session"]
    assert_accessible(page)
    shot(page, "her-quick-exit-neutral-page-phone")
    # Back: her page is not kept by the browser (no-store) and her session is over.
    page.go_back()
    page.wait_for_load_state("load")
    body = page.locator("body").inner_text()
    assert "Vigilancia" not in body and "Mi seguridad" not in body
    assert not page.url.endswith("/me/safety") or "Salida rápida" not in body
    assert "Safety Net" not in body  # not our sign-in page either: the neutral one
    # Her page asked again: the neutral page, nothing of hers and nothing naming us.
    page.goto("/me")
    assert page.url.endswith("/weather")
