"""SQL for consent events, their projection, case teams, break-glass and her account."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, delete, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.tables.consent import (
    BreakGlass,
    CaseTeamMember,
    ConsentAccess,
    ConsentEvent,
    ConsentGrant,
    Notice,
    PeacebuilderAccount,
)


async def events_of(session: AsyncSession, grant_id: uuid.UUID) -> list[ConsentEvent]:
    rows = await session.scalars(select(ConsentEvent).where(ConsentEvent.grant_id == grant_id)
                                 .order_by(ConsentEvent.version))
    return list(rows)


async def grant(session: AsyncSession, grant_id: uuid.UUID) -> ConsentGrant | None:
    return await session.get(ConsentGrant, grant_id)


async def lock_grant(session: AsyncSession, grant_id: uuid.UUID) -> ConsentGrant | None:
    """The grant, re-read and locked until the transaction ends: concurrent changes to one grant
    queue here, and each sees the one before it (docs/decisions/0016-failure-answers.md).
    PostgreSQL locks the row (SELECT ... FOR UPDATE); SQLite has one writer at a time, so a write
    statement that changes nothing takes the database's write lock first."""
    stmt = select(ConsentGrant).where(ConsentGrant.id == grant_id)
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("UPDATE consent_grants SET id = id WHERE 1 = 0"))
    else:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt.execution_options(populate_existing=True))


async def grants_of(session: AsyncSession, pb_id: uuid.UUID) -> list[ConsentGrant]:
    rows = await session.scalars(select(ConsentGrant).where(ConsentGrant.peacebuilder_id == pb_id)
                                 .order_by(ConsentGrant.created_at, ConsentGrant.id))
    return list(rows)


async def replace_access_rows(session: AsyncSession, grant_id: uuid.UUID,
                              rows: list[ConsentAccess]) -> None:
    await session.execute(delete(ConsentAccess).where(ConsentAccess.grant_id == grant_id))
    session.add_all(rows)


async def live_wg_grants(session: AsyncSession, wg_id: uuid.UUID) -> list[ConsentGrant]:
    rows = await session.scalars(select(ConsentGrant).where(
        ConsentGrant.recipient_type == "working_group", ConsentGrant.recipient_id == wg_id,
        ConsentGrant.revoked_at.is_(None)))
    return list(rows)


async def team_of(session: AsyncSession, case_id: uuid.UUID, org_id: uuid.UUID) -> list[CaseTeamMember]:
    rows = await session.scalars(select(CaseTeamMember).where(
        CaseTeamMember.case_id == case_id, CaseTeamMember.org_id == org_id,
        CaseTeamMember.removed_at.is_(None)).order_by(CaseTeamMember.assigned_at))
    return list(rows)


async def open_break_glass(session: AsyncSession, pb_id: uuid.UUID, org_id: uuid.UUID,
                           now: datetime) -> BreakGlass | None:
    return await session.scalar(select(BreakGlass).where(
        BreakGlass.peacebuilder_id == pb_id, BreakGlass.org_id == org_id,
        BreakGlass.closed_at.is_(None), BreakGlass.expires_at > now))


async def break_glass_of(session: AsyncSession, pb_id: uuid.UUID) -> list[BreakGlass]:
    rows = await session.scalars(select(BreakGlass).where(BreakGlass.peacebuilder_id == pb_id)
                                 .order_by(BreakGlass.opened_at))
    return list(rows)


async def notices_of(session: AsyncSession, pb_id: uuid.UUID, *,
                     after: tuple[datetime, uuid.UUID] | None = None,
                     limit: int | None = None) -> list[Notice]:
    """Her notices, oldest first; after (created_at, id) and at most `limit` when given."""
    q = select(Notice).where(Notice.peacebuilder_id == pb_id)
    if after is not None:
        at, id_ = after
        q = q.where(or_(Notice.created_at > at, and_(Notice.created_at == at, Notice.id > id_)))
    q = q.order_by(Notice.created_at, Notice.id)
    if limit is not None:
        q = q.limit(limit)
    return list(await session.scalars(q))


async def account_by_login(session: AsyncSession, login: str) -> PeacebuilderAccount | None:
    return await session.scalar(select(PeacebuilderAccount).where(PeacebuilderAccount.login == login))


async def account_of(session: AsyncSession, pb_id: uuid.UUID) -> PeacebuilderAccount | None:
    return await session.scalar(select(PeacebuilderAccount).where(
        PeacebuilderAccount.peacebuilder_id == pb_id))


async def ended_unrevoked(session: AsyncSession, now: datetime) -> list[ConsentGrant]:
    rows = await session.scalars(select(ConsentGrant).where(
        ConsentGrant.revoked_at.is_(None), ConsentGrant.valid_until.is_not(None),
        ConsentGrant.valid_until <= now))
    return list(rows)
