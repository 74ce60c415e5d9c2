"""Break-glass: a focal point opens access without consent in her vital interest.

Only an organisation with a relation to her (it leads one of her cases, is on a case team, is in
a working group she granted, or received a referral of her case); emergency response only, a
written reason. It opens at once — an emergency cannot wait — for one hour; it lasts the hours
asked for (at most 72) only once a second focal point confirms it (the two-person rule). After
one ends, the organisation cannot open another for her until `COOL_DOWN` has passed. She is told,
and so are her lead organisation and the overseer of the organisation that opened it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import exists, func, or_, select

from app import crypto
from app.access.context import AccessContext
from app.confirmations import service as confirmations
from app.consent import repository as repo
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.her import keys as pb_keys
from app.her import sealing
from app.her.notices import BreakGlassEnd, NoticeKind, tell_her, watch_break_glass
from app.notify import service as notify
from app.tables.audit import Oversight
from app.tables.cases import Case
from app.tables.categories import Purpose
from app.tables.confirmations import Confirmation, ConfirmationStatus
from app.tables.consent import BreakGlass, CaseTeamMember, ConsentGrant
from app.tables.incidents import Referral
from app.tables.orgs import RoleAssignment, WorkingGroupMember
from app.tables.peacebuilders import Peacebuilder

MAX_HOURS = 72
MIN_REASON = 20
UNCONFIRMED = timedelta(hours=1)  # how long it lasts before a second focal point confirms
COOL_DOWN = timedelta(hours=12)  # after one ends, before the organisation may open another
CONFIRM_BREAK_GLASS = "break_glass.extend"


async def _related(ctx: AccessContext, pb_id: uuid.UUID) -> bool:
    """Whether the caller's organisation has a relation to her (IDs only are read): it leads or
    is on the team of one of her cases, received a referral of her case, holds a grant she gave
    it, or is covered by a grant she gave a working group it still belongs to (a member that
    joined after her grant is not covered by it, so it has no relation through it)."""
    org = ctx.org_id
    her_cases = select(Case.id).where(Case.peacebuilder_id == pb_id)
    relation = or_(
        exists(her_cases.where(Case.lead_org_id == org)),
        exists(select(CaseTeamMember.id).where(
            CaseTeamMember.case_id.in_(her_cases), CaseTeamMember.org_id == org,
            CaseTeamMember.removed_at.is_(None))),
        exists(select(Referral.id).where(
            Referral.case_id.in_(her_cases), Referral.to_org_id == org,
            Referral.status.in_(("pending", "accepted", "completed")))))
    if await ctx.session.scalar(select(relation)):
        return True
    groups = set(await ctx.session.scalars(select(WorkingGroupMember.working_group_id).where(
        WorkingGroupMember.org_id == org, WorkingGroupMember.left_at.is_(None))))
    grants = await ctx.session.execute(select(
        ConsentGrant.recipient_type, ConsentGrant.recipient_id, ConsentGrant.covered_org_ids)
        .where(ConsentGrant.peacebuilder_id == pb_id, ConsentGrant.revoked_at.is_(None),
               ConsentGrant.confirmed_at.is_not(None)))
    return any((kind == "organisation" and recipient == org)  # she granted it herself
               or (kind == "working_group" and recipient in groups and str(org) in covered)
               for kind, recipient, covered in grants)


async def open_(ctx: AccessContext, pb_id: uuid.UUID, *, reason: str, hours: int) -> BreakGlass:
    await ctx.require("break_glass", "open", target_type="Peacebuilder", target_id=str(pb_id))
    ctx.require_recent_mfa("break_glass.open", target_type="Peacebuilder", target_id=pb_id)
    assert ctx.org_id is not None
    if ctx.purpose != Purpose.EMERGENCY_RESPONSE:
        ctx.deny("break_glass.open", target_type="Peacebuilder", target_id=pb_id,
                 reason="purpose is not emergency_response")
        raise BadInput("Break-glass is only for the emergency_response purpose.", field="purpose")
    if len(reason.strip()) < MIN_REASON:
        raise BadInput(f"Write the reason (at least {MIN_REASON} characters).", field="reason")
    if not 1 <= hours <= MAX_HOURS:
        raise BadInput(f"Break-glass lasts 1 to {MAX_HOURS} hours.", field="hours")
    async with ctx.peek([pb_id]):  # the facts of the decision, not her data
        related = await _related(ctx, pb_id)
    if not related:
        ctx.deny("break_glass.open", target_type="Peacebuilder", target_id=pb_id,
                 reason="no relation to her")
        raise NotFound()
    await ctx.reach([pb_id])  # decided: the database must now let this transaction find her
    if await ctx.session.get(Peacebuilder, pb_id) is None:
        raise NotFound()
    now = ctx.clock.now()
    if await repo.open_break_glass(ctx.session, pb_id, ctx.org_id, now):
        raise Conflict("Break-glass is already open for her in your organisation.")
    last_end = await ctx.session.scalar(select(func.max(func.coalesce(
        BreakGlass.closed_at, BreakGlass.expires_at))).where(
            BreakGlass.peacebuilder_id == pb_id, BreakGlass.org_id == ctx.org_id))
    if last_end is not None and now < last_end + COOL_DOWN:
        ctx.deny("break_glass.open", target_type="Peacebuilder", target_id=pb_id,
                 reason="cool-down after an earlier break-glass")
        raise Conflict(f"Break-glass for her ended less than {COOL_DOWN.seconds // 3600} hours "
                       "ago; it cannot be reopened yet. Ask her, her network or her lead "
                       "organisation instead.")
    glass = BreakGlass(id=new_id(), peacebuilder_id=pb_id, org_id=ctx.org_id,
                       opened_by=ctx.principal.subject, opened_at=now, requested_hours=hours,
                       expires_at=now + min(UNCONFIRMED, timedelta(hours=hours)))
    # Free text that may name her: sealed with her key (if she was erased, her key is gone and
    # the reason cannot be kept; break-glass still opens, with the reason left out).
    key = (await pb_keys.of(ctx, [pb_id]))[pb_id]
    glass.reason = (crypto.seal(key, sealing.break_glass_ref(glass).aad, reason.strip())
                    if key is not None else "")
    ctx.session.add(glass)
    await ctx.session.flush()
    await tell_her(ctx, pb_id, NoticeKind.BREAK_GLASS_OPENED, subject_id=glass.id,
                   codes={"organisation": ctx.org_id, "hours": hours})
    await watch_break_glass(ctx.session, glass)  # she is told when it ends on its own
    # The reason is free text and may name her: it stays in break_glass, not in the log.
    ctx.record("break_glass.open", target_type="Peacebuilder", target_id=pb_id,
               details={"break_glass": str(glass.id), "hours": hours})
    await _alert(ctx, glass)
    if hours > 1 and [s for s in await confirmations.holders(ctx, ctx.org_id, "focal_point")
                      if s != ctx.principal.subject]:
        asked = Confirmation(id=new_id(), org_id=ctx.org_id, peacebuilder_id=pb_id)
        sealed = (await sealing.seal_for_confirmation(ctx, asked, "reason", reason.strip())
                  if key is not None else None)
        await confirmations.request(ctx, action=CONFIRM_BREAK_GLASS, target_id=glass.id,
                                    peacebuilder_id=pb_id, confirmation_id=asked.id,
                                    reason=sealed)
    return glass


async def _alert(ctx: AccessContext, glass: BreakGlass) -> None:
    """Her lead organisation and the opener's overseers are told at once (IDs only)."""
    assert ctx.org_id is not None
    leads = set(await ctx.session.scalars(select(Case.lead_org_id).where(
        Case.peacebuilder_id == glass.peacebuilder_id))) - {ctx.org_id}
    overseers = set(await ctx.session.scalars(select(Oversight.overseer_org_id).where(
        Oversight.org_id == ctx.org_id)))
    recipients: list[tuple[str, uuid.UUID]] = []
    for org in sorted(leads):
        recipients += [(s, org) for s in await notify.focal_points(ctx.session, org)]
    for org in sorted(overseers):
        rows = await ctx.session.scalars(select(RoleAssignment.subject).where(
            RoleAssignment.org_id == org, RoleAssignment.role.in_(("auditor", "focal_point"))))
        recipients += [(s, org) for s in sorted(set(rows))]
    if recipients:
        await notify.notify(ctx, recipients, kind="break_glass_opened", subject_id=glass.id,
                            case_id=None, at=ctx.clock.now(),
                            payload={"break_glass": str(glass.id),
                                     "peacebuilder": str(glass.peacebuilder_id),
                                     "organisation": str(glass.org_id),
                                     "expires_at": glass.expires_at.isoformat()})


