"""Authentication end to end: bearer tokens at the GraphQL edge, client credentials, password
login, deactivation and role changes biting on the next request, JWKS, access log (OIDC mode:
tests/test_oidc.py and tests/test_oidc_provider.py).

Everything goes through the real ASGI app over HTTP (or, for the OIDC verifier, through the real
verifier and principal resolution); tokens that must be wrong are forged with joserfc directly.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import replace
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey
from sqlalchemy import select

from app.auth import keys, principals, totp
from app.auth.tokens import Issuer
from app.errors import Unauthenticated
from app.tables.audit import AccessLogEntry
from app.tables.orgs import Organisation, User
from schema import ids
from tests.conftest import Env, unique
from tests.factories import INTAKE, register

pytestmark = pytest.mark.anyio

VIEWER = "{ viewer { kind name roles organisation { slug } } }"
CREATE_USER = """
mutation($input: CreateUserInput!) {
  createUser(input: $input) { user { id username active roles } initialPassword
                              userErrors { field message code } }
}"""
RESET_PASSWORD = """
mutation($id: ID!) {
  resetUserPassword(input: {userId: $id}) { user { id } initialPassword userErrors { message code } }
}"""
SET_ROLES = """
mutation($id: ID!, $roles: [Role!]!) {
  setUserRoles(input: {userId: $id, roles: $roles}) { user { id roles } userErrors { message code } }
}"""
DEACTIVATE_USER = """
mutation($id: ID!) { deactivateUser(input: {userId: $id}) { user { id active } userErrors { message } } }"""
REACTIVATE_USER = """
mutation($id: ID!) { reactivateUser(input: {userId: $id}) { user { id active } userErrors { message } } }"""
CREATE_CLIENT = """
mutation($input: CreateClientInput!) {
  createClient(input: $input) { client { id clientId active } clientSecret userErrors { message code } }
}"""
ROTATE_SECRET = """
mutation($id: ID!) {
  rotateClientSecret(input: {id: $id}) { client { id secretRotatedAt } clientSecret userErrors { message } }
}"""
DEACTIVATE_CLIENT = """
mutation($id: ID!) { deactivateClient(input: {id: $id}) { client { id active } userErrors { message } } }"""
CREATE_PB = """
mutation($input: CreatePeacebuilderInput!) {
  createPeacebuilder(input: $input) { peacebuilder { id pseudonym } userErrors { message code } }
}"""
OPEN_CASE = """
mutation($input: OpenCaseInput!) {
  openCase(input: $input) { case { id status leadOrganisation { slug } } userErrors { message code } }
}"""

LOGIN_FAILED = {"error": "invalid_grant",
                "error_description": "Invalid organisation, username, password or code."}
START_TOTP = """
mutation($code: String) { startTotpEnrolment(input: {enrolmentCode: $code}) {
  secret otpauthUri userErrors { field message code } } }"""
REQUEST_CODE = """
mutation($id: ID!) { requestEnrolmentCode(input: {userId: $id}) {
  confirmation { id status action } userErrors { field message code } } }"""
CONFIRM_TWO_PERSON = """
mutation($id: ID!) { confirmTwoPerson(input: {id: $id}) {
  confirmation { id status } userErrors { field message code } } }"""
CLAIM_CODE = """
mutation($id: ID!) { claimEnrolmentCode(input: {confirmationId: $id}) {
  code expiresAt user { id username } userErrors { field message code } } }"""
CONFIRM_TOTP = """
mutation($code: String!) { confirmTotpEnrolment(input: {code: $code}) { enrolled userErrors { message } } }"""


# --- helpers -----------------------------------------------------------------------------------

def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def assert_unauthenticated(response: httpx.Response, *, invalid_token: bool = True) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer"), challenge
    assert ('error="invalid_token"' in challenge) is invalid_token, challenge
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


def assert_invalid_client(response: httpx.Response, method: str) -> None:
    """RFC 6749 §5.2: 401 with a Basic challenge when the client tried HTTP Basic, else 400."""
    if method == "basic":
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Basic"), response.headers
    else:
        assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_client"
    assert "access_token" not in body
    assert response.headers["cache-control"] == "no-store"


async def new_user(env: Env, org: str, roles: list[str]) -> tuple[str, str, str]:
    """Create a user as the org admin; returns (global id, username, initial password)."""
    username = unique("u")
    body = await env.gql(CREATE_USER, {"input": {"username": username, "displayName": "Test User",
                                                 "roles": roles}}, as_=(org, "admin"))
    payload = body["data"]["createUser"]
    assert payload["userErrors"] == [], payload
    assert payload["user"]["active"] is True
    return payload["user"]["id"], username, payload["initialPassword"]


async def new_client(env: Env, org: str = "mofa") -> tuple[str, str, str]:
    """Create a machine client as the org admin; returns (global id, client_id, secret)."""
    client_id = unique(f"{org}-sys")
    body = await env.gql(CREATE_CLIENT, {"input": {"clientId": client_id, "name": "Test system"}},
                         as_=(org, "admin"))
    payload = body["data"]["createClient"]
    assert payload["userErrors"] == [], payload
    assert payload["client"]["clientId"] == client_id and payload["client"]["active"] is True
    assert payload["clientSecret"]
    return payload["client"]["id"], client_id, payload["clientSecret"]


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"authorization": f"Basic {raw}"}


async def token_request(env: Env, client_id: str, secret: str, *, method: str = "basic",
                        grant_type: str = "client_credentials",
                        headers: dict[str, str] | None = None) -> httpx.Response:
    form = {"grant_type": grant_type}
    h = dict(headers or {})
    if method == "basic":
        h.update(basic(client_id, secret))
    else:
        form.update({"client_id": client_id, "client_secret": secret})
    return await env.client.post("/oauth/token", data=form, headers=h)


async def client_token(env: Env, client_id: str, secret: str, method: str = "basic") -> str:
    response = await token_request(env, client_id, secret, method=method)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def login(env: Env, org: str, username: str, password: str,
                headers: dict[str, str] | None = None) -> httpx.Response:
    return await env.client.post("/auth/login", json={"organisation": org, "username": username,
                                                     "password": password}, headers=headers)


async def login_token(env: Env, org: str, username: str, password: str) -> str:
    response = await login(env, org, username, password)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def totp_now(secret: str, steps_ahead: int = 0) -> str:
    """The authenticator app's code; a step ahead is still accepted (clock drift), which lets a
    test sign in again after the step it confirmed with."""
    return totp.code_at(secret, totp.step_of(time.time()) + steps_ahead)


async def request_enrolment_code(env: Env, org: str, user_gid: str, *,
                                 asker: str = "admin") -> str:
    """`asker` of `org` asks for the person's enrolment code; returns the two-person request."""
    body = await env.gql(REQUEST_CODE, {"id": user_gid}, as_=(org, asker))
    payload = body["data"]["requestEnrolmentCode"]
    assert payload["userErrors"] == [], body
    assert payload["confirmation"]["status"] == "PENDING", body
    return str(payload["confirmation"]["id"])


