"""Joint risk assessments: drafted by the case's lead organisation, shared with her, current once
she (or her network's focal point for her) agrees or contests — or, where she has no account and
no network, once a second focal point confirms it with a record of how she was consulted.

A current assessment sets the case's `risk_level`, supersedes the one before, and owes a review
by its review date: the review is a due item (`risk_review`) that alerts the lead organisation's
chain at that date and escalates while no newer assessment is current. A new high or critical
incident opens a reassessment draft that is due the same way (docs/decisions/0031).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from app.access.context import AccessContext
from app.cases import service as cases
from app.confirmations import service as confirmations
from app.consent.service import Caller, standing
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.escalation import service as escalation
from app.her import sealing
from app.her.networks import networks_of
from app.her.notices import NoticeKind, tell_her
from app.incidents import service as incidents
from app.incidents.service import event
from app.notify import service as notify
from app.risk.refs import assessment_ref, threat_ref
from app.tables.cases import Case, RiskLevel
from app.tables.categories import RISK_CATEGORY
from app.tables.confirmations import Confirmation
from app.tables.consent import PeacebuilderAccount
from app.tables.incidents import Incident, ScheduledStep
from app.tables.risk import (
    ANSWERED,
    AnsweredBy,
    AssessmentStatus,
    ConsultedHow,
    Rating,
    RiskAssessment,
    RiskThreat,
)

MAX_TEXT = 20_000
MAX_THREATS = 30
MAX_REVIEW = timedelta(days=366)
# A reassessment started by a new high or critical incident is owed within this time.
REASSESS_WITHIN = timedelta(hours=72)
CONFIRM_ASSESSMENT = "risk_assessment.current"
RISK_REVIEW = "risk_review"
# The review as the lead's task: its focal points are told this long before the review date
# (at once when it is nearer); the review date itself, missed, escalates (RISK_REVIEW).
RISK_REVIEW_TASK = "risk_review_due"
REVIEW_NOTICE = timedelta(days=7)
RISK_REASSESSMENT = "risk_reassessment"
TEXT_FIELDS = ("vulnerabilities", "capacities", "reasoning", "context_notes", "her_analysis")
THREAT_FIELDS = ("facts", "pattern", "objective", "source_as_reported", "feasibility")


@dataclass(frozen=True, slots=True)
class ThreatIn:
    likelihood: str
    impact: str
    facts: str | None = None
    pattern: str | None = None
    objective: str | None = None
    source_as_reported: str | None = None
    feasibility: str | None = None


@dataclass(frozen=True, slots=True)
class DraftIn:
    level: str
    review_at: datetime
    threats: list[ThreatIn]
    vulnerabilities: str | None = None
    capacities: str | None = None
    reasoning: str | None = None
    context_notes: str | None = None
    her_analysis: str | None = None


def _text(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_TEXT:
        raise BadInput(f"At most {MAX_TEXT} characters.", field=field)
    return value.strip() or None


def _rating(value: str, field: str) -> str:
    if value not in {r.value for r in Rating}:
        raise BadInput("Low, medium, high or critical.", field=field)
    return value


async def _lead_case(ctx: AccessContext, case_id: uuid.UUID) -> Case:
    """A case the caller's organisation leads and whose risk assessments her consent releases
    to it (you may not write what you may not read): anything else is not found."""
    await ctx.require("risk_assessment", "manage")
    case = await cases.get(ctx, case_id)
    if case.lead_org_id != ctx.org_id:
        raise NotFound()
    if RISK_CATEGORY.value not in (await ctx.released([case.peacebuilder_id])).get(
            case.peacebuilder_id, ()):
        ctx.deny("risk_assessment.write", target_type="Case", target_id=case.id,
                 reason="consent does not cover risk_assessment")
        raise BadInput("Her consent does not cover risk assessments for this purpose.",
                       field="caseId")
    return case


async def _assessment(ctx: AccessContext, assessment_id: uuid.UUID) -> tuple[RiskAssessment, Case]:
    row = await ctx.session.get(RiskAssessment, assessment_id)
    if row is None:
        raise NotFound()
    return row, await _lead_case(ctx, row.case_id)


async def draft(ctx: AccessContext, case_id: uuid.UUID, spec: DraftIn) -> RiskAssessment:
    """Write the case's draft: a new one, or the open draft filled (a reassessment the system
    started, or an earlier draft not yet shared). Its threats are replaced as given."""
    case = await _lead_case(ctx, case_id)
    level = _rating(spec.level, "level")
    now = ctx.clock.now()
    if not now < spec.review_at <= now + MAX_REVIEW:
        raise BadInput("A review date is required: in the future, within a year.",
                       field="reviewAt")
    if not spec.threats or len(spec.threats) > MAX_THREATS:
        raise BadInput(f"Name the threats she faces (1 to {MAX_THREATS}).", field="threats")
    row = await ctx.session.scalar(select(RiskAssessment).where(
        RiskAssessment.case_id == case.id,
        RiskAssessment.status == AssessmentStatus.DRAFT.value))
    if row is None:
        row = RiskAssessment(id=new_id(), case_id=case.id, org_id=case.lead_org_id,
                             status=AssessmentStatus.DRAFT.value, trigger="manual",
                             created_by=ctx.principal.subject, created_at=now)
        ctx.session.add(row)
    else:
        await ctx.session.execute(delete(RiskThreat).where(RiskThreat.assessment_id == row.id))
    row.level, row.review_at, row.updated_at = level, spec.review_at, now
    pb = case.peacebuilder_id
    for name in TEXT_FIELDS:
        setattr(row, name, await sealing.seal(ctx, assessment_ref(row, pb, name),
                                              _text(getattr(spec, name), name)))
    await ctx.session.flush()
    for i, t in enumerate(spec.threats):
        threat = RiskThreat(id=new_id(), case_id=case.id, assessment_id=row.id, position=i,
                            likelihood=_rating(t.likelihood, f"threats.{i}.likelihood"),
                            impact=_rating(t.impact, f"threats.{i}.impact"))
        for name in THREAT_FIELDS:
            setattr(threat, name, await sealing.seal(
                ctx, threat_ref(threat, pb, name), _text(getattr(t, name), f"threats.{i}.{name}")))
        ctx.session.add(threat)
    await ctx.session.flush()
    event(ctx, case.id, "risk_assessment.drafted", row.id,
          {"level": level, "threats": len(spec.threats)})
    ctx.record("risk_assessment.draft", target_type="Case", target_id=case.id,
               details={"risk_assessment": str(row.id), "threats": len(spec.threats)})
    return row


async def share(ctx: AccessContext, assessment_id: uuid.UUID) -> RiskAssessment:
    """The draft goes to her for her answer (she is told; without a login, her networks)."""
    row, case = await _assessment(ctx, assessment_id)
    if row.status != AssessmentStatus.DRAFT.value:
        raise Conflict(f"The assessment is {row.status}.")
    if not await ctx.session.scalar(select(RiskThreat.id).where(
            RiskThreat.assessment_id == row.id).limit(1)):
        raise BadInput("Write the threats before sharing it with her.", field="id")
    row.status, row.shared_at = AssessmentStatus.SHARED_WITH_HER.value, ctx.clock.now()
    row.updated_at = row.shared_at
    event(ctx, case.id, "risk_assessment.shared", row.id)
    ctx.record("risk_assessment.share", target_type="Case", target_id=case.id,
               details={"risk_assessment": str(row.id)})
    await tell_her(ctx, case.peacebuilder_id, NoticeKind.RISK_ASSESSMENT_SHARED,
                   case_id=case.id, subject_id=row.id)
    return row


async def answer(ctx: AccessContext, assessment_id: uuid.UUID, *, agree: bool,
                 her_view: str | None, her_analysis: str | None) -> RiskAssessment:
    """She (signed in herself) or her network's focal point for her agrees or contests; either
    makes it current. Contesting keeps her view beside the organisation's."""
    row = await ctx.session.get(RiskAssessment, assessment_id)
    if row is None:
        raise NotFound()
    case = await ctx.session.get(Case, row.case_id)
    assert case is not None
    who = await standing(ctx, case.peacebuilder_id, action="risk_assessment.answer")
    if who.caller not in (Caller.HERSELF, Caller.NETWORK):
        ctx.deny("risk_assessment.answer", target_type="Peacebuilder",
                 target_id=case.peacebuilder_id, reason="only she or her network")
        raise NotFound()
    if who.caller is Caller.NETWORK:
        # Speaking for her makes it current and opens the gates (public acts, referrals): as
        # for her consent, anyone but she herself answers only after a recent second factor.
        ctx.require_recent_mfa("risk_assessment.answer", target_type="Peacebuilder",
                               target_id=case.peacebuilder_id)
    if row.status != AssessmentStatus.SHARED_WITH_HER.value:
        raise Conflict(f"The assessment is {row.status}.")
    view = _text(her_view, "herView")
    if not agree and view is None:
        raise BadInput("Say how you see it: your view is kept beside theirs.", field="herView")
    pb = case.peacebuilder_id
    row.her_view = await sealing.seal(ctx, assessment_ref(row, pb, "her_view"), view)
    analysis = _text(her_analysis, "herAnalysis")
    if analysis is not None:
        row.her_analysis = await sealing.seal(ctx, assessment_ref(row, pb, "her_analysis"),
                                              analysis)
    row.answered_by = (AnsweredBy.HERSELF if who.caller is Caller.HERSELF
                       else AnsweredBy.NETWORK_FOCAL_POINT).value
    row.answered_by_subject = ctx.principal.subject
    status = AssessmentStatus.AGREED if agree else AssessmentStatus.CONTESTED
    await _make_current(ctx, row, case, status)
    return row


