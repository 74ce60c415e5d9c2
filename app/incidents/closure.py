"""Accountable closure (guidance 7: no ad-hoc response; do not drop a threat): a case closes
with a reason and a follow-up plan whose steps have dates and owners her consent covers; for
high or critical risk a second focal point confirms it (the two-person rule); she is told; a
closed case reopens with a reason. Every step is on the timeline and in the access log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.cases import service as cases
from app.confirmations import service as confirmations
from app.errors import BadInput, Conflict, Forbidden, NotFound
from app.her.notices import NoticeKind, tell_her
from app.incidents import retention
from app.incidents.response import PUBLIC_MEASURES, add_measure, require_owner_covered
from app.incidents.service import event
from app.orgs import repository as orgs_repo
from app.tables.cases import Case, CaseStatus, ClosureReason, ReopenReason, RiskLevel
from app.tables.confirmations import Confirmation, ConfirmationStatus
from app.tables.incidents import CaseEvent, Measure, MeasureKind

CONFIRM_CLOSURE = "case.close"
TWO_PERSON_RISK = {RiskLevel.HIGH.value, RiskLevel.CRITICAL.value}
MAX_STEPS = 20


@dataclass(frozen=True)
class FollowUp:
    """One step of the plan: what, by when, and which organisation owns it (None: yours)."""

    kind: str
    due_at: datetime
    owner_org_id: uuid.UUID | None = None
    description: str | None = None


async def _led(ctx: AccessContext, case_id: uuid.UUID) -> Case:
    await ctx.require("case", "update")
    case = await cases.get(ctx, case_id)
    if case.lead_org_id != ctx.org_id:
        raise NotFound()
    return case


async def _was_high(ctx: AccessContext, case: Case) -> bool:
    """Whether the case was ever high or critical risk: lowering the risk first must not let
    one person close it alone."""
    changes = await ctx.session.scalars(select(CaseEvent.details).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "case.risk_changed"))
    return any((d or {}).get("from") in TWO_PERSON_RISK for d in changes)


def _person(ctx: AccessContext, action: str, case_id: uuid.UUID) -> None:
    """Closing, reopening and keeping a closed case's data are a named person's accountable
    decisions: not a machine client's."""
    if ctx.principal.kind is not PrincipalKind.USER:
        ctx.deny(action, target_type="Case", target_id=case_id, reason="not a person")
        raise Forbidden("A person of the lead organisation decides this.")


async def _pending(ctx: AccessContext, case_id: uuid.UUID) -> Confirmation | None:
    return await ctx.session.scalar(select(Confirmation).where(
        Confirmation.action == CONFIRM_CLOSURE, Confirmation.target_id == case_id,
        Confirmation.status == ConfirmationStatus.PENDING.value))


async def close(ctx: AccessContext, case_id: uuid.UUID, *, reason: str,
                plan: list[FollowUp]) -> tuple[Case, Confirmation | None]:
    """Close now, or — for high or critical risk — ask a second focal point to confirm (the
    case stays open until then). Returns the case and the pending confirmation, if any."""
    case = await _led(ctx, case_id)
    _person(ctx, "case.close", case.id)
    if case.status == CaseStatus.CLOSED:
        raise Conflict("The case is already closed.")
    if reason not in {r.value for r in ClosureReason}:
        raise BadInput("Unknown closure reason.", field="reason")
    if not plan:
        raise BadInput("A case closes with a follow-up plan: at least one dated step with an "
                       "owner (who checks on her, and when).", field="followUp")
    if len(plan) > MAX_STEPS:
        raise BadInput(f"At most {MAX_STEPS} follow-up steps.", field="followUp")
    now = ctx.clock.now()
    for i, step in enumerate(plan):
        # A public act (statement, media contact, recognition) needs her approval: never a
        # follow-up step.
        if step.kind not in {k.value for k in MeasureKind} or step.kind in PUBLIC_MEASURES:
            raise BadInput("Unknown follow-up kind.", field=f"followUp.{i}.kind")
        if step.due_at <= now:
            raise BadInput("A follow-up step is due in the future.", field=f"followUp.{i}.dueAt")
        owner = step.owner_org_id or ctx.org_id
        assert owner is not None
        if owner not in await orgs_repo.orgs_by_ids(ctx.session, [owner]):
            raise BadInput("No such organisation.", field=f"followUp.{i}.ownerOrganisationId")
        try:
            await require_owner_covered(ctx, case.id, case.peacebuilder_id, owner)
        except BadInput as exc:
            raise BadInput(exc.message, field=f"followUp.{i}.ownerOrganisationId") from exc
    if await _pending(ctx, case.id) is not None:
        raise Conflict("A closure of this case already awaits a second focal point.")
    # The plan's steps are measures from the start (descriptions sealed with her key, reminders
    # scheduled); a closure that is never confirmed cancels them.
    steps = []
    for step in plan:
        measure = await add_measure(ctx, case_id=case.id, kind=step.kind,
                                    owner_org_id=step.owner_org_id, due_at=step.due_at,
                                    description=step.description)
        steps.append({"measure": str(measure.id), "kind": step.kind,
                      "due_at": step.due_at.isoformat(), "owner": str(measure.owner_org_id)})
    case.closure_reason = reason
    case.closure_plan = steps
    if case.risk_level in TWO_PERSON_RISK or await _was_high(ctx, case):
        asked = await confirmations.request(ctx, action=CONFIRM_CLOSURE, target_id=case.id,
                                            peacebuilder_id=case.peacebuilder_id)
        event(ctx, case.id, "case.closure_requested", asked.id, {"reason": reason})
        ctx.record("case.close.request", target_type="Case", target_id=case.id,
                   details={"reason": reason, "confirmation": str(asked.id),
                            "steps": len(plan)})
        return case, asked
    await _close_now(ctx, case)
    return case, None


