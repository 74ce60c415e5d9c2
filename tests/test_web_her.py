"""Her own pages over HTTP on both databases (issue 22): she sees her own cases, incidents,
consent, approvals, risk assessment, check-in and access history, and no one else's; she
revokes a grant, withdraws an approval, answers her assessment and checks in through the API's
mutations, and nothing changes without the form's CSRF token; staff find no /me page; the quick
exit ends the session and clears the site; no personal data in titles or URLs; pages are small
and load no htmx. (Chromium drives the same pages: tests/test_web_her_browser.py.)"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env, figure
from tests.test_consent import grant, new_peacebuilder, org_id
from tests.test_incidents import REPORT, incident_input
from tests.web_support import (
    browser,
    csrf_of,
    set_her_password,
    set_staff_password,
    sign_in_her,
    sign_in_staff,
)

pytestmark = pytest.mark.anyio

HER_PAGES = ("/me", "/me/consent", "/me/safety", "/me/history")
STATIC = Path(__file__).resolve().parent.parent / "schema" / "web" / "static"
PAGE_BUDGET = 30_000  # bytes: a page's HTML plus the stylesheet and script it loads
ORIGIN = {"origin": "https://test"}
ENTRY = '<li><span class="muted">'  # one entry of her access history
DRAFT = """mutation($i: DraftRiskAssessmentInput!) { draftRiskAssessment(input: $i) {
  assessment { id } userErrors { field message code } } }"""
SHARE = """mutation($id: ID!) { shareRiskAssessment(input: {id: $id}) {
  assessment { id status } userErrors { code } } }"""
AGREE_SCHEDULE = """mutation($i: AgreeCheckInScheduleInput!) { agreeCheckInSchedule(input: $i) {
  schedule { id } userErrors { field message code } } }"""
APPROVE = """mutation($i: RecordApprovalInput!) { recordApproval(input: $i) {
  approval { id status } userErrors { code } } }"""
HER_STATE = """{ me { consentGrants { id status } approvals { id status }
  cases { riskAssessments { id status herView } checkIns { status checkedInBy } } } }"""


async def her_with_data(env: Env) -> dict[str, Any]:
    """A fresh woman led by `fund`, with her own login and password, an incident, a risk
    assessment shared with her, a check-in schedule, a grant of hers to `unpc` and an approval
    for `fund`."""
    pb = await new_peacebuilder(env, "fund")
    await set_her_password(env, pb["login"])
    staff = ("fund", "caseworker")
    body = await env.gql(REPORT, incident_input(pb["case"], severity="HIGH"), as_=staff)
    assert body["data"]["reportIncident"]["userErrors"] == [], body
    review = (env.runtime.clock.now() + timedelta(days=30)).isoformat()
    body = await env.gql(DRAFT, {"i": {"caseId": pb["case"], "level": "HIGH", "reviewAt": review,
                                       "threats": [{"likelihood": "HIGH", "impact": "HIGH",
                                                    "facts": "Messages after the forum."}]}},
                         as_=staff)
    assert body["data"]["draftRiskAssessment"]["userErrors"] == [], body
    pb["assessment"] = body["data"]["draftRiskAssessment"]["assessment"]["id"]
    body = await env.gql(SHARE, {"id": pb["assessment"]}, as_=staff)
    assert body["data"]["shareRiskAssessment"]["userErrors"] == [], body
    body = await env.gql(AGREE_SCHEDULE, {"i": {
        "caseId": pb["case"], "intervalMinutes": 24 * 60, "channel": "APP",
        "agreedVia": "IN_PERSON", "missedAction": "CALL_SAFETY_CONTACT"}}, as_=staff)
    assert body["data"]["agreeCheckInSchedule"]["userErrors"] == [], body
    pb["unpc_grant"] = (await grant(env, pb, as_=("fund", "caseworker"), to_org="unpc"))["id"]
    her = await env.peacebuilder_token(pb["login"])
    body = await env.gql(APPROVE, {"i": {"act": "public_statement", "organisationId":
                                         await org_id(env, "fund"),
                                         "description": "A statement of solidarity."}},
                         token=her, purpose=None)
    assert body["data"]["recordApproval"]["userErrors"] == [], body
    pb["approval"] = body["data"]["recordApproval"]["approval"]["id"]
    return pb


async def her_state(env: Env, pb: dict[str, Any]) -> dict[str, Any]:
    body = await env.gql(HER_STATE, token=await env.peacebuilder_token(pb["login"]),
                         purpose=None)
    assert "errors" not in body, body
    return body["data"]["me"]  # type: ignore[no-any-return]


def status_of(items: list[dict[str, Any]], wanted: str) -> str:
    return next(i["status"] for i in items if i["id"] == wanted)


def title_of(html: str) -> str:
    found = re.search(r"<title>(.*?)</title>", html, re.S)
    assert found
    return found.group(1)


async def test_she_sees_her_own_cases_consent_safety_and_history(env: Env) -> None:
    pb = await her_with_data(env)
    other = await her_with_data(env)
    async with browser(env) as client:
        signed_in = await sign_in_her(client, pb["login"])
        assert signed_in.status_code == 303
        pages = {path: await client.get(path) for path in HER_PAGES}
    for path, response in pages.items():
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        # The quick exit on every one of her pages; no htmx, no inline script or style.
        assert 'href="/exit"' in response.text
        assert "htmx" not in response.text and "<script>" not in response.text
        assert "style=" not in response.text
        # Fixed titles: nothing of hers (no pseudonym, no organisation, no ID).
        title = title_of(response.text)
        assert pb["login"] not in title and "fund" not in title.lower() and "=" not in title
    overview = pages["/me"].text
    assert "Threats" in overview and "High" in overview  # incident type and severity, labelled
    assert "Reported, waiting for acknowledgement" in overview
    assert "THREATS" not in overview and ">HIGH<" not in overview  # no raw enum codes
    assert 'action="/me/check-in"' in overview  # her schedule: a check-in button
    consent = pages["/me/consent"].text
    assert pb["unpc_grant"] in consent and 'action="/me/consent/revoke"' in consent
    assert pb["approval"] in consent and "A statement of solidarity." in consent
    assert "Public statement" in consent
    safety = pages["/me/safety"].text
    assert pb["assessment"] in safety and 'action="/me/safety/answer"' in safety
    history = pages["/me/history"].text
    assert ENTRY in history  # staff read her record while setting it up: logged, shown
    # Another woman's objects appear nowhere on her pages.
    for response in pages.values():
        for key in ("id", "case", "unpc_grant", "approval", "assessment", "login"):
            assert other[key] not in response.text


async def test_she_revokes_a_grant_and_it_stops(env: Env) -> None:
    pb = await her_with_data(env)
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        page = await client.get("/me/consent")
        token = csrf_of(page.text)
        # Without the form's token, or from another site: refused, nothing changes.
        refused = await client.post("/me/consent/revoke", data={"grant": pb["unpc_grant"]},
                                    headers=ORIGIN)
        forged = await client.post("/me/consent/revoke", data={"csrf": "0" * 64,
                                                               "grant": pb["unpc_grant"]},
                                   headers=ORIGIN)
        cross = await client.post("/me/consent/revoke", data={"csrf": token,
                                                              "grant": pb["unpc_grant"]},
                                  headers={"origin": "https://evil.example"})
        assert refused.status_code == forged.status_code == cross.status_code == 403
        # Her error page is hers too: light, with the quick exit.
        assert 'href="/exit"' in refused.text and "htmx" not in refused.text
        assert status_of((await her_state(env, pb))["consentGrants"], pb["unpc_grant"]) == "LIVE"
        # The revoke button asks first: to whom, what stops being shared, and a way back.
        asked = await client.post("/me/consent/revoke", data={"csrf": token,
                                                              "grant": pb["unpc_grant"]},
                                  headers=ORIGIN)
        assert asked.status_code == 200
        assert "<title>Stop sharing? — Safety Net</title>" in asked.text
        assert "UN Protection Cluster" in asked.text and "they can no longer see" in asked.text
        assert '<a href="/me/consent" class="button-link">No, keep sharing</a>' in asked.text
        assert 'name="confirm" value="yes"' in asked.text and "<script" not in asked.text.replace(
            '<script src="/static/web/her.js" defer></script>', "")
        assert "htmx" not in asked.text and len(asked.content) < 8000
        assert status_of((await her_state(env, pb))["consentGrants"], pb["unpc_grant"]) == "LIVE"
        done = await client.post("/me/consent/revoke", data={"csrf": csrf_of(asked.text),
                                                             "grant": pb["unpc_grant"],
                                                             "confirm": "yes"},
                                 headers=ORIGIN)
        assert done.status_code == 303 and done.headers["location"] == "/me/consent?done=revoked"
        assert pb["unpc_grant"] not in done.headers["location"]
        after = await client.get(done.headers["location"])
        assert "The consent is revoked" in after.text
        # Still listed among the ended ones, but with no revoke button for it any more.
        assert f'name="grant" value="{pb["unpc_grant"]}"' not in after.text
    assert status_of((await her_state(env, pb))["consentGrants"], pb["unpc_grant"]) == "REVOKED"


async def test_she_cannot_revoke_another_womans_grant(env: Env) -> None:
    pb = await her_with_data(env)
    other = await her_with_data(env)
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        token = csrf_of((await client.get("/me/consent")).text)
        for confirm in ("", "yes"):  # neither her confirmation page nor the revocation
            tried = await client.post("/me/consent/revoke",
                                      data={"csrf": token, "grant": other["unpc_grant"],
                                            "confirm": confirm}, headers=ORIGIN)
            assert tried.headers["location"] == "/me/consent?done=failed"
    assert status_of((await her_state(env, other))["consentGrants"],
                     other["unpc_grant"]) == "LIVE"


async def test_she_withdraws_an_approval_answers_her_assessment_and_checks_in(env: Env) -> None:
    pb = await her_with_data(env)
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        token = csrf_of((await client.get("/me/safety")).text)
        withdrawn = await client.post("/me/approvals/withdraw", data={
            "csrf": token, "approval": pb["approval"]}, headers=ORIGIN)
        assert withdrawn.headers["location"] == "/me/consent?done=withdrawn"
        # Contesting needs her view: without it nothing is sent.
        empty = await client.post("/me/safety/answer", data={
            "csrf": token, "assessment": pb["assessment"], "answer": "contest"}, headers=ORIGIN)
        assert empty.headers["location"] == "/me/safety?done=failed"
        contested = await client.post("/me/safety/answer", data={
            "csrf": token, "assessment": pb["assessment"], "answer": "contest",
            "her_view": "The risk is higher at night."}, headers=ORIGIN)
        assert contested.headers["location"] == "/me/safety?done=answered"
        safety = await client.get("/me/safety")
        assert "The risk is higher at night." in safety.text
        assert 'action="/me/safety/answer"' not in safety.text  # answered: no form any more
        overview = await client.get("/me")
        schedule = re.search(r'name="schedule" value="([^"]+)"', overview.text)
        assert schedule
        checked = await client.post("/me/check-in", data={
            "csrf": csrf_of(overview.text), "schedule": schedule.group(1), "next": "/me"},
            headers=ORIGIN)
        assert checked.headers["location"] == "/me?done=checked_in"
        assert "Your check-in is recorded" in (await client.get("/me?done=checked_in")).text
    state = await her_state(env, pb)
    assert status_of(state["approvals"], pb["approval"]) == "WITHDRAWN"
    assessment = state["cases"][0]["riskAssessments"][0]
    assert (assessment["status"], assessment["herView"]) == ("CONTESTED",
                                                              "The risk is higher at night.")
    assert {"status": "DONE", "checkedInBy": "HER"} in state["cases"][0]["checkIns"]


async def test_staff_cannot_open_her_pages(env: Env) -> None:
    await set_staff_password(env, "fund", "caseworker")
    async with browser(env) as client:
        await sign_in_staff(client, "fund", "caseworker")
        for path in HER_PAGES:
            response = await client.get(path)
            assert response.status_code == 404, path
        token = csrf_of((await client.get("/me")).text)
        posted = await client.post("/me/consent/revoke", data={"csrf": token, "grant": "x"},
                                   headers=ORIGIN)
        assert posted.status_code == 404
    async with browser(env) as anonymous:
        for path in HER_PAGES:
            # Not our sign-in page: after a quick exit, Back must not land on a page naming us.
            response = await anonymous.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/weather"


async def test_quick_exit_ends_the_session_and_clears_the_site(env: Env) -> None:
    pb = await her_with_data(env)
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        assert (await client.get("/me")).status_code == 200
        left = await client.get("/exit")
        assert left.status_code == 303 and left.headers["location"] == "/weather"
        assert left.headers["clear-site-data"] == '"cache", "cookies", "storage"'
        assert "__Host-sn-session=" in left.headers["set-cookie"]
        assert "max-age=0" in left.headers["set-cookie"].lower()
        neutral = await client.get("/weather")
        assert neutral.status_code == 200
        assert "Safety Net" not in neutral.text and "safety" not in neutral.text.lower()
        assert "<script" not in neutral.text and "http" not in neutral.text
        # The session is over on the server too: the old cookie opens nothing, and Back to
        # her page lands on the neutral page again, not on one that names us.
        back = await client.get("/me")
        assert back.status_code == 303 and back.headers["location"] == "/weather"
    async with browser(env) as replay:
        # Even a copy of the cookie taken before the exit opens nothing now.
        await sign_in_her(replay, pb["login"])
        cookie = replay.cookies.get("__Host-sn-session")
        assert cookie
        await replay.get("/exit")
        replay.cookies.set("__Host-sn-session", cookie, domain="test.local")  # httpx: host "test"
        again = await replay.get("/me")
        assert again.status_code == 303 and again.headers["location"] == "/weather"
    async with browser(env) as nobody:
        # Signed out, the exit still lands on the neutral page.
        left = await nobody.get("/exit")
        assert left.status_code == 303 and left.headers["location"] == "/weather"


async def test_her_pages_are_small_and_in_her_language(env: Env) -> None:
    pb = await her_with_data(env)
    assets = sum((STATIC / name).stat().st_size for name in ("app.css", "her.js"))
    heaviest = (0, "")
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        for language, word in (("sw", "Toka"), ("ar", 'dir="rtl"'), ("es", "Salida rápida")):
            page = await client.get("/me")
            changed = await client.post("/language", data={
                "csrf": csrf_of(page.text), "language": language, "next": "/me"},
                headers=ORIGIN)
            assert changed.status_code == 303
            for path in HER_PAGES:
                response = await client.get(path)
                assert f'lang="{language}"' in response.text and word in response.text, path
                weight = len(response.content) + assets
                assert weight < PAGE_BUDGET, (path, language, weight)
                heaviest = max(heaviest, (weight, f"{path} ({language})"))
                # What her page loads: our stylesheet and her small script, nothing else.
                loaded = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text))
                assert loaded == {"/static/web/app.css", "/static/web/her.js"}, loaded
    figure(f"her pages ({env.backend}): heaviest {heaviest[1]} {heaviest[0]} bytes with its "
           f"stylesheet and script ({assets} bytes of them); budget {PAGE_BUDGET}")


async def test_no_personal_data_in_urls(env: Env) -> None:
    pb = await her_with_data(env)
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        urls: list[str] = []
        for path in HER_PAGES:
            html = (await client.get(path)).text
            urls += re.findall(r'(?:href|action)="([^"]+)"', html)
        assert urls
        for url in urls:
            assert pb["login"] not in url and "@" not in url, url
            assert not url.startswith("http"), url  # nothing leaves this site
        history = await client.get("/me/history")
        assert history.status_code == 200


async def test_her_page_over_the_same_app_as_the_api(env: Env) -> None:
    # Her access history on the page is the API's: the same entries, newest first.
    pb = await her_with_data(env)
    body = await env.gql("{ accessHistory(first: 5) { edges { node { description } } } }",
                         token=await env.peacebuilder_token(pb["login"]), purpose=None)
    first = body["data"]["accessHistory"]["edges"][0]["node"]["description"]
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        page = await client.get("/me/history")
    assert page.text.count(ENTRY) >= 1
    assert first.replace("'", "&#39;") in page.text


async def test_her_error_pages_keep_the_quick_exit(env: Env) -> None:
    pb = await her_with_data(env)
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        staff_page = await client.get("/queue")
        assert staff_page.status_code == 404
        assert 'href="/exit"' in staff_page.text and "htmx" not in staff_page.text


async def test_her_access_history_pages_with_the_apis_cursor(env: Env) -> None:
    pb = await her_with_data(env)
    body = await env.gql("""{ accessHistory(first: 2) { edges { node { at description } }
        pageInfo { endCursor } } }""", token=await env.peacebuilder_token(pb["login"]),
                         purpose=None)
    found = body["data"]["accessHistory"]
    newest = [e["node"]["description"] for e in found["edges"]]
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        first = await client.get("/me/history")
        older = await client.get("/me/history", params={"after": found["pageInfo"]["endCursor"]})
        broken = await client.get("/me/history", params={"after": "not-a-cursor"})
    # The page after the API's cursor: the same history without its two newest entries.
    assert 3 <= first.text.count(ENTRY) < 20
    assert older.text.count(ENTRY) == first.text.count(ENTRY) - 2
    assert all(d.replace("'", "&#39;") in first.text for d in newest)
    assert 'href="/me/history">' in older.text  # back to the newest
    # A cursor that is not one: the page still answers, says part could not be loaded.
    assert broken.status_code == 200 and "could not be loaded" in broken.text


async def test_her_access_history_in_her_language(env: Env) -> None:
    """The API describes each access in English; her page says it in her language."""
    pb = await her_with_data(env)
    body = await env.gql("{ accessHistory(first: 20) { edges { node { description } } } }",
                         token=await env.peacebuilder_token(pb["login"]), purpose=None)
    english = {e["node"]["description"] for e in body["data"]["accessHistory"]["edges"]}
    assert any(d.startswith("read your ") for d in english), english
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        page = await client.get("/me/history")
        french = await client.post("/language", data={"csrf": csrf_of(page.text),
                                                      "language": "fr", "next": "/me/history"},
                                   headers=ORIGIN)
        assert french.status_code == 303
        page = await client.get("/me/history")
    assert 'lang="fr"' in page.text and "a consulté : " in page.text
    entries = re.findall(r"<li><span class=\"muted\">.*?</li>", page.text, re.S)
    assert entries and not [d for d in english
                            if any(f"· {d.replace(chr(39), '&#39;')} ·" in e for e in entries)]


def test_every_history_text_the_api_writes_is_translated() -> None:
    from schema.audit.types import ACTIONS
    from schema.web import i18n
    from schema.web.audit_actions import ACTIONS as AUDIT_ACTIONS
    from schema.web.her import LABELS
    from schema.web.history_texts import describe

    texts = set()
    for allowed, denied in ACTIONS.values():
        for cats in ("identity, incident details", "record"):
            texts |= {t.format(cats=cats) for t in (allowed, denied) if t}
            if allowed and not denied:
                texts.add(f"was refused: {allowed}".format(cats=cats))
    # Actions the API words by their code alone (e.g. "check in schedule: agree").
    texts |= {code.replace("_", " ").replace(".", ": ") for code in AUDIT_ACTIONS
              if code not in ACTIONS}
    assert len(texts) > 150
    for language in i18n.LANGUAGES[1:]:
        gettext = i18n.translations(language).gettext
        assert [t for t in texts if describe(t, gettext, LABELS, language) == t] == [], language


async def test_she_confirms_a_grant_waiting_for_her_and_approves_a_public_act(env: Env) -> None:
    pb = await her_with_data(env)
    pending = await grant(env, pb, as_=("fund", "caseworker"), to_org="fund",
                          categories=("TRAVEL",), confirm=False)
    async with browser(env) as client:
        await sign_in_her(client, pb["login"])
        page = await client.get("/me/consent")
        assert 'action="/me/consent/confirm"' in page.text and pending["id"] in page.text
        token = csrf_of(page.text)
        confirmed = await client.post("/me/consent/confirm", data={
            "csrf": token, "grant": pending["id"]}, headers=ORIGIN)
        assert confirmed.headers["location"] == "/me/consent?done=confirmed"
        fund = await org_id(env, "fund")
        assert f'<option value="{fund}">' in page.text  # an organisation she deals with
        refused = await client.post("/me/approvals/record", data={
            "act": "media_contact", "organisation": fund, "description": "x"}, headers=ORIGIN)
        assert refused.status_code == 403
        wrong_act = await client.post("/me/approvals/record", data={
            "csrf": token, "act": "intelligence", "organisation": fund,
            "description": "An interview."}, headers=ORIGIN)
        assert wrong_act.headers["location"] == "/me/consent?done=failed"
        approved = await client.post("/me/approvals/record", data={
            "csrf": token, "act": "media_contact", "organisation": fund,
            "description": "An interview on the evening radio."}, headers=ORIGIN)
        assert approved.headers["location"] == "/me/consent?done=approved"
        after = await client.get("/me/consent")
        assert "An interview on the evening radio." in after.text and "Media contact" in after.text
    state = await her_state(env, pb)
    assert status_of(state["consentGrants"], pending["id"]) == "LIVE"
    assert sorted(a["status"] for a in state["approvals"]) == ["LIVE", "LIVE"]
