"""OIDC mode with tokens forged by joserfc: binding by issuer + `sub` (never by a name in the
token), `acr`/`amr` and `auth_time` mapping, `typ` and `azp` checks, algorithms (EdDSA too), the
JWKS cache, and a whole deployment over HTTP in OIDC mode with the built-in issuer beside the
provider for peacebuilders and machine clients. A real provider: tests/test_oidc_provider.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from sqlalchemy import select, update

from app import cli, tenancy
from app.auth import principals, sessions
from app.auth.passwords import hash_password
from app.auth.tokens import OIDCVerifier
from app.errors import Unauthenticated
from app.tables.consent import PeacebuilderAccount
from app.tables.orgs import User
from tests.conftest import Env, build_env, unique
from tests.test_auth import (
    CREATE_CLIENT,
    DEACTIVATE_USER,
    VIEWER,
    assert_unauthenticated,
    b64,
    codes,
    new_user,
    subject_of,
    token_request,
    viewer,
)

pytestmark = pytest.mark.anyio

OIDC_ISSUER = "https://idp.example.org/realms/safety-net"
OIDC_AUDIENCE = "safety-net-api"
LINK = """mutation($id: ID!, $sub: String!) { linkUserIdentity(input: {userId: $id, subject: $sub}) {
  user { username identityLinked } userErrors { message code } } }"""
UNLINK = """mutation($id: ID!) { unlinkUserIdentity(input: {userId: $id}) {
  user { username identityLinked } userErrors { message code } } }"""
CASES = "{ cases(first: 1) { totalCount } }"


def oidc_key(alg: str, kid: str | None = None) -> Any:
    params = {"kid": kid or uuid.uuid4().hex[:12]}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, private=True)
    return OKPKey.generate_key("Ed25519", parameters=params, private=True)


def oidc_token(key: Any, alg: str, *, typ: str | None = "at+jwt", **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": OIDC_ISSUER, "aud": OIDC_AUDIENCE, "sub": str(uuid.uuid4()), "iat": now,
        "exp": now + 300, "auth_time": now, "acr": "mfa", "client_id": "safety-net-web",
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    if typ is None:  # joserfc's jwt.encode would add typ JWT
        return jws.serialize_compact({"alg": alg, "kid": key.kid}, json.dumps(claims).encode(),
                                     key, algorithms=[alg])
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, claims, key, algorithms=[alg])


def oidc_settings(env: Env, **more: Any) -> Any:
    return replace(env.settings, **{"issuer": "oidc", "oidc_issuer": OIDC_ISSUER,
                                    "oidc_audience": OIDC_AUDIENCE, **more})


async def bind(env: Env, org: str, username: str, issuer: str = OIDC_ISSUER) -> str:
    """The harness binds a person to a new provider `sub` (as linkUserIdentity would)."""
    sub = f"acct-{uuid.uuid4().hex[:12]}"
    subject, _ = await subject_of(env, org, username)
    async with env.runtime.db.transaction() as session:
        await session.execute(update(User).where(User.id == uuid.UUID(subject[5:]))
                              .values(oidc_issuer=issuer, oidc_subject=sub))
    return sub


async def resolve(env: Env, verifier: OIDCVerifier, token: str,
                  mfa_roles: frozenset[str] = frozenset()) -> Any:
    claims = await verifier.verify(token)
    async with env.runtime.db.transaction() as session:
        return await principals.resolve(session, env.runtime.policy, claims, mfa_roles=mfa_roles)


# --- binding ------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA", "Ed25519"])
async def test_a_token_is_the_user_bound_to_its_sub(env: Env, alg: str) -> None:
    key = oidc_key(alg)
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    sub = await bind(env, "mofa", "caseworker")
    principal = await resolve(env, verifier, oidc_token(key, alg, sub=sub))
    expected_subject, expected_org = await subject_of(env, "mofa", "caseworker")
    assert principal.subject == expected_subject and str(principal.org_id) == expected_org
    assert principal.roles == frozenset({"caseworker"})  # our roles, not the token's
    assert principal.acr == "mfa" and principal.external


async def test_names_in_the_token_mean_nothing(env: Env) -> None:
    """The incident of the review: an IdP account *named* mofa/admin is not mofa's admin."""
    key = oidc_key("RS256")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    impostor = oidc_token(key, "RS256", preferred_username="admin", safety_net_org="mofa",
                          org="mofa", username="admin")
    with pytest.raises(Unauthenticated):
        await resolve(env, verifier, impostor)
    sub = await bind(env, "mofa", "caseworker")
    principal = await resolve(env, verifier, oidc_token(key, "RS256", sub=sub,
                                                        preferred_username="admin"))
    assert principal.name == "caseworker"


