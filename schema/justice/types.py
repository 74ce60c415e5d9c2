"""GraphQL types for the justice follow-up: hearings and detention watch (category `legal`)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry

from app.access.gate import Gate
from app.read.children import RowView
from app.tables import justice as models
from app.tables.categories import JUSTICE_FIELDS
from schema import ids
from schema.common import Node, UserError, closed_set, describe_values
from schema.context import Info
from schema.gated import ConsentGated, gated
from schema.orgs.types import Organisation, organisation_of

LISTED = ("Listed to those her consent releases `legal` to for the declared purpose (she sees "
          "them all); to anyone else it does not exist.")
HearingStatus = strawberry.enum(models.HearingStatus, description=(
    "Where a hearing stands: SCHEDULED until its outcome is recorded (HELD, ADJOURNED, "
    "NOT_HELD), or CANCELLED, or RESCHEDULED (replaced by a new hearing)."))
describe_values(HearingStatus, {
    "SCHEDULED": "Planned: reminders run and its outcome will be owed.",
    "HELD": "It took place (outcome recorded).",
    "ADJOURNED": "It opened and was adjourned (outcome recorded).",
    "NOT_HELD": "It did not take place (outcome recorded).",
    "CANCELLED": "Cancelled: nothing more is owed.",
    "RESCHEDULED": "Replaced by a new hearing at another time.",
})
DetentionCheckKind = strawberry.enum(models.CheckKind, description=(
    "A due check of a detention: LAWYER_ACCESS (24 h), MEDICAL_ACCESS (48 h), FAMILY_VISIT "
    "(72 h) after the detention by default, or the hours the case's lead organisation declares "
    "(tenants/ `detention_checks:`)."))
describe_values(DetentionCheckKind, {
    "LAWYER_ACCESS": "A lawyer has seen her (due 24 hours after detention by default).",
    "FAMILY_VISIT": "Her family has visited her (due after 72 hours by default).",
    "MEDICAL_ACCESS": "A doctor has seen her (due after 48 hours by default).",
})
VisitorCategory = strawberry.enum(models.VisitorCategory, description=(
    "Who visited her, as a category (never a name). LAWYER, FAMILY and MEDICAL satisfy their "
    "checks."))
describe_values(VisitorCategory, {
    "LAWYER": "Her lawyer.",
    "FAMILY": "Her family.",
    "MEDICAL": "A doctor or nurse.",
    "CONSULAR": "Consular staff.",
    "NHRI": "Staff of a national human rights institution.",
    "INTERNATIONAL_OBSERVER": "An international observer.",
    "OTHER": "Another visitor.",
})


@strawberry.enum(description="How a hearing went (recordHearingOutcome).")
class HearingOutcome(enum.Enum):
    HELD = strawberry.enum_value("held", description="It took place.")
    ADJOURNED = strawberry.enum_value("adjourned", description="It opened and was adjourned.")
    NOT_HELD = strawberry.enum_value("not_held", description="It did not take place.")


def _id(type_name: str, value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(ids.encode(type_name, value)) if value is not None else None


@strawberry.type(description="A dated hearing of a proceeding. " + LISTED + " Its owner is "
                             "reminded 72 h and 24 h before; an outcome not recorded 48 h after "
                             "escalates along the responsible organisation's chain.")
class Hearing(Node, ConsentGated):
    proceeding_id: strawberry.ID = strawberry.field(description="The Proceeding it belongs to.")
    scheduled_at: datetime = strawberry.field(description="When it is (was) scheduled.")
    status: HearingStatus = strawberry.field(description="Where it stands.")
    outcome_recorded_at: datetime | None = strawberry.field(
        description="When its outcome was recorded.")
    rescheduled_from_id: strawberry.ID | None = strawberry.field(
        description="The hearing this one replaces, if it was rescheduled.")
    owner_id: strawberry.ID | None = strawberry.field(description=(
        "The named owner (a User of the responsible organisation) reminded instead of its "
        "focal points; null: its focal points."))
    created_at: datetime = strawberry.field(description="When it was scheduled.")
    outcome: str | None = gated("outcome", JUSTICE_FIELDS["hearings"]["outcome"].value,
                                "Notes on how it went.")
    _org: strawberry.Private[uuid.UUID]
    _gate: strawberry.Private[Gate]

    @strawberry.field(description="The responsible organisation (the one that scheduled it).")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_view(cls, view: RowView) -> Hearing:
        h = view.row
        owner = (_id("User", uuid.UUID(h.owner.split(":", 1)[1]))
                 if h.owner and h.owner.startswith("user:") else None)
        return cls(id=strawberry.ID(ids.encode("Hearing", h.id)),
                   proceeding_id=strawberry.ID(ids.encode("Proceeding", h.proceeding_id)),
                   scheduled_at=h.scheduled_at, status=models.HearingStatus(h.status),
                   outcome_recorded_at=h.outcome_recorded_at,
                   rescheduled_from_id=_id("Hearing", h.rescheduled_from), owner_id=owner,
                   created_at=h.created_at, _org=h.org_id, _gate=view.gate)


@strawberry.type(description="She is detained: detention watch. " + LISTED + " Its checks "
                             "escalate along the case's lead organisation's chain when missed.")
class Detention(Node, ConsentGated):
    detained_at: datetime = strawberry.field(description="When she was detained.")
    status: DetentionStatus = strawberry.field(description="Where it stands.")  # type: ignore[valid-type]
    released_at: datetime | None = strawberry.field(description="When she was released.")
    proceeding_id: strawberry.ID | None = strawberry.field(
        description="The detention-watch Proceeding it belongs to, if one was given.")
    place: str | None = gated("place", JUSTICE_FIELDS["detentions"]["place"].value,
                              "Where she is held.")
    _gate: strawberry.Private[Gate]

    @classmethod
    def from_view(cls, view: RowView) -> Detention:
        d = view.row
        return cls(id=strawberry.ID(ids.encode("Detention", d.id)), detained_at=d.detained_at,
                   status=d.status, released_at=d.released_at,
                   proceeding_id=_id("Proceeding", d.proceeding_id), _gate=view.gate)


DetentionStatus = closed_set(models.DetentionStatus, "Whether she is still held.", {
    "DETAINED": "She is held.", "RELEASED": "She was released."})
DetentionCheckStatus = closed_set(models.CheckStatus, "Where a due check stands.", {
    "PENDING": "Not yet done; past its deadline it escalates.",
    "SATISFIED": "Done, by a visit of its kind.", "ENDED": "She was released first."},
    name="DetentionCheckStatus")


@strawberry.type(description="A due check of a detention. " + LISTED)
class DetentionCheck(Node):
    detention_id: strawberry.ID = strawberry.field(description="Its Detention.")
    kind: DetentionCheckKind = strawberry.field(description="What must happen.")
    due_at: datetime = strawberry.field(description="By when; past it, it escalates.")
    status: DetentionCheckStatus = strawberry.field(description="Where it stands.")  # type: ignore[valid-type]
    satisfied_at: datetime | None = strawberry.field(description="When the visit took place.")
    visit_id: strawberry.ID | None = strawberry.field(description="The visit that satisfied it.")

    @classmethod
    def from_view(cls, view: RowView) -> DetentionCheck:
        c = view.row
        return cls(id=strawberry.ID(ids.encode("DetentionCheck", c.id)),
                   detention_id=strawberry.ID(ids.encode("Detention", c.detention_id)),
                   kind=models.CheckKind(c.kind), due_at=c.due_at, status=c.status,
                   satisfied_at=c.satisfied_at, visit_id=_id("DetentionVisit", c.visit_id))


@strawberry.type(description="A visit to her in detention (the visit log). " + LISTED)
class DetentionVisit(Node, ConsentGated):
    detention_id: strawberry.ID = strawberry.field(description="Its Detention.")
    visitor: VisitorCategory = strawberry.field(description="Who visited, as a category.")
    visited_at: datetime = strawberry.field(description="When.")
    satisfies: DetentionCheckKind | None = strawberry.field(
        description="The check this visit satisfies, if any.")
    recorded_at: datetime = strawberry.field(description="When it was recorded.")
    notes: str | None = gated("notes", JUSTICE_FIELDS["detention_visits"]["notes"].value,
                              "Notes on the visit (her conditions, access given or refused).")
    _gate: strawberry.Private[Gate]

    @classmethod
    def from_view(cls, view: RowView) -> DetentionVisit:
        v = view.row
        return cls(id=strawberry.ID(ids.encode("DetentionVisit", v.id)),
                   detention_id=strawberry.ID(ids.encode("Detention", v.detention_id)),
                   visitor=models.VisitorCategory(v.visitor), visited_at=v.visited_at,
                   satisfies=models.CheckKind(v.satisfies) if v.satisfies else None,
                   recorded_at=v.recorded_at, _gate=view.gate)


@strawberry.type(description="Result of a hearing mutation.")
class HearingPayload:
    hearing: Hearing | None = strawberry.field(description=(
        "The hearing (for rescheduleHearing: the new one), decided like a read."))
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="Result of recordDetention / releaseDetention.")
class DetentionPayload:
    detention: Detention | None = strawberry.field(description="The detention, decided like a read.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


@strawberry.type(description="Result of recordDetentionVisit.")
class DetentionVisitPayload:
    visit: DetentionVisit | None = strawberry.field(description="The visit, decided like a read.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")
