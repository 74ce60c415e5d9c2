"""The retention schedule of closed cases (issue 17, "accountable closure"; decision 0025).

When a case closes, its erasure is scheduled `days` after closure (per lead organisation:
`retention:` in tenants/, default 365), and the lead organisation's focal points are warned
`warn_days` before (default 30; an inbox alert with IDs only). At the date:

- if she has no other case still holding data (open, or closed and not yet erased), her data key
  is destroyed (app/peacebuilders/erasure.py, `via: retention`): everything sealed about her is
  unreadable everywhere, backups included once their KEK versions go;
- otherwise her key must live on for that other case, so this case's sealed values are deleted
  from the live database (its summary, notes, incidents, measures, referrals, proceedings and
  evidence); backups still hold them under her key until her last case's date destroys it.

A reopened case stops the schedule; closing it again starts a new one. The lead organisation
may extend the date or place a legal hold (a reason code, logged and on the timeline); while
held nothing is erased, and a released hold reschedules with a fresh warning.

Each (re)schedule is one generation of `scheduled_steps` (warning and erasure share its step
number); only the case's newest generation acts, and only while the case is closed, so
superseded steps fire as `not_needed`. The scheduler's claim keeps each step once across
replicas."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import AccessContext
from app.access.principal import SYSTEM, PrincipalKind
from app.cases import service as cases
from app.clock import Clock
from app.errors import BadInput, Conflict, Forbidden, NotFound
from app.her.notices import NoticeKind, tell_her
from app.notify import service as notify
from app.peacebuilders import erasure as erasures
from app.tables.cases import Case, CaseNote, CaseStatus
from app.tables.categories import RISK_FIELDS
from app.tables.checkins import CheckInSchedule, SecurityAssessment
from app.tables.consultations import Consultation
from app.tables.incidents import (
    Attachment,
    CaseEvent,
    Incident,
    Measure,
    Proceeding,
    Referral,
    ScheduledStep,
)
from app.tables.justice import Detention, DetentionVisit, Hearing
from app.tables.notify import InboxItem
from app.tables.operations import OrganisationSettings
from app.tables.peacebuilders import Erasure
from app.tables.risk import RiskAssessment, RiskThreat

WARNING, ERASURE = "retention_warning", "retention_erasure"
KINDS = (WARNING, ERASURE)
DEFAULT_DAYS, DEFAULT_WARN_DAYS = 365, 30  # tenants/: `retention: {days, warn_days}`
MAX_EXTENSION = timedelta(days=3650)


class HoldReason(enum.StrEnum):
    """Why the lead organisation keeps a closed case's data longer (codes only: no free text
    about her in the log or on the timeline)."""

    LEGAL_PROCEEDINGS = "legal_proceedings"
    INVESTIGATION = "investigation"
    HER_REQUEST = "her_request"
    OVERSIGHT_REVIEW = "oversight_review"


def handles(kind: str) -> bool:
    return kind in KINDS


async def period_of(session: AsyncSession, org_id: uuid.UUID) -> tuple[timedelta, timedelta]:
    """(retention after closure, warning before erasure) of an organisation."""
    declared = await session.scalar(select(OrganisationSettings.retention).where(
        OrganisationSettings.org_id == org_id)) or {}
    days = int(declared.get("days", DEFAULT_DAYS))
    warn = int(declared.get("warn_days", DEFAULT_WARN_DAYS))
    return timedelta(days=days), timedelta(days=min(warn, days))


def _event(session: AsyncSession, case: Case, kind: str, details: dict[str, Any],
           now: datetime, actor: str = "system", org_id: uuid.UUID | None = None) -> None:
    session.add(CaseEvent(case_id=case.id, kind=f"case.{kind}", subject_id=None, actor=actor,
                          org_id=org_id, details=details, at=now))


async def _generation(session: AsyncSession, case_id: uuid.UUID) -> int:
    """The newest generation of this case's schedule (0: never scheduled)."""
    return int(await session.scalar(select(func.max(ScheduledStep.step)).where(
        ScheduledStep.subject_id == case_id, ScheduledStep.kind == ERASURE)) or 0)


async def _schedule(session: AsyncSession, case: Case, erase_after: datetime,
                    now: datetime) -> None:
    """A new generation: the warning (at once if its time has passed) and the erasure."""
    _, warn = await period_of(session, case.lead_org_id)
    step = await _generation(session, case.id) + 1
    case.erase_after = erase_after
    session.add(ScheduledStep(kind=WARNING, subject_id=case.id, step=step,
                              due_at=max(erase_after - warn, now)))
    session.add(ScheduledStep(kind=ERASURE, subject_id=case.id, step=step, due_at=erase_after))


