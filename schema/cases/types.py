"""GraphQL types for cases and organisations' internal notes."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.access.gate import Gate
from app.cases import service as cases
from app.cases import teams
from app.her import sealing
from app.incidents.retention import HoldReason
from app.read.cases import CaseView
from app.tables import cases as models
from app.tables.categories import CASE_FIELDS
from schema import ids
from schema.common import (
    AFTER_DESCRIPTION,
    FIRST_DESCRIPTION,
    Connection,
    Node,
    UserError,
    connection,
    describe_values,
    member,
    page_request,
)
from schema.consent.gate import open_sealed
from schema.context import Info
from schema.gated import ConsentGated, gated, plain
from schema.orgs.types import Organisation
from schema.peacebuilders.types import IntakeConsentInput, Peacebuilder

if TYPE_CHECKING:
    from schema.checkins.types import CheckIn, CheckInSchedule, SecurityAssessment
    from schema.consultations.types import Consultation, ConsultationFollowUpTask
    from schema.incidents.types import Incident, Measure, MeasureKind, Proceeding, TimelineEvent
    from schema.justice.types import Detention, DetentionCheck, DetentionVisit, Hearing
    from schema.risk.types import RiskAssessment

CaseStatus = strawberry.enum(models.CaseStatus, description="Where a case stands.")
describe_values(CaseStatus, {
    "OPEN": "Being worked on.",
    "ON_HOLD": "Paused (e.g. waiting for her or for a partner); still open.",
    "CLOSED": "Closed with a reason and a follow-up plan; it can be reopened.",
})
RiskLevel = strawberry.enum(models.RiskLevel, description="Assessed level of risk to her.")
describe_values(RiskLevel, {
    "LOW": "Low risk.",
    "MEDIUM": "Medium risk.",
    "HIGH": "High risk: closing the case needs a second focal point.",
    "CRITICAL": "Critical risk, to her life or liberty: closing needs a second focal point.",
})
ClosureReason = strawberry.enum(models.ClosureReason, description="Why a case was closed.")
describe_values(ClosureReason, {
    "RISK_RESOLVED": "The risk that opened the case has passed.",
    "SHE_ASKED": "She asked for the case to be closed.",
    "RELOCATED_SAFELY": "She has been relocated to safety.",
    "TRANSFERRED": "Another organisation leads her protection now.",
    "LOST_CONTACT": "Contact with her was lost despite attempts to reach her.",
    "OTHER": "Another reason.",
})
ReopenReason = strawberry.enum(models.ReopenReason, description="Why a closed case was reopened.")
describe_values(ReopenReason, {
    "NEW_THREAT": "A new threat against her.",
    "SHE_ASKED": "She asked for the case to be reopened.",
    "FOLLOW_UP_FOUND_RISK": "A follow-up step found she is at risk again.",
    "CLOSED_IN_ERROR": "The case was closed by mistake.",
})


@strawberry.type(description="An organisation's internal note on a case. Never visible to "
                             "another organisation, whatever she consented to.")
class CaseNote(Node):
    created_at: datetime = strawberry.field(description="When it was written.")
    _ref: strawberry.Private[sealing.Ref]
    _body: strawberry.Private[str]

    @strawberry.field(description="The note (sealed with her data key: null, with the reason in "
                                  "`extensions.redacted`, once her data is erased).")
    async def body(self, info: Info) -> str | None:
        return await open_sealed(info, self._ref, self._body)

    @classmethod
    def from_model(cls, note: models.CaseNote, pb_id: uuid.UUID) -> CaseNote:
        return cls(id=strawberry.ID(ids.encode("CaseNote", note.id)), created_at=note.created_at,
                   _ref=sealing.note_ref(note, pb_id), _body=note.body)


@strawberry.type(description="The protection file for one peacebuilder, led by one organisation.")
class Case(Node, ConsentGated):
    status: CaseStatus = strawberry.field(description="Open, on hold or closed.")
    risk_level: RiskLevel = strawberry.field(description=(
        "Assessed level of risk: the level of its current joint risk assessment "
        "(`currentRiskAssessment`); MEDIUM until one is current."))
    opened_at: datetime = strawberry.field(description="When the case was opened.")
    closed_at: datetime | None = strawberry.field(description="When it was closed, if closed.")
    updated_at: datetime = strawberry.field(description="Last change.")
    closure_reason: ClosureReason | None = strawberry.field(description=(
        "Why it was closed (set when a closure is asked for; the status changes once it is in "
        "force). Its follow-up steps are measures of the case."))
    summary: str | None = gated(
        "summary", CASE_FIELDS["summary"].value,
        "What happened and the threats she faces (null once her data is erased).")
    erase_after: datetime | None = strawberry.field(default=None, description=(
        "A closed case: when the retention schedule erases its sealed data (the lead "
        "organisation's focal points are warned before). Null while open. Shown to whoever "
        "sees the case."))
    retention_hold: RetentionHoldReason | None = strawberry.field(default=None, description=(
        "A legal hold the lead organisation placed: nothing is erased while it holds."))
    retention_erased_at: datetime | None = strawberry.field(default=None, description=(
        "When the retention schedule erased this case's sealed data."))
    _id: strawberry.Private[uuid.UUID]
    _lead: strawberry.Private[uuid.UUID]
    _pb: strawberry.Private[uuid.UUID]
    _gate: strawberry.Private[Gate]
    _view: strawberry.Private[CaseView]

    @strawberry.field(description="Incidents on this case, oldest first (listed to those her "
                                  "consent releases incident details to; she sees them all).")
    @plain
    def incidents(
        self
    ) -> list[Annotated[Incident, strawberry.lazy("schema.incidents.types")]]:
        from schema.incidents.types import Incident

        return [Incident.from_view(i) for i in self._view.children.get("incidents", [])]

    @strawberry.field(description="Protection measures and tasks (listed to those her consent "
                                  "releases incident details to).")
    def measures(self) -> list[Annotated[Measure, strawberry.lazy("schema.incidents.types")]]:
        from schema.incidents.types import Measure

        return [Measure.from_view(m) for m in self._view.children.get("measures", [])]

    @strawberry.field(description="Investigations and detention watch (listed to those her "
                                  "consent releases legal data to).")
    def proceedings(
        self
    ) -> list[Annotated[Proceeding, strawberry.lazy("schema.incidents.types")]]:
        from schema.incidents.types import Proceeding

        return [Proceeding.from_view(p) for p in self._view.children.get("proceedings", [])]

    @strawberry.field(description="Hearings of its proceedings, by date (listed to those her "
                                  "consent releases legal data to; she sees them all).")
    def hearings(self) -> list[Annotated[Hearing, strawberry.lazy("schema.justice.types")]]:
        from schema.justice.types import Hearing

        return [Hearing.from_view(h) for h in self._view.children.get("hearings", [])]

    @strawberry.field(description="Detention watch: her detentions, oldest first (listed to those "
                                  "her consent releases legal data to).")
    def detentions(self) -> list[Annotated[Detention, strawberry.lazy("schema.justice.types")]]:
        from schema.justice.types import Detention

        return [Detention.from_view(d) for d in self._view.children.get("detentions", [])]

    @strawberry.field(description="The due checks of her detentions, by deadline (listed to "
                                  "those her consent releases legal data to).")
    def detention_checks(
        self
    ) -> list[Annotated[DetentionCheck, strawberry.lazy("schema.justice.types")]]:
        from schema.justice.types import DetentionCheck

        return [DetentionCheck.from_view(c)
                for c in self._view.children.get("detention_checks", [])]

    @strawberry.field(description="The visit log of her detentions, oldest first (listed to "
                                  "those her consent releases legal data to).")
    def detention_visits(
        self
    ) -> list[Annotated[DetentionVisit, strawberry.lazy("schema.justice.types")]]:
        from schema.justice.types import DetentionVisit

        return [DetentionVisit.from_view(v)
                for v in self._view.children.get("detention_visits", [])]

    @strawberry.field(description=(
        "Its joint risk assessments, oldest first, each with its threats (listed to those her "
        "consent releases `risk_assessment` to; she sees them all)."))
    def risk_assessments(
        self
    ) -> list[Annotated[RiskAssessment, strawberry.lazy("schema.risk.types")]]:
        from schema.risk.types import assessments_of

        return assessments_of(self._view.children)

    @strawberry.field(description=(
        "The current assessment (agreed or contested by her, or for her), whose level is the "
        "case's `riskLevel`; null if none (or not released to you)."))
    def current_risk_assessment(
        self
    ) -> Annotated[RiskAssessment, strawberry.lazy("schema.risk.types")] | None:
        from schema.risk.types import assessments_of

        current = [a for a in assessments_of(self._view.children) if a.is_current()]
        return current[-1] if current else None

    @strawberry.field(description="Check-in schedules agreed with her, oldest first (listed to "
                                  "those her consent releases risk_assessment to).")
    def check_in_schedules(
        self
    ) -> list[Annotated[CheckInSchedule, strawberry.lazy("schema.checkins.types")]]:
        from schema.checkins.types import CheckInSchedule

        return [CheckInSchedule.from_view(v)
                for v in self._view.children.get("check_in_schedules", [])]

    @strawberry.field(description="Check-in periods, by deadline: done, missed, late, resolved "
                                  "and the one pending (listed to those her consent releases "
                                  "risk_assessment to).")
    def check_ins(self) -> list[Annotated[CheckIn, strawberry.lazy("schema.checkins.types")]]:
        from schema.checkins.types import CheckIn

        return [CheckIn.from_view(v) for v in self._view.children.get("check_ins", [])]

    @strawberry.field(description="Digital security assessments, oldest first (listed to those "
                                  "her consent releases risk_assessment to).")
    def security_assessments(
        self
    ) -> list[Annotated[SecurityAssessment, strawberry.lazy("schema.checkins.types")]]:
        from schema.checkins.types import SecurityAssessment

        return [SecurityAssessment.from_view(v)
                for v in self._view.children.get("security_assessments", [])]

    @strawberry.field(description="Consultations with her or her network, oldest first (listed "
                                  "to those her consent releases risk_assessment to).")
    def consultations(
        self
    ) -> list[Annotated[Consultation, strawberry.lazy("schema.consultations.types")]]:
        from schema.consultations.types import Consultation

        return [Consultation.from_view(v) for v in self._view.children.get("consultations", [])]

    @strawberry.field(description="The consultations' follow-ups as their owners' tasks, oldest "
                                  "first (listed to those her consent releases risk_assessment "
                                  "to).")
    def consultation_follow_ups(
        self, info: Info
    ) -> list[Annotated[ConsultationFollowUpTask, strawberry.lazy("schema.consultations.types")]]:
        from schema.consultations.types import ConsultationFollowUpTask

        org = info.context.access.org_id
        return [ConsultationFollowUpTask.from_view(v, org)
                for v in self._view.children.get("consultation_follow_ups", [])]

    @strawberry.field(description="Every state change on the case, oldest first (each shown "
                                  "with its subject's data category).")
    def timeline(
        self
    ) -> list[Annotated[TimelineEvent, strawberry.lazy("schema.incidents.types")]]:
        from schema.incidents.types import TimelineEvent

        return [TimelineEvent.from_model(e.row) for e in self._view.children.get("timeline", [])]

    @strawberry.field(description="Members of your own organisation on this case's team "
                                  "(User or Client IDs). Requires `case_team:manage`.")
    async def team_member_ids(self, info: Info) -> list[strawberry.ID]:
        access = info.context.access
        subjects = await info.context.loaders.call(teams.members_for_manager, access, self._id)
        return [strawberry.ID(ids.encode("User" if s.startswith("user:") else "Client",
                                         uuid.UUID(s.split(":", 1)[1]))) for s in subjects]

    @strawberry.field(description="The organisation leading the case.")
    async def lead_organisation(self, info: Info) -> Organisation:
        return Organisation.from_model(await info.context.loaders.organisation.load(self._lead))

    @strawberry.field(description="The peacebuilder the case is about (null if hidden from you).")
    @plain
    def peacebuilder(self) -> Peacebuilder | None:
        found = self._view.peacebuilder
        return Peacebuilder.from_view(found) if found else None

    @strawberry.field(description="Your own organisation's internal notes on this case, oldest "
                                  "first. Requires `case_note:read`.")
    async def notes(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[CaseNote]:
        page = await info.context.loaders.call(cases.list_notes, info.context.access, self._id,
                                               page_request(first, after))
        return connection(page, lambda note: CaseNote.from_model(note, self._pb))

    @classmethod
    def from_view(cls, view: CaseView) -> Case:
        row = view.row
        return cls(id=strawberry.ID(ids.encode("Case", row.id)),
                   status=member(models.CaseStatus, row.status),
                   risk_level=member(models.RiskLevel, row.risk_level), opened_at=row.opened_at,
                   closed_at=row.closed_at, updated_at=row.updated_at,
                   closure_reason=(models.ClosureReason(row.closure_reason)
                                   if row.closure_reason else None),
                   erase_after=row.erase_after,
                   retention_hold=(HoldReason(row.retention_hold) if row.retention_hold
                                   else None),
                   retention_erased_at=row.retention_erased_at, _id=row.id,
                   _lead=row.lead_org_id, _pb=row.peacebuilder_id, _gate=view.gate, _view=view)


RetentionHoldReason = strawberry.enum(
    HoldReason, name="RetentionHoldReason",
    description="Why a closed case's data is kept longer than the retention schedule says.")
describe_values(RetentionHoldReason, {
    "LEGAL_PROCEEDINGS": "Proceedings need the record.",
    "INVESTIGATION": "An investigation needs the record.",
    "HER_REQUEST": "She asked for it to be kept.",
    "OVERSIGHT_REVIEW": "An oversight body is reviewing the case.",
})


@strawberry.input(description="Filters for the cases list. Combined with AND.")
class CaseFilter:
    status: CaseStatus | None = strawberry.field(default=None, description="Only cases with this status.")
    risk_level: RiskLevel | None = strawberry.field(
        default=None, description="Only cases at this risk level.")
    lead_organisation_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only cases led by this organisation (global ID).")
    peacebuilder_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only cases of this peacebuilder (global ID).")
    opened_after: datetime | None = strawberry.field(default=None, description="Inclusive.")
    opened_before: datetime | None = strawberry.field(default=None, description="Exclusive.")


@strawberry.enum(description="Order of the cases list.")
class CaseOrder(enum.Enum):
    OPENED_AT_DESC = "opened_at_desc"
    OPENED_AT_ASC = "opened_at_asc"
describe_values(CaseOrder, {
    "OPENED_AT_DESC": "Most recently opened first.",
    "OPENED_AT_ASC": "Oldest first.",
})


@strawberry.input(description="Open a case led by your organisation. Your organisation needs a "
                              "live grant for the declared purpose, or give her intake consent.")
class OpenCaseInput:
    peacebuilder_id: strawberry.ID = strawberry.field(description="Her global ID.")
    risk_level: RiskLevel | None = strawberry.field(
        default=None, description="Refused when given: the level comes from her joint risk "
                                  "assessment (draftRiskAssessment).",
        deprecation_reason="The risk level is the current joint risk assessment's "
                           "(draftRiskAssessment, answerRiskAssessment); refused when given.")
    summary: str | None = strawberry.field(default=None, description="Incident details.")
    intake_consent: IntakeConsentInput | None = strawberry.field(
        default=None, description="Consent she gave your organisation when opening this case.")


@strawberry.input(description="Change a case led by your organisation.")
class UpdateCaseInput:
    id: strawberry.ID = strawberry.field(description="The case's global ID.")
    status: CaseStatus | None = strawberry.field(
        default=None, description="The new status (unchanged when omitted).")
    risk_level: RiskLevel | None = strawberry.field(
        default=None, description="Refused when given: the level comes from her joint risk "
                                  "assessment.",
        deprecation_reason="The risk level is the current joint risk assessment's "
                           "(draftRiskAssessment, answerRiskAssessment); refused when given.")
    summary: str | None = strawberry.field(default=None, description="Incident details.")


@strawberry.input(description="One step of a closure's follow-up plan: what, by when, who.")
class FollowUpInput:
    kind: Annotated[MeasureKind, strawberry.lazy("schema.incidents.types")] = strawberry.field(
        description="What is done (a measure kind; not PUBLIC_STATEMENT, MEDIA_CONTACT or "
                    "RECOGNITION, which need her approval).")
    due_at: datetime = strawberry.field(description="By when (in the future).")
    owner_organisation_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "The organisation that owns the step (default: yours); her consent must cover it."))
    description: str | None = strawberry.field(default=None, description=(
        "Details (incident details: sealed with her key)."))


@strawberry.input(description="Close a case your organisation leads.")
class CloseCaseInput:
    case_id: strawberry.ID = strawberry.field(description="The case's global ID.")
    reason: ClosureReason = strawberry.field(description="Why the case is closed.")
    follow_up: list[FollowUpInput] = strawberry.field(description=(
        "At least one dated step with an owner: who checks on her after closure, and when."))


@strawberry.input(description="Reopen a closed case your organisation leads.")
class ReopenCaseInput:
    case_id: strawberry.ID = strawberry.field(description="The case's global ID.")
    reason: ReopenReason = strawberry.field(description="Why the case is reopened.")


@strawberry.input(description="Keep a closed case's data until a later date. Requires "
                              "`case:update` in the lead organisation.")
class ExtendRetentionInput:
    case_id: strawberry.ID = strawberry.field(description="A closed case your organisation leads.")
    until: datetime = strawberry.field(description="The new erasure date: after the one "
                                                   "scheduled, at most ten years ahead.")
    reason: RetentionHoldReason = strawberry.field(description="Why (a code: logged and on the "
                                                               "timeline).")


@strawberry.input(description="Place or release a legal hold on a closed case's data. Requires "
                              "`case:update` in the lead organisation.")
class SetRetentionHoldInput:
    case_id: strawberry.ID = strawberry.field(description="A closed case your organisation leads.")
    hold: bool = strawberry.field(description="True: hold (nothing is erased); false: release "
                                              "(the schedule resumes with a fresh warning).")
    reason: RetentionHoldReason | None = strawberry.field(
        default=None, description="Required to hold.")


@strawberry.type(description="Result of closeCase.")
class CloseCasePayload:
    case: Case | None
    confirmation_id: strawberry.ID | None = strawberry.field(description=(
        "For high or critical risk: the closure awaits this confirmation by a second focal "
        "point of your organisation (confirmTwoPerson); the case stays open until then."))
    user_errors: list[UserError]


@strawberry.input(description="Add an internal note (visible to your organisation only).")
class AddCaseNoteInput:
    case_id: strawberry.ID = strawberry.field(description="The case's global ID.")
    body: str


@strawberry.type(description="Result of openCase / updateCase.")
class CasePayload:
    case: Case | None
    user_errors: list[UserError]


@strawberry.type(description="Result of addCaseNote.")
class CaseNotePayload:
    note: CaseNote | None
    user_errors: list[UserError]


async def case_payload(info: Info, case: models.Case | None, errors: list[UserError]) -> CasePayload:
    """A mutation's answer: the case as the read path decides it for this caller."""
    if case is None:
        return CasePayload(case=None, user_errors=errors)
    from app.read import cases as read
    from schema.gated import want_of

    view = await info.context.loaders.call(read.written, info.context.access, case.id,
                                           want_of(info, "case"))
    return CasePayload(case=Case.from_view(view), user_errors=errors)
