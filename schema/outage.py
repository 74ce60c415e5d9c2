"""A dependency outage answers 503, not a crash: one ASGI middleware for every route.

Placed inside the request-context middleware, so the answer carries the request ID and the
security headers, and complete (no exception reaches the server), so the connection stays open.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import request_id_var
from app.outage import outage

log = logging.getLogger("safety_net.http")

MESSAGE = "The service is temporarily unavailable; try again shortly."
# OAuth endpoints answer RFC 6749's error object; everything else our `errors` list.
OAUTH_PATHS = frozenset({"/oauth/token", "/auth/login", "/auth/redeem-code"})
# WebSocket close code "Try Again Later" (RFC 6455 registry).
WS_TRY_AGAIN = 1013


class ServiceUnavailable(Exception):
    """Raised by code that found a dependency down inside a result it would otherwise return
    (e.g. a GraphQL error list): the middleware answers 503."""

    def __init__(self, dependency: str) -> None:
        super().__init__(dependency)
        self.dependency = dependency


def body(path: str, request_id: str) -> dict[str, Any]:
    if path in OAUTH_PATHS:
        return {"error": "temporarily_unavailable", "error_description": MESSAGE,
                "code": "SERVICE_UNAVAILABLE", "requestId": request_id}
    return {"errors": [{"message": MESSAGE, "extensions": {
        "code": "SERVICE_UNAVAILABLE", "requestId": request_id}}]}


class OutageMiddleware:
    def __init__(self, app: ASGIApp, retry_after: int = 5) -> None:
        self.app, self.retry_after = app, retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = closed = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, closed
            started = started or message["type"] in ("http.response.start", "websocket.accept")
            closed = closed or message["type"] in ("websocket.close",
                                                   "websocket.http.response.start")
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            dependency = exc.dependency if isinstance(exc, ServiceUnavailable) else outage(exc)
            if dependency is None:
                raise
            # Type only: an exception's text can quote a statement's parameters.
            log.warning("dependency unavailable", extra={
                "dependency": dependency, "error": type(exc).__name__, "path": scope["path"]})
            if scope["type"] == "websocket":
                if not closed:
                    await send({"type": "websocket.close", "code": WS_TRY_AGAIN,
                                "reason": "service unavailable"})
                return
            if started:
                raise  # a streamed body cut short: the client must see it incomplete
            response = JSONResponse(body(scope["path"], request_id_var.get()), status_code=503,
                                    headers={"Retry-After": str(self.retry_after)})
            await response(scope, receive, send)
