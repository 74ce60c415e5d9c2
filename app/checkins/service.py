"""Safety check-ins and digital security assessments of a case.

Staff write with `safety_plan:manage` on a case whose `risk_assessment` category her consent
releases to them for the declared purpose — otherwise the case (and all below it) is not found.
She checks in herself (signed in), or her network's focal point records it for her (from her or
her safety contact); nobody else can.

- A schedule's current period is one pending `CheckIn` with its deadline; checking in closes it
  and opens the next one. At the deadline (a `check_in_missed` step) the period is MISSED: the
  case's lead organisation's active focal points are alerted at once (`check_in_missed`, IDs and
  the agreed action's code — the notes are read inside the app under her consent), she is told,
  and after the chain's first-level minutes the due item `check_in` escalates along the lead
  organisation's chain until she checks in (LATE) or a focal point records what it found
  (RESOLVED). No new period opens while one is missed: no alert storm.
- A security assessment owes a follow-up by its date: the due item `security_follow_up`
  escalates along the assessing organisation's chain until the follow-up is recorded.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import AccessContext
from app.access.visibility import org_holds_consent
from app.cases import service as cases
from app.checkins import refs
from app.consent import service as consent
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.escalation import service as escalation
from app.her import sealing
from app.her.notices import NoticeKind, tell_her
from app.incidents.service import event
from app.notify import service as notify
from app.notify.chain import active_with_roles, chain_of
from app.tables.cases import Case
from app.tables.categories import DataCategory
from app.tables.checkins import (
    AgreedVia,
    AssessmentSubject,
    Channel,
    CheckIn,
    CheckInBy,
    CheckInSchedule,
    CheckInStatus,
    Difficulty,
    MissedAction,
    Resolution,
    SecurityAssessment,
)
from app.tables.incidents import CaseEvent, ScheduledStep

RISK = DataCategory.RISK_ASSESSMENT.value
CHECK_IN = "check_in"  # the due item: a missed check-in nobody has acted on
CHECK_IN_MISSED = "check_in_missed"  # the step at a period's deadline
SECURITY_FOLLOW_UP = "security_follow_up"
MIN_INTERVAL, MAX_INTERVAL = 15, 31 * 24 * 60
MAX_TEXT = 2_000
MAX_RECOMMENDATIONS = 30


def text(value: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_TEXT:
        raise BadInput(f"At most {MAX_TEXT} characters.", field=field)
    return value.strip()


async def risk_case(ctx: AccessContext, case_id: uuid.UUID, action: str) -> Case:
    """The case, if the caller may manage safety plans and her consent releases
    `risk_assessment` to it; otherwise not found (logged)."""
    await ctx.require("safety_plan", "manage")
    case = await cases.get(ctx, case_id)
    if RISK not in (await ctx.released([case.peacebuilder_id])).get(case.peacebuilder_id, ()):
        ctx.deny(action, target_type="Case", target_id=case.id,
                 reason="consent does not release risk_assessment",
                 details={"peacebuilder": str(case.peacebuilder_id)})
        raise NotFound()
    return case


def log(ctx: AccessContext, action: str, case: Case, **details: str) -> None:
    """The access log entry of a change (IDs only), found by her in her history."""
    ctx.record(action, target_type="Case", target_id=case.id,
               details={**details, "peacebuilder": str(case.peacebuilder_id)})


# --- check-ins --------------------------------------------------------------------------------

def _open_period(ctx: AccessContext, schedule: CheckInSchedule, due_at: datetime) -> CheckIn:
    row = CheckIn(id=new_id(), case_id=schedule.case_id, schedule_id=schedule.id, due_at=due_at,
                  status=CheckInStatus.PENDING.value, created_at=ctx.clock.now())
    ctx.session.add(row)
    ctx.session.add(ScheduledStep(kind=CHECK_IN_MISSED, subject_id=row.id, step=1, due_at=due_at))
    return row


async def agree_schedule(ctx: AccessContext, *, case_id: uuid.UUID, interval_minutes: int,
                         channel: str, agreed_via: str, safety_contact: str | None,
                         missed_action: str, missed_action_notes: str | None,
                         first_due_at: datetime | None) -> CheckInSchedule:
    """A check-in schedule agreed with her; its first period opens now."""
    case = await risk_case(ctx, case_id, "check_in_schedule.agree")
    if not MIN_INTERVAL <= interval_minutes <= MAX_INTERVAL:
        raise BadInput("The interval is between 15 minutes and 31 days.", field="intervalMinutes")
    try:
        Channel(channel), AgreedVia(agreed_via), MissedAction(missed_action)
    except ValueError as exc:
        raise BadInput("Unknown channel, agreement or action.", field="channel") from exc
    if missed_action == MissedAction.OTHER and not (missed_action_notes or "").strip():
        raise BadInput("Say what was agreed (notes) when the action is OTHER.",
                       field="missedActionNotes")
    now = ctx.clock.now()
    first = first_due_at or now + timedelta(minutes=interval_minutes)
    if first <= now:
        raise BadInput("The first check-in is due ahead of now.", field="firstDueAt")
    active = await ctx.session.scalar(select(CheckInSchedule.id).where(
        CheckInSchedule.case_id == case.id, CheckInSchedule.status == "active").limit(1))
    if active is not None:
        raise Conflict("This case has an active check-in schedule; end it first.")
    assert ctx.org_id is not None
    schedule = CheckInSchedule(id=new_id(), case_id=case.id, org_id=ctx.org_id,
                               interval_minutes=interval_minutes, channel=channel,
                               agreed_via=agreed_via, missed_action=missed_action,
                               status="active", created_by=ctx.principal.subject, created_at=now)
    pb = case.peacebuilder_id
    schedule.safety_contact = await sealing.seal(
        ctx, refs.ref("check_in_schedules", "safety_contact")(schedule, pb),
        text(safety_contact, "safetyContact"), input_field="safetyContact")
    schedule.missed_action_notes = await sealing.seal(
        ctx, refs.ref("check_in_schedules", "missed_action_notes")(schedule, pb),
        text(missed_action_notes, "missedActionNotes"), input_field="missedActionNotes")
    ctx.session.add(schedule)
    await ctx.session.flush()
    period = _open_period(ctx, schedule, first)
    await ctx.session.flush()
    event(ctx, case.id, "check_in_schedule.agreed", schedule.id,
          {"interval_minutes": interval_minutes, "channel": channel, "agreed_via": agreed_via,
           "missed_action": missed_action, "first_due_at": first.isoformat()})
    log(ctx, "check_in_schedule.agree", case, schedule=str(schedule.id), check_in=str(period.id))
    return schedule


async def _schedule(ctx: AccessContext, schedule_id: uuid.UUID) -> tuple[CheckInSchedule, Case]:
    schedule = await ctx.session.get(CheckInSchedule, schedule_id)
    case = await ctx.session.get(Case, schedule.case_id) if schedule is not None else None
    if schedule is None or case is None:
        raise NotFound()
    return schedule, case


def _answerable(ctx: AccessContext, schedule: CheckInSchedule, case: Case, action: str) -> None:
    """Staff who act on a schedule's alerts: the lead organisation (whose focal points are
    alerted and whose chain escalates) or the one that agreed the schedule (the chain's
    alternate). Another organisation her consent also covers sees the schedule but may not
    resolve or end it — that would silence the lead's alert without the lead acting."""
    if ctx.org_id not in (case.lead_org_id, schedule.org_id):
        ctx.deny(action, target_type="Case", target_id=case.id,
                 reason="neither the lead nor the organisation that agreed the schedule",
                 details={"schedule": str(schedule.id)})
        raise NotFound()


