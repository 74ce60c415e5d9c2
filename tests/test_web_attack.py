"""The dashboard attacked as an insider would (review 22): a machine client, a password-only
person, an organisation she cut off, another organisation's IDs, forged and malformed forms,
stale sessions and the live stream. Each test is an attack; every one must hold."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from sqlalchemy import select

from app.auth.passwords import hash_password
from app.tables.consent import PeacebuilderAccount
from schema.web.core import NEUTRAL_PATH
from tests.conftest import Env, unique
from tests.test_auth import login_token
from tests.test_consent import new_peacebuilder
from tests.test_web_queue import Stream
from tests.web_support import (
    PASSWORD,
    browser,
    csrf_of,
    declare_purpose,
    set_staff_password,
    sign_in_staff,
)

pytestmark = pytest.mark.anyio

ORIGIN = {"origin": "https://test"}
DURESS = "words she says when forced 42"
CREATE_USER = """mutation($u: String!, $r: [Role!]!) { createUser(input: {username: $u,
  displayName: "Review 22", roles: $r}) { user { id } userErrors { message } } }"""


async def new_person(env: Env, org: str, role: str) -> tuple[str, str]:
    """A person of `org` with `role` and a password, no second factor enrolled: (username, ID)."""
    username = unique(role.lower().replace("_", ""))
    made = await env.gql(CREATE_USER, {"u": username, "r": [role]}, as_=(org, "admin"))
    assert made["data"]["createUser"]["userErrors"] == [], made
    await set_staff_password(env, org, username)
    return username, made["data"]["createUser"]["user"]["id"]


async def set_duress(env: Env, login: str) -> None:
    async with env.runtime.db.transaction() as session:
        account = await session.scalar(select(PeacebuilderAccount).where(
            PeacebuilderAccount.login == login))
        assert account is not None
        account.duress_hash = hash_password(DURESS)


async def choose_purpose_anyway(client: httpx.AsyncClient) -> None:
    page = await client.get("/purpose?next=/queue")
    done = await client.post("/purpose", data={"csrf": csrf_of(page.text),
                                               "purpose": "protection", "next": "/queue"},
                             headers=ORIGIN)
    assert done.status_code == 303


async def status_of_stream(stream: Stream, seconds: float = 5.0) -> int:
    """The stream's status, once its first bytes (or its refusal's empty body) arrived."""
    async with asyncio.timeout(seconds):
        stream.text += (await stream.chunks.get()).decode()
    return stream.status


async def stop(stream: Stream, task: asyncio.Task[None]) -> None:
    stream.gone.set()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            await task


# --- a password alone (no second factor) -------------------------------------------------------

async def test_a_password_alone_opens_no_live_stream_and_reads_no_alert(env: Env,
                                                                         monkeypatch) -> None:
    """Attack: someone with a focal point's password but not her authenticator signs in (an
    enrolment-only session), declares a purpose anyway and opens the live queue. Her duress
    sign-in alerts the lead organisation's focal points: it must not reach this session, nor
    the API's `inbox` read with the same password-only token."""
    from schema.web import live

    monkeypatch.setattr(live, "HEARTBEAT", 0.3)
    pb = await new_peacebuilder(env, "fund")
    await set_duress(env, pb["login"])
    username, _ = await new_person(env, "fund", "FOCAL_POINT")
    async with browser(env) as client:
        signed = await sign_in_staff(client, "fund", username)
        assert signed.status_code == 303 and signed.headers["location"] == "/enrol"
        await choose_purpose_anyway(client)
        stream = Stream(env, str(client.cookies.get("__Host-sn-session")))
        task = stream.start()
        try:
            status = await status_of_stream(stream)
            duress = await env.client.post("/auth/login", json={"login": pb["login"],
                                                                "password": DURESS})
            assert duress.status_code == 200
            await asyncio.sleep(1.0)
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    stream.text += stream.chunks.get_nowait().decode()
            assert "her_duress_sign_in" not in stream.text and "event: alert" not in stream.text
            assert status == 403
        finally:
            await stop(stream, task)
    token = await login_token(env, "fund", username, PASSWORD)
    body = await env.gql("{ inbox { kind } }", token=token)
    assert not (body.get("data") or {}).get("inbox"), body


