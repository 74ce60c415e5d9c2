"""The dashboard's routes (served by the same Starlette app as the API)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from schema.web import audit, case, directory, her, live, monitoring, oidc, pages, queue
from schema.web.pages import page

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".woff2": "font/woff2",
                ".svg": "image/svg+xml"}


async def static(request: Request) -> Response:
    """Vendored and own assets: no personal data, so they may be cached."""
    name = request.path_params["name"]
    path = (STATIC / name).resolve()
    if STATIC.resolve() not in path.parents or not path.is_file() or path.suffix not in STATIC_TYPES:
        return PlainTextResponse("Not found.", status_code=404)
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})


def routes() -> list[Route]:
    return [
        Route("/", pages.home, methods=["GET"]),
        Route("/signin", pages.sign_in, methods=["GET", "POST"]),
        Route("/signin/oidc", oidc.start, methods=["GET"]),
        Route(oidc.CALLBACK, oidc.callback, methods=["GET"]),
        Route("/signout", page(pages.sign_out), methods=["POST"]),
        Route("/enrol", page(pages.enrol, staff_only=True), methods=["GET", "POST"]),
        Route("/purpose", page(pages.choose_purpose, staff_only=True), methods=["GET", "POST"]),
        Route("/language", pages.choose_language, methods=["POST"]),
        Route("/queue", page(queue.queue, staff_only=True, purpose=True), methods=["GET"]),
        Route("/queue/acknowledge", page(queue.acknowledge, staff_only=True, purpose=True),
              methods=["POST"]),
        Route("/queue/fragment", queue.fragment, methods=["GET"]),
        Route("/queue/live", live.live, methods=["GET"]),
        Route("/directory", page(directory.directory, staff_only=True), methods=["GET"]),
        Route("/me", page(her.me, her_only=True), methods=["GET"]),
        Route("/cases", page(case.cases, staff_only=True, purpose=True), methods=["GET"]),
        Route("/cases/{id}", page(case.case_page, staff_only=True, purpose=True), methods=["GET"]),
        Route("/groups", page(case.groups, staff_only=True, purpose=True), methods=["GET"]),
        Route("/groups/{id}", page(case.group_page, staff_only=True, purpose=True),
              methods=["GET"]),
        Route("/me/consent", page(her.consent, her_only=True), methods=["GET"]),
        Route("/me/consent/revoke", page(her.revoke, her_only=True), methods=["POST"]),
        Route("/me/consent/confirm", page(her.confirm, her_only=True), methods=["POST"]),
        Route("/me/approvals/withdraw", page(her.withdraw, her_only=True), methods=["POST"]),
        Route("/me/approvals/record", page(her.record_approval, her_only=True), methods=["POST"]),
        Route("/me/safety", page(her.safety, her_only=True), methods=["GET"]),
        Route("/me/safety/answer", page(her.answer_risk, her_only=True), methods=["POST"]),
        Route("/me/check-in", page(her.check_in, her_only=True), methods=["POST"]),
        Route("/me/history", page(her.history, her_only=True), methods=["GET"]),
        Route("/exit", her.quick_exit, methods=["GET", "POST"]),
        Route(her.NEUTRAL_PATH, her.neutral, methods=["GET"]),
        Route("/audit", page(audit.audit_log, staff_only=True), methods=["GET"]),
        Route("/audit/download", page(audit.download, staff_only=True), methods=["POST"]),
        Route("/monitoring", page(monitoring.monitoring, staff_only=True),
              methods=["GET", "POST"]),
        Route("/monitoring/download", page(monitoring.report, staff_only=True), methods=["GET"]),
        Route("/static/web/{name:path}", static, methods=["GET"]),
    ]