async def test_the_same_sub_at_another_issuer_is_someone_else(env: Env) -> None:
    sub = await bind(env, "mofa", "caseworker", issuer="https://other-idp.example.org")
    key = oidc_key("ES256")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    with pytest.raises(Unauthenticated):
        await resolve(env, verifier, oidc_token(key, "ES256", sub=sub))


async def test_unbound_or_inactive_user_rejected(env: Env) -> None:
    key = oidc_key("ES256")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    with pytest.raises(Unauthenticated):
        await resolve(env, verifier, oidc_token(key, "ES256"))
    gid, username, _ = await new_user(env, "fund", ["ANALYST"])
    sub = await bind(env, "fund", username)
    token = oidc_token(key, "ES256", sub=sub)
    assert (await resolve(env, verifier, token)).name == username
    await env.gql(DEACTIVATE_USER, {"id": gid}, as_=("fund", "admin"))
    with pytest.raises(Unauthenticated):
        await resolve(env, verifier, token)


# --- what the provider says about the sign-in --------------------------------------------------

SECOND_FACTOR = {
    "acr mfa": ({"acr": "mfa"}, {}, "mfa"),
    "acr from the configured list": ({"acr": "urn:idp:loa:2"},
                                     {"oidc_mfa_acr": ("urn:idp:loa:2",)}, "mfa"),
    "acr not in the list": ({"acr": "urn:idp:loa:1"},
                            {"oidc_mfa_acr": ("urn:idp:loa:2",)}, "pwd"),
    "amr mfa": ({"acr": None, "amr": ["pwd", "mfa"]}, {}, "mfa"),
    "amr otp, not configured": ({"acr": None, "amr": ["pwd", "otp"]}, {}, "pwd"),
    "amr otp, configured": ({"acr": None, "amr": ["pwd", "otp"]},
                            {"oidc_mfa_amr": ("otp", "hwk")}, "mfa"),
    "nothing said": ({"acr": None}, {}, "pwd"),
    "acr not a string": ({"acr": ["mfa"]}, {}, "pwd"),
}


@pytest.mark.parametrize("case", sorted(SECOND_FACTOR))
async def test_acr_and_amr_map_to_second_factor(env: Env, case: str) -> None:
    changes, settings, expected = SECOND_FACTOR[case]
    key = oidc_key("RS256")
    verifier = OIDCVerifier(oidc_settings(env, **settings), keyset=KeySet([key]))
    claims = await verifier.verify(oidc_token(key, "RS256", **changes))
    assert claims.acr == expected


async def test_auth_time_is_taken_as_is_and_step_up_needs_it(env: Env) -> None:
    key = oidc_key("RS256")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    signed_in = int(time.time()) - 120
    assert (await verifier.verify(oidc_token(key, "RS256", auth_time=signed_in))).auth_time \
        == signed_in
    assert (await verifier.verify(oidc_token(key, "RS256", auth_time=None))).auth_time is None


async def test_a_focal_point_needs_the_providers_second_factor(env: Env) -> None:
    key = oidc_key("RS256")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    sub = await bind(env, "unpc", "focal")
    roles = frozenset(env.settings.mfa_roles)
    without = await resolve(env, verifier, oidc_token(key, "RS256", sub=sub, acr="pwd"), roles)
    assert without.mfa_pending and without.roles == frozenset()
    with_factor = await resolve(env, verifier, oidc_token(key, "RS256", sub=sub), roles)
    assert not with_factor.mfa_pending and "focal_point" in with_factor.roles


# --- which tokens are for us ---------------------------------------------------------------------

@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "JWT", "AT+JWT"])
async def test_access_token_types_accepted(env: Env, typ: str) -> None:
    key = oidc_key("RS256")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    await verifier.verify(oidc_token(key, "RS256", typ=typ))


@pytest.mark.parametrize("typ", [None, "logout+jwt", "secevent+jwt", "dpop+jwt"])
async def test_other_token_types_refused(env: Env, typ: str | None) -> None:
    key = oidc_key("RS256")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    with pytest.raises(Unauthenticated):
        await verifier.verify(oidc_token(key, "RS256", typ=typ))


AZP = {
    "azp allowed": ({"azp": "safety-net-web", "client_id": None}, True),
    "client_id allowed": ({"client_id": "safety-net-web"}, True),
    "azp of another app": ({"azp": "other-app", "client_id": None}, False),
    "client_id of another app": ({"client_id": "other-app"}, False),
    "no azp nor client_id": ({"client_id": None}, False),
}


