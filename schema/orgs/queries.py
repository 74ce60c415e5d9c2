"""Queries: the caller, organisations, people, clients, working groups."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.orgs import service as orgs
from app.tables import orgs as models
from schema import ids, permissions
from schema.common import AFTER_DESCRIPTION, FIRST_DESCRIPTION, Connection, connection, page_request
from schema.context import Info
from schema.orgs.types import Client, Organisation, OrgKind, User, Viewer, WorkingGroup


@strawberry.type
class OrgQueries:
    @permissions.query(
        "Who is calling: kind, roles and organisation.")
    def viewer(self, info: Info) -> Viewer:
        p = info.context.access.principal
        # Her own login holds no organisation role (`kind` says who she is): only the roles of
        # an organisation are listed.
        known = {r.value for r in models.Role}
        return Viewer(kind=p.kind.value, name=p.name,
                      roles=[models.Role(r) for r in sorted(p.roles) if r in known],
                      _org_id=p.org_id)

    @permissions.query(
        "One organisation by ID (null and NOT_FOUND when there is none).",
        requires=[("organisation", "read")],
        args={
            "id": "The organisation's global ID.",
        })
    async def organisation(self, info: Info, id: strawberry.ID) -> Organisation | None:
        access = info.context.access
        org = await info.context.loaders.call(orgs.get_org, access, ids.decode(id, "Organisation"))
        return Organisation.from_model(org)

    @permissions.query(
        "The directory of organisations, by slug.",
        requires=[("organisation", "read")],
        args={
            "kind": "Only organisations of this kind (all when omitted).",
        })
    async def organisations(
        self,
        info: Info,
        kind: OrgKind | None = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[Organisation]:
        page = await info.context.loaders.call(
            orgs.list_orgs, info.context.access, page_request(first, after),
            kind.value if kind else None)
        return connection(page, Organisation.from_model)

    @permissions.query(
        "People of your own organisation.",
        requires=[("user", "read")])
    async def users(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[User]:
        page = await info.context.loaders.call(orgs.list_users, info.context.access,
                                               page_request(first, after))
        return connection(page, User.from_model)

    @permissions.query(
        "Machine clients of your own organisation.",
        requires=[("client", "manage")])
    async def clients(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[Client]:
        page = await info.context.loaders.call(orgs.list_clients, info.context.access,
                                               page_request(first, after))
        return connection(page, Client.from_model)

    @permissions.query(
        "One working group your organisation convenes or belongs to (null and NOT_FOUND "
        "otherwise).",
        requires=[("working_group", "read")],
        args={
            "id": "The working group's global ID.",
        })
    async def working_group(self, info: Info, id: strawberry.ID) -> WorkingGroup | None:
        wg = await info.context.loaders.call(orgs.get_working_group, info.context.access,
                                             ids.decode(id, "WorkingGroup"))
        return WorkingGroup.from_model(wg)

    @permissions.query(
        "Working groups your organisation convenes or belongs to.",
        requires=[("working_group", "read")])
    async def working_groups(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[WorkingGroup]:
        page = await info.context.loaders.call(orgs.list_working_groups, info.context.access,
                                               page_request(first, after))
        return connection(page, WorkingGroup.from_model)
