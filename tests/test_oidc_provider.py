"""OIDC mode against a real provider: `oidc-provider` (OpenID-certified, from npm), started here
with tests/oidc/provider.mjs. The authorization-code flow with PKCE is done over HTTP as a
browser would (the provider's sign-in page, our second factor there), the provider issues an
RFC 9068 JWT access token for our API (EdDSA, or RS256), and our GraphQL is called with it.

The provider is installed by .ci/run into SAFETY_NET_OIDC_PROVIDER_DIR (default
~/.cache/safety-net/oidc): `npm install --prefix DIR oidc-provider@8`. Without it these tests are
skipped (a failure under SAFETY_NET_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import select, update

from app import cli, tenancy
from app.auth.passwords import hash_password
from app.tables.consent import PeacebuilderAccount
from tests.conftest import REQUIRE_SERVICES, build_env
from tests.test_auth import VIEWER, assert_unauthenticated, codes

pytestmark = [pytest.mark.anyio, pytest.mark.heavy]

HERE = Path(__file__).parent / "oidc"
PROVIDER_DIR = Path(os.environ.get("SAFETY_NET_OIDC_PROVIDER_DIR",
                                   Path.home() / ".cache" / "safety-net" / "oidc"))
CLIENT_SECRET = secrets.token_urlsafe(32)
SECOND_FACTOR = "246810"  # the provider's one-time code (tests/oidc/provider.mjs)
REDIRECT = "http://127.0.0.1/callback"
WEB_REDIRECT = "https://test/signin/oidc/callback"  # the dashboard's (tests/test_web_oidc.py)
EDDSA = "https://api.safety-net.test/eddsa"
RS256 = "https://api.safety-net.test/rs256"
CASES = "{ cases(first: 1) { totalCount } }"
LINK = """mutation($id: ID!, $sub: String!) { linkUserIdentity(input: {userId: $id, subject: $sub}) {
  user { username identityLinked } userErrors { message code } } }"""


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    if shutil.which("node") is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        message = f"oidc-provider not installed in {PROVIDER_DIR} (.ci/run installs it)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    process = subprocess.Popen(
        ["node", str(HERE / "provider.mjs")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env={**os.environ, "OIDC_PROVIDER_DIR": str(PROVIDER_DIR),
                        "OIDC_PORT": str(port), "OIDC_CLIENT_SECRET": CLIENT_SECRET,
                        "OIDC_WEB_REDIRECT": WEB_REDIRECT})
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()  # blocks until it listens (or dies)
        assert line.startswith("ready "), f"provider did not start: {line!r}"
        yield Provider(issuer=line.split(" ", 1)[1], process=process)
    finally:
        process.terminate()
        process.wait(10)


async def sign_in(provider: Provider, login: str, *, otp: str | None = None,
                  resource: str = EDDSA, client_id: str = "safety-net-web") -> dict[str, Any]:
    """The authorization-code flow with PKCE, as her browser and our web app would do it:
    the provider's sign-in page (password, and the second factor when `otp`), then the code
    exchanged for tokens. Returns the token response."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    async with httpx.AsyncClient(base_url=provider.issuer) as browser:
        discovery = (await browser.get("/.well-known/openid-configuration")).json()
        state = secrets.token_urlsafe(8)
        step = await browser.get(discovery["authorization_endpoint"], params={
            "client_id": client_id, "response_type": "code", "redirect_uri": REDIRECT,
            "scope": "openid api", "resource": resource, "state": state,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        assert step.status_code == 303, step.text
        page = step.headers["location"]
        assert (await browser.get(page)).json()["prompt"] == "login"
        form = {"login": login, "password": "correct horse"}
        if otp is not None:
            form["otp"] = otp
        step = await browser.post(page, data=form)
        while step.status_code in (302, 303) and not step.headers["location"].startswith(REDIRECT):
            step = await browser.get(step.headers["location"])
        assert step.status_code in (302, 303), step.text
        answer = parse_qs(urlparse(step.headers["location"]).query)
        assert answer["state"] == [state]
        tokens = await browser.post(discovery["token_endpoint"], data={
            "grant_type": "authorization_code", "code": answer["code"][0],
            "redirect_uri": REDIRECT, "code_verifier": verifier, "resource": resource},
            auth=(client_id, CLIENT_SECRET))
        assert tokens.status_code == 200, tokens.text
        return dict(tokens.json())


def header_of(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def test_sign_in_through_a_real_provider(backend: str, tmp_path: Any,
                                               provider: Provider) -> None:
    env, close = await build_env(
        backend, tmp_path, issuer="oidc", oidc_issuer=provider.issuer,
        oidc_jwks_url=f"{provider.issuer}/jwks", oidc_audience="safety-net-api",
        oidc_mfa_acr=("urn:safety-net:mfa",), oidc_clients=("safety-net-web",))
    try:
        # The operator binds the organisation's first admin to her provider account.
        with tenancy.using(tenancy.SYSTEM):
            assert await cli.link_identity(env.runtime.settings, "unpc", "admin",
                                           "unpc-admin-account") == 0
        admin = (await sign_in(provider, "unpc-admin-account", otp=SECOND_FACTOR))["access_token"]
        assert header_of(admin)["alg"] == "EdDSA" and header_of(admin)["typ"] == "at+jwt"
        me = (await env.gql(VIEWER, token=admin))["data"]["viewer"]
        assert me["name"] == "admin" and me["organisation"] == {"slug": "unpc"}

        # She binds the focal point to her provider account (its sub, not a name).
        users = await env.gql("{ users(first: 100) { edges { node { id username } } } }",
                              token=admin)
        ids = {e["node"]["username"]: e["node"]["id"] for e in users["data"]["users"]["edges"]}
        linked = await env.gql(LINK, {"id": ids["focal"], "sub": "amina-at-the-idp"}, token=admin)
        assert linked["data"]["linkUserIdentity"]["userErrors"] == [], linked

        # A focal point signing in with her second factor at the provider: acr says so.
        focal = await sign_in(provider, "amina-at-the-idp", otp=SECOND_FACTOR)
        claims = claims_of(focal["access_token"])
        assert claims["acr"] == "urn:safety-net:mfa" and claims["amr"] == ["pwd", "otp"]
        assert isinstance(claims["auth_time"], int)
        body = await env.gql(CASES, token=focal["access_token"])
        assert "errors" not in body, body
        me = (await env.gql(VIEWER, token=focal["access_token"]))["data"]["viewer"]
        assert me["name"] == "focal" and me["roles"] == ["FOCAL_POINT"]

        # The same person with her password only: refused, and told why.
        weak = await sign_in(provider, "amina-at-the-idp")
        assert claims_of(weak["access_token"])["acr"] == "urn:safety-net:pwd"
        assert codes(await env.gql(CASES, token=weak["access_token"])) == \
            ["SECOND_FACTOR_REQUIRED"]

        # RS256 tokens from the same provider work too.
        rsa = await sign_in(provider, "amina-at-the-idp", otp=SECOND_FACTOR, resource=RS256)
        assert header_of(rsa["access_token"])["alg"] == "RS256"
        assert "errors" not in await env.gql(CASES, token=rsa["access_token"])

        # Refused: an account named like the admin but not bound; another app's token for our
        # API (azp); the ID token (its audience is the web app, not us).
        stranger = await sign_in(provider, "admin", otp=SECOND_FACTOR)
        assert_unauthenticated(await env.post(VIEWER, token=stranger["access_token"]))
        other_app = await sign_in(provider, "amina-at-the-idp", otp=SECOND_FACTOR,
                                  client_id="other-app")
        assert claims_of(other_app["access_token"])["client_id"] == "other-app"
        assert_unauthenticated(await env.post(VIEWER, token=other_app["access_token"]))
        assert_unauthenticated(await env.post(VIEWER, token=focal["id_token"]))

        # Her own sign-in works beside the provider (the built-in issuer, with refresh).
        async with env.runtime.db.transaction() as s:
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
        body = await env.gql("{ viewer { kind } }", token=renewed.json()["access_token"],
                             purpose=None)
        assert body["data"]["viewer"]["kind"] == "peacebuilder", body
    finally:
        await close()
