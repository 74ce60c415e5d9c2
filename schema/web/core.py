"""The dashboard's request handling: browser session, CSRF, headers, rendering.

Every page is a `Visit`: the browser session found from its cookie (or a redirect to sign-in),
its person's token refreshed when it has run out, and `visit.query` running GraphQL as that
person with her declared purpose. Nothing of a person's data is put in a URL, a title, browser
storage or a cache: pages answer `Cache-Control: no-store`, titles are fixed strings, and the
only cookie holds a random secret (HttpOnly, Secure, SameSite=Strict).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.auth import web as browsers
from app.auth.edge import PURPOSES
from app.runtime import Runtime
from schema.web import gql, i18n

COOKIE = "__Host-sn-session"
PRE_COOKIE = "__Host-sn-form"  # the sign-in form's token, before there is a session
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
REFRESH_AHEAD = timedelta(seconds=30)
TEMPLATES = Path(__file__).parent / "templates"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on our own
    # form posts, which the CSRF check must refuse. Other sites still get no referrer.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# Purposes in the order staff meet them; aggregate reporting reads no record (counts only).
PURPOSE_ORDER = ("protection", "emergency_response", "legal_support", "advocacy",
                 "public_recognition", "media", "aggregate_reporting")
assert set(PURPOSE_ORDER) == set(PURPOSES)


def N_(message: str) -> str:
    """Marks a message for translation where it is defined; `_()` translates it where shown."""
    return message


PURPOSE_LABELS = {
    "protection": N_("Protection"),
    "emergency_response": N_("Emergency response"),
    "legal_support": N_("Legal support"),
    "advocacy": N_("Advocacy"),
    "public_recognition": N_("Public recognition"),
    "media": N_("Media"),
    "aggregate_reporting": N_("Aggregate reporting (counts only)"),
}
# Staff pages in the navigation, in order: each page family adds its own (path, label).
NAV: list[tuple[str, str]] = []
# Entries shown only to people with one of these roles (the API's `viewer.roles`, e.g. AUDITOR);
# a path not listed here is shown to all staff. A page still asks the API, which decides.
NAV_ROLES: dict[str, frozenset[str]] = {}

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                  undefined=StrictUndefined, extensions=["jinja2.ext.i18n"], trim_blocks=True,
                  lstrip_blocks=True)
env.policies["ext.i18n.trimmed"] = True
env.install_null_translations(newstyle=True)  # replaced per render by the visit's language


class SignedOut(Exception):
    """The person's session ended (signed out elsewhere, deactivated, suspended, expired)."""


def secure_cookies(request: Request) -> bool:
    # Browsers keep Secure cookies from http://localhost and 127.0.0.1; behind the ingress
    # everything is HTTPS. A plain-HTTP non-loopback host gets none (it cannot sign in).
    return True


def same_origin(request: Request) -> bool:
    """A state-changing request came from our own pages (Origin, or Referer, when sent)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        # SameSite=Strict already keeps the cookie off cross-site requests; a browser that
        # sends neither header is judged by the CSRF token alone.
        return origin != "null"
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.netloc == host


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go back to (never another site, never a scheme-relative URL, no
    whitespace or control characters: browsers drop a tab or newline and read "/<tab>/evil"
    as `//evil`)."""
    if (not value or not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(c) < 33 or ord(c) == 127 for c in value)):
        return default
    return value


@dataclass
class Visit:
    """One page view by a signed-in person."""

    request: Request
    runtime: Runtime
    browser: browsers.Browser
    secret: str
    viewer: dict[str, Any] = field(default_factory=dict)

    @property
    def language(self) -> str:
        return self.browser.language

    @property
    def purpose(self) -> str | None:
        return self.browser.purpose

    @property
    def is_her(self) -> bool:
        return self.browser.subject.startswith("peacebuilder:")

    @property
    def csrf(self) -> str:
        return browsers.csrf_token(self.runtime, self.secret)

    async def query(self, document: str, variables: dict[str, Any] | None = None) -> gql.Answer:
        answer = await gql.run(self.request, document, variables,
                               token=self.browser.tokens.access, purpose=self.purpose)
        if answer.unauthenticated:
            await browsers.close_browser(self.runtime, self.browser.id)
            raise SignedOut()
        return answer

    def check_csrf(self, form: dict[str, Any]) -> bool:
        sent = form.get(CSRF_FIELD) or self.request.headers.get(CSRF_HEADER)
        return same_origin(self.request) and browsers.csrf_ok(self.runtime, self.secret, sent)


