"""The response-size limit, enforced while the response is produced.

Every leaf value graphql-core completes is counted at its JSON size (escaped as the response
will escape it, plus a few bytes for its key); once the total passes the limit, execution stops
completing values, the request's loaders refuse further database work, and the HTTP edge
answers one request error `QUERY_LIMIT_EXCEEDED` (`limit: responseSize`) with no data. So a
response is never built larger than the limit plus one value (docs/decisions/0018).
"""

from __future__ import annotations

import asyncio
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

import graphql.execution.executor as _executor
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.errors import ResponseTooLarge


async def _gather_settled(*awaitables: Any) -> list[Any]:
    """graphql-core's `gather_with_cancel`, minus the cancelling: when one sibling field fails,
    the others run to their end before the error goes on. They share the request's database
    session, and a query cancelled mid-flight leaves that connection unusable (the request then
    answered 503 instead of its field error). Timeouts still cancel everything."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


_executor.gather_with_cancel = _gather_settled  # type: ignore[attr-defined]

# Key, quotes, colon and comma around a value: an estimate per leaf.
LEAF_OVERHEAD = 16


def json_size(value: Any) -> int:
    """Bytes of `value` in the JSON response (UTF-8, control characters escaped)."""
    if isinstance(value, str):
        escaped: str = encode_basestring(value)
        return len(escaped) if escaped.isascii() else len(escaped.encode())
    return 8


def bounded_execution(max_bytes: int) -> type[StrawberryGraphQLCoreExecutionContext]:
    """An execution context class that stops once the response passes `max_bytes`."""

    complete_leaf = StrawberryGraphQLCoreExecutionContext.complete_leaf_value  # a staticmethod

    class BoundedExecutionContext(StrawberryGraphQLCoreExecutionContext):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.response_bytes = 0
            self.too_large: ResponseTooLarge | None = None

        # Checked where values are produced (leaves) and where execution descends (objects),
        # not at every value graphql-core completes: a page completes thousands of values, and
        # a Python override on each of them cost more than the rest of this limit.
        def settle_in_background(self, awaitables: list[Any]) -> None:
            # graphql-core lets siblings of a failed field finish on their own; they use the
            # request's one database session, so the edge must wait for them (Context.settle)
            # before it rolls back or commits, or it closes the session under them.
            super().settle_in_background(awaitables)
            background = getattr(self.context_value, "background", None)
            if background is not None:
                background.update(self.background_futures)

        def complete_object_value(self, *args: Any) -> Any:
            if self.too_large is not None:
                raise self.too_large
            return super().complete_object_value(*args)

        def complete_leaf_value(self, return_type: Any, result: Any) -> Any:  # type: ignore[override]
            if self.too_large is not None:
                raise self.too_large
            # graphql-core's complete_leaf_value, inlined (one call less per leaf); on the
            # error path it runs itself, to raise its own error.
            coerced = return_type.coerce_output_value(result)
            if coerced is None or coerced is Undefined:
                coerced = complete_leaf(return_type, result)
            # json_size(), inlined: this runs for every leaf of every response.
            if isinstance(coerced, str):
                escaped: str = encode_basestring(coerced)
                self.response_bytes += LEAF_OVERHEAD + (
                    len(escaped) if escaped.isascii() else len(escaped.encode()))
            else:
                self.response_bytes += LEAF_OVERHEAD + 8
            if self.response_bytes > max_bytes:
                self.too_large = ResponseTooLarge(max_bytes)
                stop = getattr(self.context_value, "stop", None)
                if stop is not None:
                    stop(self.too_large)
                raise self.too_large
            return coerced

    return BoundedExecutionContext