async def confirm_without_her(ctx: AccessContext, assessment_id: uuid.UUID, *,
                              consulted_how: str) -> tuple[Confirmation, RiskAssessment]:
    """She has no account and no network: a focal point records how she was consulted and a
    second focal point confirms (the two-person rule); it becomes current (agreed) then.
    Returns the confirmation asked for and the assessment waiting on it."""
    row, case = await _assessment(ctx, assessment_id)
    if row.status != AssessmentStatus.SHARED_WITH_HER.value:
        raise Conflict(f"The assessment is {row.status}.")
    if consulted_how not in {c.value for c in ConsultedHow}:
        raise BadInput("How was she consulted?", field="consultedHow")
    pb = case.peacebuilder_id
    account = await ctx.session.scalar(select(PeacebuilderAccount.active).where(
        PeacebuilderAccount.peacebuilder_id == pb))
    if account or (await networks_of(ctx.session, [pb]))[pb]:
        ctx.deny("risk_assessment.confirm_without_her", target_type="Case", target_id=case.id,
                 reason="she or her network can answer")
        raise BadInput("She (or her network's focal point) answers this herself.",
                       field="id")
    row.consulted_how = consulted_how
    asked = await confirmations.request(ctx, action=CONFIRM_ASSESSMENT, target_id=row.id,
                                        peacebuilder_id=pb)
    row.confirmation_id = asked.id
    ctx.record("risk_assessment.confirm_requested", target_type="Case", target_id=case.id,
               details={"risk_assessment": str(row.id), "consulted_how": consulted_how,
                        "confirmation": str(asked.id)})
    return asked, row