@pytest.mark.parametrize("case", sorted(AZP))
async def test_azp_must_be_an_allowed_client(env: Env, case: str) -> None:
    changes, ok = AZP[case]
    key = oidc_key("RS256")
    verifier = OIDCVerifier(oidc_settings(env, oidc_clients=("safety-net-web",)),
                            keyset=KeySet([key]))
    token = oidc_token(key, "RS256", **changes)
    if ok:
        await verifier.verify(token)
    else:
        with pytest.raises(Unauthenticated):
            await verifier.verify(token)


async def test_several_audiences_need_azp(env: Env) -> None:
    key = oidc_key("RS256")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    await verifier.verify(oidc_token(key, "RS256", aud=[OIDC_AUDIENCE, "account"],
                                     azp="safety-net-web"))
    with pytest.raises(Unauthenticated):
        await verifier.verify(oidc_token(key, "RS256", aud=[OIDC_AUDIENCE, "account"],
                                         client_id=None))


async def test_audience_defaults_to_service_audience(env: Env) -> None:
    key = oidc_key("ES256")
    verifier = OIDCVerifier(oidc_settings(env, oidc_audience=""), keyset=KeySet([key]))
    await verifier.verify(oidc_token(key, "ES256", aud=env.settings.audience))
    with pytest.raises(Unauthenticated):
        await verifier.verify(oidc_token(key, "ES256"))


OIDC_REJECTED = {
    "wrong-issuer": {"iss": "https://other-idp.example.org"},
    "no-issuer": {"iss": None},
    "wrong-audience": {"aud": "someone-else"},
    "audience-list-without-ours": {"aud": ["account", "someone-else"]},
    "no-audience": {"aud": None},
    "expired": {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000},
    "no-exp": {"exp": None},
    "not-yet-valid": {"nbf": int(time.time()) + 3600},
    "no-sub": {"sub": None},
    "empty-sub": {"sub": ""},
    "non-string-sub": {"sub": 42},
}


@pytest.mark.parametrize("case", sorted(OIDC_REJECTED))
async def test_bad_claims_rejected(env: Env, case: str) -> None:
    key = oidc_key("RS256")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    await verifier.verify(oidc_token(key, "RS256"))  # control: the key and setup work
    with pytest.raises(Unauthenticated):
        await verifier.verify(oidc_token(key, "RS256", **OIDC_REJECTED[case]))


async def test_foreign_signatures_rejected(env: Env) -> None:
    key = oidc_key("RS256", kid="idp-key")
    verifier = OIDCVerifier(oidc_settings(env), keyset=KeySet([key]))
    impostor = oidc_key("RS256", kid="idp-key")
    with pytest.raises(Unauthenticated):
        await verifier.verify(oidc_token(impostor, "RS256"))
    with pytest.raises(Unauthenticated):
        await verifier.verify(f"{b64({'alg': 'none'})}.{oidc_token(key, 'RS256').split('.')[1]}.")
    # HS256 keyed with the RSA public key (algorithm confusion) is not accepted either.
    signing_input = (f"{b64({'alg': 'HS256', 'kid': 'idp-key', 'typ': 'at+jwt'})}."
                     f"{oidc_token(key, 'RS256').split('.')[1]}")
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(Unauthenticated):
        await verifier.verify(confused)
    # A token of our own built-in issuer means nothing to the OIDC verifier.
    subject, org_id = await subject_of(env, "mofa", "admin")
    with pytest.raises(Unauthenticated):
        await verifier.verify(env.runtime.issuer.issue(subject=subject, org_id=org_id)[0])


def test_verifier_needs_issuer_and_keys(env: Env) -> None:
    with pytest.raises(ValueError, match="OIDC"):
        OIDCVerifier(replace(env.settings, oidc_issuer="", oidc_jwks_url="http://127.0.0.1:1/x"))
    with pytest.raises(ValueError, match="OIDC"):
        OIDCVerifier(replace(env.settings, oidc_issuer=OIDC_ISSUER, oidc_jwks_url=""))


class JWKSServer:
    """A real HTTP server on 127.0.0.1 publishing a key set, counting fetches."""

    def __init__(self, *keys_: Any) -> None:
        self.keyset = KeySet(list(keys_))
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps(outer.keyset.as_dict(private=False)).encode()
                self.send_response(200 if self.path == "/jwks" else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, *keys_: Any) -> None:
        self.keyset = KeySet(list(keys_))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def jwks_server() -> Iterator[JWKSServer]:
    server = JWKSServer(oidc_key("RS256"))
    try:
        yield server
    finally:
        server.close()


