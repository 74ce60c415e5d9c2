"""Her record as a duress session shows it: an empty-looking shell (docs/decisions/0027)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import tenancy
from app.access.context import AccessContext
from app.access.gate import Gate
from app.read.peacebuilders import PeacebuilderView
from app.tables.peacebuilders import Peacebuilder


async def decoy_view(ctx: AccessContext) -> PeacebuilderView:
    """`me.peacebuilder` of a duress session: the shell of her record exactly as a normal
    sign-in shows it (her pseudonym, language, registration date: whoever holds her phone may
    have seen them), with nothing of hers inside (no field released, no case). Its ID is the
    decoy's, so nothing resolved from it (her networks) finds anything; the schema shows her
    own ID, as her token names it. Read in the system scope: row-level security shows a decoy
    nothing; not logged as a read (the duress sign-in is logged, for auditors)."""
    p = ctx.principal
    assert p.duress_of is not None
    real = p.duress_of

    async def read(session: AsyncSession) -> tuple[str, str, datetime] | None:
        row = (await session.execute(select(
            Peacebuilder.pseudonym, Peacebuilder.preferred_language, Peacebuilder.created_at)
            .where(Peacebuilder.id == real))).first()
        return (row[0], row[1], row[2]) if row is not None else None

    if ctx.db.dialect == "postgresql":
        with tenancy.using(tenancy.SYSTEM):
            async with ctx.db.transaction() as session:
                shell = await read(session)
    else:
        shell = await read(ctx.session)
    pseudonym, language, created = shell or (p.name, "en", ctx.clock.now())
    return PeacebuilderView(p.id, pseudonym, language, created, uuid.UUID(int=0),
                            Gate(p.id, frozenset()), cases=[])