@confirmations.on_confirmed(CONFIRM_ASSESSMENT)
async def _second_person_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    row = await ctx.session.get(RiskAssessment, c.target_id)
    if row is None or row.status != AssessmentStatus.SHARED_WITH_HER.value:
        return
    case = await ctx.session.get(Case, row.case_id)
    assert case is not None
    row.answered_by, row.answered_by_subject = AnsweredBy.TWO_PERSON.value, ctx.principal.subject
    await _make_current(ctx, row, case, AssessmentStatus.AGREED)


async def _make_current(ctx: AccessContext, row: RiskAssessment, case: Case,
                        status: AssessmentStatus) -> None:
    now = ctx.clock.now()
    before = list(await ctx.session.scalars(select(RiskAssessment).where(
        RiskAssessment.case_id == case.id, RiskAssessment.id != row.id,
        RiskAssessment.status.in_(ANSWERED))))
    for old in before:
        old.status, old.superseded_at, old.superseded_by = (
            AssessmentStatus.SUPERSEDED.value, now, row.id)
        old.updated_at = now
        event(ctx, case.id, "risk_assessment.superseded", old.id, {"superseded_by": str(row.id)})
    row.status, row.answered_at, row.updated_at = status.value, now, now
    if case.risk_level != row.level:
        # On the timeline like any risk change: closing a case that was high or critical keeps
        # the two-person rule after its risk is lowered (app/incidents/closure.py).
        event(ctx, case.id, "case.risk_changed", None, {"from": case.risk_level, "to": row.level})
        case.risk_level, case.updated_at = row.level, now
    # Its review is the lead's task ahead of its date, and owed at its date: the lead
    # organisation's chain, until a newer one is current.
    ctx.session.add(ScheduledStep(kind=RISK_REVIEW_TASK, subject_id=row.id, step=1,
                                  due_at=max(row.review_at - REVIEW_NOTICE, now)))
    escalation.start(ctx.session, RISK_REVIEW, row.id, row.review_at)
    details = {"status": status.value, "level": row.level, "answered_by": row.answered_by,
               **({"consulted_how": row.consulted_how} if row.consulted_how else {})}
    event(ctx, case.id, "risk_assessment.current", row.id, details)
    ctx.record(f"risk_assessment.{status.value}", target_type="Case", target_id=case.id,
               details={"risk_assessment": str(row.id), **details})
    await tell_her(ctx, case.peacebuilder_id, NoticeKind.RISK_ASSESSMENT_CURRENT,
                   case_id=case.id, subject_id=row.id)