async def enrolment_code(env: Env, org: str, user_gid: str, *, asker: str = "admin",
                         confirmer: str = "focal") -> str:
    """The person's one-time enrolment code, as two people of `org` issue it through the API:
    `asker` asks, the focal point `confirmer` confirms and is the one shown the code."""
    confirmation = await request_enrolment_code(env, org, user_gid, asker=asker)
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=(org, confirmer))
    assert body["data"]["confirmTwoPerson"]["userErrors"] == [], body
    assert body["data"]["confirmTwoPerson"]["confirmation"]["status"] == "CONFIRMED", body
    body = await env.gql(CLAIM_CODE, {"id": confirmation}, as_=(org, confirmer))
    payload = body["data"]["claimEnrolmentCode"]
    assert payload["userErrors"] == [] and payload["code"], body
    assert payload["user"]["id"] == user_gid
    return str(payload["code"])


async def enrol_totp(env: Env, token: str, code: str | None = None) -> str:
    """Enrol a second factor with a password-only token and her enrolment code (by default
    one issued for her just now by her organisation's admin and focal point); returns the
    secret."""
    if code is None:
        user_id = uuid.UUID(env.runtime.issuer.verify(token).subject.partition(":")[2])
        async with env.runtime.db.transaction() as session:  # the harness: whose token is it
            slug = await session.scalar(select(Organisation.slug).join(
                User, User.org_id == Organisation.id).where(User.id == user_id))
        code = await enrolment_code(env, str(slug), ids.encode("User", user_id))
    started = (await env.gql(START_TOTP, {"code": code}, token=token))["data"][
        "startTotpEnrolment"]
    assert started["userErrors"] == [], started
    secret = str(started["secret"])
    confirmed = await env.gql(CONFIRM_TOTP, {"code": totp_now(secret)}, token=token)
    assert confirmed["data"]["confirmTotpEnrolment"] == {"enrolled": True, "userErrors": []}
    return secret


