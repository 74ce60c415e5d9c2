"""Mutations of the consultations log: `safety_plan:manage` on a case whose `risk_assessment`
category her consent releases to the caller for the declared purpose, else NOT_FOUND."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from app.consultations import service as consultations
from app.read import children
from schema import ids, permissions
from schema.common import guarded
from schema.consultations.types import Consultation, ConsultationPayload, ConsultedWith
from schema.context import Info
from schema.gated import want_of


@strawberry.input(description="A follow-up agreed at a consultation.")
class ConsultationFollowUpInput:
    action: str = strawberry.field(description="What is to be done (sealed).")
    owner_organisation_id: strawberry.ID = strawberry.field(
        description="The Organisation that owns it.")
    due_at: datetime | None = strawberry.field(default=None, description="By when.")


@strawberry.input(description="Log a consultation with her or her network.")
class RecordConsultationInput:
    case_id: strawberry.ID = strawberry.field(description="The Case.")
    held_at: datetime = strawberry.field(description="When it was held (not ahead).")
    consulted: ConsultedWith = strawberry.field(description="Who was consulted.")
    organisation_ids: list[strawberry.ID] = strawberry.field(default_factory=list, description=(
        "Other Organisations present (yours is added)."))
    topics: str | None = strawberry.field(default=None, description=(
        "What was discussed (category `risk_assessment`, sealed)."))
    risks_raised: str | None = strawberry.field(default=None, description=(
        "The risks she raised, in her words (category `risk_assessment`, sealed)."))
    follow_ups: list[ConsultationFollowUpInput] = strawberry.field(
        default_factory=list, description="Follow-ups with owners and due dates (sealed).")


@strawberry.input(description="Amend your organisation's consultation (given fields replace).")
class AmendConsultationInput:
    consultation_id: strawberry.ID = strawberry.field(description="The Consultation.")
    topics: str | None = strawberry.field(default=None, description="What was discussed.")
    risks_raised: str | None = strawberry.field(default=None, description="The risks she raised.")
    follow_ups: list[ConsultationFollowUpInput] | None = strawberry.field(
        default=None, description="The follow-ups as they stand now.")


def _follow_ups(items: list[ConsultationFollowUpInput] | None) -> list[dict[str, Any]]:
    return [{"action": f.action,
             "owner_organisation": ids.decode(f.owner_organisation_id, "Organisation",
                                              "followUps"),
             "due_at": f.due_at} for f in items or []]


async def _payload(info: Info, row: Any, errors: list) -> ConsultationPayload:  # type: ignore[type-arg]
    if row is None:
        return ConsultationPayload(consultation=None, user_errors=errors)
    view = await info.context.loaders.call(children.written, info.context.access,
                                           "consultations", row, want_of(info, "consultation"))
    return ConsultationPayload(consultation=Consultation.from_view(view), user_errors=errors)


@strawberry.type
class ConsultationMutations:
    @permissions.mutation(
        "Log a consultation with her or her network (guidance 1): date, organisations present, "
        "topics, risks she raised, follow-ups with owners and due dates. Her consent must release "
        "`risk_assessment` to your organisation for the declared purpose (otherwise NOT_FOUND, as "
        "for a missing record). Logged.",
        requires=[("safety_plan", "manage"), ("case", "read")], purpose=True)
    async def record_consultation(self, info: Info,
                                  input: RecordConsultationInput) -> ConsultationPayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        orgs = [ids.decode(o, "Organisation", "organisationIds") for o in input.organisation_ids]
        follow_ups = _follow_ups(input.follow_ups)
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            consultations.record, info.context.access, case_id=case_id, held_at=input.held_at,
            consulted=input.consulted.value, organisation_ids=orgs, topics=input.topics,
            risks_raised=input.risks_raised, follow_ups=follow_ups))
        return await _payload(info, row, errors)

    @permissions.mutation(
        "Amend your organisation's consultation. Her consent must release `risk_assessment` to "
        "your organisation for the declared purpose (otherwise NOT_FOUND, as for a missing "
        "record). Logged.",
        requires=[("safety_plan", "manage"), ("case", "read")], purpose=True)
    async def amend_consultation(self, info: Info,
                                 input: AmendConsultationInput) -> ConsultationPayload:
        cid = ids.decode(input.consultation_id, "Consultation", "consultationId")
        follow_ups = _follow_ups(input.follow_ups) if input.follow_ups is not None else None
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            consultations.amend, info.context.access, consultation_id=cid, topics=input.topics,
            risks_raised=input.risks_raised, follow_ups=follow_ups))
        return await _payload(info, row, errors)
