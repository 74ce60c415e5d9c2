"""Justice follow-up that reminds: hearings on a proceeding and detention watch.

Permission is the proceedings': `proceeding:manage`, on a case the caller may see, whose `legal`
category her consent releases to it for the declared purpose — otherwise the case, the
proceeding, the hearing or the detention is simply not found (as if it did not exist).

- A hearing reminds its owner (a named person, or the focal points of the organisation that
  scheduled it) 72 h and 24 h before; an outcome not recorded 48 h after it escalates along that
  organisation's chain. The proceeding's `next_hearing_at` is the next scheduled hearing.
- A detention creates three due checks (lawyer access, family visit, medical access), each due
  a time after the detention (24 h, 72 h, 48 h, or the lead organisation's own hours declared in
  tenants/ as `detention_checks:`); one not satisfied by a visit of the right kind by then
  escalates along the case's lead organisation's chain; her release ends them all.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import AccessContext
from app.access.visibility import org_holds_consent
from app.cases import service as cases
from app.consent.service import on_narrowed
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.escalation import service as escalation
from app.her import sealing
from app.incidents import response
from app.incidents.service import event
from app.justice import refs
from app.notify import service as notify
from app.notify.chain import active_with_roles
from app.orgs import repository as orgs_repo
from app.tables.cases import Case
from app.tables.categories import DataCategory
from app.tables.incidents import CaseEvent, Proceeding, ScheduledStep
from app.tables.justice import (
    OUTCOMES,
    SATISFIES,
    CheckKind,
    Detention,
    DetentionCheck,
    DetentionVisit,
    Hearing,
    HearingStatus,
    VisitorCategory,
)
from app.tables.notify import InboxItem
from app.tables.operations import OrganisationSettings
from app.tables.orgs import User

LEGAL = DataCategory.LEGAL.value
HEARING_REMINDER = "hearing_reminder"
HEARING_OUTCOME = "hearing_outcome"
DETENTION_CHECK = "detention_check"
REMIND_BEFORE = (timedelta(hours=72), timedelta(hours=24))
OUTCOME_WITHIN = timedelta(hours=48)
CHECK_WITHIN: dict[CheckKind, timedelta] = {
    CheckKind.LAWYER_ACCESS: timedelta(hours=24),
    CheckKind.MEDICAL_ACCESS: timedelta(hours=48),
    CheckKind.FAMILY_VISIT: timedelta(hours=72),
}
MAX_TEXT = 2_000


async def _legal_case(ctx: AccessContext, case_id: uuid.UUID, action: str) -> Case:
    """The case, if the caller may manage proceedings and her consent releases `legal` to it;
    otherwise not found (logged)."""
    await ctx.require("proceeding", "manage")
    case = await cases.get(ctx, case_id)
    if LEGAL not in (await ctx.released([case.peacebuilder_id])).get(case.peacebuilder_id, ()):
        ctx.deny(action, target_type="Case", target_id=case.id,
                 reason="consent does not release legal",
                 details={"peacebuilder": str(case.peacebuilder_id)})
        raise NotFound()
    return case


def _text(value: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_TEXT:
        raise BadInput(f"At most {MAX_TEXT} characters.", field=field)
    return value.strip()


# --- hearings ---------------------------------------------------------------------------------

async def _owner(ctx: AccessContext, user_id: uuid.UUID | None) -> str | None:
    if user_id is None:
        return None
    user = await orgs_repo.user_in_scope(ctx.session, ctx.own_scope(), user_id)
    if user is None or not user.active:
        raise BadInput("The owner is an active person of your organisation.", field="ownerId")
    return user.subject


def _plan(ctx: AccessContext, hearing: Hearing) -> None:
    """Reminders before the hearing (those still ahead), and the outcome's deadline after it."""
    now = ctx.clock.now()
    for step, before in enumerate(REMIND_BEFORE, start=1):
        if hearing.scheduled_at - before > now:
            ctx.session.add(ScheduledStep(kind=HEARING_REMINDER, subject_id=hearing.id, step=step,
                                          due_at=hearing.scheduled_at - before))
    escalation.start(ctx.session, HEARING_OUTCOME, hearing.id,
                     hearing.scheduled_at + OUTCOME_WITHIN)