# --- the live stream after her session ended elsewhere ----------------------------------------

SIGN_OUT_EVERYWHERE = "mutation { signOut(input: {everywhere: true}) { sessionsEnded } }"
DEACTIVATE = """mutation($id: ID!) { deactivateUser(input: {userId: $id}) {
  user { id } userErrors { message } } }"""


@pytest.mark.parametrize("how", ["sign_out_everywhere", "deactivation"])
async def test_the_live_stream_ends_when_her_session_ends_elsewhere(env: Env, monkeypatch,
                                                                    how: str) -> None:
    """Attack: a queue left open on a seized laptop. She signs out everywhere from her phone
    (or her organisation deactivates her): the open stream must end at its next session check,
    not run on for minutes, and the pages and fragment must refuse it at once."""
    from schema.web import live

    monkeypatch.setattr(live, "HEARTBEAT", 0.3)
    username, user_id = await new_person(env, "fund", "CASEWORKER")
    async with browser(env) as client:
        assert (await sign_in_staff(client, "fund", username)).status_code == 303
        await declare_purpose(client)
        stream = Stream(env, str(client.cookies.get("__Host-sn-session")))
        task = stream.start()
        try:
            await stream.until("retry:")
            assert stream.status == 200
            if how == "sign_out_everywhere":
                token = await login_token(env, "fund", username, PASSWORD)
                body = await env.gql(SIGN_OUT_EVERYWHERE, token=token)
                assert body["data"]["signOut"]["sessionsEnded"] >= 2
            else:
                body = await env.gql(DEACTIVATE, {"id": user_id}, as_=("fund", "admin"))
                assert body["data"]["deactivateUser"]["userErrors"] == [], body
            await stream.until("event: end\ndata: signedout", seconds=5)
            async with asyncio.timeout(10):
                await task
        finally:
            await stop(stream, task)
        assert (await client.get("/queue/fragment")).status_code == 401
        assert (await client.get("/queue/live")).status_code == 401
        page = await client.get("/queue")
        assert page.status_code == 303 and page.headers["location"] == "/signin"


# --- malformed form tokens ----------------------------------------------------------------------

async def test_a_malformed_form_token_is_refused_not_a_crash(env: Env, monkeypatch) -> None:
    """Attack: forms whose token is not text the service ever issued — a non-ASCII value, a
    file part in a multipart body — and an OIDC return whose state or flow seal is not ASCII.
    Each must be the ordinary refusal (403, or the sign-in page's 401), never a 500."""
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as client:
        await sign_in_staff(client, "unpc", "caseworker")
        await declare_purpose(client, "protection")
        for path, data in (("/purpose", {"purpose": "media", "next": "/queue"}),
                           ("/language", {"language": "ar", "next": "/queue"}),
                           ("/queue/acknowledge", {"incident": "x"}),
                           ("/signout", {})):
            odd = await client.post(path, data={**data, "csrf": "\u00e9" * 64}, headers=ORIGIN)
            assert odd.status_code == 403, (path, odd.status_code)
            filed = await client.post(path, data=data, files={"csrf": ("t.txt", b"0" * 64)},
                                      headers=ORIGIN)
            assert filed.status_code == 403, (path, filed.status_code)
        page = await client.get("/queue")
        assert page.status_code == 200  # still signed in, nothing changed
        assert "<strong>Protection</strong>" in page.text and 'lang="en"' in page.text
        # The sign-in form's own token (double-submit) likewise.
        signin = await browser(env).__aenter__()
        try:
            await signin.get("/signin")
            refused = await signin.post("/signin", data={
                "csrf": "\u00e9", "who": "staff", "organisation": "unpc",
                "username": "caseworker", "password": PASSWORD}, headers=ORIGIN)
            assert refused.status_code == 403
        finally:
            await signin.aclose()
    # OIDC mode: the provider's return with a state (or a flow cookie) that is not ASCII.
    from dataclasses import replace

    from schema.web import oidc

    runtime = env.runtime
    monkeypatch.setattr(runtime, "settings", replace(
        runtime.settings, issuer="oidc", oidc_issuer="https://idp.invalid",
        oidc_web_client_id="safety-net-web"))
    flow = oidc._pack(runtime, {"state": "s" * 22, "nonce": "n", "verifier": "v",
                                "exp": 2**40, "lang": "en"})
    async with browser(env) as client:
        client.cookies.set(oidc.FLOW_COOKIE, flow, domain="test.local")
        back = await client.get(oidc.CALLBACK, params={"code": "c", "state": "\u00e9" * 22})
        assert back.status_code == 401
        assert "__Host-sn-session" not in back.headers.get("set-cookie", "")
    async with browser(env) as client:
        sealed = await client.get(oidc.CALLBACK, params={"code": "c", "state": "s" * 22},
                                  headers={"cookie": f"{oidc.FLOW_COOKIE}=e30.\u00e9".encode(
                                      "latin-1")})
        assert sealed.status_code == 401