async def visit(request: Request, *, touch: bool = True) -> Visit | None:
    """The signed-in browser of this request, its token fresh; None when there is none.
    `touch=False`: a request the page makes by itself, which does not count as her activity
    (the idle clock stays where her last page left it)."""
    runtime: Runtime = request.app.state.runtime
    secret = request.cookies.get(COOKIE)
    browser = await browsers.load(runtime, secret, touch=touch)
    if browser is None or secret is None:
        return None
    if browser.tokens.access_expires_at - runtime.clock.now() < REFRESH_AHEAD:
        fresh = await refresh(request, browser)
        if fresh is None:
            await browsers.close_browser(runtime, browser.id)
            return None
        await browsers.update_browser(runtime, browser, tokens=fresh)
        browser = browsers.Browser(browser.id, browser.subject, fresh, browser.purpose,
                                   browser.language, browser.expires_at)
    return Visit(request, runtime, browser, secret)


async def refresh(request: Request, browser: browsers.Browser) -> browsers.Tokens | None:
    """A new access token through the API's own refresh grant (rotation, reuse detection and
    its access-log entry included)."""
    if browser.tokens.refresh is None:
        return None
    from app.auth.http import token_endpoint

    status, payload = await internal_form(request, token_endpoint, "/oauth/token", {
        "grant_type": "refresh_token", "refresh_token": browser.tokens.refresh})
    return tokens_of(request.app.state.runtime, payload) if status == 200 else None


def tokens_of(runtime: Runtime, payload: dict[str, Any]) -> browsers.Tokens | None:
    access = payload.get("access_token")
    if not isinstance(access, str):
        return None
    ttl = int(payload.get("expires_in") or 0)
    return browsers.Tokens(access, payload.get("refresh_token"),
                           runtime.clock.now() + timedelta(seconds=ttl))


async def internal_form(request: Request, endpoint: Any, path: str, form: dict[str, str],
                        *, as_json: bool = False) -> tuple[int, dict[str, Any]]:
    """Call one of the issuer's own endpoints in process (sign-in, refresh, sign-out), so the
    dashboard's sign-in is the API's: same limits, same attempts counter, same log entries."""
    from urllib.parse import urlencode

    body = (json.dumps(form) if as_json else urlencode(form)).encode()
    ctype = b"application/json" if as_json else b"application/x-www-form-urlencoded"
    scope = {
        "type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
        "root_path": "", "query_string": b"", "http_version": "1.1",
        "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
        "scheme": request.url.scheme, "client": request.scope.get("client"),
        "server": request.scope.get("server"), "app": request.app, "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    response = await endpoint(Request(scope, receive))
    try:
        payload = json.loads(bytes(response.body))
    except ValueError:
        payload = {}
    return response.status_code, payload if isinstance(payload, dict) else {}


def set_session_cookie(response: Response, request: Request, secret: str,
                       max_age: int) -> None:
    response.set_cookie(COOKIE, secret, max_age=max_age, path="/", secure=secure_cookies(request),
                        httponly=True, samesite="strict")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", secure=secure_cookies(request), httponly=True,
                           samesite="strict")


def form_token(request: Request) -> tuple[str, bool]:
    """The sign-in form's token (double-submit, before any session): the cookie's, or new."""
    current = request.cookies.get(PRE_COOKIE)
    if current and 20 <= len(current) <= 100:
        return current, False
    return secrets.token_urlsafe(24), True


def render(request: Request, template: str, *, language: str, status: int = 200,
           visit: Visit | None = None, **context: Any) -> HTMLResponse:
    """A page in the visit's language, with the dashboard's headers."""
    translations = i18n.translations(language)
    page = env.get_template(template)
    html = page.render(
        gettext=translations.gettext, ngettext=translations.ngettext,
        _=translations.gettext, lang=language, dir="rtl" if language in i18n.RTL else "ltr",
        languages=i18n.NAMES, fmt=i18n.Formats(language), visit=visit,
        csrf=visit.csrf if visit else context.pop("csrf", ""), purposes=PURPOSE_ORDER,
        purpose_labels=PURPOSE_LABELS, nav=NAV, nav_roles=NAV_ROLES,
        path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=PAGE_HEADERS)


# Her pages, signed out, lead here rather than to our sign-in page: after a quick exit, the
# browser's Back button must not land on a page that names us (schema/web/her.py).
NEUTRAL_PATH = "/weather"


def to_sign_in(request: Request, *, neutral: bool = False) -> Response:
    response = redirect(NEUTRAL_PATH if neutral else "/signin")
    if request.cookies.get(COOKIE):
        clear_session_cookie(response, request)
    return response
