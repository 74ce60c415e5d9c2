"""Staff sign in to the dashboard at a real OpenID Connect provider (authorization code + PKCE):
the provider's token passes the API's own verifier before a browser session exists."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from app import cli, tenancy
from tests.conftest import build_env
from tests.test_oidc_provider import (  # noqa: F401  (the provider fixture)
    CLIENT_SECRET,
    EDDSA,
    SECOND_FACTOR,
    WEB_REDIRECT,
    Provider,
    provider,
)
from tests.web_support import declare_purpose

pytestmark = [pytest.mark.anyio, pytest.mark.heavy]


async def at_provider(issuer: str, authorize: str, login: str, otp: str | None) -> str:
    """Her browser at the provider's sign-in page; answers where it sends her back."""
    async with httpx.AsyncClient() as browser:
        step = await browser.get(authorize)
        assert step.status_code == 303, step.text
        page = step.headers["location"]
        if page.startswith("/"):
            page = issuer + page
        form = {"login": login, "password": "correct horse"}
        if otp:
            form["otp"] = otp
        step = await browser.post(page, data=form)
        while step.status_code in (302, 303) and not step.headers["location"].startswith(
                WEB_REDIRECT):
            location = step.headers["location"]
            step = await browser.get(issuer + location if location.startswith("/") else location)
        assert step.status_code in (302, 303), step.text
        return str(step.headers["location"])


async def test_staff_sign_in_at_the_provider(backend: str, tmp_path: Any,
                                             provider: Provider) -> None:  # noqa: F811
    env, close = await build_env(
        backend, tmp_path, issuer="oidc", oidc_issuer=provider.issuer,
        oidc_jwks_url=f"{provider.issuer}/jwks", oidc_audience="safety-net-api",
        oidc_mfa_acr=("urn:safety-net:mfa",), oidc_clients=("safety-net-web",),
        oidc_web_client_id="safety-net-web", oidc_web_client_secret=CLIENT_SECRET,
        oidc_web_resource=EDDSA)
    try:
        with tenancy.using(tenancy.SYSTEM):
            assert await cli.link_identity(env.runtime.settings, "unpc", "caseworker",
                                           "cw-at-the-idp") == 0
        transport = env.client._transport
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
            page = await client.get("/signin")
            assert 'href="/signin/oidc"' in page.text
            start = await client.get("/signin/oidc")
            assert start.status_code == 303
            authorize = start.headers["location"]
            assert authorize.startswith(provider.issuer)
            query = parse_qs(urlparse(authorize).query)
            assert query["code_challenge_method"] == ["S256"]
            back = await at_provider(provider.issuer, authorize, "cw-at-the-idp", SECOND_FACTOR)
            # A forged state is refused and opens nothing.
            forged = back.replace("state=", "state=x")
            refused = await client.get(forged.replace("https://test", ""))
            assert refused.status_code == 401 and "__Host-sn-session" not in \
                refused.headers.get("set-cookie", "")
            # The refusal spent the flow cookie: she starts again, and comes back properly.
            start = await client.get("/signin/oidc")
            back = await at_provider(provider.issuer, start.headers["location"],
                                     "cw-at-the-idp", SECOND_FACTOR)
            done = await client.get(back.replace("https://test", ""))
            assert done.status_code == 200 and 'http-equiv="refresh"' in done.text
            assert "__Host-sn-session=" in done.headers["set-cookie"]
            await declare_purpose(client)
            queue = await client.get("/queue")
            assert queue.status_code == 200 and "caseworker" in queue.text

            # Someone whose provider account is bound to nobody here gets no session.
            stranger = await client.__class__(transport=transport,
                                              base_url="https://test").__aenter__()
            try:
                start = await stranger.get("/signin/oidc")
                back = await at_provider(provider.issuer, start.headers["location"],
                                         "not-bound", SECOND_FACTOR)
                answer = await stranger.get(back.replace("https://test", ""))
                assert answer.status_code == 401
                assert (await stranger.get("/queue")).status_code == 303
            finally:
                await stranger.aclose()
    finally:
        await close()