async def _open(ctx: AccessContext, schedule: CheckInSchedule) -> CheckIn | None:
    """The period still open (pending, or missed and not acted on)."""
    return await ctx.session.scalar(select(CheckIn).where(
        CheckIn.schedule_id == schedule.id,
        CheckIn.status.in_((CheckInStatus.PENDING.value, CheckInStatus.MISSED.value)))
        .order_by(CheckIn.due_at.desc()).limit(1))


async def check_in(ctx: AccessContext, schedule_id: uuid.UUID, by: str) -> CheckIn:
    """She checks in (signed in herself), or her network's focal point records that she or her
    safety contact did: the period closes (LATE if it was missed: the escalation stops) and the
    next one opens."""
    schedule, case = await _schedule(ctx, schedule_id)
    who = await consent.standing(ctx, case.peacebuilder_id, action="check_in.record")
    if not (who.herself or who.acting_for_her) and RISK not in (
            await ctx.released([case.peacebuilder_id])).get(case.peacebuilder_id, ()):
        # Staff her consent does not release risk_assessment to: the schedule does not exist
        # for them (a FORBIDDEN here would tell a real ID from a missing one).
        ctx.deny("check_in.record", target_type="Case", target_id=case.id,
                 reason="consent does not release risk_assessment",
                 details={"peacebuilder": str(case.peacebuilder_id)})
        raise NotFound()
    consent.require_self_or_network(ctx, who, "check_in.record", case.peacebuilder_id)
    try:
        CheckInBy(by)
    except ValueError as exc:
        raise BadInput("Checked in by her or her safety contact.", field="by") from exc
    if who.herself and by != CheckInBy.HER:
        raise BadInput("Signed in herself, she checks in as herself.", field="by")
    if schedule.status != "active":
        raise Conflict("This check-in schedule has ended.")
    now = ctx.clock.now()
    period = await _open(ctx, schedule)
    if period is None:  # cannot happen while active; keep the schedule going regardless
        period = _open_period(ctx, schedule, now)
    was = period.status
    period.status = (CheckInStatus.LATE if was == CheckInStatus.MISSED
                     else CheckInStatus.DONE).value
    period.checked_in_at, period.checked_in_by = now, by
    period.recorded_by = ctx.principal.subject
    nxt = _open_period(ctx, schedule, now + timedelta(minutes=schedule.interval_minutes))
    await ctx.session.flush()
    event(ctx, case.id, "check_in.done", period.id,
          {"schedule": str(schedule.id), "by": by, "late": was == CheckInStatus.MISSED,
           "acting_for_her": who.acting_for_her, "next_due_at": nxt.due_at.isoformat()})
    log(ctx, "check_in.record", case, schedule=str(schedule.id), check_in=str(period.id))
    return period