async def mfa_login_token(env: Env, org: str, username: str, password: str) -> str:
    """Sign in as someone whose role needs a second factor: enrol, then log in with a code."""
    secret = await enrol_totp(env, await login_token(env, org, username, password))
    response = await env.client.post("/auth/login", json={
        "organisation": org, "username": username, "password": password,
        "totp": totp_now(secret, 1)})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def viewer(env: Env, token: str) -> dict[str, Any]:
    body = await env.gql(VIEWER, token=token)
    assert "errors" not in body, body
    return body["data"]["viewer"]  # type: ignore[no-any-return]


async def subject_of(env: Env, org: str, user: str) -> tuple[str, str]:
    async with env.runtime.db.transaction() as session:
        found = await principals.find_user(session, org, user)
        assert found is not None
        return found.subject, str(found.org_id)


def claims_like_issuer(env: Env, subject: str, org_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": env.settings.issuer_url, "aud": env.settings.audience, "sub": subject,
        "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex, "auth_time": now,
        "acr": "pwd", "org": org_id,
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def sign_with_issuer_key(env: Env, claims: dict[str, Any]) -> str:
    """Sign with the service's genuine key: only the claims make these tokens wrong."""
    key = keys.signing_key(env.runtime.issuer.keyset)
    return jwt.encode({"alg": "Ed25519", "kid": key.kid, "typ": "at+jwt"}, claims, key,
                      algorithms=["Ed25519"])


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def audit_rows(env: Env, request_id: str) -> list[AccessLogEntry]:
    async with env.runtime.db.transaction() as session:
        return list(await session.scalars(
            select(AccessLogEntry).where(AccessLogEntry.request_id == request_id)))


async def whole_access_log_text(env: Env) -> str:
    async with env.runtime.db.transaction() as session:
        rows = list(await session.scalars(select(AccessLogEntry)))
    return json.dumps([row_dict(r) for r in rows], default=str)


def row_dict(row: AccessLogEntry) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in AccessLogEntry.__table__.columns}


def request_id() -> str:
    return uuid.uuid4().hex  # what a client may send; the service's own ID is in the response


# --- 1. the GraphQL edge refuses missing and bad tokens ----------------------------------------

async def test_no_token_is_401_with_bearer_challenge(env: Env) -> None:
    response = await env.post(VIEWER)
    assert_unauthenticated(response, invalid_token=False)
    assert response.json()["errors"][0]["message"] == "Authentication required."


@pytest.mark.parametrize("authorization", ["Basic bW9mYTp4", "Bearer", "Bearer    ", "token abc",
                                          "bearer"])
async def test_other_schemes_and_empty_bearer_are_401(env: Env, authorization: str) -> None:
    response = await env.client.post("/graphql", json={"query": VIEWER},
                                     headers={"authorization": authorization})
    assert_unauthenticated(response, invalid_token=False)


async def test_get_without_token_is_401(env: Env) -> None:
    response = await env.client.get("/graphql", params={"query": VIEWER})
    assert_unauthenticated(response, invalid_token=False)


async def test_valid_token_works(env: Env) -> None:
    """The control case for the forged tokens below."""
    subject, org_id = await subject_of(env, "mofa", "caseworker")
    token = sign_with_issuer_key(env, claims_like_issuer(env, subject, org_id))
    assert await viewer(env, token) == {"kind": "user", "name": "caseworker", "roles": ["CASEWORKER"],
                                        "organisation": {"slug": "mofa"}}


BAD_TOKENS = ["garbage", "three-garbage-parts", "expired", "expired-just-beyond-skew",
              "not-yet-valid", "no-exp", "foreign-key", "foreign-key-same-kid", "alg-none",
              "wrong-audience", "no-audience", "wrong-issuer", "tampered-payload",
              "unknown-subject", "subject-in-other-org", "no-org", "bad-subject"]


