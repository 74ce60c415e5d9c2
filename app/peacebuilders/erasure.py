"""Erasure: her data key destroyed, so everything sealed with it is unreadable everywhere.

Who may ask (docs/decisions/0013-consent-integrity.md):
- she herself: carried out at once;
- her network's focal point, for her: she and her network are told, and it is carried out after
  `DELAY` unless she (or her network) stops it;
- a focal point of an organisation that leads one of her cases and still holds her live consent,
  with a written reason, under the two-person rule: once a second focal point confirms, she and
  her network are told and it is carried out after `DELAY` unless she stops it.
Nobody else: an organisation she cut off cannot erase her. The pseudonymous record and the
access log stay (the log holds IDs only and still verifies).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.access.visibility import org_holds_consent
from app.confirmations import service as confirmations
from app.consent.rules import Caller
from app.consent.service import standing
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.her import keys as pb_keys
from app.her import sealing
from app.her.networks import networks_of
from app.her.notices import NoticeKind, tell_her
from app.idempotency import service as idempotency
from app.notify import service as notify
from app.peacebuilders import repository as repo
from app.tables.cases import Case
from app.tables.confirmations import Confirmation, ConfirmationStatus
from app.tables.incidents import Incident
from app.tables.peacebuilders import Erasure, Peacebuilder

CONFIRM_ERASURE = "peacebuilder.erase"
# Her time to stop an erasure someone else asked for (she and her network are told at once).
DELAY = timedelta(hours=48)
MIN_REASON = 20


async def request(ctx: AccessContext, pb_id: uuid.UUID, reason: str | None = None) -> Erasure:
    """Ask for her data to be erased (see the module's rules for who, and when it happens)."""
    pb = await ctx.session.get(Peacebuilder, pb_id)
    p = ctx.principal
    if p.kind is PrincipalKind.PEACEBUILDER and p.id == pb_id and pb is not None:
        erasure = _new(ctx, pb_id, "herself", "scheduled")
        erasure.due_at = erasure.requested_at
        await carry_out(ctx, erasure)
        return erasure
    who = await _standing_or_none(ctx, pb_id)
    if who is Caller.NETWORK and pb is not None:
        ctx.require_recent_mfa("peacebuilder.erase", target_type="Peacebuilder", target_id=pb_id)
        erasure = _new(ctx, pb_id, "network", "scheduled")
        await _schedule(ctx, erasure)
        return erasure
    if (who is Caller.STAFF and pb is not None and p.kind is PrincipalKind.USER
            and "focal_point" in p.roles and await _leads_with_consent(ctx, pb_id)):
        text = (reason or "").strip()
        if len(text) < MIN_REASON:
            ctx.deny("peacebuilder.erase", target_type="Peacebuilder", target_id=pb_id,
                     reason="no written reason")
            raise BadInput(f"Write the reason for erasing her data (at least {MIN_REASON} "
                           "characters).", field="reason")
        erasure = _new(ctx, pb_id, "organisation", "awaiting_confirmation")
        erasure.reason = await sealing.seal(ctx, sealing.erasure_ref(erasure), text,
                                            input_field="reason")
        ctx.session.add(erasure)
        await ctx.session.flush()
        asked = Confirmation(id=new_id(), org_id=ctx.org_id, peacebuilder_id=pb_id)
        await confirmations.request(
            ctx, action=CONFIRM_ERASURE, target_id=erasure.id, peacebuilder_id=pb_id,
            confirmation_id=asked.id,
            reason=await sealing.seal_for_confirmation(ctx, asked, "reason", text))
        ctx.record("peacebuilder.erase_request", target_type="Peacebuilder", target_id=pb_id,
                   details={"erasure": str(erasure.id), "via": erasure.via})
        return erasure
    ctx.deny("peacebuilder.erase", target_type="Peacebuilder", target_id=pb_id,
             reason="only she, her network, or the lead organisation holding her consent "
                    "under the two-person rule")
    raise NotFound()


async def _standing_or_none(ctx: AccessContext, pb_id: uuid.UUID) -> Caller | None:
    try:
        return (await standing(ctx, pb_id)).caller
    except NotFound:
        return None


async def _leads_with_consent(ctx: AccessContext, pb_id: uuid.UUID) -> bool:
    """Whether the caller's organisation leads one of her cases and holds a live grant she gave
    it directly (a grant to a group it belongs to is not hers to act on: opening a case on the
    strength of it must not make an organisation able to erase her)."""
    assert ctx.org_id is not None
    leads = await ctx.session.scalar(select(Case.id).where(
        Case.peacebuilder_id == pb_id, Case.lead_org_id == ctx.org_id).limit(1))
    return leads is not None and await org_holds_consent(ctx.session, ctx.org_id, pb_id,
                                                         ctx.clock.now(), directly=True)


def _new(ctx: AccessContext, pb_id: uuid.UUID, via: str, status: str) -> Erasure:
    return Erasure(id=new_id(), peacebuilder_id=pb_id, requested_by=ctx.principal.subject,
                   requested_by_org_id=ctx.principal.org_id, via=via, status=status,
                   requested_at=ctx.clock.now())


async def _schedule(ctx: AccessContext, erasure: Erasure) -> None:
    """Told first, carried out after the delay unless stopped."""
    erasure.status, erasure.due_at = "scheduled", ctx.clock.now() + DELAY
    if erasure not in ctx.session:
        ctx.session.add(erasure)
    await ctx.session.flush()
    details = {"erasure": str(erasure.id), "due_at": erasure.due_at.isoformat(),
               "via": erasure.via}
    await tell_her(ctx, erasure.peacebuilder_id, NoticeKind.ERASURE_SCHEDULED,
                   subject_id=erasure.id, codes={"due_at": erasure.due_at, "via": erasure.via})
    networks = (await networks_of(ctx.session, [erasure.peacebuilder_id]))[erasure.peacebuilder_id]
    recipients = [(s, org) for org in networks for s in await notify.focal_points(ctx.session, org)]
    await notify.notify(ctx, recipients, kind="erasure_scheduled",
                        subject_id=erasure.peacebuilder_id, case_id=None, at=ctx.clock.now(),
                        payload={"peacebuilder": str(erasure.peacebuilder_id), **details})
    ctx.record("peacebuilder.erase_scheduled", target_type="Peacebuilder",
               target_id=erasure.peacebuilder_id, details=details)


@confirmations.on_confirmed(CONFIRM_ERASURE)
async def _second_person_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    """Checked again now: she may have cut the organisation off since it was asked."""
    assert c.peacebuilder_id is not None
    async with ctx.peek([c.peacebuilder_id]):  # the facts of the decision
        erasure = await ctx.session.get(Erasure, c.target_id)
        still = await _leads_with_consent(ctx, c.peacebuilder_id)
    if erasure is None or erasure.status != "awaiting_confirmation":
        raise Conflict("This erasure is no longer waiting for confirmation.")
    if not still:
        ctx.deny("peacebuilder.erase", target_type="Peacebuilder", target_id=c.peacebuilder_id,
                 reason="her consent to the organisation ended before confirmation")
        raise Conflict("Her consent to your organisation has ended: this erasure cannot go "
                       "ahead. Only she or her network can ask for it now.")
    await ctx.reach([c.peacebuilder_id])  # decided: write the erasure and tell her
    await _schedule(ctx, erasure)


@confirmations.on_lapsed(CONFIRM_ERASURE)
async def _not_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    erasure = await ctx.session.get(Erasure, c.target_id)
    if erasure is not None and erasure.status == "awaiting_confirmation":
        erasure.status = "declined"


async def stop(ctx: AccessContext, erasure_id: uuid.UUID) -> Erasure:
    """She (or her network, for her) stops an erasure someone else asked for."""
    erasure = await ctx.session.get(Erasure, erasure_id)
    if erasure is None:
        raise NotFound()
    who = await standing(ctx, erasure.peacebuilder_id)
    if who.caller not in (Caller.HERSELF, Caller.NETWORK):
        raise NotFound()
    if who.caller is Caller.NETWORK:
        ctx.require_recent_mfa("peacebuilder.erase_stop", target_type="Peacebuilder",
                               target_id=erasure.peacebuilder_id)
    if erasure.status not in ("scheduled", "awaiting_confirmation"):
        raise Conflict(f"This erasure is {erasure.status}; it cannot be stopped.")
    pending = await confirmations.pending_of(ctx, action=CONFIRM_ERASURE, target_id=erasure.id)
    if pending is not None:
        await confirmations.end(ctx, pending, ConfirmationStatus.CANCELLED)
    erasure.status, erasure.stopped_by = "stopped", ctx.principal.subject
    ctx.record("peacebuilder.erase_stop", target_type="Peacebuilder",
               target_id=erasure.peacebuilder_id, details={"erasure": str(erasure.id)})
    return erasure


async def carry_out(ctx: AccessContext, erasure: Erasure) -> None:
    """Destroy her data key: every value sealed with it is unreadable from now on."""
    await pb_keys.destroy(ctx, erasure.peacebuilder_id)
    await repo.clear_lookups(ctx.session, erasure.peacebuilder_id)
    # The monitoring codes of her incidents are in clear (they are counted): gone with her.
    await ctx.session.execute(update(Incident).where(Incident.case_id.in_(
        select(Case.id).where(Case.peacebuilder_id == erasure.peacebuilder_id))).values(
        region_code=None, source_category=None))
    # Stored first answers of mutations (Idempotency-Key) may quote her data under a service
    # key: none survives her erasure.
    await idempotency.forget_all(ctx)
    erasure.status, erasure.done_at = "done", ctx.clock.now()
    if erasure not in ctx.session:
        ctx.session.add(erasure)
    await ctx.session.flush()
    ctx.record("peacebuilder.erase", target_type="Peacebuilder", target_id=erasure.peacebuilder_id,
               details={"erasure": str(erasure.id), "by": erasure.via})


async def run_due(ctx: AccessContext, now: datetime) -> int:
    """Background (system scope): carry out the erasures whose delay has passed."""
    due = list(await ctx.session.scalars(select(Erasure).where(
        Erasure.status == "scheduled", Erasure.due_at <= now).limit(100)
        .with_for_update(skip_locked=True)))  # every replica runs this: never twice
    for erasure in due:
        await carry_out(ctx, erasure)
    return len(due)


async def of(ctx: AccessContext, pb_id: uuid.UUID) -> list[Erasure]:
    """Her erasure requests: for her and her network."""
    who = await standing(ctx, pb_id)
    if who.caller not in (Caller.HERSELF, Caller.NETWORK):
        raise NotFound()
    return list(await ctx.session.scalars(select(Erasure).where(
        Erasure.peacebuilder_id == pb_id).order_by(Erasure.requested_at)))
