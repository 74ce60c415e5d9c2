"""People's sessions over HTTP: refresh tokens rotate, a replayed one revokes the session,
sign-out (endpoint and mutation), deactivation and resets revoke, and every revocation bites on
the next request because admission reads the session from the database.

Replicas: a second app on the same database (its own runtime, no shared memory) sees the same
revocation at its next request.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.auth.passwords import hash_password
from app.auth.sessions import token_hash
from app.clock import FrozenClock
from app.runtime import Runtime
from app.tables.audit import AccessLogEntry
from app.tables.auth import AuthSession, RefreshToken
from app.tables.consent import PeacebuilderAccount
from schema import ids
from schema.server import create_app
from tests.conftest import Env, build_env
from tests.factories import register
from tests.test_auth import (
    DEACTIVATE_USER,
    REACTIVATE_USER,
    RESET_PASSWORD,
    VIEWER,
    codes,
    enrol_totp,
    login,
    login_token,
    new_user,
    totp_now,
)

pytestmark = pytest.mark.anyio

SIGN_OUT = """mutation($everywhere: Boolean!) { signOut(input: {everywhere: $everywhere}) {
  sessionsEnded userErrors { message } } }"""
HER_VIEW = "{ viewer { kind name } }"


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                   "refresh_token": token})


async def status(env: Env, token: str, query: str = VIEWER) -> int:
    return (await env.post(query, token=token)).status_code


async def signed_in(env: Env, org: str = "mofa", roles: list[str] | None = None
                    ) -> tuple[str, str, dict[str, Any]]:
    """A new person of `org`, signed in with her password: (global id, username, answer)."""
    gid, username, password = await new_user(env, org, roles or ["CASEWORKER"])
    response = await login(env, org, username, password)
    assert response.status_code == 200, response.text
    return gid, username, response.json()


async def her_session(env: Env) -> dict[str, Any]:
    """A woman with her own login and password, signed in: the answer of /auth/login."""
    her = await register(env, "fund", "caseworker", login=True)
    async with env.runtime.db.transaction() as s:
        await s.execute(update(PeacebuilderAccount)
                        .where(PeacebuilderAccount.login == her["login"])
                        .values(password_hash=hash_password("her own passphrase 7")))
    response = await env.client.post("/auth/login", json={"login": her["login"],
                                                          "password": "her own passphrase 7"})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def log_entries(env: Env, action: str) -> list[AccessLogEntry]:
    async with env.runtime.db.transaction() as session:
        return list(await session.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == action)))


async def test_login_answers_a_refresh_token_stored_only_hashed(env: Env) -> None:
    _, _, answer = await signed_in(env)
    assert answer["token_type"] == "Bearer" and answer["refresh_token"].startswith("snr_")
    claims = env.runtime.issuer.verify(answer["access_token"]).raw
    assert claims["sid"]
    async with env.runtime.db.transaction() as session:
        stored = await session.scalar(select(RefreshToken).where(
            RefreshToken.token_hash == token_hash(answer["refresh_token"])))
        assert stored is not None and stored.used_at is None
        assert str(stored.session_id) == claims["sid"]
        # Only the hash: the token itself is nowhere in the row.
        assert answer["refresh_token"] not in repr(vars(stored))


async def test_refresh_rotates_and_keeps_the_sign_in(env: Env) -> None:
    _, username, answer = await signed_in(env)
    first = env.runtime.issuer.verify(answer["access_token"]).raw
    response = await refresh(env.client, answer["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    renewed = response.json()
    assert renewed["refresh_token"] != answer["refresh_token"]
    claims = env.runtime.issuer.verify(renewed["access_token"]).raw
    # The same session, the same sign-in: acr and auth_time are not renewed by a refresh.
    assert claims["sid"] == first["sid"] and claims["acr"] == first["acr"] == "pwd"
    assert claims["auth_time"] == first["auth_time"]
    body = await env.gql(VIEWER, token=renewed["access_token"])
    assert body["data"]["viewer"]["name"] == username
    # And again, with the new one.
    again = await refresh(env.client, renewed["refresh_token"])
    assert again.status_code == 200, again.text
    assert (await log_entries(env, "auth.refresh"))


async def test_reusing_a_spent_refresh_token_revokes_the_whole_session(env: Env) -> None:
    _, _, answer = await signed_in(env)
    stolen = answer["refresh_token"]
    good = (await refresh(env.client, stolen)).json()  # the rightful app rotates first
    assert await status(env, good["access_token"]) == 200
    replay = await refresh(env.client, stolen)  # the thief (or a replay) presents the old one
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # Both lose the session: the newest refresh token and the live access tokens, at once.
    assert (await refresh(env.client, good["refresh_token"])).json()["error"] == "invalid_grant"
    assert await status(env, good["access_token"]) == 401
    assert await status(env, answer["access_token"]) == 401
    async with env.runtime.db.transaction() as session:
        sid = env.runtime.issuer.verify(answer["access_token"]).session_id
        sess = await session.scalar(select(AuthSession).where(AuthSession.id.in_(
            select(RefreshToken.session_id).where(RefreshToken.token_hash == token_hash(stolen)))))
        assert sess is not None and str(sess.id) == sid and sess.revoked_reason == "reuse"
    denied = [e for e in await log_entries(env, "auth.refresh")
              if e.decision == "deny" and e.reason == "refresh token reuse"]
    assert denied


async def test_two_exchanges_racing_with_one_token_end_the_session(env: Env) -> None:
    """Two clients present the same token at once: at most one gets a new pair, and either way
    the token was used twice, so the session ends (the winner's new tokens included)."""
    _, _, answer = await signed_in(env)
    first, second = await asyncio.gather(refresh(env.client, answer["refresh_token"]),
                                         refresh(env.client, answer["refresh_token"]))
    assert sorted([first.status_code, second.status_code]) in ([200, 400], [400, 400])
    for won in (r for r in (first, second) if r.status_code == 200):
        assert await status(env, won.json()["access_token"]) == 401
        assert (await refresh(env.client, won.json()["refresh_token"])).status_code == 400
    assert await status(env, answer["access_token"]) == 401


@pytest.mark.parametrize("bad", ["", "snr_unknown", "x" * 400])
async def test_unknown_or_missing_refresh_token_is_refused(env: Env, bad: str) -> None:
    response = await refresh(env.client, bad)
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_grant", "invalid_request"}


async def test_sign_out_endpoint_ends_the_session_now(env: Env) -> None:
    _, _, answer = await signed_in(env)
    _, _, other = await signed_in(env)
    assert await status(env, answer["access_token"]) == 200
    out = await env.client.post("/auth/logout", data={"token": answer["refresh_token"]})
    assert out.status_code == 200 and out.json() == {"signed_out": True}
    assert await status(env, answer["access_token"]) == 401
    assert (await refresh(env.client, answer["refresh_token"])).status_code == 400
    assert await status(env, other["access_token"]) == 200  # someone else's session stays
    # RFC 7009: an unknown token is not an error (nothing to learn by probing); JSON works too.
    unknown = await env.client.post("/oauth/revoke", json={"refresh_token": "snr_nothing"})
    assert unknown.status_code == 200
    assert (await env.client.post("/auth/logout", data={})).status_code == 400


async def test_sign_out_mutation_ends_this_session(env: Env) -> None:
    _, _, laptop = await signed_in(env)
    body = await env.gql(SIGN_OUT, {"everywhere": False}, token=laptop["access_token"])
    assert body["data"]["signOut"] == {"sessionsEnded": 1, "userErrors": []}, body
    assert await status(env, laptop["access_token"]) == 401
    assert (await refresh(env.client, laptop["refresh_token"])).status_code == 400


async def test_sign_out_everywhere_ends_every_device(env: Env) -> None:
    _, username, password = await new_user(env, "mofa", ["CASEWORKER"])
    laptop = (await login(env, "mofa", username, password)).json()
    phone = (await login(env, "mofa", username, password)).json()
    assert laptop["refresh_token"] != phone["refresh_token"]
    body = await env.gql(SIGN_OUT, {"everywhere": True}, token=phone["access_token"])
    assert body["data"]["signOut"] == {"sessionsEnded": 2, "userErrors": []}, body
    for device in (laptop, phone):
        assert await status(env, device["access_token"]) == 401
        assert (await refresh(env.client, device["refresh_token"])).status_code == 400
    # Signing in again works: sign-out is not a lock.
    assert (await login(env, "mofa", username, password)).status_code == 200


async def test_machine_clients_have_no_session_to_sign_out(env: Env) -> None:
    token = await env.token("mofa", client="mofa-system")
    body = await env.gql(SIGN_OUT, {"everywhere": False}, token=token)
    assert codes(body) == ["FORBIDDEN"], body


async def test_deactivation_revokes_for_good_and_reset_password_too(env: Env) -> None:
    gid, _, answer = await signed_in(env)
    body = await env.gql(DEACTIVATE_USER, {"id": gid}, as_=("mofa", "admin"))
    assert body["data"]["deactivateUser"]["userErrors"] == []
    assert await status(env, answer["access_token"]) == 401
    assert (await refresh(env.client, answer["refresh_token"])).status_code == 400
    body = await env.gql(REACTIVATE_USER, {"id": gid}, as_=("mofa", "admin"))
    assert body["data"]["reactivateUser"]["user"]["active"] is True
    # Reactivated, she signs in again: the old session does not come back.
    assert await status(env, answer["access_token"]) == 401
    assert (await refresh(env.client, answer["refresh_token"])).status_code == 400

    gid2, _, second = await signed_in(env)
    body = await env.gql(RESET_PASSWORD, {"id": gid2}, as_=("mofa", "admin"))
    assert body["data"]["resetUserPassword"]["userErrors"] == []
    assert await status(env, second["access_token"]) == 401
    assert (await refresh(env.client, second["refresh_token"])).status_code == 400


async def test_a_second_factor_session_keeps_mfa_but_not_step_up(env: Env) -> None:
    """A focal point signed in with her code: refreshed tokens still say `acr: mfa` (she does
    not re-enter her code every 15 minutes) but keep the sign-in's `auth_time`, so step-up
    actions (recent second factor) lapse on their own schedule."""
    _, username, password = await new_user(env, "mofa", ["FOCAL_POINT"])
    secret = await enrol_totp(env, await login_token(env, "mofa", username, password))
    response = await env.client.post("/auth/login", json={
        "organisation": "mofa", "username": username, "password": password,
        "totp": totp_now(secret, 1)})
    assert response.status_code == 200, response.text
    answer = response.json()
    first = env.runtime.issuer.verify(answer["access_token"]).raw
    assert first["acr"] == "mfa"
    renewed = (await refresh(env.client, answer["refresh_token"])).json()
    claims = env.runtime.issuer.verify(renewed["access_token"]).raw
    assert claims["acr"] == "mfa" and claims["auth_time"] == first["auth_time"]
    body = await env.gql(VIEWER, token=renewed["access_token"])
    assert "focal_point" in {r.lower() for r in body["data"]["viewer"]["roles"]}, body


async def test_enrolment_only_sign_in_gets_no_session(env: Env) -> None:
    _, username, password = await new_user(env, "mofa", ["FOCAL_POINT"])
    answer = (await login(env, "mofa", username, password)).json()
    assert answer.get("mfa_enrolment_required") is True
    assert "refresh_token" not in answer


async def test_her_session_refreshes_and_she_signs_out(env: Env) -> None:
    answer = await her_session(env)
    assert answer["refresh_token"].startswith("snr_")
    renewed = (await refresh(env.client, answer["refresh_token"])).json()
    assert "access_token" in renewed, renewed
    body = await env.gql(HER_VIEW, token=renewed["access_token"], purpose=None)
    assert body["data"]["viewer"]["kind"] == "peacebuilder", body
    body = await env.gql(SIGN_OUT, {"everywhere": False}, token=renewed["access_token"],
                         purpose=None)
    assert body["data"]["signOut"] == {"sessionsEnded": 1, "userErrors": []}, body
    assert (await env.post(HER_VIEW, token=renewed["access_token"], purpose=None)
            ).status_code == 401
    assert (await refresh(env.client, renewed["refresh_token"])).status_code == 400


async def test_revocation_reaches_another_replica_at_its_next_request(env: Env) -> None:
    """A second app (its own runtime and caches, the same database and keys) admits the token
    until the first one signs her out, then refuses it at once."""
    other_runtime = Runtime.create(env.settings)
    app = create_app(other_runtime)
    async with app.router.lifespan_context(app):
        replica = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                    base_url="http://replica")
        try:
            _, _, answer = await signed_in(env)
            headers = {"authorization": f"Bearer {answer['access_token']}",
                       "safety-net-purpose": "protection"}
            seen = await replica.post("/graphql", json={"query": VIEWER}, headers=headers)
            assert seen.status_code == 200, seen.text
            out = await env.client.post("/auth/logout", data={"token": answer["refresh_token"]})
            assert out.status_code == 200
            refused = await replica.post("/graphql", json={"query": VIEWER}, headers=headers)
            assert refused.status_code == 401
        finally:
            await replica.aclose()
    await other_runtime.close()