async def on_closed(ctx: AccessContext, case: Case) -> None:
    """The case has just closed: its erasure is scheduled (and shown on the timeline)."""
    assert case.closed_at is not None
    period, _ = await period_of(ctx.session, case.lead_org_id)
    case.retention_hold = None
    await _schedule(ctx.session, case, case.closed_at + period, ctx.clock.now())
    _event(ctx.session, case, "retention_scheduled", {"erase_after": case.erase_after.isoformat()
                                                      if case.erase_after else None},
           ctx.clock.now(), ctx.principal.subject, ctx.org_id)


def on_reopened(ctx: AccessContext, case: Case) -> None:
    """A reopened case keeps its data: the schedule stops (its steps find it open)."""
    if case.erase_after is not None:
        _event(ctx.session, case, "retention_cancelled", {}, ctx.clock.now(),
               ctx.principal.subject, ctx.org_id)
    case.erase_after = None
    case.retention_hold = None


async def _closed_led(ctx: AccessContext, case_id: uuid.UUID) -> Case:
    await ctx.require("case", "update")
    case = await cases.get(ctx, case_id)
    if case.lead_org_id != ctx.org_id:
        raise NotFound()
    if ctx.principal.kind is not PrincipalKind.USER:
        # Keeping her data past its schedule is a named person's accountable decision.
        ctx.deny("case.retention", target_type="Case", target_id=case.id, reason="not a person")
        raise Forbidden("A person of the lead organisation decides this.")
    if case.status != CaseStatus.CLOSED or case.erase_after is None:
        raise Conflict("Only a closed case has a retention schedule.")
    if case.retention_erased_at is not None:
        raise Conflict("This case's data has already been erased.")
    return case


def _reason(reason: str) -> str:
    if reason not in {r.value for r in HoldReason}:
        raise BadInput("Unknown reason.", field="reason")
    return reason


async def extend(ctx: AccessContext, case_id: uuid.UUID, *, until: datetime,
                 reason: str) -> Case:
    """The lead organisation keeps a closed case's data until a later date (a reason code)."""
    case = await _closed_led(ctx, case_id)
    _reason(reason)
    assert case.erase_after is not None and case.closed_at is not None
    if until <= case.erase_after:
        raise BadInput("Extend to a date after the one scheduled.", field="until")
    if until - ctx.clock.now() > MAX_EXTENSION:
        raise BadInput("Extend by at most ten years at a time.", field="until")
    now = ctx.clock.now()
    await _schedule(ctx.session, case, until, now)
    _event(ctx.session, case, "retention_extended", {"erase_after": until.isoformat(),
                                                     "reason": reason}, now,
           ctx.principal.subject, ctx.org_id)
    ctx.record("case.retention_extend", target_type="Case", target_id=case.id,
               details={"erase_after": until.isoformat(), "reason": reason})
    return case


async def hold(ctx: AccessContext, case_id: uuid.UUID, *, reason: str | None,
               held: bool) -> Case:
    """Place (with a reason code) or release a legal hold: nothing is erased while it holds; a
    release reschedules, warning the focal points again before the date."""
    case = await _closed_led(ctx, case_id)
    now = ctx.clock.now()
    if held:
        case.retention_hold = _reason(reason or "")
        _event(ctx.session, case, "retention_hold", {"reason": case.retention_hold}, now,
               ctx.principal.subject, ctx.org_id)
        ctx.record("case.retention_hold", target_type="Case", target_id=case.id,
                   details={"reason": case.retention_hold})
        return case
    if case.retention_hold is None:
        raise Conflict("This case is not on hold.")
    case.retention_hold = None
    assert case.erase_after is not None
    _, warn = await period_of(ctx.session, case.lead_org_id)
    await _schedule(ctx.session, case, max(case.erase_after, now + warn), now)
    _event(ctx.session, case, "retention_released",
           {"erase_after": case.erase_after.isoformat()}, now, ctx.principal.subject,
           ctx.org_id)
    ctx.record("case.retention_release", target_type="Case", target_id=case.id,
               details={"erase_after": case.erase_after.isoformat()})
    return case


# --- the scheduler -------------------------------------------------------------------------

