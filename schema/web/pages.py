"""The dashboard's own pages: sign-in, second-factor enrolment, sign-out, purpose, language.

Each page family adds its module beside this one (`queue`, `case`, `her`, ...) with its routes
in `ROUTES`; every handler is wrapped by `page` (signed in, CSRF on POST, signed-out handling)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.auth import web as browsers
from app.auth.edge import PURPOSES
from schema.web import core, i18n
from schema.web.core import Visit, redirect, render

Handler = Callable[[Visit], Awaitable[Response]]

VIEWER = "viewer { kind name roles organisation { name } }"


def page(handler: Handler, *, staff_only: bool = False, her_only: bool = False,
         purpose: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A signed-in page. `purpose`: staff must have declared the purpose of their work first
    (there is no default purpose); she never declares one on her own page."""

    async def endpoint(request: Request) -> Response:
        visit = await core.visit(request)
        if visit is None:
            return core.to_sign_in(request, neutral=her_only)
        if request.method == "POST":
            form = dict(await request.form())
            if not visit.check_csrf(form):
                return forbidden(request, visit)
            request.state.form = form
        if (staff_only and visit.is_her) or (her_only and not visit.is_her):
            return not_found(request, visit)
        if purpose and not visit.is_her and visit.purpose is None:
            return render(request, "purpose.html", language=visit.language, visit=visit,
                          viewer=None, next=request.url.path, needed=True)
        try:
            return await handler(visit)
        except core.SignedOut:
            return core.to_sign_in(request, neutral=her_only)

    return endpoint


def form_of(visit: Visit) -> dict[str, Any]:
    return dict(getattr(visit.request.state, "form", {}) or {})


def not_found(request: Request, visit: Visit | None) -> Response:
    """The same page for what does not exist and what is not yours to see."""
    return render(request, "error.html", language=visit.language if visit else "en",
                  visit=visit, viewer=None, status=404, kind="not_found")


def forbidden(request: Request, visit: Visit | None) -> Response:
    return render(request, "error.html", language=visit.language if visit else "en",
                  visit=visit, viewer=None, status=403, kind="form_expired")


async def home(request: Request) -> Response:
    visit = await core.visit(request)
    if visit is None:
        return core.to_sign_in(request)
    return redirect("/me" if visit.is_her else "/queue")


async def sign_in(request: Request) -> Response:
    """GET: the form (staff: organisation, username, password, code; she: login, password,
    code). POST: the API's own sign-in endpoint, in process; on success a browser session."""
    language = i18n.negotiate(request.headers.get("accept-language"))
    token, fresh = form_token(request)
    if request.method == "GET":
        response = _sign_in_page(request, language, token, error=None)
        if fresh:
            response.set_cookie(core.PRE_COOKIE, token, path="/", secure=True, httponly=True,
                                samesite="strict")
        return response
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not core.same_origin(request) or form.get(core.CSRF_FIELD) != token or fresh:
        return render(request, "error.html", language=language, viewer=None, status=403,
                      kind="form_expired")
    from app.auth.http import login_endpoint

    who = form.get("who", "staff")
    if who == "her":
        body = {"login": form.get("login", ""), "password": form.get("password", "")}
    else:
        body = {"organisation": form.get("organisation", ""),
                "username": form.get("username", ""), "password": form.get("password", "")}
    if form.get("totp", "").strip():
        body["totp"] = form["totp"].strip()
    status, payload = await core.internal_form(request, login_endpoint, "/auth/login", body,
                                               as_json=True)
    runtime = request.app.state.runtime
    tokens = core.tokens_of(runtime, payload) if status == 200 else None
    if tokens is None:
        error = "throttled" if status == 429 else ("staff_oidc" if status == 400 and who != "her"
                                                   else "failed")
        return _sign_in_page(request, language, token, error=error, status=401
                             if status == 401 else 400 if status == 400 else status)
    claims = await runtime.verify_token(tokens.access)
    enrolling = bool(payload.get("mfa_enrolment_required"))
    lifetime = (runtime.settings.token_ttl_seconds if enrolling
                else runtime.settings.session_max_seconds)
    from datetime import timedelta

    secret = await browsers.open_browser(runtime, subject=claims.subject, tokens=tokens,
                                         language=language, lifetime=timedelta(seconds=lifetime))
    response = redirect("/enrol" if enrolling else "/")
    core.set_session_cookie(response, request, secret, max_age=lifetime)
    response.delete_cookie(core.PRE_COOKIE, path="/", secure=True, httponly=True,
                           samesite="strict")
    if who == "her":
        # Her language is the one of her profile.
        visit = await core.visit(_with_cookie(request, secret))
        if visit is not None:
            me = await visit.query("{ me { peacebuilder { preferredLanguage } } }")
            lang = ((((me.data or {}).get("me") or {}).get("peacebuilder") or {})
                    .get("preferredLanguage") or "")
            if str(lang).lower() in i18n.LANGUAGES:
                await browsers.update_browser(runtime, visit.browser, language=str(lang).lower())
    return response


