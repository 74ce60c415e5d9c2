"""Queries of the two-person rule."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.confirmations import service as confirmations
from schema import permissions
from schema.common import AFTER_DESCRIPTION, FIRST_DESCRIPTION, Connection, connection, page_request
from schema.confirmations.types import Confirmation
from schema.context import Info
from schema.permissions import Who


@strawberry.type
class ConfirmationQueries:
    @permissions.query(
        "Two-person requests of your organisation for a role you hold (or that you started), "
        "oldest first.",
        who=Who.STAFF_PEOPLE)
    async def confirmations(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
        pending_only: Annotated[bool, strawberry.argument(
            description="Only those still waiting (default).")] = True,
    ) -> Connection[Confirmation]:
        page = await info.context.loaders.call(
            confirmations.list_, info.context.access, page_request(first, after),
            only_pending=pending_only)
        return connection(page, Confirmation.from_model)
