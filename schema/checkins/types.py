"""GraphQL types for safety check-ins and digital security assessments (category
`risk_assessment`; the safety contact is `contact`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import strawberry

from app.access.gate import Gate
from app.read.children import RowView
from app.tables import checkins as models
from app.tables.categories import CHECKIN_FIELDS
from schema import ids
from schema.common import Node, UserError, describe_values
from schema.context import Info
from schema.gated import ConsentGated, gated, read_gated
from schema.orgs.types import Organisation, organisation_of

LISTED = ("Listed to those her consent releases `risk_assessment` to for the declared purpose "
          "(she sees them all); to anyone else it does not exist.")
T = TypeVar("T")

CheckInChannel = strawberry.enum(models.Channel, name="CheckInChannel", description=(
    "How she checks in, as agreed with her: APP (her own login), PHONE_CALL, SMS, "
    "SECURE_MESSENGER, IN_PERSON, NETWORK (through her network's focal point)."))
describe_values(CheckInChannel, {
    "APP": "She checks in herself, with her own login.",
    "PHONE_CALL": "By a phone call.",
    "SMS": "By text message.",
    "SECURE_MESSENGER": "Through a secure messenger.",
    "IN_PERSON": "In person.",
    "NETWORK": "Through her network's focal point.",
})
MissedCheckInAction = strawberry.enum(models.MissedAction, name="MissedCheckInAction", description=(
    "What was agreed with her to do when a check-in is missed; shown in the alert (a code), "
    "with notes read here under her consent."))
describe_values(MissedCheckInAction, {
    "CALL_HER": "Call her.",
    "CALL_SAFETY_CONTACT": "Call her safety contact.",
    "CONTACT_NETWORK": "Contact her network.",
    "VISIT": "Visit her.",
    "EMERGENCY_PROTOCOL": "Start the emergency protocol.",
    "OTHER": "Something else (see the sealed notes).",
})
ScheduleAgreedVia = strawberry.enum(models.AgreedVia, name="ScheduleAgreedVia", description=(
    "How the schedule was agreed with her."))
describe_values(ScheduleAgreedVia, {
    "IN_PERSON": "Agreed with her in person.",
    "PHONE": "Agreed with her by phone.",
    "SECURE_MESSAGE": "Agreed with her by secure message.",
    "NETWORK_FOCAL_POINT": "Agreed through her network's focal point.",
})
CheckInBy = strawberry.enum(models.CheckInBy, name="CheckInBy", description="Who checked in: HER or her "
                                                          "SAFETY_CONTACT.")
describe_values(CheckInBy, {
    "HER": "She checked in herself.",
    "SAFETY_CONTACT": "Her safety contact checked in for her.",
})
CheckInStatus = strawberry.enum(models.CheckInStatus, name="CheckInStatus", description=(
    "PENDING (the current period), DONE, MISSED (past its deadline: alerted, escalating), LATE "
    "(missed, then she checked in), RESOLVED (missed, then a focal point acted), ENDED."))
describe_values(CheckInStatus, {
    "PENDING": "The current period: not yet checked in.",
    "DONE": "Checked in before the deadline.",
    "MISSED": "Past its deadline: alerted and escalating.",
    "LATE": "Missed, then she checked in.",
    "RESOLVED": "Missed, then a focal point acted (see the resolution).",
    "ENDED": "The schedule ended during the period.",
})
MissedCheckInResolution = strawberry.enum(models.Resolution, name="MissedCheckInResolution", description=(
    "What a focal point found when acting on a missed check-in."))
describe_values(MissedCheckInResolution, {
    "REACHED_SAFE": "She was reached and is safe.",
    "SAFETY_CONTACT_REACHED": "Her safety contact was reached.",
    "EMERGENCY_RESPONSE_STARTED": "An emergency response was started.",
})
ScheduleStatus = strawberry.enum(models.ScheduleStatus, name="CheckInScheduleStatus",
                                 description="ACTIVE, or ENDED (nothing more falls due).")
describe_values(ScheduleStatus, {
    "ACTIVE": "Check-ins fall due.",
    "ENDED": "Ended: nothing more falls due.",
})
AssessmentStatus = strawberry.enum(models.AssessmentStatus, name="SecurityAssessmentStatus",
                                   description="OPEN (its follow-up is owed) or FOLLOWED_UP.")
describe_values(AssessmentStatus, {
    "OPEN": "Its follow-up is owed.",
    "FOLLOWED_UP": "Its follow-up was done.",
})
AssessmentSubject = strawberry.enum(models.AssessmentSubject, name="AssessmentSubject", description=(
    "Whose practice was assessed: HER, or HER_ORGANISATION."))
describe_values(AssessmentSubject, {
    "HER": "Her own practice.",
    "HER_ORGANISATION": "Her organisation's practice.",
})
RecommendationDifficulty = strawberry.enum(models.Difficulty, name="RecommendationDifficulty", description=(
    "How hard a recommendation is to put in place."))
describe_values(RecommendationDifficulty, {
    "LOW": "Easy to put in place.",
    "MEDIUM": "Some effort.",
    "HIGH": "Hard to put in place.",
})


def _id(type_name: str, value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(ids.encode(type_name, value)) if value is not None else None


def gated_list(column: str, category: str, description: str,
               build: Callable[[dict[str, Any]], T], item: type[T]) -> Any:
    """A gated field whose sealed value is a JSON list, returned as `item` objects."""
    def resolve(self: Any, info: Info) -> list[Any] | None:
        value = read_gated(info, self._gate, column, category)
        return [build(entry) for entry in json.loads(value)] if value else None

    resolve.__annotations__ = {"self": Any, "info": Info, "return": list[item] | None}  # type: ignore[valid-type]
    resolve.gated = (column, category)  # type: ignore[attr-defined]  # read by `withheld`
    return resolve, (f"{description} Data category `{category}`: null, and listed in "
                     "`withheld` and `extensions.redacted`, unless her consent releases it to "
                     "you.")


@strawberry.type(description="A check-in schedule agreed with her. " + LISTED + " A missed "
                             "check-in alerts the case's lead organisation's focal points at "
                             "once and escalates along its chain.")
class CheckInSchedule(Node, ConsentGated):
    case_id: strawberry.ID = strawberry.field(description="The Case.")
    interval_minutes: int = strawberry.field(description="Minutes between check-ins.")
    channel: CheckInChannel = strawberry.field(description="How she checks in.")
    agreed_via: ScheduleAgreedVia = strawberry.field(description="How it was agreed with her.")
    missed_action: MissedCheckInAction = strawberry.field(
        description="What is done when a check-in is missed.")
    status: ScheduleStatus = strawberry.field(description="Whether it runs.")
    ended_at: datetime | None = strawberry.field(description="When it ended.")
    created_at: datetime = strawberry.field(description="When it was agreed.")
    safety_contact: str | None = gated(
        "safety_contact", CHECKIN_FIELDS["check_in_schedules"]["safety_contact"].value,
        "Her safety contact (who may check in for her, and who is called if agreed).")
    missed_action_notes: str | None = gated(
        "missed_action_notes",
        CHECKIN_FIELDS["check_in_schedules"]["missed_action_notes"].value,
        "What exactly was agreed to do when she misses a check-in.")
    _org: strawberry.Private[uuid.UUID]
    _gate: strawberry.Private[Gate]

    @strawberry.field(description="The organisation that recorded the agreement.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_view(cls, view: RowView) -> CheckInSchedule:
        s = view.row
        return cls(id=strawberry.ID(ids.encode("CheckInSchedule", s.id)),
                   case_id=strawberry.ID(ids.encode("Case", s.case_id)),
                   interval_minutes=s.interval_minutes, channel=models.Channel(s.channel),
                   agreed_via=models.AgreedVia(s.agreed_via),
                   missed_action=models.MissedAction(s.missed_action),
                   status=models.ScheduleStatus(s.status),
                   ended_at=s.ended_at, created_at=s.created_at, _org=s.org_id, _gate=view.gate)


@strawberry.type(description="One check-in period of a schedule. " + LISTED)
class CheckIn(Node):
    schedule_id: strawberry.ID = strawberry.field(description="Its CheckInSchedule.")
    due_at: datetime = strawberry.field(description="By when she checks in.")
    status: CheckInStatus = strawberry.field(description="Where it stands.")
    checked_in_at: datetime | None = strawberry.field(description="When she checked in.")
    checked_in_by: CheckInBy | None = strawberry.field(description="Who checked in.")
    missed_at: datetime | None = strawberry.field(description="When it was found missed.")
    resolution: MissedCheckInResolution | None = strawberry.field(
        description="What the focal point found, once a missed check-in was acted on.")
    resolved_at: datetime | None = strawberry.field(description="When it was acted on.")

    @classmethod
    def from_view(cls, view: RowView) -> CheckIn:
        c = view.row
        return cls(id=strawberry.ID(ids.encode("CheckIn", c.id)),
                   schedule_id=strawberry.ID(ids.encode("CheckInSchedule", c.schedule_id)),
                   due_at=c.due_at, status=models.CheckInStatus(c.status),
                   checked_in_at=c.checked_in_at,
                   checked_in_by=models.CheckInBy(c.checked_in_by) if c.checked_in_by else None,
                   missed_at=c.missed_at,
                   resolution=models.Resolution(c.resolution) if c.resolution else None,
                   resolved_at=c.resolved_at)


@strawberry.type(description="A recommendation of a digital security assessment.")
class SecurityRecommendation:
    text: str = strawberry.field(description="What to do.")
    difficulty: RecommendationDifficulty = strawberry.field(description="How hard it is.")
    resources: str | None = strawberry.field(description="What it needs (tools, training, money).")


def _recommendation(item: dict[str, Any]) -> SecurityRecommendation:
    return SecurityRecommendation(text=item["text"],
                                  difficulty=models.Difficulty(item["difficulty"]),
                                  resources=item.get("resources"))


_RECOMMENDATIONS = gated_list(
    "recommendations", CHECKIN_FIELDS["security_assessments"]["recommendations"].value,
    "Recommendations, each with its difficulty and the resources it needs.", _recommendation,
    SecurityRecommendation)


@strawberry.type(description="A digital security assessment of her or her organisation's "
                             "practice. " + LISTED + " Its follow-up is due by `followUpAt`; "
                             "past it, it escalates along the assessing organisation's chain.")
class SecurityAssessment(Node, ConsentGated):
    case_id: strawberry.ID = strawberry.field(description="The Case.")
    subject: AssessmentSubject = strawberry.field(description="Whose practice was assessed.")
    assessed_at: datetime = strawberry.field(description="When it was made.")
    follow_up_at: datetime = strawberry.field(description="When its follow-up is due.")
    followed_up_at: datetime | None = strawberry.field(description="When it was followed up.")
    status: AssessmentStatus = strawberry.field(description="Whether its follow-up is owed.")
    assets: str | None = gated(
        "assets", CHECKIN_FIELDS["security_assessments"]["assets"].value,
        "What is to be protected (devices, accounts, data, contacts).")
    vulnerabilities: str | None = gated(
        "vulnerabilities", CHECKIN_FIELDS["security_assessments"]["vulnerabilities"].value,
        "The weaknesses found.")
    recommendations: list[SecurityRecommendation] | None = strawberry.field(
        resolver=_RECOMMENDATIONS[0], description=_RECOMMENDATIONS[1])
    _org: strawberry.Private[uuid.UUID]
    _gate: strawberry.Private[Gate]

    @strawberry.field(description="The organisation that made it.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_view(cls, view: RowView) -> SecurityAssessment:
        a = view.row
        return cls(id=strawberry.ID(ids.encode("SecurityAssessment", a.id)),
                   case_id=strawberry.ID(ids.encode("Case", a.case_id)),
                   subject=models.AssessmentSubject(a.subject), assessed_at=a.assessed_at,
                   follow_up_at=a.follow_up_at, followed_up_at=a.followed_up_at,
                   status=models.AssessmentStatus(a.status), _org=a.org_id, _gate=view.gate)


@strawberry.type(description="Result of agreeCheckInSchedule / endCheckInSchedule.")
class CheckInSchedulePayload:
    schedule: CheckInSchedule | None = strawberry.field(
        description="The schedule, decided like a read.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="Result of checkIn / resolveMissedCheckIn.")
class CheckInPayload:
    check_in: CheckIn | None = strawberry.field(description="The period it closed.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="Result of recordSecurityAssessment / recordSecurityFollowUp.")
class SecurityAssessmentPayload:
    assessment: SecurityAssessment | None = strawberry.field(
        description="The assessment, decided like a read.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")
