"""HTTP endpoints of the built-in issuer: client credentials, password login, JWKS."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.access.principal import SYSTEM
from app.access.unit import context_for
from app.auth import attempts, mfa, principals, sessions
from app.errors import BadInput
from app.inputs import check_json, check_text
from app.logs import request_id_var
from app.ratelimit import limiter
from app.tables.orgs import Client
from app.tenancy import as_system

if TYPE_CHECKING:
    from app.runtime import Runtime

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
HER_LOGIN_FAILED = {"error": "invalid_grant", "error_description": "Invalid login or password."}

# Her sign-in checks her account, a layer above identity: app/peacebuilders/http.py registers it
# (decision 0035). Until then a login without an organisation is refused like a wrong password.
HerLogin = Callable[["Runtime", str, str, "str | None", "attempts.Charged"], Awaitable[Response]]
_her_login: list[HerLogin] = []


def on_her_login(fn: HerLogin) -> HerLogin:
    """Register how a peacebuilder's sign-in (`/auth/login` with `login`) is answered."""
    _her_login[:] = [fn]
    return fn
BAD_TOKEN_REQUEST = {"error": "invalid_request", "error_description":
                     "Client credentials may not contain NUL characters or unpaired surrogates."}
BAD_CLIENT = {"error": "invalid_client", "error_description":
              "Basic credentials must be base64 of UTF-8 client_id:client_secret."}
LOGIN_FAILED = {"error": "invalid_grant",
                "error_description": "Invalid organisation, username, password or code."}


class _OAuthClient(ClientMixin):
    """Adapts our Client row to Authlib; the secret was already checked against its hash."""

    def __init__(self, client: Client | None, secret_ok: bool) -> None:
        self.client, self.secret_ok = client, secret_ok

    def get_client_id(self) -> str:
        return self.client.client_id if self.client else ""

    def get_allowed_scope(self, scope: str) -> str:
        return ""

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_ok

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class _StarletteOAuth2Request(OAuth2Request):
    def __init__(self, uri: str, headers: Mapping[str, str], form: dict[str, str]) -> None:
        super().__init__("POST", uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class _ClientCredentialsGrant(ClientCredentialsGrant):
    # Authlib's grant allows only client_secret_basic by default; we accept both methods.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class TokenServer(AuthorizationServer):
    """Authlib's generic server, bound to one pre-loaded client per request.

    Authlib's server is synchronous while our storage is async, so the endpoint reads the form
    and loads the client first; `query_client` then answers from that.
    """

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.register_grant(_ClientCredentialsGrant)
        self.register_token_generator("default", self._generate)
        self._current: _OAuthClient | None = None

    def query_client(self, client_id: str) -> _OAuthClient | None:
        current = self._current
        if current is None or current.client is None or current.get_client_id() != client_id:
            return None
        return current

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Tokens are self-contained JWTs; issuance is logged by the endpoint."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return JSONResponse(body, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def _generate(self, grant_type: str, client: _OAuthClient, user: Any = None,
                  scope: str | None = None, expires_in: int | None = None,
                  include_refresh_token: bool = True) -> dict[str, Any]:
        assert client.client is not None
        token, ttl = self.runtime.issuer.issue(subject=client.client.subject,
                                               org_id=str(client.client.org_id), acr="client")
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


@as_system  # sign-in reads accounts across organisations
async def token_endpoint(request: Request) -> Response:
    """OAuth2 client-credentials grant (RFC 6749 §4.4) for partner agencies' systems.

    Attempts are limited per client ID and per client address before anything is looked up: a
    refused attempt costs no database work and writes no access-log entry (the request line, with
    status 429, and `safety_net_rate_limited_total` record it)."""
    runtime: Runtime = request.app.state.runtime
    form = {k: str(v) for k, v in (await request.form()).items()}
    if form.get("grant_type") == "refresh_token":
        return await _refresh(request, runtime, form.get("refresh_token", ""))
    # Case-insensitive: Authlib looks up "Authorization", Starlette stores header names lowercase.
    headers = request.headers
    try:
        client_id, secret = _client_credentials(headers, form)
        check_json(form, "form")
    except BadInput:
        return JSONResponse(BAD_TOKEN_REQUEST, status_code=400, headers=NO_STORE)
    except InvalidBasic:
        # Refused here: Authlib would decode the header again, and crash on non-UTF-8 bytes.
        return JSONResponse(BAD_CLIENT, status_code=401,
                            headers={**NO_STORE, "WWW-Authenticate": 'Basic realm="safety-net"'})
    address = request.client.host if request.client else "-"
    verdict = await limiter(runtime).token(client_id, address)
    if not verdict.allowed:
        return JSONResponse({"error": "slow_down", "error_description":
                             "Too many token requests; try again later."}, status_code=429,
                            headers={**NO_STORE, "Retry-After": str(verdict.retry_after)})
    async with runtime.db.transaction() as session:
        client = await principals.find_client(session, client_id) if client_id else None
        ok = principals.client_secret_ok(client, secret)
        server = TokenServer(runtime)
        server._current = _OAuthClient(client if ok else None, ok)
        uri = runtime.settings.issuer_url.rstrip("/") + "/oauth/token"
        response = server.create_token_response(_StarletteOAuth2Request(uri, headers, form))
        ctx = context_for(runtime, session, SYSTEM, request_id=request_id_var.get())
        ctx.record("token.issue", target_type="Client", target_id=client.id if client else None,
                   decision="allow" if response.status_code == 200 else "deny",
                   reason=None if response.status_code == 200 else "invalid client credentials",
                   details={"grant": "client_credentials"})
    response.headers.update(NO_STORE)
    return response