async def _close_now(ctx: AccessContext, case: Case) -> None:
    plan = case.closure_plan or []
    now = ctx.clock.now()
    case.status = CaseStatus.CLOSED.value
    case.closed_at = now
    case.updated_at = now
    event(ctx, case.id, "case.closed", None, {"reason": case.closure_reason or "",
                                               "steps": str(len(plan))})
    # Kind, date, case and reason code: the follow-up plan is on the case, inside the app.
    await tell_her(ctx, case.peacebuilder_id, NoticeKind.CASE_CLOSED, case_id=case.id,
                   codes={"organisation": case.lead_org_id, "steps": len(plan),
                          **({"reason": case.closure_reason} if case.closure_reason else {})})
    ctx.record("case.close", target_type="Case", target_id=case.id,
               details={"reason": case.closure_reason, "steps": len(plan)})
    await retention.on_closed(ctx, case)


@confirmations.on_confirmed(CONFIRM_CLOSURE)
async def _second_person_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    case = await ctx.session.get(Case, c.target_id)
    if case is None or case.status == CaseStatus.CLOSED:
        return
    await _close_now(ctx, case)


@confirmations.on_lapsed(CONFIRM_CLOSURE)
async def _not_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    case = await ctx.session.get(Case, c.target_id)
    if case is not None and case.status != CaseStatus.CLOSED:
        for step in case.closure_plan or []:
            measure = await ctx.session.get(Measure, uuid.UUID(step["measure"]))
            if measure is not None and measure.status == "planned":
                measure.status = "cancelled"
        case.closure_reason = None
        case.closure_plan = None
        event(ctx, case.id, "case.closure_not_confirmed", c.id, None)


async def reopen(ctx: AccessContext, case_id: uuid.UUID, *, reason: str) -> Case:
    case = await _led(ctx, case_id)
    _person(ctx, "case.reopen", case.id)
    if case.status != CaseStatus.CLOSED:
        raise Conflict("Only a closed case can be reopened.")
    if reason not in {r.value for r in ReopenReason}:
        raise BadInput("Unknown reason to reopen.", field="reason")
    now = ctx.clock.now()
    case.status = CaseStatus.OPEN.value
    case.closed_at = None
    case.updated_at = now
    retention.on_reopened(ctx, case)
    event(ctx, case.id, "case.reopened", None, {"reason": reason,
                                                 "closed_for": case.closure_reason or ""})
    await tell_her(ctx, case.peacebuilder_id, NoticeKind.CASE_REOPENED, case_id=case.id,
                   codes={"organisation": case.lead_org_id, "reason": reason})
    ctx.record("case.reopen", target_type="Case", target_id=case.id, details={"reason": reason})
    case.closure_reason = None
    case.closure_plan = None
    return case