async def forge(env: Env, kind: str) -> str:
    subject, org_id = await subject_of(env, "mofa", "caseworker")
    now = time.time()
    if kind == "garbage":
        return "not-a-jwt"
    if kind == "three-garbage-parts":
        return "aaaa.bbbb.cccc"
    if kind == "expired":
        return env.runtime.issuer.issue(subject=subject, org_id=org_id, now=now - 3600)[0]
    if kind == "expired-just-beyond-skew":
        ttl = env.settings.token_ttl_seconds
        return env.runtime.issuer.issue(subject=subject, org_id=org_id, now=now - ttl - 90)[0]
    if kind == "not-yet-valid":
        later = int(now) + 3600
        return sign_with_issuer_key(env, claims_like_issuer(env, subject, org_id, nbf=later,
                                                            iat=later, exp=later + 600))
    if kind == "no-exp":
        return sign_with_issuer_key(env, claims_like_issuer(env, subject, org_id, exp=None))
    if kind in ("foreign-key", "foreign-key-same-kid"):
        genuine = keys.signing_key(env.runtime.issuer.keyset)
        kid = genuine.kid if kind == "foreign-key-same-kid" else "attacker"
        other = OKPKey.generate_key("Ed25519", parameters={"kid": kid}, private=True)
        return jwt.encode({"alg": "Ed25519", "kid": kid}, claims_like_issuer(env, subject, org_id),
                          other, algorithms=["Ed25519"])
    if kind == "alg-none":
        return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims_like_issuer(env, subject, org_id))}."
    if kind == "wrong-audience":
        return sign_with_issuer_key(env, claims_like_issuer(env, subject, org_id, aud="another-api"))
    if kind == "no-audience":
        return sign_with_issuer_key(env, claims_like_issuer(env, subject, org_id, aud=None))
    if kind == "wrong-issuer":
        return sign_with_issuer_key(env, claims_like_issuer(env, subject, org_id,
                                                            iss="https://evil.example"))
    if kind == "tampered-payload":
        # A genuine token of the caseworker, with the payload swapped for the admin's subject.
        header, _, signature = sign_with_issuer_key(
            env, claims_like_issuer(env, subject, org_id)).split(".")
        admin, _ = await subject_of(env, "mofa", "admin")
        return f"{header}.{b64(claims_like_issuer(env, admin, org_id))}.{signature}"
    if kind == "unknown-subject":
        return sign_with_issuer_key(env, claims_like_issuer(env, f"user:{uuid.uuid4()}", org_id))
    if kind == "subject-in-other-org":
        _, embassy_org = await subject_of(env, "embassy", "caseworker")
        return sign_with_issuer_key(env, claims_like_issuer(env, subject, embassy_org))
    if kind == "no-org":
        return sign_with_issuer_key(env, claims_like_issuer(env, subject, org_id, org=None))
    if kind == "bad-subject":
        return sign_with_issuer_key(env, claims_like_issuer(env, "user:not-a-uuid", org_id))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_bad_tokens_are_401(env: Env, kind: str) -> None:
    token = await forge(env, kind)
    response = await env.post(VIEWER, token=token)
    assert_unauthenticated(response)
    assert response.json()["errors"][0]["message"] == "Invalid or expired token."


async def test_bad_token_refused_before_the_query_runs(env: Env) -> None:
    """A bad token never reaches the document: even a malformed query answers 401, not 400."""
    response = await env.post("{ this is not graphql", token=await forge(env, "expired"))
    assert_unauthenticated(response)


