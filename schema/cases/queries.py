"""Queries for cases."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.cases.repository import CaseFilter as CaseFilterSpec
from app.read import cases as read
from schema import ids, permissions
from schema.cases.types import Case, CaseFilter, CaseOrder
from schema.common import (
    AFTER_DESCRIPTION,
    FIRST_DESCRIPTION,
    Connection,
    connection,
    page_request,
    selects,
)
from schema.context import Info
from schema.gated import want_of


def _filter_spec(f: CaseFilter | None) -> CaseFilterSpec | None:
    if f is None:
        return None
    return CaseFilterSpec(
        status=f.status.value if f.status else None,
        risk_level=f.risk_level.value if f.risk_level else None,
        lead_org_id=(ids.decode(f.lead_organisation_id, "Organisation", "filter.leadOrganisationId")
                     if f.lead_organisation_id else None),
        peacebuilder_id=(ids.decode(f.peacebuilder_id, "Peacebuilder", "filter.peacebuilderId")
                         if f.peacebuilder_id else None),
        opened_after=f.opened_after, opened_before=f.opened_before)


@strawberry.type
class CaseQueries:
    @permissions.query(
        "One case your organisation may reach (null and NOT_FOUND otherwise — the same for a "
        "foreign and a random ID).",
        requires=[("case", "read")], purpose=True,
        args={
            "id": "The case's global ID.",
        })
    async def case(self, info: Info, id: strawberry.ID) -> Case | None:
        view = await info.context.loaders.call(read.one, info.context.access,
                                               ids.decode(id, "Case"), want_of(info))
        return Case.from_view(view)

    @permissions.query(
        "Cases your organisation may reach.",
        requires=[("case", "read")], purpose=True,
        args={
            "filter": "Only cases matching all of these conditions (all cases when omitted).",
            "order_by": "Order of the list (newest opened first by default).",
        })
    async def cases(
        self,
        info: Info,
        filter: CaseFilter | None = None,
        order_by: CaseOrder = CaseOrder.OPENED_AT_DESC,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[Case]:
        spec = _filter_spec(filter)
        request = page_request(first, after, descending=order_by == CaseOrder.OPENED_AT_DESC)
        page = await info.context.loaders.call(read.page, info.context.access, request, spec,
                                               want_of(info, "edges", "node"))
        total = (await info.context.loaders.call(read.count, info.context.access, spec)
                 if selects(info, "totalCount") else None)
        return connection(page, Case.from_view, total)