async def test_fetches_jwks_from_url_caches_and_picks_up_rotation(
        env: Env, jwks_server: JWKSServer) -> None:
    key = jwks_server.keyset.keys[0]
    verifier = OIDCVerifier(oidc_settings(env, oidc_jwks_url=jwks_server.url))
    assert jwks_server.hits == 0  # fetched lazily
    sub = await bind(env, "mofa", "caseworker")
    assert (await resolve(env, verifier, oidc_token(key, "RS256", sub=sub))).name == "caseworker"
    assert jwks_server.hits == 1
    await verifier.verify(oidc_token(key, "RS256"))
    assert jwks_server.hits == 1  # cached
    # The IdP rotates. A token with the new key right after a fetch is refused without hammering
    # the IdP (refetches on failure are rate limited) ...
    new_key = oidc_key("ES256")
    jwks_server.publish(new_key, key)
    with pytest.raises(Unauthenticated):
        await verifier.verify(oidc_token(new_key, "ES256"))
    assert jwks_server.hits == 1
    # ... and once the cached set is stale it is fetched again and the new key is accepted.
    verifier.REFRESH_SECONDS = 0
    assert (await resolve(env, verifier, oidc_token(new_key, "ES256", sub=sub))).name == \
        "caseworker"
    assert jwks_server.hits == 2
    assert all("d" not in k for k in jwks_server.keyset.as_dict(private=False)["keys"])


# --- a whole deployment in OIDC mode, over HTTP ----------------------------------------------

