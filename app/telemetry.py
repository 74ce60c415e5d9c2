"""OpenTelemetry traces: what a request did and where its time went, never what it read.

Off by default (`SAFETY_NET_OTEL_EXPORTER=none`): no provider, no listeners, no extension, so
nothing is paid. When on, spans are made for each HTTP request, each GraphQL operation
(schema/http.py), resolvers slower than `SAFETY_NET_TRACE_SLOW_FIELD_MS` (schema/tracing.py) and
each SQL statement run inside a request. Attributes are names, types, codes, request IDs and the
organisation's slug: never variables, arguments, results, SQL parameters or exception messages
(which can quote values). SQL statement text is recorded as compiled, with its placeholders.

The exporter is chosen by `SAFETY_NET_OTEL_EXPORTER`: `console` (stdout), `otlp` (OTLP over HTTP;
`OTEL_EXPORTER_OTLP_ENDPOINT` and the other standard `OTEL_*` variables apply), `memory` (kept
in `Telemetry.exporter`, for tests). Any other exporter plugs in with
`runtime.telemetry = Telemetry.with_exporter(exporter)` before `create_app(runtime)`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from app.config import Settings
    from app.db import Database

log = logging.getLogger("safety_net.telemetry")

SERVICE_NAME = "safety-net"
MAX_STATEMENT = 2000


class Telemetry:
    """The tracer of one app. `tracer is None` means tracing is off."""

    def __init__(self, provider: TracerProvider | None = None, exporter: Any = None,
                 slow_field_ms: float = 100.0) -> None:
        self.provider, self.exporter = provider, exporter
        self.tracer: trace.Tracer | None = (
            provider.get_tracer("safety_net") if provider is not None else None)
        self.slow_field_ns = int(slow_field_ms * 1_000_000)
        self._listeners: list[tuple[Any, str, Any]] = []

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> Telemetry:
        kind = settings.otel_exporter
        if kind == "none":
            return cls(slow_field_ms=settings.trace_slow_field_ms)
        if kind == "memory":
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

            return cls.with_exporter(InMemorySpanExporter(), settings.trace_slow_field_ms,
                                     batch=False)
        if kind == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            return cls.with_exporter(ConsoleSpanExporter(), settings.trace_slow_field_ms)
        if kind == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError as exc:
                raise RuntimeError("SAFETY_NET_OTEL_EXPORTER=otlp needs the 'otlp' extra "
                                   "(opentelemetry-exporter-otlp-proto-http)") from exc
            return cls.with_exporter(OTLPSpanExporter(), settings.trace_slow_field_ms)
        raise ValueError(f"unknown span exporter {kind!r}")

    @classmethod
    def with_exporter(cls, exporter: SpanExporter, slow_field_ms: float = 100.0, *,
                      batch: bool = True) -> Telemetry:
        """A tracer exporting to `exporter`: in batches from a background thread, or (tests)
        synchronously as each span ends."""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and OTEL_TRACES_SAMPLER apply as usual.
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch
                                    else SimpleSpanProcessor(exporter))
        return cls(provider, exporter, slow_field_ms)

    def instrument(self, db: Database) -> None:
        """SQL spans for statements run while a request's span is current (the log chainer's and
        the scheduler's own statements would be a root span a second)."""
        if self.tracer is None or self._listeners:
            return
        from sqlalchemy import event

        spans = _SqlSpans(self.tracer, db.dialect)
        # Sign-in and admission run on the background role's engine: their statements too.
        for engine in dict.fromkeys((db.engine.sync_engine, db.system.engine.sync_engine)):
            for name, fn in (("before_cursor_execute", spans.before),
                             ("after_cursor_execute", spans.after), ("handle_error", spans.error)):
                event.listen(engine, name, fn)
                self._listeners.append((engine, name, fn))

    def shutdown(self) -> None:
        from sqlalchemy import event

        for engine, name, fn in self._listeners:
            event.remove(engine, name, fn)
        self._listeners.clear()
        if self.provider is not None:
            self.provider.shutdown()


class _SqlSpans:
    def __init__(self, tracer: trace.Tracer, system: str) -> None:
        self.tracer, self.system = tracer, system

    def before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if context is None or not trace.get_current_span().is_recording():
            return
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        # Parameters are never recorded: they are her data. The text has placeholders only.
        context._safety_net_span = self.tracer.start_span(
            verb[:16], kind=SpanKind.CLIENT, attributes={
                "db.system.name": self.system, "db.operation.name": verb[:16],
                "db.query.text": statement[:MAX_STATEMENT]})

    def after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        span = getattr(context, "_safety_net_span", None)
        if span is not None:
            context._safety_net_span = None
            span.end()

    def error(self, exception_context: Any) -> None:
        context = exception_context.execution_context
        span = getattr(context, "_safety_net_span", None)
        if span is not None:
            context._safety_net_span = None
            # The type only: a database's message can quote the offending value.
            span.set_status(Status(StatusCode.ERROR,
                                   type(exception_context.original_exception).__name__))
            span.end()


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, if one is being recorded."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
