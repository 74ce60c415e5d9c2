"""Mutations of safety check-ins and digital security assessments.

Staff need `safety_plan:manage` (focal points, caseworkers) on a case whose `risk_assessment`
category her consent releases to them for the declared purpose; otherwise what they name is not
found. Checking in is hers (signed in), or her network's focal point's for her.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from app.checkins import service as checkins
from app.read import children
from app.tables import checkins as models
from schema import ids, permissions
from schema.checkins.types import (
    AssessmentSubject,
    CheckIn,
    CheckInBy,
    CheckInChannel,
    CheckInPayload,
    CheckInSchedule,
    CheckInSchedulePayload,
    MissedCheckInAction,
    MissedCheckInResolution,
    RecommendationDifficulty,
    ScheduleAgreedVia,
    SecurityAssessment,
    SecurityAssessmentPayload,
)
from schema.common import guarded
from schema.context import Info
from schema.gated import want_of
from schema.permissions import Who

PERMISSION = ("Requires `safety_plan:manage` and her consent releasing `risk_assessment` to your "
              "organisation for the declared purpose (otherwise NOT_FOUND, as for a missing "
              "record). Logged.")


@strawberry.input(description="A check-in schedule agreed with her.")
class AgreeCheckInScheduleInput:
    case_id: strawberry.ID = strawberry.field(description="The Case.")
    interval_minutes: int = strawberry.field(description="Minutes between check-ins (15 to "
                                                         "44640).")
    channel: CheckInChannel = strawberry.field(description="How she checks in.")
    agreed_via: ScheduleAgreedVia = strawberry.field(description="How it was agreed with her.")
    missed_action: MissedCheckInAction = strawberry.field(
        description="What is done when she misses a check-in.")
    missed_action_notes: str | None = strawberry.field(default=None, description=(
        "What exactly was agreed (category `risk_assessment`, sealed; required for OTHER)."))
    safety_contact: str | None = strawberry.field(default=None, description=(
        "Her safety contact (category `contact`, sealed)."))
    first_due_at: datetime | None = strawberry.field(default=None, description=(
        "When the first check-in is due; default: one interval from now."))


@strawberry.input(description="She (or her safety contact) checks in.")
class CheckInInput:
    schedule_id: strawberry.ID = strawberry.field(description="The CheckInSchedule.")
    by: CheckInBy = strawberry.field(default=models.CheckInBy.HER, description=(
        "Who checked in: HER (always, when she is signed in herself) or her SAFETY_CONTACT "
        "(recorded by her network's focal point)."))


@strawberry.input(description="A focal point acted on a missed check-in.")
class ResolveMissedCheckInInput:
    check_in_id: strawberry.ID = strawberry.field(description="The missed CheckIn.")
    resolution: MissedCheckInResolution = strawberry.field(description="What was found.")


@strawberry.input(description="End a check-in schedule.")
class EndCheckInScheduleInput:
    schedule_id: strawberry.ID = strawberry.field(description="The CheckInSchedule.")


@strawberry.input(description="A recommendation of a digital security assessment.")
class SecurityRecommendationInput:
    text: str = strawberry.field(description="What to do.")
    difficulty: RecommendationDifficulty = strawberry.field(description="How hard it is.")
    resources: str | None = strawberry.field(default=None, description="What it needs.")


@strawberry.input(description="Record a digital security assessment.")
class RecordSecurityAssessmentInput:
    case_id: strawberry.ID = strawberry.field(description="The Case.")
    subject: AssessmentSubject = strawberry.field(description="Whose practice was assessed.")
    follow_up_at: datetime = strawberry.field(description="When the follow-up is due (ahead).")
    assessed_at: datetime | None = strawberry.field(default=None,
                                                    description="When it was made; default now.")
    assets: str | None = strawberry.field(default=None, description=(
        "What is to be protected (category `risk_assessment`, sealed)."))
    vulnerabilities: str | None = strawberry.field(default=None, description=(
        "Weaknesses found (category `risk_assessment`, sealed)."))
    recommendations: list[SecurityRecommendationInput] = strawberry.field(
        default_factory=list, description="Recommendations (sealed, at most 30).")


@strawberry.input(description="Record the follow-up of a security assessment.")
class RecordSecurityFollowUpInput:
    assessment_id: strawberry.ID = strawberry.field(description="The SecurityAssessment "
                                                                "(your organisation's).")
    vulnerabilities: str | None = strawberry.field(default=None, description=(
        "The weaknesses as they stand now (replaces them; sealed)."))
    recommendations: list[SecurityRecommendationInput] | None = strawberry.field(
        default=None, description="The recommendations as they stand now (replaces them).")


def _recommendations(items: list[SecurityRecommendationInput] | None) -> list[dict[str, Any]]:
    return [{"text": r.text, "difficulty": r.difficulty.value, "resources": r.resources}
            for r in items or []]


async def _schedule(info: Info, row: Any, errors: list) -> CheckInSchedulePayload:  # type: ignore[type-arg]
    if row is None:
        return CheckInSchedulePayload(schedule=None, user_errors=errors)
    view = await info.context.loaders.call(children.written, info.context.access,
                                           "check_in_schedules", row, want_of(info, "schedule"))
    return CheckInSchedulePayload(schedule=CheckInSchedule.from_view(view), user_errors=errors)


async def _check_in(info: Info, row: Any, errors: list) -> CheckInPayload:  # type: ignore[type-arg]
    if row is None:
        return CheckInPayload(check_in=None, user_errors=errors)
    view = await info.context.loaders.call(children.written, info.context.access, "check_ins",
                                           row, want_of(info, "checkIn"))
    return CheckInPayload(check_in=CheckIn.from_view(view), user_errors=errors)


async def _assessment(info: Info, row: Any, errors: list) -> SecurityAssessmentPayload:  # type: ignore[type-arg]
    if row is None:
        return SecurityAssessmentPayload(assessment=None, user_errors=errors)
    view = await info.context.loaders.call(children.written, info.context.access,
                                           "security_assessments", row,
                                           want_of(info, "assessment"))
    return SecurityAssessmentPayload(assessment=SecurityAssessment.from_view(view),
                                     user_errors=errors)


@strawberry.type
class CheckInMutations:
    @permissions.mutation(
        "Record a check-in schedule agreed with her: the first period opens; a missed check-in "
        "alerts the lead organisation's focal points at once and escalates along its chain. One "
        "active schedule per case. Her consent must release `risk_assessment` to your organisation "
        "for the declared purpose (otherwise NOT_FOUND, as for a missing record). Logged.",
        requires=[("safety_plan", "manage"), ("case", "read")], purpose=True)
    async def agree_check_in_schedule(self, info: Info,
                                      input: AgreeCheckInScheduleInput) -> CheckInSchedulePayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            checkins.agree_schedule, info.context.access, case_id=case_id,
            interval_minutes=input.interval_minutes, channel=input.channel.value,
            agreed_via=input.agreed_via.value, safety_contact=input.safety_contact,
            missed_action=input.missed_action.value,
            missed_action_notes=input.missed_action_notes, first_due_at=input.first_due_at))
        return await _schedule(info, row, errors)

    @permissions.mutation(
        "Check in: she, signed in herself, or her network's focal point for her (from her or her "
        "safety contact). Closes the current period (LATE if it was missed: its escalation stops) "
        "and opens the next. Anyone else: NOT_FOUND or FORBIDDEN. Logged.",
        who=Who.HER_SIDE)
    async def check_in(self, info: Info, input: CheckInInput) -> CheckInPayload:
        sid = ids.decode(input.schedule_id, "CheckInSchedule", "scheduleId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            checkins.check_in, info.context.access, sid, input.by.value))
        return await _check_in(info, row, errors)

    @permissions.mutation(
        "Record what a focal point found acting on a missed check-in: its escalation stops, the "
        "next period opens. Staff of the case's lead organisation or of the one that agreed the "
        "schedule only. Her consent must release `risk_assessment` to your organisation for "
        "the declared purpose (otherwise NOT_FOUND, as for a missing record). Logged.",
        requires=[("safety_plan", "manage"), ("case", "read")], step_up=True)
    async def resolve_missed_check_in(self, info: Info,
                                      input: ResolveMissedCheckInInput) -> CheckInPayload:
        cid = ids.decode(input.check_in_id, "CheckIn", "checkInId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            checkins.resolve_missed, info.context.access, cid, input.resolution.value))
        return await _check_in(info, row, errors)

    @permissions.mutation(
        "End a check-in schedule (she, her network for her, or staff of the lead organisation "
        "or of the one that agreed it, under the same rule as agreeing it): nothing more falls "
        "due.",
        requires=[("safety_plan", "manage"), ("case", "read")], step_up=True, purpose=True,
        when="the permissions apply to staff, and the step-up to anyone but she herself; she "
             "herself and her network need no permission")
    async def end_check_in_schedule(self, info: Info,
                                    input: EndCheckInScheduleInput) -> CheckInSchedulePayload:
        sid = ids.decode(input.schedule_id, "CheckInSchedule", "scheduleId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            checkins.end_schedule, info.context.access, sid))
        return await _schedule(info, row, errors)

    @permissions.mutation(
        "Record a digital security assessment of her or her organisation's practice; its follow-up "
        "falls due at `followUpAt` and escalates along your organisation's chain until recorded. "
        "Her consent must release `risk_assessment` to your organisation for the declared purpose "
        "(otherwise NOT_FOUND, as for a missing record). Logged.",
        requires=[("safety_plan", "manage"), ("case", "read")], purpose=True)
    async def record_security_assessment(
            self, info: Info, input: RecordSecurityAssessmentInput) -> SecurityAssessmentPayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            checkins.record_assessment, info.context.access, case_id=case_id,
            subject=input.subject.value, assessed_at=input.assessed_at, assets=input.assets,
            vulnerabilities=input.vulnerabilities,
            recommendations=_recommendations(input.recommendations),
            follow_up_at=input.follow_up_at))
        return await _assessment(info, row, errors)

    @permissions.mutation(
        "Record the follow-up of your organisation's security assessment (its escalation stops), "
        "with what changed. Her consent must release `risk_assessment` to your organisation for "
        "the declared purpose (otherwise NOT_FOUND, as for a missing record). Logged.",
        requires=[("safety_plan", "manage"), ("case", "read")], purpose=True)
    async def record_security_follow_up(
            self, info: Info, input: RecordSecurityFollowUpInput) -> SecurityAssessmentPayload:
        aid = ids.decode(input.assessment_id, "SecurityAssessment", "assessmentId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            checkins.follow_up_assessment, info.context.access, assessment_id=aid,
            vulnerabilities=input.vulnerabilities,
            recommendations=(_recommendations(input.recommendations)
                             if input.recommendations is not None else None)))
        return await _assessment(info, row, errors)
