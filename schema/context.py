"""Per-request GraphQL context: the access context and the request's dataloaders."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strawberry.types import Info as StrawberryInfo

from app.access.context import AccessContext

if TYPE_CHECKING:
    from schema.loaders import Loaders


@dataclass
class Context:
    access: AccessContext
    loaders: Loaders
    request_id: str
    # A mutation that returned user errors must leave nothing behind: the edge rolls back.
    rollback_only: bool = False
    extensions: dict[str, Any] = field(default_factory=dict)
    # Fields withheld from this response: [{path, reason}], sent as extensions.redacted.
    redactions: list[dict[str, Any]] = field(default_factory=list)
    # The document the edge parsed and checked against the limits (schema.limits.QueryLimits).
    document: Any = None
    # Set once the response passed the response-size limit (schema/bounded.py): the edge
    # answers QUERY_LIMIT_EXCEEDED instead of the partial result.
    too_large: Exception | None = None
    # Sibling fields graphql-core left running after one failed (schema/bounded.py): the edge
    # waits for them before it touches the request's session again.
    background: set[asyncio.Future[Any]] = field(default_factory=set)

    async def settle(self) -> None:
        """Wait for every field still running on this request's session."""
        while self.background:
            pending = list(self.background)
            self.background.clear()
            await asyncio.gather(*pending, return_exceptions=True)

    def stop(self, reason: Exception) -> None:
        """The response is over its limit: no more database work for this request."""
        self.too_large = reason
        self.loaders.stop(reason)


Info = StrawberryInfo[Context, None]