# --- the access log's date filters --------------------------------------------------------------

async def test_audit_dates_at_the_calendars_end_are_refused_not_a_crash(env: Env) -> None:
    """Attack: an auditor's filter (or a crafted link sent to one) with the last day the
    calendar holds, or a file part as a date: the page and the export drop the filter as
    they drop any other bad date, instead of answering 500."""
    from tests.test_web_audit import auditor

    async with browser(env) as client:
        await auditor(env, client)
        for query in ("to=9999-12-31", "from=9999-12-31"):
            page = await client.get(f"/audit?{query}")
            assert page.status_code == 200, (query, page.status_code)
            assert 'value="9999-12-31"' not in page.text  # dropped, like any bad date
        page = await client.get("/audit")
        token = csrf_of(page.text)
        export = await client.post("/audit/download", data={"csrf": token, "to": "9999-12-31",
                                                            "format": "jsonl"}, headers=ORIGIN)
        assert export.status_code == 200
        assert export.headers["content-disposition"] == 'attachment; filename="access-log.jsonl"'
        filed = await client.post("/audit/download", data={"csrf": token, "format": "jsonl"},
                                  files={"from": ("d.txt", b"2026-01-01")}, headers=ORIGIN)
        assert filed.status_code == 200


# --- attacks that held (kept as regression tests) -----------------------------------------------

BROWSER_GETS = ("/", "/queue", "/queue/fragment", "/queue/live", "/cases", "/cases/x", "/groups",
                "/directory", "/audit", "/monitoring", "/monitoring/download?period=2026",
                "/me", "/me/consent", "/me/safety", "/me/history", "/purpose", "/enrol")
BROWSER_POSTS = ("/queue/acknowledge", "/audit/download", "/me/consent/revoke",
                 "/me/check-in", "/purpose", "/signout", "/language", "/monitoring", "/enrol")


def signed_out(response: httpx.Response) -> bool:
    """The answer to a request without a browser session: to sign-in (or her pages' neutral
    page), or 401 with no body."""
    if "__Host-sn-session=" in response.headers.get("set-cookie", "").replace(
            '__Host-sn-session=""', ""):
        return False
    if response.status_code == 303:  # her pages go to the neutral page, not to sign-in
        return response.headers["location"] in ("/signin", NEUTRAL_PATH)
    return response.status_code == 401 and response.content == b""