async def test_oidc_mode_end_to_end_over_http(backend: str, tmp_path: Any,
                                              jwks_server: JWKSServer) -> None:
    """Staff through the provider (bound by sub, second factor from its acr); peacebuilders and
    machine clients through the built-in issuer beside it; nothing issued that the API refuses."""
    env, close = await build_env(backend, tmp_path, issuer="oidc", oidc_issuer=OIDC_ISSUER,
                                 oidc_audience=OIDC_AUDIENCE, oidc_jwks_url=jwks_server.url,
                                 oidc_clients=("safety-net-web",))
    try:
        key = jwks_server.keyset.keys[0]
        # The operator binds the first admin (bootstrap), as `safety-net users link-identity`.
        with tenancy.using(tenancy.SYSTEM):  # as `main` declares it for console commands
            assert await cli.link_identity(env.runtime.settings, "unpc", "admin",
                                           "idp-admin") == 0
            assert await cli.link_identity(env.runtime.settings, "unpc", "admin", "other") == 1
        admin = oidc_token(key, "RS256", sub="idp-admin")
        me = await viewer(env, admin)
        assert me["name"] == "admin" and me["organisation"] == {"slug": "unpc"}

        # She links her colleagues herself, once each.
        users = await env.gql("{ users(first: 100) { edges { node { id username } } } }",
                              token=admin)
        ids = {e["node"]["username"]: e["node"]["id"] for e in users["data"]["users"]["edges"]}
        body = await env.gql(LINK, {"id": ids["focal"], "sub": "idp-focal"}, token=admin)
        assert body["data"]["linkUserIdentity"] == {
            "user": {"username": "focal", "identityLinked": True}, "userErrors": []}, body
        again = await env.gql(LINK, {"id": ids["focal"], "sub": "idp-else"}, token=admin)
        assert [e["code"] for e in again["data"]["linkUserIdentity"]["userErrors"]] == \
            ["CONFLICT"]
        taken = await env.gql(LINK, {"id": ids["analyst"], "sub": "idp-focal"}, token=admin)
        assert [e["code"] for e in taken["data"]["linkUserIdentity"]["userErrors"]] == \
            ["CONFLICT"]
        # Linking is a step-up action: a sign-in without the provider's second factor cannot.
        weak_admin = oidc_token(key, "RS256", sub="idp-admin", acr="pwd")
        refused = await env.gql(LINK, {"id": ids["analyst"], "sub": "idp-a"}, token=weak_admin)
        assert codes(refused) in (["SECOND_FACTOR_REQUIRED"], ["STEP_UP_REQUIRED"]), refused

        # A focal point: with the provider's second factor she works, without it she is told.
        focal = oidc_token(key, "RS256", sub="idp-focal")
        assert "errors" not in await env.gql(CASES, token=focal)
        weak = await env.gql(CASES, token=oidc_token(key, "RS256", sub="idp-focal", acr="pwd"))
        assert codes(weak) == ["SECOND_FACTOR_REQUIRED"], weak
        # Not bound, another app's token, an ID token: refused.
        assert_unauthenticated(await env.post(VIEWER, token=oidc_token(key, "RS256",
                                                                       sub="idp-nobody")))
        assert_unauthenticated(await env.post(VIEWER, token=oidc_token(
            key, "RS256", sub="idp-focal", client_id="other-app")))
        assert_unauthenticated(await env.post(VIEWER, token=oidc_token(
            key, "RS256", sub="idp-focal", typ="JWT", aud=["safety-net-web", "x"],
            client_id=None)))

        # Staff do not sign in here: a clear error, no token the API would refuse.
        login = await env.client.post("/auth/login", json={
            "organisation": "unpc", "username": "admin", "password": "whatever"})
        assert login.status_code == 400
        assert "identity provider" in login.json()["error_description"]
        subject, org_id = await subject_of(env, "unpc", "admin")
        builtin = env.runtime.issuer.issue(subject=subject, org_id=org_id, acr="mfa")[0]
        assert_unauthenticated(await env.post(VIEWER, token=builtin))
        # A staff session left from before the switch to OIDC mode refreshes into nothing.
        async with env.runtime.db.transaction() as s:
            _, old_refresh = await sessions.open_session(
                s, env.runtime.settings, subject=subject, org_id=uuid.UUID(org_id), acr="mfa",
                now=env.runtime.clock.now())
        stale = await env.client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": old_refresh})
        assert stale.status_code == 400 and "access_token" not in stale.json()

        # Machine clients: client credentials on the built-in issuer, accepted by the API.
        client_id = unique("unpc-sys")
        made = await env.gql(CREATE_CLIENT, {"input": {"clientId": client_id, "name": "Case system"}},
                             token=admin)
        secret = made["data"]["createClient"]["clientSecret"]
        issued = await token_request(env, client_id, secret)
        assert issued.status_code == 200, issued.text
        client_view = await viewer(env, issued.json()["access_token"])
        assert client_view["kind"] == "client"

        # Her own login, and its refresh, on the built-in issuer too.
        async with env.runtime.db.transaction() as s:  # a demo woman's own login
            her_login = await s.scalar(select(PeacebuilderAccount.login).where(
                PeacebuilderAccount.active.is_(True)).limit(1))
            await s.execute(update(PeacebuilderAccount)
                            .where(PeacebuilderAccount.login == her_login)
                            .values(password_hash=hash_password("her passphrase 42")))
        signed = await env.client.post("/auth/login", json={"login": her_login,
                                                            "password": "her passphrase 42"})
        assert signed.status_code == 200, signed.text
        renewed = await env.client.post("/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": signed.json()["refresh_token"]})
        assert renewed.status_code == 200, renewed.text
        body = await env.gql("{ viewer { kind } }", token=renewed.json()["access_token"],
                             purpose=None)
        assert body["data"]["viewer"]["kind"] == "peacebuilder", body

        # Unlinking and deactivation bite on the next request.
        assert (await viewer(env, focal))["name"] == "focal"
        body = await env.gql(UNLINK, {"id": ids["focal"]}, token=admin)
        assert body["data"]["unlinkUserIdentity"]["user"]["identityLinked"] is False
        assert_unauthenticated(await env.post(VIEWER, token=focal))
        await env.gql(LINK, {"id": ids["analyst"], "sub": "idp-analyst"}, token=admin)
        analyst = oidc_token(key, "RS256", sub="idp-analyst")
        assert (await viewer(env, analyst))["name"] == "analyst"
        body = await env.gql(DEACTIVATE_USER, {"id": ids["analyst"]}, token=admin)
        assert body["data"]["deactivateUser"]["user"]["active"] is False
        assert_unauthenticated(await env.post(VIEWER, token=analyst))
        async with env.runtime.db.transaction() as s:
            linked = (await s.scalars(select(User.username).where(
                User.oidc_subject.is_not(None)))).all()
        assert sorted(linked) == ["admin", "analyst"]
    finally:
        await close()


async def test_oidc_keys_unreachable_is_503_never_access(backend: str, tmp_path: Any) -> None:
    """With no cached keys and the issuer's JWKS down, nobody gets in: 503, not 500, not 200."""
    env, close = await build_env(backend, tmp_path, issuer="oidc", oidc_issuer=OIDC_ISSUER,
                                 oidc_audience=OIDC_AUDIENCE,
                                 oidc_jwks_url="http://127.0.0.1:9/jwks.json")
    try:
        token = oidc_token(oidc_key("RS256", "k1"), "RS256", sub=unique("x"))
        response = await env.post(VIEWER, token=token)
        assert response.status_code == 503
        assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "data" not in response.json()
    finally:
        await close()
