"""Queries: your organisation's registered operations and whether only those are accepted."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.operations import service as operations
from schema import permissions
from schema.common import AFTER_DESCRIPTION, FIRST_DESCRIPTION, Connection, connection, page_request
from schema.context import Info
from schema.security.types import RegisteredOperation


@strawberry.type(description="What your organisation accepts. Requires `operation:manage`.")
class OperationPolicy:
    only_registered_operations: bool = strawberry.field(
        description="Only registered operations are accepted from your organisation.")

    @strawberry.field(description="Registered operations, oldest first.")
    async def operations(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[RegisteredOperation]:
        page = await info.context.loaders.call(operations.list_operations, info.context.access,
                                               page_request(first, after))
        return connection(page, RegisteredOperation.from_model)


@strawberry.type
class SecurityQueries:
    @permissions.query(
        "Your organisation's registered operations and whether only those are accepted.",
        requires=[("operation", "manage")])
    async def operation_policy(self, info: Info) -> OperationPolicy:
        only = await info.context.loaders.call(operations.only_registered, info.context.access)
        return OperationPolicy(only_registered_operations=only)
