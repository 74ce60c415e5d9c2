"""Staff sign in to the dashboard at their organisation's OpenID Connect provider (OIDC mode).

Authorization code flow with PKCE, as a confidential client (`SAFETY_NET_OIDC_WEB_CLIENT_ID` /
`_SECRET`). The state, nonce and code verifier travel in a short-lived cookie sealed with a
service key (SameSite=Lax: the provider sends her back with a top-level GET from its own site).
The access token the provider issues for our API is checked by the API's own verifier (issuer,
audience, allowed clients, her bound identity, second factor from `acr`/`amr`) before any
browser session exists. Provider tokens are not refreshed here: when one runs out (its TTL is
the provider's), the dashboard sends her back to the provider, whose own session may answer at
once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.auth import web as browsers
from app.errors import Unauthenticated
from app.runtime import Runtime
from schema.web import core, gql, i18n

FLOW_COOKIE = "__Host-sn-oidc"
FLOW_SECONDS = 600
CALLBACK = "/signin/oidc/callback"
_discovery: dict[str, dict[str, Any]] = {}


def enabled(runtime: Runtime) -> bool:
    s = runtime.settings
    return s.issuer == "oidc" and bool(s.oidc_issuer and s.oidc_web_client_id)


async def discovery(runtime: Runtime) -> dict[str, Any]:
    issuer = runtime.settings.oidc_issuer.rstrip("/")
    if issuer not in _discovery:
        async with httpx.AsyncClient(timeout=5) as client:
            found = (await client.get(f"{issuer}/.well-known/openid-configuration")).json()
        if found.get("issuer", "").rstrip("/") != issuer:
            raise ValueError("the provider's discovery document names another issuer")
        _discovery[issuer] = found
    return _discovery[issuer]


def _mac(runtime: Runtime, payload: bytes) -> str:
    return browsers.flow_mac(runtime, payload)


def _pack(runtime: Runtime, flow: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(flow).encode()).decode()
    return f"{payload}.{_mac(runtime, payload.encode())}"


def _unpack(runtime: Runtime, value: str | None) -> dict[str, Any] | None:
    if not value or "." not in value:
        return None
    payload, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(_mac(runtime, payload.encode()).encode(), mac.encode(errors="replace")):
        return None
    try:
        flow = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return None
    if not isinstance(flow, dict) or flow.get("exp", 0) < time.time():
        return None
    return flow


def _redirect_uri(request: Request) -> str:
    return str(request.base_url).rstrip("/") + CALLBACK


async def start(request: Request) -> Response:
    """To the provider's sign-in, with a fresh state, nonce and PKCE verifier."""
    runtime: Runtime = request.app.state.runtime
    if not enabled(runtime):
        return core.redirect("/signin")
    try:
        found = await discovery(runtime)
    except (httpx.HTTPError, ValueError):
        return core.render(request, "error.html", language=i18n.negotiate(
            request.headers.get("accept-language")), viewer=None, status=503, kind="unavailable")
    verifier = secrets.token_urlsafe(48)
    flow = {"state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16),
            "verifier": verifier, "exp": int(time.time()) + FLOW_SECONDS,
            "lang": i18n.negotiate(request.headers.get("accept-language"))}
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"client_id": runtime.settings.oidc_web_client_id, "response_type": "code",
              "redirect_uri": _redirect_uri(request), "scope": "openid", "state": flow["state"],
              "nonce": flow["nonce"], "code_challenge": challenge,
              "code_challenge_method": "S256"}
    if runtime.settings.oidc_web_resource:
        params["resource"] = runtime.settings.oidc_web_resource
        params["scope"] = "openid api"
    response = core.redirect(f"{found['authorization_endpoint']}?{urlencode(params)}")
    response.set_cookie(FLOW_COOKIE, _pack(runtime, flow), max_age=FLOW_SECONDS, path="/",
                        secure=True, httponly=True, samesite="lax")
    return response


async def callback(request: Request) -> Response:
    """Back from the provider: the code for tokens, the API's verifier on the access token,
    then a browser session. Any failure is one answer and leaves no session."""
    runtime: Runtime = request.app.state.runtime
    flow = _unpack(runtime, request.cookies.get(FLOW_COOKIE))
    language = flow.get("lang", "en") if flow else "en"
    code, state = request.query_params.get("code"), request.query_params.get("state")
    tokens = None
    if (enabled(runtime) and flow and code and state
            and hmac.compare_digest(state.encode(errors="replace"), str(flow["state"]).encode())):
        tokens = await _exchange(request, runtime, code, flow["verifier"])
    if tokens is None:
        response = core.render(request, "signin.html", language=language, viewer=None,
                               status=401, csrf="", error="failed", oidc=True,
                               oidc_button=enabled(runtime))
        response.delete_cookie(FLOW_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
        return response
    access, expires_in = tokens
    try:
        claims = await runtime.verify_token(access)
    except Unauthenticated:
        claims = None
    # The API decides who this is (her provider account bound to one of our people, still
    # active): a viewer query with the token, exactly as a page would run it.
    who = (await gql.run(request, "{ viewer { kind } }", token=access, purpose=None)
           if claims is not None else None)
    kind = (((who.data or {}).get("viewer") or {}).get("kind") if who else None)
    if claims is None or who is None or who.status != 200 or kind != "user":
        response = core.render(request, "signin.html", language=language, viewer=None,
                               status=401, csrf="", error="failed", oidc=True,
                               oidc_button=True)
        response.delete_cookie(FLOW_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
        return response
    lifetime = timedelta(seconds=max(expires_in, 1))
    secret = await browsers.open_browser(
        runtime, subject=f"oidc:{claims.subject}"[:80], language=language, lifetime=lifetime,
        tokens=browsers.Tokens(access, None, runtime.clock.now() + lifetime))
    # A page, not a redirect: the Strict session cookie is sent on the next navigation, which
    # starts here (a redirect would still belong to the provider's cross-site navigation).
    html = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="refresh" content="0;url=/"><title>Safety Net</title></head>'
            '<body><main><p><a href="/">Continue</a></p></main></body></html>')
    response = HTMLResponse(html, headers=core.PAGE_HEADERS)
    core.set_session_cookie(response, request, secret, max_age=int(lifetime.total_seconds()))
    response.delete_cookie(FLOW_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


async def _exchange(request: Request, runtime: Runtime, code: str,
                    verifier: str) -> tuple[str, int] | None:
    s = runtime.settings
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": _redirect_uri(request), "code_verifier": verifier}
    if s.oidc_web_resource:
        form["resource"] = s.oidc_web_resource
    try:
        found = await discovery(runtime)
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(found["token_endpoint"], data=form,
                                       auth=(s.oidc_web_client_id, s.oidc_web_client_secret))
        if answer.status_code != 200:
            return None
        body = answer.json()
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    access = body.get("access_token")
    if not isinstance(access, str):
        return None
    return access, int(body.get("expires_in") or 300)