async def test_a_machine_clients_token_opens_no_browser_page(env: Env) -> None:
    """Attack: a partner system's client-credentials token sent to the browser routes (as a
    bearer header with the htmx header, as the session cookie) and its credentials typed into
    the sign-in form. Browser routes know only the session cookie: nothing opens."""
    from tests.test_auth import client_token, new_client

    _, client_id, secret = await new_client(env, "unpc")
    token = await client_token(env, client_id, secret)
    sent = {"authorization": f"Bearer {token}", "safety-net-purpose": "protection",
            "hx-request": "true", "x-csrf-token": "0" * 64, **ORIGIN}
    async with browser(env) as client:
        for path in BROWSER_GETS:
            assert signed_out(await client.get(path, headers=sent)), path
        for path in BROWSER_POSTS:
            answer = await client.post(path, data={"csrf": "0" * 64}, headers=sent)
            assert signed_out(answer), path
        client.cookies.set("__Host-sn-session", token, domain="test.local")
        assert signed_out(await client.get("/queue", headers=sent))
        assert signed_out(await client.get("/queue/fragment"))
    async with browser(env) as client:
        tried = await sign_in_staff(client, "unpc", client_id, password=secret)
        assert tried.status_code == 401 and "__Host-sn-session" not in tried.headers.get(
            "set-cookie", "")


async def test_another_organisations_ids_answer_exactly_like_missing_ones(env: Env) -> None:
    """Attack: a case worker puts another organisation's case, working group and incident IDs
    in the URLs and forms, under every purpose. Each answer is byte for byte the one for an ID
    that does not exist (so neither existence nor anything else is learnt)."""
    import uuid

    from schema import ids
    from tests.test_consent import wg_id
    from tests.test_web_queue import report

    pb = await new_peacebuilder(env, "wpn")
    incident = await report(env, pb["case"], "wpn")
    jag = await wg_id(env)  # fund is neither its convener nor a member
    username, _ = await new_person(env, "fund", "CASEWORKER")
    async with browser(env) as client:
        assert (await sign_in_staff(client, "fund", username)).status_code == 303
        for purpose in ("protection", "aggregate_reporting", "media", "legal_support"):
            await declare_purpose(client, purpose, back="/cases")
            for foreign, missing in (
                    (f"/cases/{pb['case']}", f"/cases/{ids.encode('Case', uuid.uuid4())}"),
                    (f"/groups/{jag}", f"/groups/{ids.encode('WorkingGroup', uuid.uuid4())}")):
                theirs, nothing = await client.get(foreign), await client.get(missing)
                assert theirs.status_code == nothing.status_code == 404, (purpose, foreign)
                assert theirs.content == nothing.content, (purpose, foreign)
        await declare_purpose(client, "protection")
        token = csrf_of((await client.get("/queue")).text)
        theirs = await client.post("/queue/acknowledge", data={"incident": incident,
                                                               "csrf": token}, headers=ORIGIN)
        nothing = await client.post("/queue/acknowledge", data={
            "incident": ids.encode("Incident", uuid.uuid4()), "csrf": token}, headers=ORIGIN)
        assert theirs.status_code == nothing.status_code == 200
        assert theirs.content == nothing.content
    body = await env.gql("query($id: ID!) { node(id: $id) { ... on Incident { status } } }",
                         {"id": incident}, as_=("wpn", "focal"))
    assert body["data"]["node"]["status"] == "REPORTED"