async def test_sessions_and_refresh_tokens_expire(backend: str, tmp_path: Any) -> None:
    """A refresh token lives SAFETY_NET_REFRESH_TTL; the session SAFETY_NET_SESSION_MAX,
    however often it is refreshed; access tokens never outlive their session."""
    clock = FrozenClock(datetime.now(UTC))
    env, close = await build_env(backend, tmp_path, clock=clock, refresh_ttl_seconds=600,
                                 session_max_seconds=1000)
    try:
        _, _, answer = await signed_in(env)
        clock.advance(seconds=601)
        assert (await refresh(env.client, answer["refresh_token"])).json()["error"] == \
            "invalid_grant"
        _, _, answer = await signed_in(env)
        clock.advance(seconds=500)
        renewed = (await refresh(env.client, answer["refresh_token"])).json()
        claims = env.runtime.issuer.verify(renewed["access_token"]).raw
        assert renewed["expires_in"] <= 500 and claims["exp"] <= int(time.time()) + 500
        clock.advance(seconds=501)  # past the session's end, within the new token's own life
        assert (await refresh(env.client, renewed["refresh_token"])).status_code == 400
        # A day after they ended, her next sign-in clears her old sessions and their tokens.
        gid, username, password = await new_user(env, "mofa", ["CASEWORKER"])
        first = (await login(env, "mofa", username, password)).json()
        clock.advance(days=1, seconds=1001)
        second = (await login(env, "mofa", username, password)).json()
        async with env.runtime.db.transaction() as session:
            kept = {str(s.id) for s in await session.scalars(select(AuthSession).where(
                AuthSession.subject == f"user:{ids.decode(gid, 'User')}"))}
            tokens = (await session.scalars(select(RefreshToken.token_hash))).all()
        assert kept == {env.runtime.issuer.verify(second["access_token"]).session_id}
        assert token_hash(first["refresh_token"]) not in tokens
    finally:
        await close()
