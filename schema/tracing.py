"""Spans for slow resolvers only: a span per field would cost more than most fields do.

Installed only when tracing is on (schema.schema.build_schema). Synchronous fields (attribute
reads) pass straight through; an awaitable result is timed and, when it took longer than the
threshold, recorded afterwards as a span with its real start and end. The span is named after
the schema (`Type.field`): never aliases, arguments or values, which the client chooses.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any

from opentelemetry import trace
from strawberry.extensions import SchemaExtension

from app.telemetry import Telemetry


class SlowFieldSpans(SchemaExtension):
    def __init__(self, telemetry: Telemetry) -> None:
        assert telemetry.tracer is not None
        self.tracer: trace.Tracer = telemetry.tracer
        self.threshold_ns = telemetry.slow_field_ns

    def resolve(self, _next: Callable[..., Any], root: Any, info: Any, *args: Any,
                **kwargs: Any) -> Any:
        started = time.time_ns()
        result = _next(root, info, *args, **kwargs)
        if isawaitable(result):
            return self._timed(result, started, info)
        return result

    async def _timed(self, result: Awaitable[Any], started: int, info: Any) -> Any:
        try:
            return await result
        finally:
            ended = time.time_ns()
            if ended - started >= self.threshold_ns:
                name = f"{info.parent_type.name}.{info.field_name}"
                span = self.tracer.start_span(f"resolve {name}", start_time=started, attributes={
                    "graphql.field.name": name,
                    "graphql.field.duration_ms": round((ended - started) / 1e6, 2)})
                span.end(end_time=ended)


def slow_field_spans(telemetry: Telemetry) -> Callable[[], SlowFieldSpans]:
    """A factory: strawberry makes a fresh extension per request."""
    return lambda: SlowFieldSpans(telemetry)
