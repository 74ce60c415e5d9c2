"""SQL for peacebuilders; every read is scoped to the organisations that may reach her."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import OrgScope
from app.cases.models import Case
from app.peacebuilders.models import Peacebuilder, PeacebuilderDatum, PeacebuilderNetwork


def _reachable(scope: OrgScope) -> Any:
    """She is reachable by the organisation that registered her, her networks and case leads."""
    ids = list(scope)
    return or_(
        Peacebuilder.registered_by_org_id.in_(ids),
        exists().where(PeacebuilderNetwork.peacebuilder_id == Peacebuilder.id,
                       PeacebuilderNetwork.org_id.in_(ids)),
        exists().where(Case.peacebuilder_id == Peacebuilder.id, Case.lead_org_id.in_(ids)),
    )


def query(scope: OrgScope) -> Select[Any]:
    return select(Peacebuilder).where(_reachable(scope))


async def by_ids(
    session: AsyncSession, scope: OrgScope, ids: list[uuid.UUID]
) -> dict[uuid.UUID, Peacebuilder]:
    rows = await session.scalars(query(scope).where(Peacebuilder.id.in_(ids)))
    return {pb.id: pb for pb in rows}


async def pseudonym_taken(session: AsyncSession, org_id: uuid.UUID, pseudonym: str) -> bool:
    found = await session.scalar(select(Peacebuilder.id).where(
        Peacebuilder.registered_by_org_id == org_id, Peacebuilder.pseudonym == pseudonym))
    return found is not None


async def networks_of(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    rows = await session.execute(
        select(PeacebuilderNetwork.peacebuilder_id, PeacebuilderNetwork.org_id)
        .where(PeacebuilderNetwork.peacebuilder_id.in_(ids)))
    out: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    for pb_id, org_id in rows:
        out[pb_id].append(org_id)
    return out


async def set_networks(session: AsyncSession, pb_id: uuid.UUID, org_ids: set[uuid.UUID]) -> None:
    current = set((await networks_of(session, [pb_id]))[pb_id])
    for org_id in org_ids - current:
        session.add(PeacebuilderNetwork(peacebuilder_id=pb_id, org_id=org_id))
    if current - org_ids:
        await session.execute(delete(PeacebuilderNetwork).where(
            PeacebuilderNetwork.peacebuilder_id == pb_id,
            PeacebuilderNetwork.org_id.in_(current - org_ids)))


async def data_of(session: AsyncSession, pb_id: uuid.UUID) -> dict[str, PeacebuilderDatum]:
    rows = await session.scalars(select(PeacebuilderDatum).where(
        PeacebuilderDatum.peacebuilder_id == pb_id))
    return {d.field: d for d in rows}


def in_network(query: Select[Any], org_id: uuid.UUID) -> Select[Any]:
    return query.where(exists().where(PeacebuilderNetwork.peacebuilder_id == Peacebuilder.id,
                                      PeacebuilderNetwork.org_id == org_id))