@confirmations.on_confirmed(CONFIRM_BREAK_GLASS)
async def _second_person_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    glass = await ctx.session.get(BreakGlass, c.target_id)
    now = ctx.clock.now()
    if glass is None:
        raise NotFound()
    if glass.closed_at is not None or glass.expires_at <= now:
        raise Conflict("This break-glass has already ended; open a new one if still needed.")
    glass.confirmed_at = now
    glass.expires_at = glass.opened_at + timedelta(hours=glass.requested_hours or 1)
    ctx.record("break_glass.confirm", target_type="Peacebuilder", target_id=glass.peacebuilder_id,
               details={"break_glass": str(glass.id), "hours": glass.requested_hours})
    await tell_her(ctx, glass.peacebuilder_id, NoticeKind.BREAK_GLASS_CONFIRMED,
                   subject_id=glass.id,
                   codes={"organisation": glass.org_id, "expires_at": glass.expires_at})


async def close(ctx: AccessContext, glass_id: uuid.UUID) -> BreakGlass:
    await ctx.require("break_glass", "open")
    glass = await ctx.session.get(BreakGlass, glass_id)
    if glass is None or glass.org_id != ctx.org_id:
        raise NotFound()
    if glass.closed_at is None:
        glass.closed_at = ctx.clock.now()
        ctx.record("break_glass.close", target_type="Peacebuilder", target_id=glass.peacebuilder_id,
                   details={"break_glass": str(glass.id)})
        await tell_her(ctx, glass.peacebuilder_id, NoticeKind.BREAK_GLASS_ENDED,
                       subject_id=glass.id,
                       codes={"organisation": glass.org_id, "reason": BreakGlassEnd.CLOSED})
        pending = await confirmations.pending_of(ctx, action=CONFIRM_BREAK_GLASS,
                                                 target_id=glass.id)
        if pending is not None:
            await confirmations.end(ctx, pending, ConfirmationStatus.CANCELLED)
    return glass
