"""The HTTP side of observability: a span and metrics per request, and GET /metrics.

See app/telemetry.py (traces), app/metrics.py (metrics) and docs/decisions/0010.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.edge import bearer_token
from app.runtime import Runtime

# Probes and scrapes: counted in the metrics, but no spans (one every few seconds per pod).
UNTRACED = frozenset({"/metrics", "/healthz", "/readyz"})
# Headers a reverse proxy or ingress adds: a request carrying one did not come straight to the pod.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def route_template(scope: Scope, routes: list[BaseRoute]) -> str:
    """The matched route's template (`/attachments/{attachment_id}`), never the path itself:
    paths carry IDs. Requests refused before routing (413) are matched here; the rest are
    "unmatched"."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if r.matches(scope)[0] is not Match.NONE), None)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObservabilityMiddleware:
    """Outermost: the request's server span (when tracing is on), current while the inner
    middleware logs the request line, so that line carries the trace ID; and the request's
    count and latency by route template, method and status."""

    def __init__(self, app: ASGIApp, runtime: Runtime, routes: list[BaseRoute]) -> None:
        self.app, self.runtime, self.routes = app, runtime, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracer = self.runtime.telemetry.tracer
        if tracer is None or scope["path"] in UNTRACED:
            await self._observe(scope, receive, send, None)
            return
        # Named once the route is known; exceptions by type only (messages can quote values).
        with tracer.start_as_current_span(
                scope["method"], kind=SpanKind.SERVER, record_exception=False,
                set_status_on_exception=False) as span:
            await self._observe(scope, receive, send, span)

    async def _observe(self, scope: Scope, receive: Receive, send: Send, span: Any) -> None:
        started = time.perf_counter()
        status, request_id = 500, ""

        async def observing_send(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", []):
                    if key.lower() == b"x-request-id":
                        request_id = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        except BaseException as exc:
            if span is not None:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope, self.routes)
            if span is not None:
                span.update_name(f"{scope['method']} {route}")
                span.set_attributes({"http.request.method": scope["method"], "http.route": route,
                                     "http.response.status_code": status,
                                     "safety_net.request_id": request_id})
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            metrics = self.runtime.metrics
            if metrics is not None:
                metrics.observe_request(route, scope["method"], status, elapsed)


def _error(message: str, code: str, status: int, **headers: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]},
                        status_code=status, headers=headers or None)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format. With SAFETY_NET_METRICS_TOKEN set, only with that bearer token;
    without one, only to callers reaching the pod directly (a scraper, as the NetworkPolicy
    admits), never through a proxy or ingress (docs/decisions/0010-observability.md)."""
    runtime: Runtime = request.app.state.runtime
    metrics = runtime.metrics
    expected = runtime.settings.metrics_token
    if metrics is None:
        return _error("Not found.", "NOT_FOUND", 404)
    if expected:
        given = bearer_token(request.headers.get("authorization")) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _error("Authentication required.", "UNAUTHENTICATED", 401,
                          **{"WWW-Authenticate": 'Bearer realm="safety-net-metrics"'})
    elif any(h in request.headers for h in PROXY_HEADERS):
        return _error("Not found.", "NOT_FOUND", 404)
    await metrics.refresh(runtime.db, runtime.clock.now(), runtime.settings.checkpoints)
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