async def resolve_missed(ctx: AccessContext, check_in_id: uuid.UUID, resolution: str) -> CheckIn:
    """A focal point acted on a missed check-in (what it found): the escalation stops and the
    next period opens from now."""
    await ctx.require("safety_plan", "manage")
    period = await ctx.session.get(CheckIn, check_in_id)
    if period is None:
        raise NotFound()
    case = await risk_case(ctx, period.case_id, "check_in.resolve")
    if period.status != CheckInStatus.MISSED:
        raise Conflict(f"The check-in is {period.status}, not missed.")
    try:
        Resolution(resolution)
    except ValueError as exc:
        raise BadInput("Unknown resolution.", field="resolution") from exc
    schedule = await ctx.session.get(CheckInSchedule, period.schedule_id)
    assert schedule is not None
    _answerable(ctx, schedule, case, "check_in.resolve")
    # Resolving silences the lead's alert and its escalation: like break-glass or a consent
    # change by staff, only after a recent second factor (a stolen session cannot silence it).
    ctx.require_recent_mfa("check_in.resolve", target_type="Case", target_id=case.id)
    now = ctx.clock.now()
    period.status, period.resolution = CheckInStatus.RESOLVED.value, resolution
    period.resolved_by, period.resolved_at = ctx.principal.subject, now
    if schedule.status == "active":
        _open_period(ctx, schedule, now + timedelta(minutes=schedule.interval_minutes))
    await ctx.session.flush()
    event(ctx, case.id, "check_in.resolved", period.id,
          {"schedule": str(schedule.id), "resolution": resolution})
    log(ctx, "check_in.resolve", case, check_in=str(period.id))
    return period


async def end_schedule(ctx: AccessContext, schedule_id: uuid.UUID) -> CheckInSchedule:
    """The schedule ends (she, her network for her, or the staff who manage it): its open
    period ends with it, so nothing more is due."""
    schedule, case = await _schedule(ctx, schedule_id)
    who = await consent.standing(ctx, case.peacebuilder_id, action="check_in_schedule.end")
    if not (who.herself or who.acting_for_her):
        case = await risk_case(ctx, schedule.case_id, "check_in_schedule.end")
        _answerable(ctx, schedule, case, "check_in_schedule.end")
    if not who.herself:
        # Ending it stops every future alert: anyone but she herself (staff, or her network's
        # focal point for her) needs a recent second factor, as for her consent.
        ctx.require_recent_mfa("check_in_schedule.end", target_type="Case", target_id=case.id)
    if schedule.status != "active":
        raise Conflict("This check-in schedule has already ended.")
    now = ctx.clock.now()
    schedule.status, schedule.ended_at = "ended", now
    period = await _open(ctx, schedule)
    if period is not None:
        period.status = CheckInStatus.ENDED.value
    await ctx.session.flush()
    event(ctx, case.id, "check_in_schedule.ended", schedule.id, {})
    log(ctx, "check_in_schedule.end", case, schedule=str(schedule.id))
    return schedule


