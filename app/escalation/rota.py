"""The duty rota: administrators say who is on duty when; the chain's `on_duty` level alerts
whoever is on duty at the moment it fires (hand-over is the boundary between shifts)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from app.access.context import AccessContext
from app.errors import BadInput, NotFound
from app.notify.chain import ESCALATION_ROLES
from app.orgs import repository as orgs_repo
from app.tables.escalation import DutyShift

MAX_SHIFT = timedelta(days=14)


async def add(ctx: AccessContext, user_id: uuid.UUID, starts_at: datetime,
              ends_at: datetime) -> DutyShift:
    await ctx.require("duty_rota", "manage")
    assert ctx.org_id is not None
    user = await orgs_repo.user_in_scope(ctx.session, ctx.own_scope(), user_id)
    if user is None:
        raise NotFound()
    if not user.active:
        raise BadInput("A deactivated person cannot be on duty.", field="userId")
    roles = await orgs_repo.roles_of(ctx.session, ctx.org_id, user.subject)
    if not roles & set(ESCALATION_ROLES):
        raise BadInput("Only a focal point or an administrator can be on duty (they receive "
                       "escalations).", field="userId")
    if ends_at <= starts_at:
        raise BadInput("A shift ends after it starts.", field="endsAt")
    if ends_at - starts_at > MAX_SHIFT:
        raise BadInput("A shift lasts at most 14 days.", field="endsAt")
    if ends_at <= ctx.clock.now():
        raise BadInput("A shift that has already ended changes nothing.", field="endsAt")
    shift = DutyShift(org_id=ctx.org_id, subject=user.subject, starts_at=starts_at,
                      ends_at=ends_at, created_by=ctx.principal.subject,
                      created_at=ctx.clock.now())
    ctx.session.add(shift)
    await ctx.session.flush()
    ctx.record("duty_rota.add", target_type="User", target_id=user.id,
               details={"shift": str(shift.id), "starts_at": starts_at.isoformat(),
                        "ends_at": ends_at.isoformat()})
    return shift


async def remove(ctx: AccessContext, shift_id: uuid.UUID) -> DutyShift:
    await ctx.require("duty_rota", "manage")
    shift = await ctx.session.get(DutyShift, shift_id)
    if shift is None or shift.org_id != ctx.org_id:
        raise NotFound()
    await ctx.session.delete(shift)
    await ctx.session.flush()
    ctx.record("duty_rota.remove", target_type="DutyShift", target_id=shift.id)
    return shift


async def shifts(ctx: AccessContext, after: datetime | None,
                 before: datetime | None) -> list[DutyShift]:
    """The caller's organisation's shifts overlapping [after, before), in order."""
    await ctx.require("duty_rota", "read")
    q = select(DutyShift).where(DutyShift.org_id == ctx.org_id)
    if after is not None:
        q = q.where(DutyShift.ends_at > after)
    if before is not None:
        q = q.where(DutyShift.starts_at < before)
    return list(await ctx.session.scalars(q.order_by(DutyShift.starts_at, DutyShift.id)
                                          .limit(500)))


async def get_shift(ctx: AccessContext, shift_id: uuid.UUID) -> DutyShift:
    """One shift of the caller's organisation (`node(id:)`), as `dutyRota` lists it."""
    await ctx.require("duty_rota", "read")
    found = await ctx.session.scalar(select(DutyShift).where(DutyShift.org_id == ctx.org_id,
                                                             DutyShift.id == shift_id))
    if found is None:
        raise NotFound()
    return found