def _client_credentials(headers: Mapping[str, str], form: dict[str, str]) -> tuple[str, str]:
    import base64
    from urllib.parse import unquote

    auth = headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            raw = base64.b64decode(auth[6:], validate=True).decode()
        except ValueError as exc:  # not base64, not UTF-8 (UnicodeDecodeError is a ValueError)
            raise InvalidBasic() from exc
        cid, _, secret = raw.partition(":")
        cid, secret = unquote(cid, errors="strict"), unquote(secret, errors="strict")
        return check_text(cid, "client_id"), check_text(secret, "client_secret")
    return form.get("client_id", ""), form.get("client_secret", "")


class InvalidBasic(Exception):
    """An `Authorization: Basic` value that is not base64 of UTF-8 text."""


@as_system  # sign-in reads accounts across organisations
async def login_endpoint(request: Request) -> Response:
    """Password login on the built-in issuer: staff send JSON {organisation, username, password}
    and, once enrolled, `totp` (a current code); a peacebuilder sends {login, password}.

    Every failure (unknown account, wrong password, missing or wrong code) is the same answer.
    A person whose role needs a second factor and who has none yet gets a token that can only
    enrol (`mfa_enrolment_required`)."""
    runtime: Runtime = request.app.state.runtime
    try:
        body = json.loads(await request.body())
        check_json(body, "body")  # NUL, lone surrogates, nesting: none reaches a lookup
        if isinstance(body, dict) and "login" in body and "organisation" not in body:
            account, password = str(body["login"]), str(body["password"])
            code = str(body["totp"]) if body.get("totp") is not None else None
            org = None
        else:
            org, account, password = (str(body["organisation"]), str(body["username"]),
                                      str(body["password"]))
            code = str(body["totp"]) if body.get("totp") is not None else None
    except (ValueError, KeyError, TypeError, RecursionError, BadInput):
        return JSONResponse({"error": "invalid_request", "error_description":
                             "Send JSON with organisation, username and password."},
                            status_code=400, headers=NO_STORE)
    address = request.client.host if request.client else "-"
    verdict = await limiter(runtime).login(f"{org}/{account}" if org else account, address)
    if not verdict.allowed:
        return JSONResponse({"error": "slow_down", "error_description":
                             "Too many sign-in attempts; try again later."}, status_code=429,
                            headers={**NO_STORE, "Retry-After": str(verdict.retry_after)})
    # Failed sign-ins, counted in the database: they hold when the limits above fail open.
    charged = await attempts.charge(runtime, f"{org}/{account}" if org else f"pb:{account}",
                                    address)
    if not charged.allowed:
        if runtime.metrics is not None:
            runtime.metrics.count_throttled(charged.limit)
        return JSONResponse({"error": "slow_down", "error_description":
                             "Too many failed sign-in attempts; try again later."},
                            status_code=429,
                            headers={**NO_STORE, "Retry-After": str(charged.retry_after)})
    if org is None:
        her_login = _her_login[0] if _her_login else _no_her_login
        return await her_login(runtime, account, password, code, charged)
    if runtime.settings.issuer == "oidc":
        # Staff sign in at the identity provider: a token from here would be refused anyway.
        return JSONResponse({"error": "invalid_request", "error_description":
                             "Staff sign in through the organisation's identity provider (OIDC "
                             "mode); this endpoint serves peacebuilders' own logins only."},
                            status_code=400, headers=NO_STORE)
    enrolment_required = False
    payload: dict[str, Any] = {}
    async with runtime.db.transaction() as session:
        user = await principals.authenticate_user(session, org, account, password)
        acr = await mfa.login_acr(session, user, code, runtime.db.keys) if user else None
        if user is not None and acr == "pwd":
            await runtime.policy.refresh(session)
            roles = runtime.policy.roles_of(user.subject, str(user.org_id))
            enrolment_required = bool(roles & mfa.mfa_roles(runtime.settings))
        ctx = context_for(runtime, session, SYSTEM, request_id=request_id_var.get())
        ctx.record("auth.login", target_type="User", target_id=user.id if user else None,
                   decision="allow" if acr else "deny",
                   reason=None if acr else "invalid credentials",
                   details={"acr": acr} if acr else None)
        if user is not None and acr is not None and not enrolment_required:
            now = runtime.clock.now()
            sess, refresh = await sessions.open_session(
                session, runtime.settings, subject=user.subject, org_id=user.org_id, acr=acr,
                now=now)
            payload = sessions.token_response(runtime.issuer, sess, refresh, now)
    if user is None or acr is None:
        return JSONResponse(LOGIN_FAILED, status_code=401, headers=NO_STORE)
    await attempts.succeeded(runtime, charged)
    if enrolment_required:
        # Enrolment only: a short token and no session to refresh; she signs in again with
        # her code once enrolled.
        token, ttl = runtime.issuer.issue(subject=user.subject, org_id=str(user.org_id), acr=acr)
        payload = {"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                   "mfa_enrolment_required": True}
    return JSONResponse(payload, headers=NO_STORE)


async def _no_her_login(runtime: Runtime, login: str, password: str, code: str | None,
                        charged: attempts.Charged) -> Response:
    return JSONResponse(HER_LOGIN_FAILED, status_code=401, headers=NO_STORE)


REFRESH_FAILED = {"error": "invalid_grant",
                  "error_description": "The refresh token is invalid, expired or revoked: "
                                       "sign in again."}


async def _refresh(request: Request, runtime: Runtime, token: str) -> Response:
    """`grant_type=refresh_token` (RFC 6749 §6) for people's sessions: the token is spent and a
    new pair answered; a spent token presented again revokes the session (reuse detection).
    No client authentication: people's apps are public clients; rotation protects them."""
    address = request.client.host if request.client else "-"
    verdict = await limiter(runtime).token("refresh:" + sessions.token_hash(token)[:16], address)
    if not verdict.allowed:
        return JSONResponse({"error": "slow_down", "error_description":
                             "Too many token requests; try again later."}, status_code=429,
                            headers={**NO_STORE, "Retry-After": str(verdict.retry_after)})
    if not token:
        return JSONResponse({"error": "invalid_request",
                             "error_description": "refresh_token is required."},
                            status_code=400, headers=NO_STORE)
    async with runtime.db.transaction() as session:
        now = runtime.clock.now()
        outcome = await sessions.exchange(session, runtime.settings, token, now)
        sess = outcome.session
        ctx = context_for(runtime, session, SYSTEM, request_id=request_id_var.get())
        ctx.record("auth.refresh", target_type="Session",
                   target_id=sess.id if sess else None,
                   decision="allow" if sess else "deny",
                   reason=None if sess else f"refresh token {outcome.reason}",
                   details={"acr": sess.acr} if sess else None)
        if sess is not None and outcome.refresh_token is not None:
            payload = sessions.token_response(runtime.issuer, sess, outcome.refresh_token, now)
    if sess is None:
        return JSONResponse(REFRESH_FAILED, status_code=400, headers=NO_STORE)
    return JSONResponse(payload, headers=NO_STORE)


@as_system  # a session is found by its token, across organisations
async def logout_endpoint(request: Request) -> Response:
    """Sign-out with a refresh token (RFC 7009 style: `token` or `refresh_token`, as a form or
    JSON): its session ends on every replica at the next request, access tokens included.
    Always 200, known token or not (nothing to learn by probing)."""
    runtime: Runtime = request.app.state.runtime
    token = ""
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = json.loads(await request.body())
            if isinstance(body, dict):
                token = str(body.get("refresh_token") or body.get("token") or "")
        else:
            form = await request.form()
            token = str(form.get("refresh_token") or form.get("token") or "")
    except (ValueError, TypeError):
        token = ""
    if not token:
        return JSONResponse({"error": "invalid_request",
                             "error_description": "Send the refresh token as `token`."},
                            status_code=400, headers=NO_STORE)
    async with runtime.db.transaction() as session:
        sess = await sessions.revoke_by_token(session, token, "sign-out", runtime.clock.now())
        if sess is not None:
            ctx = context_for(runtime, session, SYSTEM, request_id=request_id_var.get())
            ctx.record("auth.logout", target_type="Session", target_id=sess.id)
    return JSONResponse({"signed_out": True}, headers=NO_STORE)


async def jwks_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return JSONResponse(runtime.issuer.jwks(), headers={"Cache-Control": "public, max-age=300"})
