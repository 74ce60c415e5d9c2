"""The ASGI application: routes, middleware and start-up. `create_app` is uvicorn's factory."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs, tenancy
from app.audit.http import export_endpoint
from app.audit.worker import LogWorker
from app.auth.http import (
    jwks_endpoint,
    login_endpoint,
    logout_endpoint,
    token_endpoint,
)
from app.config import Settings
from app.incidents import attachments
from app.incidents.http import MULTIPART_OVERHEAD, download_endpoint, upload_endpoint
from app.metrics import Metrics
from app.monitoring.http import report_endpoint as monitoring_report_endpoint
from app.notify.outbox import worker as outbox_worker
from app.peacebuilders.http import redeem_code_endpoint
from app.ratelimit import limiter
from app.read.copy import data_copy_endpoint
from app.runtime import Runtime
from app.scheduler import Scheduler
from app.storage import migration_status, schema_is_usable
from app.telemetry import Telemetry
from schema.http import GraphQLEndpoint
from schema.limits import Limits
from schema.observability import ObservabilityMiddleware, metrics_endpoint
from schema.outage import OutageMiddleware
from schema.published import openapi_endpoint, sdl_endpoint, static_endpoint
from schema.schema import build_schema
from schema.subscriptions import SocketApp
from schema.web.routes import routes as web_routes

log = logging.getLogger("safety_net.http")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    # An API answers JSON: nothing in a response may load, run or be framed.
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), geolocation=(), microphone=()"),
]
# Production is served over TLS only (behind the ingress): browsers must never downgrade.
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over the path's limit with 413, on every route, before they are
    read whole (a declared Content-Length is refused at once; a streamed body when it passes)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(limit, scope, receive, send)
            return
        received, started = 0, False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(limit, scope, receive, send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"errors": [{
            "message": f"Request body larger than {limit} bytes.",
            "extensions": {"code": "REQUEST_TOO_LARGE"}}]}, status_code=413,
            headers={"Connection": "close"})
        await response(scope, receive, send)


class RequestContextMiddleware:
    """Request ID out, security headers and one structured log line per request.

    The request ID is always ours (`logs.new_request_id`): it is what the access log, the log
    lines and the `X-Request-ID` response header carry. A client's own `X-Request-ID` is kept
    beside it only if it is a plain token (`logs.client_request_id`): in the log line as
    `client_request_id` and echoed as `X-Client-Request-ID`, never as the request ID."""

    def __init__(self, app: ASGIApp, production: bool = False) -> None:
        self.app = app
        self.headers = [*SECURITY_HEADERS, HSTS] if production else SECURITY_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        # Nothing inherited: each request (or WebSocket connection) decides its own tenancy.
        nobody = tenancy.current.set(tenancy.NOBODY)
        try:
            await self._call(scope, receive, send)
        finally:
            tenancy.current.reset(nobody)

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = logs.new_request_id()
        client_id = logs.client_request_id(scope["headers"])
        ids = [(b"x-request-id", request_id.encode())]
        if client_id is not None:
            ids.append((b"x-client-request-id", client_id.encode()))
        token = logs.request_id_var.set(request_id)
        client_token = logs.client_request_id_var.set(client_id)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers = [h for h in headers if h[0].lower() not in {k for k, _ in ids}]
                headers.extend(ids)
                headers.extend(h for h in self.headers if h[0] not in present)
                message["headers"] = headers
            elif message["type"] == "websocket.accept":
                status = 101
                message["headers"] = [*message.get("headers", []), *ids]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            duration = round((time.perf_counter() - started) * 1000, 2)
            if scope["type"] == "http":
                log.info("request", extra={"method": scope["method"], "path": scope["path"],
                                           "status": status, "duration_ms": duration})
            else:
                log.info("websocket", extra={"path": scope["path"], "status": status,
                                             "duration_ms": duration})
            logs.client_request_id_var.reset(client_token)
            logs.request_id_var.reset(token)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    ready, reason = await runtime.check_ready()
    return JSONResponse({"status": "ok" if ready else "unavailable", "reason": reason},
                        status_code=200 if ready else 503)


def body_limit(settings: Settings, path: str) -> int:
    """Attachments have their own, larger limit (app.incidents.attachments); the rest one."""
    if path.startswith("/incidents/") and path.endswith("/attachments"):
        return attachments.MAX_BYTES + MULTIPART_OVERHEAD
    return settings.max_body_bytes


def freeze_heap() -> None:
    """For a serving process, once started: the objects made at startup (modules, the schema,
    table metadata, compiled statements: most of the heap) move to a generation the cyclic
    collector no longer traverses, and young collections run less often. A page request
    allocates tens of thousands of short-lived containers; with the defaults the collector ran
    five times per page and, now and then, walked the whole heap (~15 % of a page's CPU time
    in bench/cpu.py). Reference counting still frees everything acyclic at once."""
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 10_000), max(gen1, 20), max(gen2, 20))


def create_app(runtime: Runtime | None = None) -> Starlette:
    """Build the app; tests pass their own Runtime, uvicorn calls it with none."""
    settings = runtime.settings if runtime else Settings.from_env()
    if runtime is None:
        logs.configure(settings.log_level)
    rt = runtime or Runtime.create(settings)
    rt.metrics = Metrics() if settings.metrics else None
    if rt.metrics is not None:
        rt.metrics.attach(rt.db.engine)
        rt.metrics.attach(rt.db.system.engine)  # sign-in refusals are written there
    # Tracing from the settings unless the caller installed its own (Telemetry.with_exporter).
    own_telemetry = not rt.telemetry.enabled and settings.otel_exporter != "none"
    if own_telemetry:
        rt.telemetry = Telemetry.from_settings(settings)
    rt.telemetry.instrument(rt.db)
    schema = build_schema(production=settings.production, limits=Limits.from_settings(settings),
                          telemetry=rt.telemetry)
    graphql = GraphQLEndpoint(rt, schema, graphiql=not settings.production)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        current, head = await migration_status(rt.db)
        if not schema_is_usable(current, head):
            raise RuntimeError("database not migrated: run `safety-net migrate`")
        worker = LogWorker(settings, rt.db, rt.clock)
        rt.extras["log_worker"] = worker
        scheduler = Scheduler(rt.db, rt.clock, rt.after_commit)
        rt.extras["scheduler"] = scheduler
        await rt.broker.start()
        if rt.metrics is not None:
            rt.broker.breaker.metrics = rt.metrics
        outbox = outbox_worker(rt)
        if settings.outbox_worker:
            outbox.start()
        if settings.log_worker:
            worker.start()
        if settings.scheduler:
            scheduler.start(settings.scheduler_interval)
            if rt.webhooks is not None:  # retries of webhook deliveries, in every replica
                rt.webhooks.start(rt, settings.scheduler_interval)
        if settings.gc_freeze:
            freeze_heap()
        try:
            yield
        finally:
            await scheduler.stop()
            await outbox.stop()
            if rt.webhooks is not None:
                await rt.webhooks.stop()
            await rt.broker.stop()
            if settings.log_worker:
                await worker.stop()
            await limiter(rt).close()
            if own_telemetry:
                rt.telemetry.shutdown()  # exports what is left
            if runtime is None:
                await rt.close()

    app = Starlette(
        routes=[
            Route("/graphql", graphql.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            WebSocketRoute("/graphql", SocketApp(rt, schema)),
            Route("/oauth/token", token_endpoint, methods=["POST"]),
            Route("/auth/login", login_endpoint, methods=["POST"]),
            Route("/auth/logout", logout_endpoint, methods=["POST"]),
            Route("/auth/redeem-code", redeem_code_endpoint, methods=["POST"]),
            Route("/oauth/revoke", logout_endpoint, methods=["POST"]),
            Route("/.well-known/jwks.json", jwks_endpoint, methods=["GET"]),
            Route("/audit/export", export_endpoint, methods=["GET"]),
            Route("/me/data-copy", data_copy_endpoint, methods=["GET"]),
            Route("/incidents/{incident_id}/attachments", upload_endpoint, methods=["POST"]),
            Route("/attachments/{attachment_id}", download_endpoint, methods=["GET"]),
            Route("/monitoring/report", monitoring_report_endpoint, methods=["GET"]),
            Route("/openapi.json", openapi_endpoint, methods=["GET"]),
            Route("/schema.graphql", sdl_endpoint, methods=["GET"]),
            *([Route("/static/graphiql/{name}", static_endpoint, methods=["GET"])]
              if not settings.production else []),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *([Route("/metrics", metrics_endpoint, methods=["GET"])] if settings.metrics else []),
            *web_routes(),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.graphql = graphql  # the dashboard runs its documents through the same endpoint
    # Outermost last: every response (refusals included) gets the request ID and headers.
    # Innermost: a database or broker outage becomes a complete 503, never a crash.
    app.add_middleware(OutageMiddleware, retry_after=settings.outage_retry_after_seconds)
    app.add_middleware(BodyLimit, limit_for=lambda path: body_limit(settings, path))
    if settings.cors_origins:
        # Bearer tokens, never cookies: no credentials mode; only the listed origins.
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"], allow_credentials=False, max_age=600,
            allow_headers=["authorization", "content-type", "accept", "safety-net-purpose",
                           "x-request-id", "idempotency-key"],
            expose_headers=["x-request-id", "x-client-request-id", "retry-after",
                            "idempotent-replayed"])
    app.add_middleware(RequestContextMiddleware, production=settings.production)
    # Outside the request context: its span is current when the request line is logged.
    app.add_middleware(ObservabilityMiddleware, runtime=rt, routes=app.routes)
    return app
