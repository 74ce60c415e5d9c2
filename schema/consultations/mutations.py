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
from schema.consultations.types import (
    Consultation,
    ConsultationFollowUpTask,
    ConsultationFollowUpTaskPayload,
    ConsultationPayload,
    ConsultedWith,
)
from schema.context import Info
from schema.gated import want_of


@strawberry.input(description="A follow-up agreed at a consultation.")
class ConsultationFollowUpInput:
    action: str = strawberry.field(description="What is to be done (sealed).")
    owner_organisation_id: strawberry.ID = strawberry.field(
        description="The Organisation that owns it.")
    due_at: datetime | None = strawberry.field(default=None, description=(
        "By when: an open follow-up past it escalates along its owner organisation's chain."))
    owner_user_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "A named person of the owner organisation who owns it (her reminders and escalation "
        "first). Only the owner organisation names its own people."))


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
             "due_at": f.due_at,
             "owner_user": ids.decode(f.owner_user_id, "User", "followUps")
             if f.owner_user_id else None} for f in items or []]


@strawberry.input(description="Mark a consultation follow-up done.")
class CompleteConsultationFollowUpInput:
    follow_up_id: strawberry.ID = strawberry.field(description="The ConsultationFollowUpTask.")


async def _task_payload(info: Info, row: Any,
                        errors: list) -> ConsultationFollowUpTaskPayload:  # type: ignore[type-arg]
    if row is None:
        return ConsultationFollowUpTaskPayload(follow_up=None, user_errors=errors)
    view = await info.context.loaders.call(children.written, info.context.access,
                                           "consultation_follow_ups", row,
                                           want_of(info, "followUp"))
    return ConsultationFollowUpTaskPayload(
        follow_up=ConsultationFollowUpTask.from_view(view, info.context.access.org_id),
        user_errors=errors)


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

    @permissions.mutation(
        "Mark a consultation follow-up done (its owner organisation, or the one that recorded "
        "the consultation): its escalation stops. Her consent must release `risk_assessment` to "
        "your organisation for the declared purpose (otherwise NOT_FOUND, as for a missing "
        "record). Logged.",
        requires=[("safety_plan", "manage"), ("case", "read")])
    async def complete_consultation_follow_up(
            self, info: Info,
            input: CompleteConsultationFollowUpInput) -> ConsultationFollowUpTaskPayload:
        fid = ids.decode(input.follow_up_id, "ConsultationFollowUpTask", "followUpId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            consultations.complete_follow_up, info.context.access, fid))
        return await _task_payload(info, row, errors)
