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
from app.consent.models import PeacebuilderAccount
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
        client.cookies.set(oidc.FLOW_COOKIE, flow, domain="test")
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