async def fire(db: Any, clock: Clock, session: AsyncSession, step: ScheduledStep,
               now: datetime) -> list[InboxItem]:
    """A claimed retention step (system scope): warn, or erase — if it is still the case's."""
    case = await session.get(Case, step.subject_id)
    if (case is None or case.status != CaseStatus.CLOSED or case.erase_after is None
            or case.retention_erased_at is not None
            or step.step != await _generation(session, case.id)):
        return []  # reopened, superseded by an extension or a release, or done
    if case.retention_hold is not None:
        _event(session, case, "retention_held", {"reason": case.retention_hold,
                                                 "step": step.kind}, now)
        return []
    if step.kind == WARNING:
        _event(session, case, "retention_warned", {"erase_after": case.erase_after.isoformat()},
               now)
        payload = {"case": str(case.id), "erase_after": case.erase_after.isoformat()}
        return await notify.notify(
            session, [(s, case.lead_org_id) for s in await notify.focal_points(
                session, case.lead_org_id)],
            kind=WARNING, subject_id=case.id, case_id=case.id, at=now, payload=payload)
    ctx = AccessContext(principal=SYSTEM, session=session, db=db, policy=None,  # type: ignore[arg-type]
                        clock=clock, request_id=f"retention-{uuid.uuid4().hex}")
    await _erase(ctx, case, now)
    return []


async def _still_holding(session: AsyncSession, case: Case) -> bool:
    """Whether another case of hers still holds data (open, or closed and not yet erased)."""
    found = await session.scalar(select(Case.id).where(
        Case.peacebuilder_id == case.peacebuilder_id, Case.id != case.id,
        Case.retention_erased_at.is_(None)).limit(1))
    return found is not None


async def _erase(ctx: AccessContext, case: Case, now: datetime) -> None:
    if await _still_holding(ctx.session, case):
        how = "case_data_deleted"
        await _delete_case_values(ctx.session, case.id)
    else:
        how = "key_destroyed"
        erasure = Erasure(peacebuilder_id=case.peacebuilder_id, requested_by="system",
                          requested_by_org_id=None, via="retention", status="scheduled",
                          requested_at=now, due_at=now)
        await erasures.carry_out(ctx, erasure)
    case.retention_erased_at = now
    _event(ctx.session, case, "retention_erased", {"how": how}, now)
    await tell_her(ctx, case.peacebuilder_id, NoticeKind.CASE_DATA_ERASED, case_id=case.id,
                   codes={"reason": how})
    ctx.record("case.retention_erase", target_type="Case", target_id=case.id,
               details={"how": how, "peacebuilder": str(case.peacebuilder_id)})


async def _delete_case_values(session: AsyncSession, case_id: uuid.UUID) -> None:
    """Every sealed value of one case, deleted (her key lives on for her other case)."""
    incidents = select(Incident.id).where(Incident.case_id == case_id).scalar_subquery()
    await session.execute(update(Case).where(Case.id == case_id).values(summary=None))
    await session.execute(update(CaseNote).where(CaseNote.case_id == case_id).values(body=""))
    await session.execute(update(Incident).where(Incident.case_id == case_id).values(
        description=None, alleged_source_as_reported=None, location_coarse=None,
        location_precise=None, region_code=None, source_category=None))
    await session.execute(update(Measure).where(Measure.case_id == case_id).values(
        description=None))
    await session.execute(update(Referral).where(Referral.case_id == case_id).values(
        request=None, outcome=None))
    await session.execute(update(Proceeding).where(Proceeding.case_id == case_id).values(
        data={}))
    await session.execute(delete(Attachment).where(Attachment.incident_id.in_(incidents)))
    # The justice follow-up's sealed values (category legal) go with the rest.
    await session.execute(update(Hearing).where(Hearing.case_id == case_id).values(outcome=None))
    await session.execute(update(Detention).where(Detention.case_id == case_id).values(
        place=None))
    await session.execute(update(DetentionVisit).where(DetentionVisit.case_id == case_id).values(
        notes=None))
    # Her risk assessments and plan (category risk_assessment).
    await session.execute(update(Measure).where(Measure.case_id == case_id).values(
        funding_source=None, covered_family=None))
    await session.execute(update(RiskAssessment).where(RiskAssessment.case_id == case_id).values(
        **dict.fromkeys(RISK_FIELDS["risk_assessments"])))
    await session.execute(update(RiskThreat).where(RiskThreat.case_id == case_id).values(
        **dict.fromkeys(RISK_FIELDS["risk_threats"])))
    # So do check-ins', security assessments' and consultations' (risk_assessment, contact).
    await session.execute(update(CheckInSchedule).where(CheckInSchedule.case_id == case_id)
                          .values(safety_contact=None, missed_action_notes=None))
    await session.execute(update(SecurityAssessment).where(SecurityAssessment.case_id == case_id)
                          .values(assets=None, vulnerabilities=None, recommendations=None))
    await session.execute(update(Consultation).where(Consultation.case_id == case_id).values(
        topics=None, risks_raised=None, follow_ups=None))
