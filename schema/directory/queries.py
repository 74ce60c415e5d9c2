"""Queries: the service directory (staff of any organisation), the organisations that take
requests for help (anyone), and your organisation's requests for help (its focal points)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.directory import help as help_requests
from app.directory import service as directory
from app.tables.directory import HelpRequestStatus as Status
from schema import ids, permissions
from schema.common import AFTER_DESCRIPTION, FIRST_DESCRIPTION, Connection, connection, page_request
from schema.context import Info
from schema.directory.types import (
    HelpDesk,
    HelpRequest,
    HelpRequestStatus,
    ServiceDirectoryEntry,
    ServiceKind,
)
from schema.permissions import Who


@strawberry.type
class DirectoryQueries:
    @permissions.query(
        "What organisations offer, filtered.",
        requires=[("service_directory", "read")])
    async def service_directory(
        self,
        info: Info,
        service: Annotated[ServiceKind | None, strawberry.argument(
            description="Only entries offering this.")] = None,
        language: Annotated[str | None, strawberry.argument(
            description="Only entries working in this language (ISO 639-1).")] = None,
        region: Annotated[str | None, strawberry.argument(
            description="Only entries working in this region (case-insensitive).")] = None,
        accepts_help_requests: Annotated[bool | None, strawberry.argument(
            description="Only entries that do (true) or do not (false) accept requests for "
                        "help.")] = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[ServiceDirectoryEntry]:
        page = await info.context.loaders.call(
            directory.list_entries, info.context.access, page_request(first, after),
            service=service.value if service else None, language=language, region=region,
            accepts_help_requests=accepts_help_requests)
        return connection(page, ServiceDirectoryEntry.from_model)

    @permissions.query(
        "One organisation's directory entry (null: it declared none).",
        requires=[("service_directory", "read")])
    async def service_directory_entry(
        self, info: Info,
        organisation_id: Annotated[strawberry.ID, strawberry.argument(
            description="The organisation.")],
    ) -> ServiceDirectoryEntry | None:
        entry = await info.context.loaders.call(
            directory.get_entry, info.context.access,
            ids.decode(organisation_id, "Organisation", "organisationId"))
        return ServiceDirectoryEntry.from_model(entry) if entry else None

    @permissions.query(
        "Organisations that accept requests for help (`requestHelp`).",
        who=Who.PUBLIC)
    async def help_desks(self, info: Info) -> list[HelpDesk]:
        desks = await info.context.loaders.call(help_requests.help_desks, info.context.access)
        return [HelpDesk.from_desk(d) for d in desks]

    @permissions.query(
        "Requests for help to your organisation, newest first, with her message and contact. Each "
        "opened request is in the access log.",
        requires=[("help_request", "read")])
    async def help_requests(
        self,
        info: Info,
        status: Annotated[HelpRequestStatus | None, strawberry.argument(
            description="Only requests in this state.")] = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[HelpRequest]:
        page = await info.context.loaders.call(
            help_requests.list_for_org, info.context.access, page_request(first, after),
            Status(status.value) if status else None)
        return connection(page, HelpRequest.from_opened)