async def test_an_organisation_she_cut_off_sees_nothing_of_her_anywhere(env: Env) -> None:
    """Attack: an organisation she shared with (through a working group) keeps the pages open
    and tries every page, fragment and list after she revokes on her own page."""
    import uuid

    from schema import ids
    from tests.test_auth import totp_now
    from tests.test_consent import grant, wg_id
    from tests.test_web_case import new_focal, staff_client
    from tests.web_support import set_her_password, sign_in_her

    summary = "Review 22: followed after the hearing."
    pb = await new_peacebuilder(env, "unpc", summary=summary)
    shared = await grant(env, pb, as_=("unpc", "focal"), to_wg=await wg_id(env))
    username, seed = await new_focal(env, "mofa")
    other = await staff_client(env, "mofa", username, totp=totp_now(seed, 1))
    try:
        before = await other.get(f"/cases/{pb['case']}")
        assert before.status_code == 200 and summary in before.text
        assert pb["case"] in (await other.get("/groups")).text
        await set_her_password(env, pb["login"])
        async with browser(env) as her:
            assert (await sign_in_her(her, pb["login"])).status_code == 303
            page = await her.get("/me/consent")
            assert shared["id"] in page.text
            asked = await her.post("/me/consent/revoke", data={
                "csrf": csrf_of(page.text), "grant": shared["id"]}, headers=ORIGIN)
            assert asked.status_code == 200 and 'name="confirm"' in asked.text
            done = await her.post("/me/consent/revoke", data={
                "csrf": csrf_of(page.text), "grant": shared["id"], "confirm": "yes"},
                headers=ORIGIN)
            assert done.headers["location"] == "/me/consent?done=revoked"
        after = await other.get(f"/cases/{pb['case']}")
        missing = await other.get(f"/cases/{ids.encode('Case', uuid.uuid4())}")
        assert after.status_code == 404 and after.content == missing.content
        for path in ("/cases?size=50", "/groups", "/queue", "/queue/fragment"):
            answer = await other.get(path)
            assert answer.status_code == 200, path
            assert pb["case"] not in answer.text and summary not in answer.text, path
            assert pb["id"] not in answer.text, path
    finally:
        await other.aclose()


async def test_forged_and_cross_site_forms_change_nothing(env: Env) -> None:
    """Attack: CSRF with a token from the attacker's own session, with `Origin: null` (a
    sandboxed frame), with only a foreign Referer, and the htmx header with a wrong token."""
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as victim, browser(env) as attacker:
        await sign_in_staff(victim, "unpc", "caseworker")
        await sign_in_staff(attacker, "unpc", "caseworker")
        await declare_purpose(victim, "protection")
        mine = csrf_of((await attacker.get("/purpose")).text)
        good = csrf_of((await victim.get("/purpose")).text)
        assert mine != good
        tries = [({"csrf": mine}, ORIGIN), ({"csrf": good}, {"origin": "null"}),
                 ({"csrf": good}, {"referer": "https://evil.example/page"}),
                 ({}, {"x-csrf-token": mine, "hx-request": "true", **ORIGIN}),
                 ({"csrf": good}, {"origin": "https://test.evil.example"})]
        for extra, headers in tries:
            answer = await victim.post("/purpose", data={"purpose": "media", "next": "/queue",
                                                         **extra}, headers=headers)
            assert answer.status_code == 403, (extra, headers)
        page = await victim.get("/queue")
        assert "<strong>Protection</strong>" in page.text
        # Her own page's token, through htmx's header: accepted (the control case).
        ok = await victim.post("/purpose", data={"purpose": "media", "next": "/queue"},
                               headers={"x-csrf-token": good, **ORIGIN})
        assert ok.status_code == 303


async def test_the_session_cookie_cannot_be_planted_or_replayed(env: Env) -> None:
    """Attack: session fixation (a cookie value planted before she signs in), the cookie's
    flags, and the old cookie replayed after she signs out."""
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as client:
        planted = "p" * 43
        client.cookies.set("__Host-sn-session", planted, domain="test.local")
        signed = await sign_in_staff(client, "unpc", "caseworker")
        cookie = signed.headers["set-cookie"]
        for flag in ("httponly", "secure", "samesite=strict", "path=/"):
            assert flag in cookie.lower(), flag
        assert "domain=" not in cookie.lower()
        secret = cookie.split("__Host-sn-session=", 1)[1].split(";", 1)[0]
        assert secret != planted and len(secret) >= 40
        client.cookies.clear()
        client.cookies.set("__Host-sn-session", secret, domain="test.local")
        await declare_purpose(client)
        page = await client.get("/queue")
        out = await client.post("/signout", data={"csrf": csrf_of(page.text)}, headers=ORIGIN)
        assert out.status_code == 303
    async with browser(env) as thief:
        thief.cookies.set("__Host-sn-session", secret, domain="test.local")
        assert signed_out(await thief.get("/queue"))
        assert signed_out(await thief.get("/queue/fragment"))
        assert signed_out(await thief.get("/queue/live"))
    async with browser(env) as thief:
        thief.cookies.set("__Host-sn-session", planted, domain="test.local")
        assert signed_out(await thief.get("/queue"))