async def test_a_token_verified_before_still_expires_and_its_copies_do_not_pass(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issuer keeps the verdict on a token's signature (by its exact text), never on its
    claims: once it expires it is refused although it verified before, and a token altered
    after one that verified is checked afresh."""
    subject, org_id = await subject_of(env, "mofa", "caseworker")
    token = sign_with_issuer_key(env, claims_like_issuer(env, subject, org_id))
    assert (await viewer(env, token))["name"] == "caseworker"
    assert (await viewer(env, token))["name"] == "caseworker"  # the kept verdict
    header, payload, signature = token.split(".")
    admin, _ = await subject_of(env, "mofa", "admin")
    assert_unauthenticated(await env.post(VIEWER, token=".".join(
        (header, b64(claims_like_issuer(env, admin, org_id)), signature))))
    assert_unauthenticated(await env.post(VIEWER, token=f"{header}.{payload}.{signature[:-4]}AAAA"))
    later = time.time() + env.settings.token_ttl_seconds + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert_unauthenticated(await env.post(VIEWER, token=token))


# --- 2. client credentials ---------------------------------------------------------------------

@pytest.mark.parametrize("method", ["basic", "post"])
async def test_client_credentials_token_works_on_graphql(env: Env, method: str) -> None:
    _, client_id, secret = await new_client(env)
    response = await token_request(env, client_id, secret, method=method)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == env.settings.token_ttl_seconds
    assert set(body) == {"access_token", "token_type", "expires_in"}  # no refresh token
    me = await viewer(env, body["access_token"])
    assert me == {"kind": "client", "name": client_id, "roles": ["MACHINE_CLIENT"],
                  "organisation": {"slug": "mofa"}}


async def test_client_token_claims(env: Env) -> None:
    _, client_id, secret = await new_client(env, "unpc")
    token = await client_token(env, client_id, secret)
    claims = env.runtime.issuer.verify(token)
    assert claims.subject.startswith("client:")
    assert claims.acr == "client"
    assert claims.raw["iss"] == env.settings.issuer_url
    assert claims.raw["aud"] == env.settings.audience
    assert claims.raw["exp"] - claims.raw["iat"] == env.settings.token_ttl_seconds


@pytest.mark.parametrize("method", ["basic", "post"])
async def test_wrong_client_secret_is_invalid_client(env: Env, method: str) -> None:
    _, client_id, secret = await new_client(env)
    bodies = []
    for cid, sec in [(client_id, secret + "x"), (client_id, secret[:-1]), (unique("nobody"), secret)]:
        response = await token_request(env, cid, sec, method=method)
        assert_invalid_client(response, method)
        bodies.append(response.json())
    # A wrong secret and an unknown client_id answer alike: client IDs cannot be enumerated.
    assert bodies[0] == bodies[1] == bodies[2]
    # An empty secret counts as no credentials at all (Authlib then answers 401 either way).
    response = await token_request(env, client_id, "", method=method)
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] == "invalid_client" and "access_token" not in response.json()


async def test_token_request_without_credentials_is_refused(env: Env) -> None:
    response = await env.client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert_invalid_client(response, "basic")
    response = await env.client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                     headers={"authorization": "Basic !!!not-base64"})
    assert_invalid_client(response, "basic")
    _, client_id, _ = await new_client(env)
    response = await env.client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                           "client_id": client_id})
    assert_invalid_client(response, "basic")


# (refresh_token is supported, for people's sessions: tests/test_sessions.py)
@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "magic"])
async def test_unsupported_grant_type(env: Env, grant_type: str) -> None:
    _, client_id, secret = await new_client(env)
    response = await token_request(env, client_id, secret, grant_type=grant_type)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "unsupported_grant_type"
    assert "access_token" not in response.json()


async def test_missing_grant_type_is_an_error(env: Env) -> None:
    _, client_id, secret = await new_client(env)
    response = await env.client.post("/oauth/token", data={}, headers=basic(client_id, secret))
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_request", "unsupported_grant_type")


async def test_rotate_secret_old_fails_new_works(env: Env) -> None:
    gid, client_id, old = await new_client(env)
    await client_token(env, client_id, old)
    body = await env.gql(ROTATE_SECRET, {"id": gid}, as_=("mofa", "admin"))
    payload = body["data"]["rotateClientSecret"]
    assert payload["userErrors"] == []
    new = payload["clientSecret"]
    assert new and new != old
    for method in ("basic", "post"):
        assert_invalid_client(await token_request(env, client_id, old, method=method), method)
        token = await client_token(env, client_id, new, method=method)
        assert (await viewer(env, token))["name"] == client_id


async def test_demo_client_secret_can_be_rotated_and_used(env: Env) -> None:
    body = await env.gql("{ clients(first: 100) { edges { node { id clientId } } } }",
                         as_=("wpn", "admin"))
    nodes = {e["node"]["clientId"]: e["node"]["id"] for e in body["data"]["clients"]["edges"]}
    assert "wpn-system" in nodes
    body = await env.gql(ROTATE_SECRET, {"id": nodes["wpn-system"]}, as_=("wpn", "admin"))
    secret = body["data"]["rotateClientSecret"]["clientSecret"]
    token = await client_token(env, "wpn-system", secret)
    assert await viewer(env, token) == {"kind": "client", "name": "wpn-system",
                                        "roles": ["MACHINE_CLIENT"], "organisation": {"slug": "wpn"}}


async def test_client_management_is_admin_only_and_tenant_scoped(env: Env) -> None:
    gid, client_id, secret = await new_client(env)
    body = await env.gql(ROTATE_SECRET, {"id": gid}, as_=("mofa", "caseworker"))
    assert body["data"] is None and codes(body) == ["FORBIDDEN"]
    body = await env.gql(ROTATE_SECRET, {"id": gid}, as_=("embassy", "admin"))
    assert body["data"] is None and codes(body) == ["NOT_FOUND"]
    body = await env.gql(DEACTIVATE_CLIENT, {"id": gid}, as_=("embassy", "admin"))
    assert body["data"] is None and codes(body) == ["NOT_FOUND"]
    # Neither attempt changed anything: the secret still works.
    await client_token(env, client_id, secret)


async def test_deactivated_client_token_refused_on_next_request(env: Env) -> None:
    gid, client_id, secret = await new_client(env)
    token = await client_token(env, client_id, secret)
    assert (await viewer(env, token))["kind"] == "client"
    body = await env.gql(DEACTIVATE_CLIENT, {"id": gid}, as_=("mofa", "admin"))
    assert body["data"]["deactivateClient"]["client"]["active"] is False
    assert_unauthenticated(await env.post(VIEWER, token=token))
    for method in ("basic", "post"):
        assert_invalid_client(await token_request(env, client_id, secret, method=method), method)


# --- 3. password login -------------------------------------------------------------------------

async def test_login_after_password_reset(env: Env) -> None:
    gid, username, initial = await new_user(env, "embassy", ["CASEWORKER"])
    body = await env.gql(RESET_PASSWORD, {"id": gid}, as_=("embassy", "admin"))
    payload = body["data"]["resetUserPassword"]
    assert payload["userErrors"] == []
    password = payload["initialPassword"]
    assert password and password != initial
    refused = await login(env, "embassy", username, initial)
    assert refused.status_code == 401 and refused.json() == LOGIN_FAILED
    response = await login(env, "embassy", username, password)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == env.settings.token_ttl_seconds
    assert await viewer(env, body["access_token"]) == {
        "kind": "user", "name": username, "roles": ["CASEWORKER"],
        "organisation": {"slug": "embassy"}}


async def test_reset_password_is_admin_only_and_tenant_scoped(env: Env) -> None:
    gid, username, password = await new_user(env, "embassy", ["ANALYST"])
    body = await env.gql(RESET_PASSWORD, {"id": gid}, as_=("embassy", "focal"))
    assert body["data"] is None and codes(body) == ["FORBIDDEN"]
    body = await env.gql(RESET_PASSWORD, {"id": gid}, as_=("mofa", "admin"))
    assert body["data"] is None and codes(body) == ["NOT_FOUND"]
    await login_token(env, "embassy", username, password)  # unchanged


async def test_failed_logins_are_indistinguishable(env: Env) -> None:
    _, username, password = await new_user(env, "unpc", ["ANALYST"])
    inactive_gid, inactive, inactive_password = await new_user(env, "unpc", ["ANALYST"])
    await env.gql(DEACTIVATE_USER, {"id": inactive_gid}, as_=("unpc", "admin"))
    attempts = [
        ("unpc", username, password + "x"),  # wrong password
        ("unpc", username, ""),  # empty password
        ("unpc", unique("ghost"), password),  # unknown user
        ("nowhere", username, password),  # unknown organisation
        ("embassy", username, password),  # right user and password, wrong organisation
        ("unpc", inactive, inactive_password),  # deactivated user, right password
    ]
    responses = [await login(env, *attempt) for attempt in attempts]
    for response in responses:
        assert response.status_code == 401, response.text
        assert response.json() == LOGIN_FAILED
        assert response.headers["cache-control"] == "no-store"
    assert len({r.content for r in responses}) == 1
    assert (await login(env, "unpc", username, password)).status_code == 200


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b"null", b'{"organisation": "mofa"}',
                                  b'{"username": "admin", "password": "x"}'])
async def test_malformed_login_is_400(env: Env, body: bytes) -> None:
    response = await env.client.post("/auth/login", content=body,
                                      headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert "access_token" not in response.json()


async def test_deactivated_user_token_fails_and_reactivation_restores(env: Env) -> None:
    gid, username, password = await new_user(env, "nhri", ["FOCAL_POINT"])
    token = await login_token(env, "nhri", username, password)
    assert (await viewer(env, token))["name"] == username
    body = await env.gql(DEACTIVATE_USER, {"id": gid}, as_=("nhri", "admin"))
    assert body["data"]["deactivateUser"]["user"]["active"] is False
    assert_unauthenticated(await env.post(VIEWER, token=token))
    refused = await login(env, "nhri", username, password)
    assert refused.status_code == 401 and refused.json() == LOGIN_FAILED
    body = await env.gql(REACTIVATE_USER, {"id": gid}, as_=("nhri", "admin"))
    assert body["data"]["reactivateUser"]["user"]["active"] is True
    assert (await viewer(env, token))["name"] == username  # the same token works again
    await login_token(env, "nhri", username, password)


async def test_user_deactivation_is_admin_only_tenant_scoped_and_not_self(env: Env) -> None:
    gid, username, password = await new_user(env, "wpn", ["CASEWORKER"])
    body = await env.gql(DEACTIVATE_USER, {"id": gid}, as_=("wpn", "focal"))
    assert body["data"] is None and codes(body) == ["FORBIDDEN"]
    body = await env.gql(DEACTIVATE_USER, {"id": gid}, as_=("fund", "admin"))
    assert body["data"] is None and codes(body) == ["NOT_FOUND"]
    token = await login_token(env, "wpn", username, password)
    assert (await viewer(env, token))["name"] == username
    admin_gid, admin_name, admin_password = await new_user(env, "wpn", ["ORG_ADMIN"])
    admin_token = await mfa_login_token(env, "wpn", admin_name, admin_password)
    body = await env.gql(DEACTIVATE_USER, {"id": admin_gid}, token=admin_token)
    assert body["data"]["deactivateUser"]["user"] is None
    assert body["data"]["deactivateUser"]["userErrors"]
    assert (await viewer(env, admin_token))["name"] == admin_name


# --- 4. role changes take effect on the next request ------------------------------------------

def new_pb_input() -> dict[str, Any]:
    return {"input": {"pseudonym": unique("pb"), "intakeConsent": INTAKE}}


async def test_role_changes_apply_on_next_request(env: Env) -> None:
    gid, username, password = await new_user(env, "mofa", ["ANALYST"])
    token = await login_token(env, "mofa", username, password)

    async def create_pb() -> dict[str, Any]:
        return await env.gql(CREATE_PB, new_pb_input(), token=token)

    async def open_case(pb_id: str) -> dict[str, Any]:
        return await env.gql(OPEN_CASE, {"input": {"peacebuilderId": pb_id}}, token=token)

    denied = await create_pb()
    assert denied["data"] is None and codes(denied) == ["FORBIDDEN"]
    # A peacebuilder of the organisation to open a case for, registered by a caseworker.
    existing = (await register(env, "mofa", "caseworker"))["id"]
    denied = await open_case(existing)
    assert denied["data"] is None and codes(denied) == ["FORBIDDEN"]

    body = await env.gql(SET_ROLES, {"id": gid, "roles": ["ANALYST", "CASEWORKER"]},
                         as_=("mofa", "admin"))
    assert sorted(body["data"]["setUserRoles"]["user"]["roles"]) == ["ANALYST", "CASEWORKER"]
    assert (await viewer(env, token))["roles"] == ["ANALYST", "CASEWORKER"]
    # Now allowed by role; recording her consent still needs a second factor (password only).
    created = await create_pb()
    assert codes(created) == ["STEP_UP_REQUIRED"], created
    pb_id = existing
    opened = await open_case(pb_id)
    assert "errors" not in opened, opened
    assert opened["data"]["openCase"]["case"]["leadOrganisation"]["slug"] == "mofa"

    body = await env.gql(SET_ROLES, {"id": gid, "roles": ["ANALYST"]}, as_=("mofa", "admin"))
    assert body["data"]["setUserRoles"]["user"]["roles"] == ["ANALYST"]
    assert (await viewer(env, token))["roles"] == ["ANALYST"]
    denied = await create_pb()
    assert denied["data"] is None and codes(denied) == ["FORBIDDEN"]
    denied = await open_case(pb_id)
    assert denied["data"] is None and codes(denied) == ["FORBIDDEN"]


async def test_set_roles_refuses_machine_role_and_non_admins(env: Env) -> None:
    gid, _, _ = await new_user(env, "mofa", ["ANALYST"])
    body = await env.gql(SET_ROLES, {"id": gid, "roles": ["MACHINE_CLIENT"]}, as_=("mofa", "admin"))
    assert body["data"]["setUserRoles"]["user"] is None
    assert [e["code"] for e in body["data"]["setUserRoles"]["userErrors"]] == ["BAD_USER_INPUT"]
    body = await env.gql(SET_ROLES, {"id": gid, "roles": ["ORG_ADMIN"]}, as_=("mofa", "focal"))
    assert body["data"] is None and codes(body) == ["FORBIDDEN"]
    body = await env.gql(SET_ROLES, {"id": gid, "roles": ["ORG_ADMIN"]}, as_=("embassy", "admin"))
    assert body["data"] is None and codes(body) == ["NOT_FOUND"]


# --- 5. JWKS -----------------------------------------------------------------------------------

async def test_jwks_publishes_only_public_keys_and_verifies_issued_tokens(env: Env) -> None:
    response = await env.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    jwks = response.json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519"
        assert key["kid"] and key["x"]
        assert "d" not in key
    assert '"d"' not in response.text
    keyset = KeySet.import_key_set(jwks)
    subject, org_id = await subject_of(env, "fund", "analyst")
    token, _ = env.runtime.issuer.issue(subject=subject, org_id=org_id)
    decoded = jwt.decode(token, keyset, algorithms=["Ed25519"])
    assert decoded.header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert decoded.claims["sub"] == subject and decoded.claims["org"] == org_id
    # And a token signed by another key does not verify against the published set.
    with pytest.raises(JoseError):
        jwt.decode(await forge(env, "foreign-key-same-kid"), keyset, algorithms=["Ed25519"])


def test_signing_keys_rotate_keep_old_key_and_stay_private(tmp_path: Any) -> None:
    from app.config import Settings

    settings = replace(Settings(), data_dir=tmp_path / "data")
    first = Issuer(settings)
    assert os.stat(settings.signing_key_path).st_mode & 0o777 == 0o600
    old_token, _ = first.issue(subject=f"user:{uuid.uuid4()}", org_id=str(uuid.uuid4()))
    keys.rotate(settings.signing_key_path)
    second = Issuer(settings)
    assert len(second.jwks()["keys"]) == 2
    assert all("d" not in k for k in second.jwks()["keys"])
    assert second.verify(old_token).subject == first.verify(old_token).subject
    new_token, _ = second.issue(subject=f"user:{uuid.uuid4()}", org_id=None)
    published = KeySet.import_key_set(second.jwks())
    assert jwt.decode(new_token, published, algorithms=["Ed25519"]).header["kid"] != \
        jwt.decode(old_token, published, algorithms=["Ed25519"]).header["kid"]
    with pytest.raises(Unauthenticated):
        first.verify(new_token)  # the first issuer never saw the new key


# --- 7. the access log -------------------------------------------------------------------------

async def test_failed_and_successful_login_are_logged_without_password(env: Env) -> None:
    _, username, password = await new_user(env, "fund", ["CASEWORKER"])
    wrong = password[::-1]
    sent = request_id()
    response = await login(env, "fund", username, wrong, headers={"x-request-id": sent})
    assert response.status_code == 401
    rid = response.headers["x-request-id"]
    assert rid != sent and response.headers["x-client-request-id"] == sent
    assert await audit_rows(env, sent) == []  # the client's ID is never the log's
    rows = await audit_rows(env, rid)
    assert [(r.action, r.decision) for r in rows] == [("auth.login", "deny")]
    assert rows[0].reason == "invalid credentials"
    assert wrong not in json.dumps(row_dict(rows[0]), default=str)

    response = await login(env, "fund", username, password, headers={"x-request-id": sent})
    assert response.status_code == 200
    rows = await audit_rows(env, response.headers["x-request-id"])
    assert [(r.action, r.decision, r.target_type) for r in rows] == [("auth.login", "allow", "User")]
    subject, _ = await subject_of(env, "fund", username)
    assert rows[0].target_id == subject.partition(":")[2]
    text = await whole_access_log_text(env)
    assert password not in text and wrong not in text
    assert response.json()["access_token"] not in text


async def test_client_token_issue_is_logged_without_secret(env: Env) -> None:
    gid, client_id, secret = await new_client(env, "fund")
    sent = request_id()
    response = await token_request(env, client_id, secret, headers={"x-request-id": sent})
    assert response.status_code == 200
    assert await audit_rows(env, sent) == []
    rows = await audit_rows(env, response.headers["x-request-id"])
    assert [(r.action, r.decision, r.target_type) for r in rows] == [("token.issue", "allow", "Client")]
    async with env.runtime.db.transaction() as session:
        stored = await principals.find_client(session, client_id)
        assert stored is not None
        assert rows[0].target_id == str(stored.id)
    assert rows[0].details == {"grant": "client_credentials"}

    bad = secret[:-4] + "AAAA"
    response = await token_request(env, client_id, bad, method="post")
    assert_invalid_client(response, "post")
    rows = await audit_rows(env, response.headers["x-request-id"])
    assert [(r.action, r.decision) for r in rows] == [("token.issue", "deny")]

    body = await env.gql(ROTATE_SECRET, {"id": gid}, as_=("fund", "admin"))
    rotated = body["data"]["rotateClientSecret"]["clientSecret"]
    text = await whole_access_log_text(env)
    for value in (secret, bad, rotated):
        assert value not in text


async def test_password_reset_and_user_creation_log_no_password(env: Env) -> None:
    gid, _, initial = await new_user(env, "wpn", ["ANALYST"])
    body = await env.gql(RESET_PASSWORD, {"id": gid}, as_=("wpn", "admin"))
    reset = body["data"]["resetUserPassword"]["initialPassword"]
    text = await whole_access_log_text(env)
    assert initial not in text and reset not in text
    async with env.runtime.db.transaction() as session:
        actions = set(await session.scalars(select(AccessLogEntry.action).where(
            AccessLogEntry.action.in_(["user.create", "user.reset_password"]))))
    assert actions == {"user.create", "user.reset_password"}