@incidents.on_reported
async def _on_incident(ctx: AccessContext, case: Case, incident: Incident) -> None:
    await on_serious_incident(ctx, case, incident.id, incident.severity)


async def on_serious_incident(ctx: AccessContext, case: Case, incident_id: uuid.UUID,
                              severity: str) -> None:
    """A new high or critical incident: a reassessment draft, owed within REASSESS_WITHIN (a due
    item on the lead organisation's chain), its focal points told (IDs only)."""
    if severity not in (RiskLevel.HIGH.value, RiskLevel.CRITICAL.value):
        return
    now = ctx.clock.now()
    row = await ctx.session.scalar(select(RiskAssessment).where(
        RiskAssessment.case_id == case.id,
        RiskAssessment.status == AssessmentStatus.DRAFT.value))
    if row is None:
        row = RiskAssessment(id=new_id(), case_id=case.id, org_id=case.lead_org_id,
                             status=AssessmentStatus.DRAFT.value, level=case.risk_level,
                             review_at=now + REASSESS_WITHIN, created_by="system",
                             created_at=now, updated_at=now)
        ctx.session.add(row)
    owed = row.trigger == "incident"  # already owed by an earlier serious incident
    row.trigger, row.trigger_incident_id = "incident", incident_id
    await ctx.session.flush()
    if not owed:
        escalation.start(ctx.session, RISK_REASSESSMENT, row.id, now + REASSESS_WITHIN)
    payload = {"risk_assessment": str(row.id), "case": str(case.id), "incident": str(incident_id)}
    event(ctx, case.id, "risk_assessment.reassessment_started", row.id,
          {"incident": str(incident_id), "severity": severity})
    await notify.notify(ctx, [(s, case.lead_org_id) for s in await notify.focal_points(
        ctx.session, case.lead_org_id)], kind="risk_reassessment_due", subject_id=row.id,
        case_id=case.id, at=now, payload=payload)


async def review_task(session: Any, step: Any, now: datetime) -> list[Any]:
    """The review falls due (a scheduler step, claimed once across replicas): while the
    assessment is still the current one and the case open, the lead organisation's focal points
    get the task (IDs and the date only)."""
    row = await session.get(RiskAssessment, step.subject_id)
    if row is None or row.status not in ANSWERED:
        return []
    due = await _due(session, row, "risk_review")
    if due is None:
        return []
    items: list[Any] = await notify.notify(
        session, [(s, due.org_id) for s in await notify.focal_points(session, due.org_id)],
        kind=RISK_REVIEW_TASK, subject_id=row.id, case_id=due.case_id, at=now,
        payload=due.payload)
    return items


@escalation.due_item(RISK_REVIEW)
async def _review_due(session: Any, assessment_id: uuid.UUID) -> escalation.Due | None:
    """A current assessment past its review date owes the lead organisation's chain — until a
    newer one is current."""
    row = await session.get(RiskAssessment, assessment_id)
    if row is None or row.status not in ANSWERED:
        return None
    return await _due(session, row, "risk_review")


@escalation.due_item(RISK_REASSESSMENT)
async def _reassessment_due(session: Any, assessment_id: uuid.UUID) -> escalation.Due | None:
    """A reassessment a serious incident started, not current by its deadline, owes the lead
    organisation's chain until it is (agreed or contested) or replaced."""
    row = await session.get(RiskAssessment, assessment_id)
    if row is None or row.status in (*ANSWERED, AssessmentStatus.SUPERSEDED.value):
        return None
    return await _due(session, row, "risk_reassessment")


async def _due(session: Any, row: RiskAssessment, what: str) -> escalation.Due | None:
    case = await session.get(Case, row.case_id)
    if case is None or case.status == "closed":
        return None
    return escalation.Due(what, case.id, case.lead_org_id, case.peacebuilder_id,
                          {"risk_assessment": str(row.id), "case": str(case.id),
                           "review_at": row.review_at.isoformat()})


async def current(session: Any, case_id: uuid.UUID) -> RiskAssessment | None:
    """The case's current assessment (agreed or contested, not superseded)."""
    return (await session.scalars(select(RiskAssessment).where(
        RiskAssessment.case_id == case_id, RiskAssessment.status.in_(ANSWERED))
        .order_by(RiskAssessment.answered_at.desc()).limit(1))).first()