def _with_cookie(request: Request, secret: str) -> Request:
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"cookie"]
    headers.append((b"cookie", f"{core.COOKIE}={secret}".encode()))
    return Request({**request.scope, "headers": headers}, request.receive)


def form_token(request: Request) -> tuple[str, bool]:
    return core.form_token(request)


def _sign_in_page(request: Request, language: str, token: str, *, error: str | None,
                  status: int = 200) -> Response:
    from schema.web import oidc as provider

    runtime = request.app.state.runtime
    return render(request, "signin.html", language=language, viewer=None, status=status,
                  csrf=token, error=error, oidc=runtime.settings.issuer == "oidc",
                  oidc_button=provider.enabled(runtime))


async def enrol(visit: Visit) -> Response:
    """Second-factor enrolment for staff whose role needs one: the one-time enrolment code
    (issued under the two-person rule), then a code from the authenticator app."""
    form = form_of(visit)
    step, secret, uri, errors = "code", None, None, []
    if visit.request.method == "POST" and form.get("step") == "start":
        answer = await visit.query(
            "mutation($c: String) { startTotpEnrolment(input: {enrolmentCode: $c}) "
            "{ secret otpauthUri userErrors { message code } } }",
            {"c": str(form.get("enrolment_code", "")).strip() or None})
        result = (answer.data or {}).get("startTotpEnrolment") or {}
        errors = result.get("userErrors") or answer.errors
        if result.get("secret"):
            step, secret, uri = "confirm", result["secret"], result.get("otpauthUri")
    elif visit.request.method == "POST" and form.get("step") == "confirm":
        answer = await visit.query(
            "mutation($c: String!) { confirmTotpEnrolment(input: {code: $c}) "
            "{ enrolled userErrors { message code } } }", {"c": str(form.get("code", ""))})
        result = (answer.data or {}).get("confirmTotpEnrolment") or {}
        if result.get("enrolled"):
            await browsers.close_browser(visit.runtime, visit.browser.id)
            response = render(visit.request, "enrol.html", language=visit.language, visit=None,
                              viewer=None, step="done", secret=None, uri=None, errors=[])
            core.clear_session_cookie(response, visit.request)
            return response
        step, secret = "confirm", str(form.get("secret", ""))
        errors = result.get("userErrors") or answer.errors
    return render(visit.request, "enrol.html", language=visit.language, visit=visit,
                  viewer=None, step=step, secret=secret, uri=uri, errors=errors)


async def sign_out(visit: Visit) -> Response:
    """The API's signOut (this session, or every one of hers), then the browser session goes."""
    everywhere = form_of(visit).get("everywhere") == "1"
    try:
        await visit.query("mutation($e: Boolean!) { signOut(input: {everywhere: $e}) "
                          "{ sessionsEnded } }", {"e": everywhere})
    except core.SignedOut:
        pass
    await browsers.close_browser(visit.runtime, visit.browser.id)
    response = redirect("/signin")
    core.clear_session_cookie(response, visit.request)
    return response


async def choose_purpose(visit: Visit) -> Response:
    """Staff declare why they work now; kept for this browser session, shown on every page,
    sent with every request like the API's `Safety-Net-Purpose` header."""
    form = form_of(visit)
    if visit.request.method == "GET":
        return render(visit.request, "purpose.html", language=visit.language, visit=visit,
                      viewer=None, next=core.safe_next(visit.request.query_params.get("next")),
                      needed=False)
    chosen = str(form.get("purpose", ""))
    if chosen not in PURPOSES or visit.is_her:
        return render(visit.request, "purpose.html", language=visit.language, visit=visit,
                      viewer=None, next=core.safe_next(str(form.get("next", ""))), needed=True,
                      status=400)
    await browsers.update_browser(visit.runtime, visit.browser, purpose=chosen)
    return redirect(core.safe_next(str(form.get("next", "")), "/"))


async def choose_language(request: Request) -> Response:
    """Before sign-in the choice is remembered by nothing (the browser's language decides);
    signed in, it is kept with the session."""
    visit = await core.visit(request)
    form = dict(await request.form())
    chosen = str(form.get("language", ""))
    back = core.safe_next(str(form.get("next", "")), "/")
    if visit is None:
        return redirect("/signin")
    if not visit.check_csrf(form):
        return forbidden(request, visit)
    if chosen in i18n.LANGUAGES:
        await browsers.update_browser(visit.runtime, visit.browser, language=chosen)
    return redirect(back)