async def sync_next_hearing(ctx: AccessContext, proceeding: Proceeding) -> None:
    """`next_hearing_at` is the earliest scheduled hearing still ahead (once it has hearings)."""
    await ctx.session.flush()
    has_any = await ctx.session.scalar(select(func.count(Hearing.id)).where(
        Hearing.proceeding_id == proceeding.id))
    if not has_any:
        return
    proceeding.next_hearing_at = await ctx.session.scalar(select(func.min(Hearing.scheduled_at))
                                                          .where(
        Hearing.proceeding_id == proceeding.id, Hearing.status == HearingStatus.SCHEDULED.value,
        Hearing.scheduled_at >= ctx.clock.now()))


def _hearing_event(ctx: AccessContext, hearing: Hearing, kind: str, **details: Any) -> None:
    event(ctx, hearing.case_id, f"hearing.{kind}", hearing.id,
          {"proceeding": str(hearing.proceeding_id),
           "scheduled_at": hearing.scheduled_at.isoformat(), **details})


async def _new_hearing(ctx: AccessContext, proceeding: Proceeding, scheduled_at: datetime,
                       owner: str | None, rescheduled_from: uuid.UUID | None = None) -> Hearing:
    if scheduled_at <= ctx.clock.now():
        raise BadInput("A hearing is scheduled ahead of now.", field="scheduledAt")
    assert ctx.org_id is not None
    now = ctx.clock.now()
    hearing = Hearing(id=new_id(), case_id=proceeding.case_id, proceeding_id=proceeding.id,
                      org_id=ctx.org_id, scheduled_at=scheduled_at,
                      status=HearingStatus.SCHEDULED.value, owner=owner,
                      rescheduled_from=rescheduled_from, created_by=ctx.principal.subject,
                      created_at=now, updated_at=now)
    ctx.session.add(hearing)
    await ctx.session.flush()
    _plan(ctx, hearing)
    return hearing


async def _proceeding(ctx: AccessContext, proceeding_id: uuid.UUID,
                      action: str) -> tuple[Proceeding, Case]:
    await ctx.require("proceeding", "manage")
    proceeding = await ctx.session.get(Proceeding, proceeding_id)
    if proceeding is None:
        raise NotFound()
    return proceeding, await _legal_case(ctx, proceeding.case_id, action)


def _log(ctx: AccessContext, action: str, case: Case, **details: str) -> None:
    """The access log entry of a change, found by her (`peacebuilder`) in her history."""
    ctx.record(action, target_type="Case", target_id=case.id,
               details={**details, "peacebuilder": str(case.peacebuilder_id)})


async def schedule_hearing(ctx: AccessContext, *, proceeding_id: uuid.UUID,
                           scheduled_at: datetime, owner_id: uuid.UUID | None) -> Hearing:
    """A dated hearing on a proceeding: reminded before, its outcome owed after."""
    proceeding, case = await _proceeding(ctx, proceeding_id, "hearing.schedule")
    hearing = await _new_hearing(ctx, proceeding, scheduled_at, await _owner(ctx, owner_id))
    await sync_next_hearing(ctx, proceeding)
    _hearing_event(ctx, hearing, "scheduled")
    _log(ctx, "hearing.schedule", case, hearing=str(hearing.id), proceeding=str(proceeding.id))
    return hearing


@response.on_next_hearing
async def hearing_from_proceeding(ctx: AccessContext, proceeding: Proceeding,
                                  at: datetime) -> None:
    """`recordProceeding(nextHearingAt:)` schedules that hearing (once), so it reminds too."""
    if at <= ctx.clock.now():
        return
    same = await ctx.session.scalar(select(Hearing.id).where(
        Hearing.proceeding_id == proceeding.id, Hearing.scheduled_at == at,
        Hearing.status == HearingStatus.SCHEDULED.value).limit(1))
    if same is None:
        hearing = await _new_hearing(ctx, proceeding, at, None)
        _hearing_event(ctx, hearing, "scheduled")
    await sync_next_hearing(ctx, proceeding)


