"""SQL for peacebuilders; every read of her record is filtered by the caller's CareScope."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.visibility import CareScope, visible_peacebuilders, with_category
from app.tables.peacebuilders import Peacebuilder, PeacebuilderDatum, PeacebuilderNetwork


def query(scope: CareScope) -> Select[Any]:
    return select(Peacebuilder).where(Peacebuilder.id.in_(visible_peacebuilders(scope)))


async def by_ids(
    session: AsyncSession, scope: CareScope, ids: list[uuid.UUID]
) -> dict[uuid.UUID, Peacebuilder]:
    rows = await session.scalars(query(scope).where(Peacebuilder.id.in_(ids)))
    return {pb.id: pb for pb in rows}


def in_network(q: Select[Any], org_id: uuid.UUID) -> Select[Any]:
    return q.where(exists().where(PeacebuilderNetwork.peacebuilder_id == Peacebuilder.id,
                                  PeacebuilderNetwork.org_id == org_id))


def with_field_value(q: Select[Any], scope: CareScope, field: str, category: str,
                     lookup: str) -> Select[Any]:
    """Filter on a sensitive field (by its blind index) only among the records whose category
    the caller may read: a filter must not reveal what a field of a hidden record holds."""
    return q.where(
        Peacebuilder.id.in_(with_category(scope, category)),
        exists().where(PeacebuilderDatum.peacebuilder_id == Peacebuilder.id,
                       PeacebuilderDatum.field == field, PeacebuilderDatum.lookup == lookup))


async def clear_lookups(session: AsyncSession, pb_id: uuid.UUID) -> None:
    await session.execute(update(PeacebuilderDatum).where(PeacebuilderDatum.peacebuilder_id == pb_id)
                          .values(lookup=None))


async def pseudonym_taken(session: AsyncSession, org_id: uuid.UUID, pseudonym: str) -> bool:
    found = await session.scalar(select(Peacebuilder.id).where(
        Peacebuilder.registered_by_org_id == org_id, Peacebuilder.pseudonym == pseudonym))
    return found is not None


async def by_pseudonym(session: AsyncSession, pseudonym: str) -> list[Peacebuilder]:
    return list(await session.scalars(select(Peacebuilder).where(Peacebuilder.pseudonym == pseudonym)))


async def add_networks(session: AsyncSession, pb_id: uuid.UUID, org_ids: set[uuid.UUID]) -> None:
    """Name networks for her; they act for her only once confirmed."""
    for org_id in sorted(org_ids):
        session.add(PeacebuilderNetwork(peacebuilder_id=pb_id, org_id=org_id))


async def data_of(session: AsyncSession, pb_id: uuid.UUID) -> dict[str, PeacebuilderDatum]:
    rows = await session.scalars(select(PeacebuilderDatum).where(
        PeacebuilderDatum.peacebuilder_id == pb_id))
    return {d.field: d for d in rows}


async def released_values(
    session: AsyncSession, released: dict[uuid.UUID, frozenset[str]]
) -> dict[uuid.UUID, dict[str, str]]:
    """Stored (sealed) values of the released categories only; nothing else is even read."""
    wanted = set().union(*released.values()) if released else set()
    out: dict[uuid.UUID, dict[str, str]] = {pb: {} for pb in released}
    if not wanted:
        return out
    rows = await session.scalars(select(PeacebuilderDatum).where(
        PeacebuilderDatum.peacebuilder_id.in_(list(released)),
        PeacebuilderDatum.category.in_(sorted(wanted))))
    for d in rows:
        if d.category in released[d.peacebuilder_id]:
            out[d.peacebuilder_id][d.field] = d.value
    return out


async def owners(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Registering organisation per peacebuilder (bound into her ciphertexts)."""
    rows = await session.execute(select(Peacebuilder.id, Peacebuilder.registered_by_org_id)
                                 .where(Peacebuilder.id.in_(ids)))
    return {pb: org for pb, org in rows}
