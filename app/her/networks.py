"""Which networks act for her: read by her notices, consent and her account alike."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.tables.peacebuilders import PeacebuilderNetwork


async def networks_of(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The networks that act for her: confirmed by her (or two people of her lead organisation)."""
    rows = await session.execute(
        select(PeacebuilderNetwork.peacebuilder_id, PeacebuilderNetwork.org_id)
        .where(PeacebuilderNetwork.peacebuilder_id.in_(ids),
               PeacebuilderNetwork.confirmed_at.is_not(None)))
    out: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    for pb_id, org_id in rows:
        out[pb_id].append(org_id)
    return out