async def _scheduled(ctx: AccessContext, hearing_id: uuid.UUID,
                     action: str) -> tuple[Hearing, Proceeding, Case]:
    await ctx.require("proceeding", "manage")
    hearing = await ctx.session.get(Hearing, hearing_id)
    if hearing is None:
        raise NotFound()
    proceeding, case = await _proceeding(ctx, hearing.proceeding_id, action)
    if hearing.status != HearingStatus.SCHEDULED.value:
        raise Conflict(f"The hearing is {hearing.status}.")
    return hearing, proceeding, case


async def reschedule_hearing(ctx: AccessContext, hearing_id: uuid.UUID,
                             scheduled_at: datetime) -> Hearing:
    """The hearing moves: it is closed as rescheduled and a new one (its own reminders and
    deadline) takes its place, so nothing of the old date fires."""
    hearing, proceeding, case = await _scheduled(ctx, hearing_id, "hearing.reschedule")
    moved = await _new_hearing(ctx, proceeding, scheduled_at, hearing.owner, hearing.id)
    hearing.status = HearingStatus.RESCHEDULED.value
    hearing.updated_at = ctx.clock.now()
    await sync_next_hearing(ctx, proceeding)
    _hearing_event(ctx, hearing, "rescheduled", hearing_to=str(moved.id))
    _hearing_event(ctx, moved, "scheduled", hearing_from=str(hearing.id))
    _log(ctx, "hearing.reschedule", case, hearing=str(hearing.id), new_hearing=str(moved.id))
    return moved


async def cancel_hearing(ctx: AccessContext, hearing_id: uuid.UUID) -> Hearing:
    hearing, proceeding, case = await _scheduled(ctx, hearing_id, "hearing.cancel")
    hearing.status = HearingStatus.CANCELLED.value
    hearing.updated_at = ctx.clock.now()
    await sync_next_hearing(ctx, proceeding)
    _hearing_event(ctx, hearing, "cancelled")
    _log(ctx, "hearing.cancel", case, hearing=str(hearing.id))
    return hearing


async def record_outcome(ctx: AccessContext, hearing_id: uuid.UUID, outcome: str,
                         notes: str | None) -> Hearing:
    """How the hearing went (held, adjourned, not held), with notes sealed: stops its
    escalation."""
    hearing, proceeding, case = await _scheduled(ctx, hearing_id, "hearing.outcome")
    if outcome not in {o.value for o in OUTCOMES}:
        raise BadInput("Outcome is held, adjourned or not_held.", field="outcome")
    now = ctx.clock.now()
    if now < hearing.scheduled_at:
        raise BadInput("An outcome is recorded once the hearing's time has come (cancel or "
                       "reschedule a hearing ahead).", field="outcome")
    hearing.outcome = await sealing.seal(ctx, refs.hearing_ref(hearing, case.peacebuilder_id),
                                         _text(notes, "notes"), input_field="notes")
    hearing.status = outcome
    hearing.outcome_recorded_at = now
    hearing.updated_at = now
    await sync_next_hearing(ctx, proceeding)
    _hearing_event(ctx, hearing, "outcome_recorded", outcome=outcome,
                   late=now > hearing.scheduled_at + OUTCOME_WITHIN)
    # IDs only: the outcome is legal-category data, and auditors read this log.
    _log(ctx, "hearing.outcome", case, hearing=str(hearing.id))
    return hearing


