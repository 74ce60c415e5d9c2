"""Queries for peacebuilders."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.read import peacebuilders as read
from schema import ids, permissions
from schema.common import AFTER_DESCRIPTION, FIRST_DESCRIPTION, Connection, connection, page_request
from schema.context import Info
from schema.gated import want_of
from schema.peacebuilders.types import Peacebuilder, ProfileFieldFilter


@strawberry.type
class PeacebuilderQueries:
    @permissions.query(
        "One peacebuilder your organisation may reach (null and NOT_FOUND otherwise).",
        requires=[("peacebuilder", "read")], purpose=True,
        args={
            "id": "Her global ID.",
        })
    async def peacebuilder(self, info: Info, id: strawberry.ID) -> Peacebuilder | None:
        view = await info.context.loaders.call(read.one, info.context.access,
                                               ids.decode(id, "Peacebuilder"), want_of(info))
        return Peacebuilder.from_view(view)

    @permissions.query(
        "Peacebuilders your organisation may reach, by pseudonym.",
        requires=[("peacebuilder", "read")], purpose=True)
    async def peacebuilders(
        self,
        info: Info,
        network_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only members of this network.")
        ] = None,
        profile_field_equals: Annotated[ProfileFieldFilter | None, strawberry.argument(
            description="Only those whose profile field equals a value — matched only among "
                        "records whose field category her consent releases to you.")] = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[Peacebuilder]:
        network = ids.decode(network_id, "Organisation", "networkId") if network_id else None
        field = ((profile_field_equals.field.value, profile_field_equals.value)
                 if profile_field_equals else None)
        page = await info.context.loaders.call(read.page, info.context.access,
                                               page_request(first, after),
                                               want_of(info, "edges", "node"), network_id=network,
                                               field_equals=field)
        return connection(page, Peacebuilder.from_view)