async def test_next_parameters_never_leave_the_site(env: Env) -> None:
    """Attack: open redirects through the purpose and language forms' `next` and her
    check-in's `next`."""
    await set_staff_password(env, "unpc", "caseworker")
    evil = ("//evil.example", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
            "/\t/evil.example", "javascript:alert(1)", " //evil.example", "/%2F%2Fevil.example")
    async with browser(env) as client:
        await sign_in_staff(client, "unpc", "caseworker")
        token = csrf_of((await client.get("/purpose")).text)
        for target in evil:
            for path, data in (("/purpose", {"purpose": "protection"}),
                               ("/language", {"language": "en"})):
                answer = await client.post(path, data={"csrf": token, "next": target, **data},
                                           headers=ORIGIN)
                assert answer.status_code == 303, (path, target)
                location = answer.headers["location"]
                assert location.startswith("/") and not location.startswith(("//", "/\\")), (
                    path, target, location)
                assert "\t" not in location
            shown = await client.get("/purpose", params={"next": target})
            assert shown.status_code == 200 and 'href="//' not in shown.text
            assert 'value="//' not in shown.text and 'value="https:' not in shown.text


async def test_no_record_without_a_declared_purpose(env: Env) -> None:
    """Attack: staff skip the purpose and go straight to records, fragments, the stream and
    the downloads."""
    pb = await new_peacebuilder(env, "unpc", summary="Review 22: no purpose, no record.")
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as client:
        await sign_in_staff(client, "unpc", "caseworker")
        for path in ("/queue", "/cases", f"/cases/{pb['case']}", "/groups"):
            page = await client.get(path)
            assert page.status_code == 200 and 'name="purpose"' in page.text, path
            assert f'href="/cases/{pb["case"]}"' not in page.text, path
            assert "no purpose, no record" not in page.text
        assert (await client.get("/queue/fragment", headers={"hx-request": "true"})
                ).status_code == 403
        assert (await client.get("/queue/live")).status_code == 403
        token = csrf_of((await client.get("/queue")).text)
        ack = await client.post("/queue/acknowledge", data={"csrf": token, "incident": "x"},
                                headers=ORIGIN)
        assert ack.status_code == 200 and 'name="purpose"' in ack.text
        intel = await client.post("/purpose", data={"csrf": token, "purpose":
                                                    "intelligence_gathering"}, headers=ORIGIN)
        assert intel.status_code == 400


async def test_a_password_alone_reaches_no_step_up_or_role_action(env: Env) -> None:
    """Attack: staff signed in with a password only — an auditor and a focal point whose roles
    need a second factor (enrolment-only sessions) and a case worker whose role does not — try
    the access log and its export, the monitoring tables, a release and their downloads, and
    acknowledging an incident. Nothing is shown, exported, released or acknowledged."""
    from tests.test_web_queue import report, status_of

    pb = await new_peacebuilder(env, "nhri")
    incident = await report(env, pb["case"], "nhri")
    for role in ("AUDITOR", "FOCAL_POINT", "CASEWORKER"):
        username, _ = await new_person(env, "nhri", role)
        async with browser(env) as client:
            signed = await sign_in_staff(client, "nhri", username)
            assert signed.status_code == 303
            if role != "CASEWORKER":
                assert signed.headers["location"] == "/enrol"
            for purpose in ("protection", "aggregate_reporting"):
                await declare_purpose(client, purpose)
                token = csrf_of((await client.get("/purpose")).text)
                for path in ("/audit", "/monitoring", "/monitoring/download?period=2025&format=csv"):
                    assert (await client.get(path)).status_code == 404, (role, path)
                export = await client.post("/audit/download", data={"csrf": token,
                                                                    "format": "csv"},
                                           headers=ORIGIN)
                assert export.status_code == 404, role
                assert "attachment" not in export.headers.get("content-disposition", "")
                release = await client.post("/monitoring", data={
                    "csrf": token, "table": "incidents_by_type", "period": "2025"},
                    headers=ORIGIN)
                assert release.status_code == 404, role
            ack = await client.post("/queue/acknowledge", data={"csrf": token,
                                                                "incident": incident},
                                    headers=ORIGIN)
            assert ack.status_code in (200, 303)
            if role != "CASEWORKER":
                assert await status_of(env, "nhri", incident) == "REPORTED", role


