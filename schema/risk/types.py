"""GraphQL types for joint risk assessments and her protection plan (category `risk_assessment`)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from app.access.gate import Gate
from app.read.children import RowView
from app.tables import risk as models
from app.tables.categories import RISK_CATEGORY
from schema import ids
from schema.common import UserError, describe_values
from schema.gated import ConsentGated, gated

RISK = RISK_CATEGORY.value
LISTED = ("Listed to those her consent releases `risk_assessment` to for the declared purpose "
          "(she sees them all); to anyone else it does not exist.")

RiskAssessmentStatus = strawberry.enum(models.AssessmentStatus, description=(
    "DRAFT (the lead organisation writes it) → SHARED_WITH_HER (waits for her answer) → AGREED "
    "or CONTESTED (current: her view is kept beside the organisation's) → SUPERSEDED (a newer "
    "one became current)."))
RiskAnsweredBy = strawberry.enum(models.AnsweredBy, name="RiskAnsweredBy", description=(
    "Who answered for her: HERSELF (her own login), NETWORK_FOCAL_POINT (her network's focal "
    "point for her), TWO_PERSON (she has no account and no network: two focal points of the "
    "lead organisation, with a record of how she was consulted)."))
ConsultedHow = strawberry.enum(models.ConsultedHow, description="How she was consulted.")
RiskRating = strawberry.enum(models.Rating, name="RiskRating",
                             description="Likelihood or impact of a threat.")
PlanKind = strawberry.enum(models.PlanKind, description=(
    "Which part of her protection plan a measure belongs to: DAY_TO_DAY, PREVENTIVE_PROTOCOL, "
    "EMERGENCY_PROTOCOL."))


describe_values(RiskAssessmentStatus, {
    "DRAFT": "The lead organisation is writing it; not shown to her yet.",
    "SHARED_WITH_HER": "Shared with her; waits for her answer (or her network's for her).",
    "AGREED": "She agreed: current.",
    "CONTESTED": "She contested it: current, her view kept beside the organisation's.",
    "SUPERSEDED": "A newer assessment became current.",
})
describe_values(RiskAnsweredBy, {
    "HERSELF": "She answered, signed in herself.",
    "NETWORK_FOCAL_POINT": "Her network's focal point answered for her.",
    "TWO_PERSON": "She has no account and no network: two focal points of the lead "
                  "organisation, after consulting her.",
})
describe_values(ConsultedHow, {
    "IN_PERSON": "In a meeting with her.",
    "PHONE": "By telephone.",
    "SECURE_MESSENGER": "Through an encrypted messenger.",
    "THROUGH_TRUSTED_INTERMEDIARY": "Through someone she trusts, who carried the questions.",
})
describe_values(RiskRating, {
    "LOW": "Low.", "MEDIUM": "Medium.", "HIGH": "High.", "CRITICAL": "Critical: life at risk.",
})
describe_values(PlanKind, {
    "DAY_TO_DAY": "Day-to-day practice (routes, routines, communications).",
    "PREVENTIVE_PROTOCOL": "A protocol that prevents a threat from being carried out.",
    "EMERGENCY_PROTOCOL": "What is done when a threat is carried out (emergency response).",
})


def _id(type_name: str, value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(ids.encode(type_name, value)) if value is not None else None


@strawberry.type(description="One threat she faces, in an assessment. " + LISTED)
class RiskThreat(ConsentGated):
    id: strawberry.ID = strawberry.field(description="Opaque global ID of the threat.")
    likelihood: RiskRating = strawberry.field(description="How likely it is to be carried out.")
    impact: RiskRating = strawberry.field(description="How grave it would be for her.")
    facts: str | None = gated("facts", RISK, "What happened: the facts of the threat.")
    pattern: str | None = gated("pattern", RISK, "The pattern over time.")
    objective: str | None = gated("objective", RISK, "What the threat seems to aim at.")
    source_as_reported: str | None = gated(
        "source_as_reported", RISK, "Who is behind it, as she reports it (never assumed).")
    feasibility: str | None = gated("feasibility", RISK,
                                    "Whether those behind it can carry it out.")
    _gate: strawberry.Private[Gate]

    @classmethod
    def from_view(cls, view: RowView) -> RiskThreat:
        t = view.row
        return cls(id=strawberry.ID(ids.encode("RiskThreat", t.id)),
                   likelihood=models.Rating(t.likelihood), impact=models.Rating(t.impact),
                   _gate=view.gate)


@strawberry.type(description=(
    "A joint risk assessment of a case (risk = threats x vulnerabilities / capacities), with "
    "her own analysis as a first-class part. Current once she (or her network's focal point for "
    "her) agreed or contested it. " + LISTED))
class RiskAssessment(ConsentGated):
    id: strawberry.ID = strawberry.field(description="Opaque global ID of the assessment.")
    status: RiskAssessmentStatus = strawberry.field(description="Where it stands.")
    level: strawberry.Private[str]
    review_at: datetime = strawberry.field(description=(
        "When it must be reviewed: its review is due then on the lead organisation's chain, and "
        "escalates while no newer assessment is current."))
    started_by_incident_id: strawberry.ID | None = strawberry.field(description=(
        "The high or critical incident that started this reassessment, if one did."))
    shared_at: datetime | None = strawberry.field(description="When it was shared with her.")
    answered_at: datetime | None = strawberry.field(description="When it became current.")
    answered_by: RiskAnsweredBy | None = strawberry.field(description="Who answered for her.")
    consulted_how: ConsultedHow | None = strawberry.field(description=(
        "Under the two-person rule: how she was consulted."))
    superseded_at: datetime | None = strawberry.field(description="When a newer one replaced it.")
    superseded_by_id: strawberry.ID | None = strawberry.field(
        description="The assessment that replaced it.")
    created_at: datetime = strawberry.field(description="When the draft was started.")
    vulnerabilities: str | None = gated("vulnerabilities", RISK,
                                        "What exposes her to the threats.")
    capacities: str | None = gated("capacities", RISK,
                                   "What protects her: her strengths, allies, resources.")
    reasoning: str | None = gated("reasoning", RISK, "Why the overall level is what it is.")
    context_notes: str | None = gated("context_notes", RISK, "The context of her work.")
    her_analysis: str | None = gated("her_analysis", RISK, (
        "Her own analysis of her situation, in her words (she is the expert on it)."))
    her_view: str | None = gated("her_view", RISK, (
        "Where she contested it: her view, kept beside the organisation's."))
    threats: list[RiskThreat] = strawberry.field(description="The threats, in order.")
    _gate: strawberry.Private[Gate]

    @strawberry.field(description="The overall level (the case's `riskLevel` while current).")
    def overall_level(self) -> RiskRating:
        return models.Rating(self.level)

    @strawberry.field(description="Agreed or contested, and not superseded: the case's current "
                                  "assessment.")
    def is_current(self) -> bool:
        return str(self.status) in models.ANSWERED

    @classmethod
    def from_view(cls, view: RowView, threats: list[RowView]) -> RiskAssessment:
        a = view.row
        return cls(
            id=strawberry.ID(ids.encode("RiskAssessment", a.id)),
            status=models.AssessmentStatus(a.status), level=a.level, review_at=a.review_at,
            started_by_incident_id=_id("Incident", a.trigger_incident_id),
            shared_at=a.shared_at, answered_at=a.answered_at,
            answered_by=models.AnsweredBy(a.answered_by) if a.answered_by else None,
            consulted_how=models.ConsultedHow(a.consulted_how) if a.consulted_how else None,
            superseded_at=a.superseded_at, superseded_by_id=_id("RiskAssessment", a.superseded_by),
            created_at=a.created_at,
            threats=[RiskThreat.from_view(t) for t in threats if t.row.assessment_id == a.id],
            _gate=view.gate)


def assessments_of(children: dict[str, list[RowView]]) -> list[RiskAssessment]:
    threats = children.get("risk_threats", [])
    return [RiskAssessment.from_view(v, threats) for v in children.get("risk_assessments", [])]


@strawberry.input(description="One threat she faces.")
class RiskThreatInput:
    likelihood: RiskRating = strawberry.field(description="How likely it is to be carried out.")
    impact: RiskRating = strawberry.field(description="How grave it would be for her.")
    facts: str | None = strawberry.field(default=None, description="What happened.")
    pattern: str | None = strawberry.field(default=None, description="The pattern over time.")
    objective: str | None = strawberry.field(default=None, description="What it aims at.")
    source_as_reported: str | None = strawberry.field(
        default=None, description="Who is behind it, as she reports it.")
    feasibility: str | None = strawberry.field(
        default=None, description="Whether they can carry it out.")


@strawberry.input(description=(
    "Write the draft assessment of a case your organisation leads (a new one, or the open "
    "draft — e.g. a reassessment a serious incident started — filled). All text is sealed with "
    "her key, category `risk_assessment`."))
class DraftRiskAssessmentInput:
    case_id: strawberry.ID = strawberry.field(description="The case's global ID.")
    level: RiskRating = strawberry.field(description="The overall level.")
    review_at: datetime = strawberry.field(description="Mandatory: in the future, within a year.")
    threats: list[RiskThreatInput] = strawberry.field(description="At least one.")
    vulnerabilities: str | None = None
    capacities: str | None = None
    reasoning: str | None = strawberry.field(default=None,
                                             description="Why the level is what it is.")
    context_notes: str | None = None
    her_analysis: str | None = strawberry.field(default=None, description=(
        "Her own analysis as she gave it (she may add to it when she answers)."))


@strawberry.input(description="An assessment.")
class RiskAssessmentIdInput:
    id: strawberry.ID = strawberry.field(description="The assessment's global ID.")


@strawberry.input(description=(
    "Her answer (signed in herself, or her network's focal point for her): agree, or contest "
    "with her view. Either makes it current."))
class AnswerRiskAssessmentInput:
    id: strawberry.ID = strawberry.field(description="The assessment's global ID.")
    agree: bool = strawberry.field(description=(
        "true: she agrees; false: she contests it (say how she sees it in herView)."))
    her_view: str | None = strawberry.field(default=None, description=(
        "Required to contest: how she sees it (kept beside the organisation's view)."))
    her_analysis: str | None = strawberry.field(default=None,
                                                description="Her own analysis, in her words.")


@strawberry.input(description=(
    "She has no account and no network: record how she was consulted; a second focal point of "
    "your organisation confirms (confirmTwoPerson), and it becomes current then."))
class ConfirmRiskAssessmentInput:
    id: strawberry.ID = strawberry.field(description="The assessment's global ID.")
    consulted_how: ConsultedHow = strawberry.field(description="How she was consulted.")


@strawberry.input(description=(
    "Tie a measure of the case to her protection plan (the lead organisation or the measure's "
    "owner). Category `risk_assessment`; the funding source and family are sealed."))
class SetMeasurePlanInput:
    measure_id: strawberry.ID = strawberry.field(description="The measure's global ID.")
    threat_id: strawberry.ID | None = strawberry.field(
        default=None, description="The threat it addresses (a RiskThreat of this case).")
    plan_kind: PlanKind | None = strawberry.field(
        default=None, description="Its part of her plan (unchanged when omitted).")
    cost_amount: str | None = strawberry.field(default=None, description=(
        "A decimal, e.g. \"1200.50\" (at most two decimals), with its currency."))
    cost_currency: str | None = strawberry.field(default=None,
                                                 description="ISO 4217, e.g. KES.")
    funding_source: str | None = strawberry.field(default=None,
                                                  description="Who pays (sealed).")
    covered_family: list[str] | None = strawberry.field(default=None, description=(
        "The family members she designates that it covers, in her words (sealed; unchanged "
        "when omitted, cleared by []). No outside definition of family; she can name them "
        "herself (designateCoveredFamily)."))


@strawberry.input(description="She names the family members a measure of her plan covers.")
class DesignateCoveredFamilyInput:
    measure_id: strawberry.ID = strawberry.field(description="The measure's global ID.")
    family: list[str] = strawberry.field(description=(
        "The family members it covers, in her words (at most 20; [] for none). Sealed with her "
        "key, category `risk_assessment`."))


@strawberry.type(description="Result of a risk-assessment mutation.")
class RiskAssessmentPayload:
    assessment: RiskAssessment | None
    confirmation_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "confirmRiskAssessmentWithoutHer: the confirmation a second focal point gives."))
    user_errors: list[UserError]


@strawberry.type(description="Her risk assessments and plan in plain language (her own view).")
class PlainRiskSummary:
    case_id: strawberry.ID = strawberry.field(description="The case.")
    language: str = strawberry.field(description="The language the lines are in.")
    lines: list[str] = strawberry.field(description="Sentences, the current assessment first.")
