"""Queries for cases."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.cases import service as cases
from app.cases.repository import CaseFilter as CaseFilterSpec
from schema import ids
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
    @strawberry.field(description="One case your organisation may reach (null and NOT_FOUND "
                                  "otherwise — the same for a foreign and a random ID). "
                                  "Requires `case:read`.")
    async def case(self, info: Info, id: strawberry.ID) -> Case | None:
        case = await info.context.loaders.call(cases.get, info.context.access, ids.decode(id, "Case"))
        return Case.from_model(case)

    @strawberry.field(description="Cases your organisation may reach. Requires `case:read`.")
    async def cases(
        self,
        info: Info,
        filter: CaseFilter | None = None,
        order_by: CaseOrder = CaseOrder.OPENED_AT_DESC,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[Case]:
        spec = _filter_spec(filter)
        page, total = await info.context.loaders.call(
            cases.list_, info.context.access,
            page_request(first, after, descending=order_by == CaseOrder.OPENED_AT_DESC), spec,
            count=selects(info, "totalCount"))
        return connection(page, Case.from_model, total)