async def remind_hearing(session: AsyncSession, step: ScheduledStep,
                         now: datetime) -> list[InboxItem]:
    """A reminder before a hearing still scheduled: to its named owner while active, else to
    the active focal points of the organisation that scheduled it (IDs and codes only)."""
    hearing = await session.get(Hearing, step.subject_id)
    if hearing is None or hearing.status != HearingStatus.SCHEDULED.value \
            or hearing.scheduled_at <= now:
        return []
    case = await session.get(Case, hearing.case_id)
    if case is None:
        return []
    if not await _legal_covers(session, case, hearing.org_id, now):
        # Her consent no longer releases `legal` to the hearing's organisation: a reminder would
        # tell it when she is in court. It stops; the lead organisation is told once (IDs only).
        session.add(CaseEvent(case_id=hearing.case_id, kind="hearing.reminder_withheld",
                              subject_id=hearing.id, actor="system", org_id=None,
                              details={"reason": "consent"}, at=now))
        return await _flag_uncovered_hearing(session, hearing, case, now)
    who: list[str] = []
    if hearing.owner and hearing.owner.startswith("user:"):
        active = await session.scalar(select(User.active).where(
            User.id == uuid.UUID(hearing.owner.split(":", 1)[1])))
        who = [hearing.owner] if active else []
    if not who:
        who = await active_with_roles(session, hearing.org_id, ("focal_point",))
    hours = int((hearing.scheduled_at - now).total_seconds() // 3600)
    session.add(CaseEvent(case_id=hearing.case_id, kind="hearing.reminded", subject_id=hearing.id,
                          actor="system", org_id=None,
                          details={"recipients": len(who), "hours_before": hours}, at=now))
    return await notify.notify(
        session, [(s, hearing.org_id) for s in who], kind="hearing_due", subject_id=hearing.id,
        case_id=hearing.case_id, at=now,
        payload={"hearing": str(hearing.id), "case": str(hearing.case_id),
                 "proceeding": str(hearing.proceeding_id),
                 "scheduled_at": hearing.scheduled_at.isoformat(), "hours_before": hours})


@escalation.due_item(HEARING_OUTCOME)
async def _outcome_overdue(session: Any, hearing_id: uuid.UUID) -> escalation.Due | None:
    """A hearing whose outcome is still not recorded owes its organisation's chain."""
    hearing = await session.get(Hearing, hearing_id)
    if hearing is None or hearing.status != HearingStatus.SCHEDULED.value:
        return None
    case = await session.get(Case, hearing.case_id)
    if case is None:
        return None
    payload = {"hearing": str(hearing.id), "case": str(case.id),
               "proceeding": str(hearing.proceeding_id),
               "scheduled_at": hearing.scheduled_at.isoformat()}
    return await _legal_due(session, "hearing", case, (hearing.org_id, case.lead_org_id),
                            payload)


# --- detention watch --------------------------------------------------------------------------

async def check_deadlines(session: AsyncSession, org_id: uuid.UUID) -> dict[CheckKind, timedelta]:
    """How long after a detention each check falls due: the lead organisation's own hours
    (declared in tenants/, `detention_checks:`), else the defaults."""
    declared = await session.scalar(select(OrganisationSettings.detention_checks).where(
        OrganisationSettings.org_id == org_id)) or {}
    return {kind: timedelta(hours=int(declared[kind.value])) if kind.value in declared
            else within for kind, within in CHECK_WITHIN.items()}


async def record_detention(ctx: AccessContext, *, case_id: uuid.UUID, detained_at: datetime,
                           place: str | None, proceeding_id: uuid.UUID | None) -> Detention:
    """She is detained: the watch starts, with its three due checks."""
    case = await _legal_case(ctx, case_id, "detention.record")
    now = ctx.clock.now()
    if detained_at > now:
        raise BadInput("A detention is recorded once it has happened.", field="detainedAt")
    if proceeding_id is not None:
        proceeding = await ctx.session.get(Proceeding, proceeding_id)
        if proceeding is None or proceeding.case_id != case.id:
            raise NotFound()
    open_one = await ctx.session.scalar(select(Detention.id).where(
        Detention.case_id == case.id, Detention.status == "detained").limit(1))
    if open_one is not None:
        raise Conflict("She is recorded as detained on this case; record her release first.")
    assert ctx.org_id is not None
    detention = Detention(id=new_id(), case_id=case.id, proceeding_id=proceeding_id,
                          org_id=ctx.org_id, detained_at=detained_at, status="detained",
                          created_by=ctx.principal.subject, created_at=now)
    detention.place = await sealing.seal(ctx, refs.detention_ref(detention, case.peacebuilder_id),
                                         _text(place, "place"), input_field="place")
    ctx.session.add(detention)
    await ctx.session.flush()
    deadlines = await check_deadlines(ctx.session, case.lead_org_id)
    for kind, within in deadlines.items():
        check = DetentionCheck(id=new_id(), case_id=case.id, detention_id=detention.id,
                               kind=kind.value, due_at=detained_at + within, status="pending",
                               created_at=now)
        ctx.session.add(check)
        await ctx.session.flush()
        escalation.start(ctx.session, DETENTION_CHECK, check.id, check.due_at)
    event(ctx, case.id, "detention_watch.started", detention.id,
          {"detained_at": detained_at.isoformat(),
           "checks": {k.value: (detained_at + w).isoformat() for k, w in deadlines.items()}})
    _log(ctx, "detention.record", case, detention=str(detention.id))
    return detention


async def _detention(ctx: AccessContext, detention_id: uuid.UUID,
                     action: str) -> tuple[Detention, Case]:
    await ctx.require("proceeding", "manage")
    detention = await ctx.session.get(Detention, detention_id)
    if detention is None:
        raise NotFound()
    case = await _legal_case(ctx, detention.case_id, action)
    if detention.status != "detained":
        raise Conflict("She has been released: the watch has ended.")
    return detention, case


async def record_visit(ctx: AccessContext, *, detention_id: uuid.UUID, visitor: str,
                       visited_at: datetime, satisfies: str | None,
                       notes: str | None) -> DetentionVisit:
    """A visit to her in detention; one of the right kind satisfies its check (even late), which
    stops that check's escalation."""
    detention, case = await _detention(ctx, detention_id, "detention.visit")
    try:
        category = VisitorCategory(visitor)
    except ValueError as exc:
        raise BadInput("Unknown visitor category.", field="visitor") from exc
    now = ctx.clock.now()
    if not detention.detained_at <= visited_at <= now:
        raise BadInput("A visit is recorded between her detention and now.", field="visitedAt")
    fits = SATISFIES.get(category)
    if satisfies is not None and (fits is None or fits.value != satisfies):
        raise BadInput("A lawyer's visit satisfies lawyer access, a family visit the family "
                       "visit, a medical visit medical access; other visits satisfy none.",
                       field="satisfies")
    assert ctx.org_id is not None
    visit = DetentionVisit(id=new_id(), case_id=case.id, detention_id=detention.id,
                           org_id=ctx.org_id, visitor=category.value, visited_at=visited_at,
                           satisfies=fits.value if fits else None,
                           recorded_by=ctx.principal.subject, recorded_at=now)
    visit.notes = await sealing.seal(ctx, refs.visit_ref(visit, case.peacebuilder_id),
                                     _text(notes, "notes"), input_field="notes")
    ctx.session.add(visit)
    await ctx.session.flush()
    event(ctx, case.id, "detention_visit.recorded", visit.id,
          {"detention": str(detention.id), "visitor": category.value,
           "satisfies": visit.satisfies, "visited_at": visited_at.isoformat()})
    if fits is not None:
        check = await ctx.session.scalar(select(DetentionCheck).where(
            DetentionCheck.detention_id == detention.id, DetentionCheck.kind == fits.value))
        if check is not None and check.status == "pending":
            check.status, check.satisfied_at, check.visit_id = "satisfied", visited_at, visit.id
            event(ctx, case.id, "detention_check.satisfied", check.id,
                  {"detention": str(detention.id), "check": check.kind, "visit": str(visit.id),
                   "late": visited_at > check.due_at})
    _log(ctx, "detention.visit", case, detention=str(detention.id), visit=str(visit.id))
    return visit


async def release(ctx: AccessContext, detention_id: uuid.UUID,
                  released_at: datetime | None) -> Detention:
    """She is released: the watch and all its checks still pending end."""
    detention, case = await _detention(ctx, detention_id, "detention.release")
    now = ctx.clock.now()
    at = released_at or now
    if not detention.detained_at <= at <= now:
        raise BadInput("A release is recorded between her detention and now.", field="releasedAt")
    detention.status, detention.released_at = "released", at
    pending = list(await ctx.session.scalars(select(DetentionCheck).where(
        DetentionCheck.detention_id == detention.id, DetentionCheck.status == "pending")))
    for check in pending:
        check.status = "ended"
    event(ctx, case.id, "detention_watch.released", detention.id,
          {"released_at": at.isoformat(), "ended": sorted(c.kind for c in pending)})
    _log(ctx, "detention.release", case, detention=str(detention.id))
    return detention


@escalation.due_item(DETENTION_CHECK)
async def _check_overdue(session: Any, check_id: uuid.UUID) -> escalation.Due | None:
    """A check not satisfied by its deadline, while she is detained, owes the lead
    organisation's chain."""
    check = await session.get(DetentionCheck, check_id)
    if check is None or check.status != "pending":
        return None
    detention = await session.get(Detention, check.detention_id)
    case = await session.get(Case, check.case_id)
    if detention is None or detention.status != "detained" or case is None:
        return None
    payload = {"detention_check": str(check.id), "check": check.kind,
               "detention": str(detention.id), "case": str(case.id),
               "due_at": check.due_at.isoformat()}
    return await _legal_due(session, "detention_check", case,
                            (case.lead_org_id, detention.org_id), payload)


# --- when her consent no longer releases `legal` ------------------------------------------------

async def _legal_covers(session: AsyncSession, case: Case, org_id: uuid.UUID,
                        now: datetime) -> bool:
    """Whether a live grant of hers releases `legal` to the organisation (any purpose)."""
    return await org_holds_consent(session, org_id, case.peacebuilder_id, now, category=LEGAL)


async def _legal_due(session: AsyncSession, what: str, case: Case,
                     orgs: tuple[uuid.UUID, uuid.UUID], payload: dict[str, Any]
                     ) -> escalation.Due:
    """A justice item (category `legal`): its escalation follows the first of `orgs` that her
    consent still releases `legal` to, else the first one's chain told only that something on
    the case needs attention (`escalation.fire` decides, at the step's time)."""
    return escalation.Due(what, case.id, orgs[0], case.peacebuilder_id, payload,
                          category=LEGAL, alternates=orgs[1:])


async def _flag_uncovered_hearing(session: AsyncSession, hearing: Hearing, case: Case,
                                  now: datetime) -> list[InboxItem]:
    """Once per hearing: the lead organisation (when it is not the hearing's own, and her
    consent still releases `legal` to it) is told the hearing's organisation can no longer see
    it, as for a task whose owner she cut off."""
    if case.lead_org_id == hearing.org_id \
            or not await _legal_covers(session, case, case.lead_org_id, now):
        return []
    flagged = await session.scalar(select(CaseEvent.id).where(
        CaseEvent.kind == "hearing.owner_uncovered", CaseEvent.subject_id == hearing.id))
    if flagged is not None:
        return []
    session.add(CaseEvent(case_id=case.id, kind="hearing.owner_uncovered", subject_id=hearing.id,
                          actor="system", org_id=None, details={"owner": str(hearing.org_id)},
                          at=now))
    return await notify.notify(
        session, [(s, case.lead_org_id) for s in await active_with_roles(
            session, case.lead_org_id, ("focal_point",))],
        kind="task_owner_uncovered", subject_id=hearing.id, case_id=case.id, at=now,
        payload={"hearing": str(hearing.id), "case": str(case.id),
                 "owner": str(hearing.org_id)})


@on_narrowed
async def flag_uncovered_hearings(ctx: AccessContext, pb_id: uuid.UUID) -> None:
    """Her consent now releases less: each scheduled hearing of an organisation that can no
    longer see `legal` is flagged to the lead organisation (its reminders stop)."""
    rows = (await ctx.session.execute(select(Hearing, Case).join(
        Case, Case.id == Hearing.case_id).where(
        Case.peacebuilder_id == pb_id, Hearing.status == HearingStatus.SCHEDULED.value))).all()
    now = ctx.clock.now()
    for hearing, case in rows:
        if not await _legal_covers(ctx.session, case, hearing.org_id, now):
            await _flag_uncovered_hearing(ctx.session, hearing, case, now)
