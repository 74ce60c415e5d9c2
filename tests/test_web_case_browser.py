"""Case pages in a real browser (Chromium through Playwright) on the demo deployment: the lead
organisation's view, another organisation's view as far as her consent goes, her revocation
taking the data away at the next load, the working groups' shared view, Arabic right to left;
axe (zero serious or critical violations) and screenshots on every page; nothing leaves
127.0.0.1 (the `page` fixture's guard)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import WebSite, assert_accessible, running_site, shot
from tests.test_web_browser import declare, sign_in_staff

pytestmark = pytest.mark.heavy

GRANT = """mutation($i: GrantConsentInput!) { grantConsent(input: $i) { grant { id status }
  userErrors { message } } }"""
REVOKE = """mutation($id: ID!) { revokeConsent(input: {grantId: $id}) { grant { status }
  userErrors { message } } }"""
DRAFT = """mutation($i: DraftRiskAssessmentInput!) { draftRiskAssessment(input: $i) {
  assessment { id threats { id } } userErrors { message } } }"""
SHARE = """mutation($id: ID!) { shareRiskAssessment(input: {id: $id}) { assessment { id }
  userErrors { message } } }"""
ANSWER = """mutation($i: AnswerRiskAssessmentInput!) { answerRiskAssessment(input: $i) {
  assessment { status } userErrors { message } } }"""
ROSA_SUMMARY = "Surveillance of her organisation's office."
AMANI_SUMMARY = "Threats after speaking at a local peace forum."


def her_token(site: WebSite, login: str) -> str:
    """Her own sign-in through the API (what her phone app does)."""
    response = httpx.post(site.url("/auth/login"), timeout=30,
                          json={"login": login, "password": site.her_password(login)})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def as_her(site: WebSite, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """A request of hers: she declares no purpose."""
    response = httpx.post(site.url("/graphql"), timeout=30, headers={
        "Authorization": f"Bearer {token}"}, json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ok(body: dict[str, Any], name: str) -> dict[str, Any]:
    payload = (body.get("data") or {}).get(name)
    assert payload is not None and not payload.get("userErrors"), body
    return dict(payload)


@pytest.fixture(scope="module")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSite]:
    """A demo deployment of this module's own (its data changes here), amani's case given an
    incident, an agreed risk assessment, a plan measure linked to a threat, an investigation
    and a referral — through the API, as the lead organisation and she would."""
    with running_site(tmp_path_factory.mktemp("case-site")) as site:
        worker, focal = site.token("unpc", "caseworker"), site.token("unpc", "focal")
        case_id = next(e["node"]["id"] for e in site.graphql(
            "{ cases(first: 10) { edges { node { id summary } } } }", token=worker)[
                "data"]["cases"]["edges"] if e["node"]["summary"] == AMANI_SUMMARY)
        now = datetime.now(UTC)
        ok(site.graphql("""mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
            incident { id } userErrors { message } } }""", token=worker, variables={"i": {
            "caseId": case_id, "type": "THREATS", "severity": "CRITICAL",
            "reportedBy": "herself", "reportedVia": "secure_messenger",
            "description": "Threatening messages after the forum."}}), "reportIncident")
        drafted = ok(site.graphql(DRAFT, token=worker, variables={"i": {
            "caseId": case_id, "level": "HIGH", "reviewAt": (now + timedelta(days=30)).isoformat(),
            "reasoning": "Credible and rising.", "threats": [
                {"likelihood": "HIGH", "impact": "CRITICAL", "facts": "Messages after the forum."},
                {"likelihood": "MEDIUM", "impact": "HIGH", "facts": "Her car was followed."}]}}),
            "draftRiskAssessment")["assessment"]
        ok(site.graphql(SHARE, token=worker, variables={"id": drafted["id"]}),
           "shareRiskAssessment")
        her = her_token(site, "amani")
        ok(as_her(site, her, ANSWER, {"i": {"id": drafted["id"], "agree": True}}),
           "answerRiskAssessment")
        measure = ok(site.graphql("""mutation($c: ID!, $d: DateTime) { addMeasure(input: {
            caseId: $c, kind: SECURE_TRANSPORT, dueAt: $d, description: "Driver to the forum."})
            { measure { id } userErrors { message } } }""", token=focal, variables={
            "c": case_id, "d": (now + timedelta(days=14)).isoformat()}), "addMeasure")
        ok(site.graphql("""mutation($i: SetMeasurePlanInput!) { setMeasurePlan(input: $i) {
            measure { id } userErrors { message } } }""", token=focal, variables={"i": {
            "measureId": measure["measure"]["id"], "threatId": drafted["threats"][0]["id"],
            "planKind": "PREVENTIVE_PROTOCOL"}}), "setMeasurePlan")
        ok(site.graphql("""mutation($c: ID!) { recordProceeding(input: {caseId: $c,
            kind: investigation, data: {authority: "Prosecutor", stage: "complaint filed"}}) {
            proceeding { id } userErrors { message } } }""", token=focal,
                        variables={"c": case_id}), "recordProceeding")
        ok(as_her(site, her, GRANT, {"i": {"recipientOrganisationId": org_id(site, "nhri"),
                                           "categories": ["LEGAL"],
                                           "purposes": ["LEGAL_SUPPORT"]}}), "grantConsent")
        ok(site.graphql("""mutation($c: ID!, $o: ID!) { referCase(input: {caseId: $c,
            toOrganisationId: $o, purpose: LEGAL_SUPPORT}) { referral { id }
            userErrors { message } } }""", token=worker,
                        variables={"c": case_id, "o": org_id(site, "nhri")}), "referCase")
        yield site


def org_id(site: WebSite, slug: str) -> str:
    body = site.graphql("{ organisations(first: 100) { edges { node { id slug } } } }",
                        token=site.token("unpc", "caseworker"))
    return next(e["node"]["id"] for e in body["data"]["organisations"]["edges"]
                if e["node"]["slug"] == slug)


def open_cases(page: Any) -> None:
    page.goto("/cases")
    if page.get_by_role("button", name="Declare purpose").count():
        declare(page)
        page.goto("/cases")
    expect(page.locator("h1")).to_have_text("Cases")


def test_the_lead_organisation_sees_its_case(page: Any, web_site: WebSite) -> None:
    sign_in_staff(page, web_site, "unpc", "caseworker")
    open_cases(page)
    assert page.title() == "Cases — Safety Net"
    assert_accessible(page)
    shot(page, "cases-lead-org")
    page.get_by_role("link", name="amani").click()
    expect(page.locator("h1")).to_have_text("Protection case")
    assert page.title() == "Protection case — Safety Net"  # nothing of hers in the title
    assert "amani" not in page.url  # an opaque global ID only
    expect(page.locator("#case-summary")).to_have_text(AMANI_SUMMARY)
    assert page.get_by_role("heading", name="Her consent").is_visible()
    assert page.get_by_role("heading", name="Protection plan").is_visible()
    assert page.locator("text=Until she revokes it").count() >= 1
    assert_accessible(page)
    shot(page, "case-lead-org")
    # On a phone's width the case keeps the page's width: its tables scroll in named regions.
    page.set_viewport_size({"width": 360, "height": 780})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.locator(".table-wrap[role=region][tabindex='0']").count() >= 4
    assert_accessible(page)
    shot(page, "case-lead-org-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    # The status filter and the API's cursors in the URL (opaque).
    page.get_by_role("link", name="All cases").click()
    page.get_by_label("Status").select_option("closed")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("text=No case to show.")).to_be_visible()
    assert page.url.endswith("/cases?status=closed")
    assert page.evaluate("localStorage.length") == 0


def test_another_organisation_sees_what_she_shares_until_she_revokes(
        page: Any, web_site: WebSite) -> None:
    mofa = web_site.token("mofa", "focal")
    # Rosa (led by the embassy) shares incident details with the ministry herself.
    her = her_token(web_site, "rosa")
    granted = as_her(web_site, her, GRANT, {"i": {
        "recipientOrganisationId": org_id(web_site, "mofa"), "categories": ["INCIDENT_DETAILS"],
        "purposes": ["PROTECTION"]}})
    grant = granted["data"]["grantConsent"]["grant"]
    assert grant and grant["status"] == "LIVE", granted
    try:
        cases = web_site.graphql("{ cases(first: 50) { edges { node { id summary } } } }",
                                 token=mofa)
        by_summary = {e["node"]["summary"]: e["node"]["id"]
                      for e in cases["data"]["cases"]["edges"]}
        rosa_case, amani_case = by_summary[ROSA_SUMMARY], by_summary[AMANI_SUMMARY]

        sign_in_staff(page, web_site, "mofa", "focal", totp=True)
        open_cases(page)
        assert_accessible(page)
        # Amani's case through the Joint Action Group: incident details only.
        page.goto(f"/cases/{amani_case}")
        expect(page.locator("#case-summary")).to_have_text(AMANI_SUMMARY)
        risk = page.locator("section:has(#risk-heading)")
        expect(risk).to_contain_text("Not shared with you (her consent does not cover it)")
        legal = page.locator("section:has(#proceedings-heading)")
        expect(legal).to_contain_text("Not shared with you")
        expect(page.locator("section:has(#consent-heading)")).to_contain_text(
            "Joint Action Group")
        assert_accessible(page)
        shot(page, "case-other-org-redacted")

        page.goto("/groups")
        expect(page.locator("h1")).to_have_text("Working groups")
        expect(page.locator(f"a[href='/cases/{amani_case}']")).to_have_count(1)
        assert_accessible(page)
        shot(page, "groups")

        page.goto(f"/cases/{rosa_case}")
        expect(page.locator("#case-summary")).to_have_text(ROSA_SUMMARY)
        shot(page, "case-before-revocation")
        # She revokes through the API; the ministry's very next load has nothing of hers.
        revoked = as_her(web_site, her, REVOKE, {"id": grant["id"]})
        assert revoked["data"]["revokeConsent"]["grant"]["status"] == "REVOKED", revoked
        grant = None
        page.reload()
        expect(page.locator("h1")).to_have_text("Not found")
        assert ROSA_SUMMARY not in page.content()
        assert_accessible(page)
        shot(page, "case-after-revocation")
        check = web_site.graphql("query($id: ID!) { case(id: $id) { id } }", token=mofa,
                                 variables={"id": rosa_case})
        assert check["data"]["case"] is None
    finally:
        if grant is not None:
            as_her(web_site, her, REVOKE, {"id": grant["id"]})


def test_the_case_page_in_arabic_is_right_to_left(page: Any, web_site: WebSite) -> None:
    sign_in_staff(page, web_site, "unpc", "caseworker")
    open_cases(page)
    page.get_by_role("link", name="amani").click()
    expect(page.locator("h1")).to_have_text("Protection case")
    page.get_by_label("Language").select_option("ar")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    assert "/cases/" in page.url  # back on the same case
    expect(page.locator("#consent-heading")).to_have_text("موافقتها")
    assert_accessible(page)
    shot(page, "case-arabic-rtl")