async def test_dashboard_answers_are_never_cached_and_logs_carry_no_pseudonym(env: Env) -> None:
    """Attack: look for her data in caches and logs — every dashboard answer (pages, redirects,
    refusals, fragments, errors) says `no-store`; her failed and successful sign-ins and a case
    page viewed by staff write nothing of her login or pseudonym to the service log."""
    from tests.logcapture import service_logs
    from tests.web_support import set_her_password, sign_in_her

    pb = await new_peacebuilder(env, "unpc", summary="Review 22: not in any log.")
    await set_her_password(env, pb["login"])
    await set_staff_password(env, "unpc", "caseworker")
    with service_logs("DEBUG") as captured:
        async with browser(env) as her:
            wrong = await sign_in_her(her, pb["login"], password="not her password at all")
            assert wrong.status_code == 401
            assert (await sign_in_her(her, pb["login"])).status_code == 303
            answers = [wrong, *[await her.get(p) for p in ("/me", "/me/consent", "/me/safety",
                                                           "/me/history", "/queue", "/")]]
        async with browser(env) as staff:
            answers.append(await staff.get("/queue"))
            await sign_in_staff(staff, "unpc", "caseworker")
            await declare_purpose(staff, back="/cases")
            page = await staff.get(f"/cases/{pb['case']}")
            assert page.status_code == 200 and "not in any log" in page.text
            answers += [page, await staff.get("/cases/x"), await staff.get("/queue/fragment"),
                        await staff.post("/purpose", data={"purpose": "media"}),
                        await staff.get("/me")]
    for answer in answers:
        assert answer.headers.get("cache-control") == "no-store", (answer.url, answer.status_code)
    for secret in (pb["login"], "not in any log", "not her password"):
        assert secret not in captured.text


async def test_another_persons_event_id_replays_nothing_of_theirs(env: Env, monkeypatch) -> None:
    """Attack: a focal point of another organisation reconnects her live queue with the
    `Last-Event-ID` of an alert that went to someone else (a cursor seen over a shoulder, or
    made up): the replay covers her own alerts only."""
    import re

    from schema.web import live
    from tests.test_web_queue import _focal_session, report

    monkeypatch.setattr(live, "HEARTBEAT", 0.3)
    pb = await new_peacebuilder(env, "fund")
    theirs = await _focal_session(env, "fund")
    stream = Stream(env, theirs)
    task = stream.start()
    try:
        await stream.until("retry:")
        await report(env, pb["case"], "fund")
        text = await stream.until('"incident_reported"')
    finally:
        await stop(stream, task)
    cursor = re.findall(r"^id: (.+)$", text, re.M)[-1]
    mine = await _focal_session(env, "wpn")
    for last in (cursor, "A" * 60, "not a cursor at all"):
        other = Stream(env, mine, last_event_id=last)
        other_task = other.start()
        try:
            # Her own inbox after it, or (a cursor the API cannot read) the stream stops.
            await other.until(": keep-alive" if last == cursor else "\n\n", seconds=10)
            await asyncio.sleep(0.5)
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    other.text += other.chunks.get_nowait().decode()
            assert other.status == 200
            assert "event: alert" not in other.text and "incident_reported" not in other.text
        finally:
            await stop(other, other_task)
