"""GraphQL types for the consultations log (category `risk_assessment`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry

from app.access.gate import Gate
from app.read.children import RowView
from app.tables import consultations as models
from app.tables.categories import CHECKIN_FIELDS
from schema import ids
from schema.checkins.types import LISTED, gated_list
from schema.common import Node, UserError, describe_values
from schema.context import Info
from schema.gated import ConsentGated, gated
from schema.orgs.types import Organisation, organisation_of

ConsultedWith = strawberry.enum(models.ConsultedWith, name="ConsultedWith", description=(
    "Who was consulted: HER, HER_NETWORK, or HER_AND_NETWORK."))
describe_values(ConsultedWith, {
    "HER": "She herself.",
    "HER_NETWORK": "Her network.",
    "HER_AND_NETWORK": "She and her network together.",
})


@strawberry.type(description="A follow-up agreed at a consultation.")
class ConsultationFollowUp:
    action: str = strawberry.field(description="What is to be done.")
    owner_organisation_id: strawberry.ID = strawberry.field(
        description="The Organisation that owns it.")
    due_at: datetime | None = strawberry.field(description="By when.")
    task_id: strawberry.ID | None = strawberry.field(description=(
        "Its task (a ConsultationFollowUpTask: status, named owner, escalation); null for a "
        "follow-up recorded before follow-ups were tasks."))


def _follow_up(item: dict[str, Any]) -> ConsultationFollowUp:
    return ConsultationFollowUp(
        action=item["action"],
        owner_organisation_id=strawberry.ID(ids.encode(
            "Organisation", uuid.UUID(item["owner_organisation"]))),
        due_at=datetime.fromisoformat(item["due_at"]) if item.get("due_at") else None,
        task_id=strawberry.ID(ids.encode("ConsultationFollowUpTask", uuid.UUID(item["task"])))
        if item.get("task") else None)


FollowUpStatus = strawberry.enum(models.FollowUpStatus, name="FollowUpStatus", description=(
    "Where a consultation follow-up stands: OPEN, DONE, or WITHDRAWN."))
describe_values(FollowUpStatus, {
    "OPEN": "To be done; past its due date it escalates along its owner's chain.",
    "DONE": "Done (its escalation stopped).",
    "WITHDRAWN": "The consultation was amended: replaced by its new follow-ups.",
})


@strawberry.type(description=(
    "A follow-up agreed at a consultation, as its owner's task: owner organisation, named person, "
    "due date and status (what is to be done is the consultation's `followUps`, sealed). Past its "
    "due date, an open one escalates along its owner organisation's chain, its named person "
    "first. " + LISTED))
class ConsultationFollowUpTask(Node):
    case_id: strawberry.ID = strawberry.field(description="The Case.")
    consultation_id: strawberry.ID = strawberry.field(description="The Consultation.")
    position: int = strawberry.field(description=(
        "Its place in the consultation's `followUps` (from 0), where what is to be done is."))
    owner_organisation_id: strawberry.ID = strawberry.field(
        description="The Organisation that owns it.")
    owner_person_id: strawberry.ID | None = strawberry.field(description=(
        "The named person of the owner organisation (a User), shown to that organisation only; "
        "null otherwise or when no one is named."))
    due_at: datetime | None = strawberry.field(description="By when.")
    status: FollowUpStatus = strawberry.field(description="Where it stands.")
    done_at: datetime | None = strawberry.field(description="When it was marked done.")

    @classmethod
    def from_view(cls, view: RowView, org_id: uuid.UUID | None) -> ConsultationFollowUpTask:
        """`org_id`: the caller's organisation (required: its named person is shown to the owner
        organisation only, however the task is reached — a case's list, node(id:), a payload)."""
        t = view.row
        person = t.owner_user_id if org_id is not None and org_id == t.owner_org_id else None
        return cls(id=strawberry.ID(ids.encode("ConsultationFollowUpTask", t.id)),
                   case_id=strawberry.ID(ids.encode("Case", t.case_id)),
                   consultation_id=strawberry.ID(ids.encode("Consultation", t.consultation_id)),
                   position=t.position,
                   owner_organisation_id=strawberry.ID(ids.encode("Organisation",
                                                                  t.owner_org_id)),
                   owner_person_id=strawberry.ID(ids.encode("User", person)) if person else None,
                   due_at=t.due_at, status=models.FollowUpStatus(t.status), done_at=t.done_at)


@strawberry.type(description="Result of completeConsultationFollowUp.")
class ConsultationFollowUpTaskPayload:
    follow_up: ConsultationFollowUpTask | None = strawberry.field(
        description="The follow-up, decided like a read.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")


_FOLLOW_UPS = gated_list("follow_ups", CHECKIN_FIELDS["consultations"]["follow_ups"].value,
                         "Follow-ups with their owners and due dates.", _follow_up,
                         ConsultationFollowUp)


@strawberry.type(description="A consultation with her or her network (guidance 1). " + LISTED)
class Consultation(Node, ConsentGated):
    case_id: strawberry.ID = strawberry.field(description="The Case.")
    held_at: datetime = strawberry.field(description="When it was held.")
    consulted: ConsultedWith = strawberry.field(description="Who was consulted.")
    organisation_ids: list[strawberry.ID] = strawberry.field(
        description="The Organisations present (the recording one first).")
    updated_at: datetime = strawberry.field(description="When it was last amended.")
    topics: str | None = gated("topics", CHECKIN_FIELDS["consultations"]["topics"].value,
                               "What was discussed.")
    risks_raised: str | None = gated(
        "risks_raised", CHECKIN_FIELDS["consultations"]["risks_raised"].value,
        "The risks she (or her network) raised, in her words.")
    follow_ups: list[ConsultationFollowUp] | None = strawberry.field(
        resolver=_FOLLOW_UPS[0], description=_FOLLOW_UPS[1])
    _org: strawberry.Private[uuid.UUID]
    _gate: strawberry.Private[Gate]

    @strawberry.field(description="The organisation that recorded it.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_view(cls, view: RowView) -> Consultation:
        c = view.row
        return cls(id=strawberry.ID(ids.encode("Consultation", c.id)),
                   case_id=strawberry.ID(ids.encode("Case", c.case_id)), held_at=c.held_at,
                   consulted=models.ConsultedWith(c.consulted),
                   organisation_ids=[strawberry.ID(ids.encode("Organisation", uuid.UUID(o)))
                                     for o in c.organisations],
                   updated_at=c.updated_at, _org=c.org_id, _gate=view.gate)


@strawberry.type(description="Result of recordConsultation / amendConsultation.")
class ConsultationPayload:
    consultation: Consultation | None = strawberry.field(
        description="The consultation, decided like a read.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed, if so.")
