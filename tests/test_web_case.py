"""Case pages over HTTP (issue 22): /cases, /cases/{id}, /groups — who sees what, consent and
redaction exactly as the API decides, one not-found page, nothing personal in titles or URLs.
(The browser tests drive the same pages in Chromium: tests/test_web_case_browser.py.)"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from schema import ids
from tests.conftest import Env, unique
from tests.test_auth import enrol_totp, login_token, totp_now
from tests.test_consent import REVOKE, grant, new_peacebuilder, org_id, wg_id
from tests.test_incidents import REPORT, incident_input
from tests.test_risk import REFER, assessed
from tests.web_support import (
    PASSWORD,
    browser,
    csrf_of,
    declare_purpose,
    set_her_password,
    set_staff_password,
    sign_in_her,
    sign_in_staff,
)

pytestmark = pytest.mark.anyio

TITLE = re.compile(r"<title>(.*?)</title>", re.S)
CASE_LINK = re.compile(r'href="/cases/([A-Za-z0-9_=-]+)"')
NEXT_LINK = re.compile(r'href="(/cases\?[^"]*after=[^"]+)" rel="next"')
WITHHELD = "Not shared with you (her consent does not cover it)"
SUMMARY = "Threatened after a radio interview."
REASONING = "Credible and rising."


def title_of(html: str) -> str:
    found = TITLE.search(html)
    assert found
    return found.group(1)


async def staff_client(env: Env, org: str, user: str, *, totp: str | None = None
                       ) -> httpx.AsyncClient:
    """A signed-in dashboard browser with the protection purpose declared."""
    client = browser(env)
    signed = await sign_in_staff(client, org, user, totp=totp)
    assert signed.status_code == 303, signed.text
    await declare_purpose(client, back="/cases")
    return client


async def new_focal(env: Env, org: str) -> tuple[str, str]:
    """A focal point of `org` of this test module alone, second factor enrolled (her own
    authenticator seed returned), so signing her in touches no shared demo person."""
    username = unique("focal")
    made = await env.gql("""mutation($u: String!) { createUser(input: {username: $u,
        displayName: "Case page focal point", roles: [FOCAL_POINT]}) { user { id }
        userErrors { message } } }""", {"u": username}, as_=(org, "admin"))
    assert made["data"]["createUser"]["userErrors"] == [], made
    await set_staff_password(env, org, username)
    secret = await enrol_totp(env, await login_token(env, org, username, PASSWORD))
    return username, secret


async def rich_case(env: Env) -> dict[str, Any]:
    """A unpc-led case with an incident, an agreed risk assessment, a plan measure, an
    investigation and a referral; she shares incident details with the Joint Action Group."""
    pb = await new_peacebuilder(env, "unpc")
    body = await env.gql(REPORT, incident_input(pb["case"], severity="CRITICAL"),
                         as_=("unpc", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == [], body
    await assessed(env, pb, as_=("unpc", "caseworker"))
    due = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    body = await env.gql("""mutation($c: ID!, $d: DateTime) { addMeasure(input: {caseId: $c,
        kind: SECURE_TRANSPORT, dueAt: $d, description: "Driver to the hearings."}) {
        measure { id } userErrors { message } } }""", {"c": pb["case"], "d": due},
                         as_=("unpc", "focal"))
    assert body["data"]["addMeasure"]["userErrors"] == [], body
    body = await env.gql("""mutation($c: ID!) { recordProceeding(input: {caseId: $c,
        kind: investigation, data: {authority: "Prosecutor", stage: "charged"}}) {
        proceeding { id } userErrors { message } } }""", {"c": pb["case"]}, as_=("unpc", "focal"))
    assert body["data"]["recordProceeding"]["userErrors"] == [], body
    await grant(env, pb, as_=("unpc", "focal"), to_org="nhri", purposes=["LEGAL_SUPPORT"])
    body = await env.gql(REFER, {"i": {"caseId": pb["case"], "toOrganisationId":
                                       await org_id(env, "nhri"), "purpose": "LEGAL_SUPPORT"}},
                         as_=("unpc", "caseworker"))
    assert body["data"]["referCase"]["userErrors"] == [], body
    pb["group_grant"] = (await grant(env, pb, as_=("unpc", "focal"), to_wg=await wg_id(env)))["id"]
    return pb


@pytest.fixture(scope="module")
async def scene(env: Env) -> AsyncIterator[dict[str, Any]]:
    """The case, the lead organisation's case worker and another organisation's focal point,
    both signed in to the dashboard."""
    pb = await rich_case(env)
    await set_staff_password(env, "unpc", "caseworker")
    username, secret = await new_focal(env, "mofa")
    lead = await staff_client(env, "unpc", "caseworker")
    other = await staff_client(env, "mofa", username, totp=totp_now(secret, 1))
    try:
        yield {"pb": pb, "lead": lead, "other": other, "pseudonym": pb["login"]}
    finally:
        await lead.aclose()
        await other.aclose()


async def test_the_lead_organisation_sees_its_case(scene: dict[str, Any]) -> None:
    lead: httpx.AsyncClient = scene["lead"]
    case_id = scene["pb"]["case"]
    listing = await lead.get("/cases?size=50")
    assert listing.status_code == 200
    page = await lead.get(f"/cases/{case_id}")
    assert page.status_code == 200, page.text
    html = page.text
    for shown in (SUMMARY, REASONING, "Threatening messages after the forum.", "Threats",
                  "Critical", "Agreed by her", "Herself", "Secure transport",
                  "Driver to the hearings.", "UN Protection Cluster", "Investigation",
                  "Prosecutor", "National Human Rights", "Legal support", "Pending",
                  "Until she revokes it", "Incident reported",
                  "Risk assessment in force", "Threat 1", "Review date"):
        assert shown in html, shown
    # Codes are labels, never raw enum values.
    for code in (">CRITICAL<", ">THREATS<", ">AGREED<", ">SECURE_TRANSPORT<", ">LIVE<",
                 "INCIDENT_DETAILS", ">investigation<"):
        assert code not in html, code
    # Location was never consented to: shown as withheld, with the API's reason.
    assert WITHHELD in html
    assert page.headers["cache-control"] == "no-store"
    # Every table scrolls sideways in its own container (a phone keeps the page's width).
    tables = html.count("<table")
    named = re.findall(r'<div class="table-wrap" tabindex="0" role="region" '
                       r'aria-labelledby="([\w-]+)">\n<table', html)
    assert tables >= 5 and len(named) == tables
    assert all(f'<h2 id="{label}">' in html for label in named)


async def test_another_organisation_sees_only_what_her_consent_releases(
        scene: dict[str, Any]) -> None:
    other: httpx.AsyncClient = scene["other"]
    page = await other.get(f"/cases/{scene['pb']['case']}")
    assert page.status_code == 200, page.text
    html = page.text
    # Incident details were shared with the group: the summary, incidents and the plan.
    assert SUMMARY in html and "Threatening messages after the forum." in html
    assert "Secure transport" in html
    # Risk assessment and legal data were not: sections say so, with the reason; no content.
    assert REASONING not in html and "Prosecutor" not in html and "Agreed by her" not in html
    risk = html.split('id="risk-heading"')[1].split("</section>")[0]
    legal = html.split('id="proceedings-heading"')[1].split("</section>")[0]
    assert WITHHELD in risk and WITHHELD in legal
    # A measure's link to a threat is risk-assessment data: withheld in its cell.
    plan = html.split('id="plan-heading"')[1].split("</section>")[0]
    assert WITHHELD in plan
    # Her consent as far as it names this organisation: the group's grant, not the intake.
    consent = html.split('id="consent-heading"')[1].split("</section>")[0]
    assert "Joint Action Group" in consent and "Incident details" in consent
    assert "Health" not in consent


async def test_missing_and_foreign_cases_are_the_same_page(env: Env,
                                                           scene: dict[str, Any]) -> None:
    lead: httpx.AsyncClient = scene["lead"]
    missing = ids.encode("Case", uuid.uuid4())
    body = await env.gql("{ cases(first: 5) { edges { node { id } } } }", as_=("mofa", "focal"))
    foreign = next(e["node"]["id"] for e in body["data"]["cases"]["edges"]
                   if e["node"]["id"] != scene["pb"]["case"])  # a mofa case unpc cannot reach
    answers = [await lead.get(f"/cases/{x}") for x in (missing, foreign, "not-an-id",
                                                       scene["pb"]["id"])]
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert missing not in answers[0].text and foreign not in answers[1].text
    # The same page for a working group that is not there.
    group = await lead.get(f"/groups/{ids.encode('WorkingGroup', uuid.uuid4())}")
    assert group.status_code == 404 and group.content == answers[0].content
    # A case worker of the other organisation who is not on its team: not found either.
    await set_staff_password(env, "mofa", "caseworker")
    async with browser(env) as client:
        await sign_in_staff(client, "mofa", "caseworker")
        await declare_purpose(client, back="/cases")
        hidden = await client.get(f"/cases/{scene['pb']['case']}")
        nothing = await client.get(f"/cases/{missing}")
        assert hidden.status_code == nothing.status_code == 404
        assert hidden.content == nothing.content


async def test_no_personal_data_in_titles_or_urls(scene: dict[str, Any]) -> None:
    lead: httpx.AsyncClient = scene["lead"]
    case_id = scene["pb"]["case"]
    listing = await lead.get("/cases?size=50")
    assert scene["pseudonym"] in listing.text  # the pseudonym is on the page...
    detail = await lead.get(f"/cases/{case_id}")
    groups = await scene["other"].get("/groups")
    for page in (listing, detail, groups):
        title = title_of(page.text)
        # ...but never in a title, nor anything of her record.
        for secret in (scene["pseudonym"], SUMMARY, REASONING, case_id):
            assert secret not in title
        for href in re.findall(r'href="([^"]+)"', page.text):
            assert scene["pseudonym"] not in href and "Threat" not in href
    assert title_of(listing.text) == "Cases — Safety Net"
    assert title_of(detail.text) == "Protection case — Safety Net"


async def test_cases_page_through_the_api_cursors(env: Env, scene: dict[str, Any]) -> None:
    lead: httpx.AsyncClient = scene["lead"]
    await new_peacebuilder(env, "unpc")  # at least two cases for unpc's case worker
    everything = await lead.get("/cases?size=50")
    expected = set(CASE_LINK.findall(everything.text))
    assert len(expected) >= 2
    seen: list[str] = []
    url: str | None = "/cases?size=1"
    while url:
        page = await lead.get(url.replace("&amp;", "&"))
        assert page.status_code == 200
        seen += CASE_LINK.findall(page.text)
        found = NEXT_LINK.search(page.text)
        url = found.group(1) if found else None
    assert seen and len(seen) == len(set(seen)) and set(seen) == expected
    # A cursor that is not one of the API's is refused by the API, never used as data.
    forged = await lead.get("/cases?after=" + "A" * 40)
    assert forged.status_code == 400 and not CASE_LINK.findall(forged.text)
    assert "Part of this page could not be loaded." in forged.text


async def test_cases_filter_by_status(scene: dict[str, Any]) -> None:
    lead: httpx.AsyncClient = scene["lead"]
    open_ = await lead.get("/cases?status=open&size=50")
    closed = await lead.get("/cases?status=closed&size=50")
    assert scene["pb"]["case"] in open_.text
    assert scene["pb"]["case"] not in closed.text
    assert '<option value="closed" selected>Closed</option>' in closed.text


async def test_working_groups_show_what_is_shared_with_them(scene: dict[str, Any]) -> None:
    other: httpx.AsyncClient = scene["other"]
    page = await other.get("/groups")
    assert page.status_code == 200
    assert "Joint Action Group" in page.text and "UN Protection Cluster" in page.text
    assert f'href="/cases/{scene["pb"]["case"]}"' in page.text
    assert "Incident details" in page.text
    group = re.search(r'href="/groups/([^"]+)"', page.text)
    assert group
    one = await other.get(f"/groups/{group.group(1)}")
    assert one.status_code == 200 and f'/cases/{scene["pb"]["case"]}' in one.text


async def test_revocation_takes_effect_on_the_next_load(env: Env,
                                                        scene: dict[str, Any]) -> None:
    other: httpx.AsyncClient = scene["other"]
    pb = await new_peacebuilder(env, "unpc", summary="Followed home after the march.")
    g = await grant(env, pb, as_=("unpc", "focal"), to_wg=await wg_id(env))
    before = await other.get(f"/cases/{pb['case']}")
    assert "Followed home after the march." in before.text
    her = await env.peacebuilder_token(pb["login"])
    revoked = await env.gql(REVOKE, {"id": g["id"]}, token=her, purpose=None)
    assert revoked["data"]["revokeConsent"]["grant"]["status"] == "REVOKED"
    after = await other.get(f"/cases/{pb['case']}")
    assert "Followed home after the march." not in after.text
    missing = await other.get(f"/cases/{ids.encode('Case', uuid.uuid4())}")
    assert after.status_code == 404 and after.content == missing.content
    groups = await other.get("/groups")
    assert pb["case"] not in groups.text


async def test_pages_are_for_signed_in_staff_only(env: Env) -> None:
    async with browser(env) as client:
        for path in ("/cases", "/cases/x", "/groups"):
            response = await client.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/signin"
    await set_her_password(env, "rosa")
    async with browser(env) as client:
        await sign_in_her(client, "rosa")
        assert (await client.get("/cases")).status_code == 404
        assert (await client.get("/groups")).status_code == 404


async def test_staff_declare_a_purpose_before_any_case(env: Env) -> None:
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as client:
        await sign_in_staff(client, "unpc", "caseworker")
        page = await client.get("/cases")
        assert page.status_code == 200 and 'name="purpose"' in page.text
        assert "/cases/" not in page.text
        # The language form on these pages carries the CSRF token like every other.
        assert csrf_of(page.text)


async def test_the_case_page_in_arabic_is_right_to_left_with_labels(scene: dict[str, Any]) -> None:
    other: httpx.AsyncClient = scene["other"]
    path = f"/cases/{scene['pb']['case']}"
    page = await other.get(path)
    changed = await other.post("/language", data={"csrf": csrf_of(page.text), "language": "ar",
                                                  "next": path},
                               headers={"origin": "https://test"})
    assert changed.status_code == 303
    try:
        arabic = await other.get(path)
        assert 'lang="ar" dir="rtl"' in arabic.text
        assert "غير مشترك معك" in arabic.text and "موافقتها لا تشمله" in arabic.text
        assert "حرج" in arabic.text  # the incident's severity, CRITICAL
        assert "Not shared with you" not in arabic.text
    finally:
        await other.post("/language", data={"csrf": csrf_of(page.text), "language": "en",
                                            "next": path}, headers={"origin": "https://test"})


async def test_a_page_view_is_in_the_access_log_like_an_api_read(env: Env,
                                                                  scene: dict[str, Any]) -> None:
    from sqlalchemy import select

    from app.tables.audit import AccessLogEntry

    woman = str(ids.decode(scene["pb"]["id"], "Peacebuilder"))
    mofa = ids.decode(await org_id(env, "mofa"), "Organisation")

    async def reads() -> list[AccessLogEntry]:
        async with env.runtime.db.transaction() as session:
            found = await session.scalars(select(AccessLogEntry).where(
                AccessLogEntry.action == "data.read", AccessLogEntry.org_id == mofa))
            return [e for e in found if woman in ((e.details or {}).get("records") or {})]

    before = {e.id for e in await reads()}
    page = await scene["other"].get(f"/cases/{scene['pb']['case']}")
    assert page.status_code == 200
    new = [e for e in await reads() if e.id not in before]
    # One entry for what the page carried, one for what it withheld: the API's own ledger,
    # under the purpose the person declared in the dashboard.
    allowed = [e for e in new if e.decision == "allow"]
    denied = [e for e in new if e.decision == "deny"]
    assert allowed and denied and all(e.purpose == "protection" for e in new)
    assert "incident_details" in allowed[0].details["records"][woman]  # type: ignore[index]


async def test_the_case_pages_change_nothing(scene: dict[str, Any]) -> None:
    lead: httpx.AsyncClient = scene["lead"]
    page = await lead.get("/cases")
    for path in ("/cases", f"/cases/{scene['pb']['case']}", "/groups"):
        refused = await lead.post(path, data={"csrf": csrf_of(page.text)},
                                  headers={"origin": "https://test"})
        assert refused.status_code == 405