def _alert_payload(period: CheckIn, schedule: CheckInSchedule) -> dict[str, Any]:
    # IDs and codes: the agreed action's code; its notes stay sealed, read in the app.
    return {"check_in": str(period.id), "schedule": str(schedule.id),
            "case": str(period.case_id), "due_at": period.due_at.isoformat(),
            "action": schedule.missed_action}


async def missed(session: AsyncSession, step: ScheduledStep, now: datetime) -> list[Any]:
    """A period's deadline (claimed once across replicas): still pending, it is missed — the lead
    organisation's focal points are alerted at once, she is told, the chain starts after its
    first level's minutes."""
    period = await session.get(CheckIn, step.subject_id)
    if period is None or period.status != CheckInStatus.PENDING:
        return []
    schedule = await session.get(CheckInSchedule, period.schedule_id)
    case = await session.get(Case, period.case_id)
    if schedule is None or case is None or schedule.status != "active":
        return []
    period.status, period.missed_at = CheckInStatus.MISSED.value, now
    who = await active_with_roles(session, case.lead_org_id, ("focal_point",))
    # What was missed and the agreed action only while her consent releases risk_assessment
    # to the lead; otherwise that something on the case needs attention (decision 0032).
    covered = await org_holds_consent(session, case.lead_org_id, case.peacebuilder_id, now,
                                      category=RISK)
    session.add(CaseEvent(case_id=case.id, kind="check_in.missed", subject_id=period.id,
                          actor="system", org_id=None,
                          details={"schedule": str(schedule.id), "recipients": len(who),
                                   "due_at": period.due_at.isoformat(),
                                   "action": schedule.missed_action}, at=now))
    items: list[Any] = await notify.notify(
        session, [(s, case.lead_org_id) for s in who], kind="check_in_missed",
        subject_id=period.id, case_id=case.id, at=now,
        payload=_alert_payload(period, schedule) if covered else escalation.content_free(case.id))
    told = await tell_her(session, case.peacebuilder_id, NoticeKind.CHECK_IN_MISSED,
                          case_id=case.id, subject_id=period.id,
                          codes={"due_at": period.due_at}, at=now)
    levels, _ = await chain_of(session, case.lead_org_id)
    # Nobody at the lead to alert now: the chain (with its alternates, then oversight) starts
    # at once rather than after its first level's minutes, so the silence reaches someone now.
    escalation.start(session, CHECK_IN, period.id,
                     now + timedelta(minutes=int(levels[0]["minutes"])) if who else now)
    return items + list(told.published)


@escalation.due_item(CHECK_IN)
async def _check_in_overdue(session: Any, check_in_id: uuid.UUID) -> escalation.Due | None:
    """A missed check-in nobody has acted on owes the lead organisation's chain."""
    period = await session.get(CheckIn, check_in_id)
    if period is None or period.status != CheckInStatus.MISSED:
        return None
    schedule = await session.get(CheckInSchedule, period.schedule_id)
    case = await session.get(Case, period.case_id)
    if schedule is None or case is None or schedule.status != "active":
        return None
    # Her risk picture: its chain hears of it while her consent releases risk_assessment to
    # the lead (else to the organisation that agreed the schedule; else content-free).
    return escalation.Due("check_in", case.id, case.lead_org_id, case.peacebuilder_id,
                          _alert_payload(period, schedule), category=RISK,
                          alternates=(schedule.org_id,))


# --- digital security assessments -------------------------------------------------------------

def _recommendations(items: list[dict[str, Any]]) -> str | None:
    if len(items) > MAX_RECOMMENDATIONS:
        raise BadInput(f"At most {MAX_RECOMMENDATIONS} recommendations.",
                       field="recommendations")
    out = []
    for item in items:
        what = text(item.get("text"), "recommendations")
        if what is None:
            raise BadInput("Each recommendation says what to do.", field="recommendations")
        try:
            difficulty = Difficulty(str(item.get("difficulty"))).value
        except ValueError as exc:
            raise BadInput("Difficulty is low, medium or high.", field="recommendations") from exc
        out.append({"text": what, "difficulty": difficulty,
                    "resources": text(item.get("resources"), "recommendations")})
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")) if out else None


async def _seal_assessment(ctx: AccessContext, row: SecurityAssessment, pb: uuid.UUID, *,
                           assets: str | None, vulnerabilities: str | None,
                           recommendations: str | None) -> None:
    for column, value, field in (("assets", text(assets, "assets"), "assets"),
                                 ("vulnerabilities", text(vulnerabilities, "vulnerabilities"),
                                  "vulnerabilities"),
                                 ("recommendations", recommendations, "recommendations")):
        setattr(row, column, await sealing.seal(
            ctx, refs.ref("security_assessments", column)(row, pb), value, input_field=field))


async def record_assessment(ctx: AccessContext, *, case_id: uuid.UUID, subject: str,
                            assessed_at: datetime | None, assets: str | None,
                            vulnerabilities: str | None, recommendations: list[dict[str, Any]],
                            follow_up_at: datetime) -> SecurityAssessment:
    """A digital security assessment; its follow-up falls due (and escalates) at its date."""
    case = await risk_case(ctx, case_id, "security_assessment.record")
    try:
        AssessmentSubject(subject)
    except ValueError as exc:
        raise BadInput("Of her or of her organisation.", field="subject") from exc
    now = ctx.clock.now()
    at = assessed_at or now
    if at > now:
        raise BadInput("An assessment is recorded once made.", field="assessedAt")
    if follow_up_at <= now:
        raise BadInput("The follow-up is due ahead of now.", field="followUpAt")
    assert ctx.org_id is not None
    row = SecurityAssessment(id=new_id(), case_id=case.id, org_id=ctx.org_id, subject=subject,
                             assessed_at=at, follow_up_at=follow_up_at, status="open",
                             created_by=ctx.principal.subject, created_at=now, updated_at=now)
    await _seal_assessment(ctx, row, case.peacebuilder_id, assets=assets,
                           vulnerabilities=vulnerabilities,
                           recommendations=_recommendations(recommendations))
    ctx.session.add(row)
    await ctx.session.flush()
    escalation.start(ctx.session, SECURITY_FOLLOW_UP, row.id, follow_up_at)
    event(ctx, case.id, "security_assessment.recorded", row.id,
          {"subject": subject, "follow_up_at": follow_up_at.isoformat(),
           "recommendations": len(recommendations)})
    log(ctx, "security_assessment.record", case, assessment=str(row.id))
    return row


async def follow_up_assessment(ctx: AccessContext, *, assessment_id: uuid.UUID,
                               vulnerabilities: str | None,
                               recommendations: list[dict[str, Any]] | None) -> SecurityAssessment:
    """The follow-up is done (its escalation stops), with what changed; a later follow-up is a
    new assessment (each one owes its own)."""
    await ctx.require("safety_plan", "manage")
    row = await ctx.session.get(SecurityAssessment, assessment_id)
    if row is None:
        raise NotFound()
    case = await risk_case(ctx, row.case_id, "security_assessment.follow_up")
    if row.org_id != ctx.org_id:
        raise NotFound()  # another organisation's assessment: its own to follow up
    if row.status != "open":
        raise Conflict("Its follow-up is already recorded.")
    now = ctx.clock.now()
    pb = case.peacebuilder_id
    if vulnerabilities is not None:
        row.vulnerabilities = await sealing.seal(
            ctx, refs.ref("security_assessments", "vulnerabilities")(row, pb),
            text(vulnerabilities, "vulnerabilities"), input_field="vulnerabilities")
    if recommendations is not None:
        row.recommendations = await sealing.seal(
            ctx, refs.ref("security_assessments", "recommendations")(row, pb),
            _recommendations(recommendations), input_field="recommendations")
    row.status, row.followed_up_at, row.updated_at = "followed_up", now, now
    await ctx.session.flush()
    event(ctx, case.id, "security_assessment.followed_up", row.id,
          {"late": now > row.follow_up_at})
    log(ctx, "security_assessment.follow_up", case, assessment=str(row.id))
    return row


@escalation.due_item(SECURITY_FOLLOW_UP)
async def _follow_up_overdue(session: Any, assessment_id: uuid.UUID) -> escalation.Due | None:
    """An assessment whose follow-up date has passed without a follow-up owes its organisation's
    chain."""
    row = await session.get(SecurityAssessment, assessment_id)
    if row is None or row.status != "open":
        return None
    case = await session.get(Case, row.case_id)
    if case is None:
        return None
    return escalation.Due("security_assessment", case.id, row.org_id, case.peacebuilder_id,
                          {"security_assessment": str(row.id), "case": str(case.id),
                           "follow_up_at": row.follow_up_at.isoformat()},
                          category=RISK, alternates=(case.lead_org_id,))

