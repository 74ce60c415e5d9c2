"""Her correction requests on the staff side: listed and answered by the organisation addressed."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry

from app.corrections import service as corrections
from app.tables import consent as models
from schema import ids, permissions
from schema.common import UserError, guarded
from schema.consent.types import DataRequest, DataRequestStatus
from schema.context import Info


@strawberry.enum(description="How a correction request is answered.")
class CorrectionOutcome(enum.Enum):
    CORRECTED = strawberry.enum_value("corrected", description=(
        "Corrected: a profile field's new value (`correctedValue`) is written and logged like "
        "any change of her record; other fields are corrected where they are kept, first."))
    DECLINED = strawberry.enum_value("declined", description="Declined, with a reason for her.")


@strawberry.type(description=(
    "Her correction request as the organisation it is addressed to sees it. Requires "
    "`data_request:manage` (focal points) and a record of hers your organisation may still see "
    "for your purpose; each read is logged."))
class CorrectionRequest:
    id: strawberry.ID = strawberry.field(description="Opaque global ID (a DataRequest).")
    field: str | None = strawberry.field(description="The field she asks to correct.")
    message: str | None = strawberry.field(description=(
        "What she says is wrong, opened with her key (null once her data is erased)."))
    status: DataRequestStatus = strawberry.field(description="Where it stands.")  # type: ignore[valid-type]
    created_at: datetime = strawberry.field(description="When she asked.")
    due_at: datetime | None = strawberry.field(description="When your answer is due; unanswered "
                                                           "then, it escalates along your chain.")
    _pb: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Her record (opaque global ID).")
    def peacebuilder_id(self) -> strawberry.ID:
        return strawberry.ID(ids.encode("Peacebuilder", self._pb))

    @classmethod
    def from_model(cls, r: models.DataRequest, message: str | None) -> CorrectionRequest:
        return cls(id=strawberry.ID(ids.encode("DataRequest", r.id)), field=r.field,
                   message=message, status=r.status, created_at=r.created_at, due_at=r.due_at,
                   _pb=r.peacebuilder_id)


@strawberry.input(description="Answer one of her correction requests.")
class AnswerCorrectionInput:
    request_id: strawberry.ID = strawberry.field(description="From `correctionRequests`.")
    outcome: CorrectionOutcome = strawberry.field(description="Corrected or declined.")
    reason: str | None = strawberry.field(default=None, description=(
        "For her (required when declined); sealed with her key."))
    corrected_value: str | None = strawberry.field(default=None, description=(
        "The corrected value of a profile field (required when a profile field is corrected; "
        "needs her consent to that field's category, like any update of her record)."))


@strawberry.input(description="Your organisation's deadline for answering correction requests.")
class CorrectionDeadlineInput:
    days: int = strawberry.field(description="1 to 90 days (default 30).")


@strawberry.type(description="Result of answerCorrectionRequest.")
class AnswerCorrectionPayload:
    request: DataRequest | None = strawberry.field(description="The request as answered.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was changed.")


@strawberry.type(description="Result of setCorrectionDeadline.")
class CorrectionDeadlinePayload:
    days: int | None = strawberry.field(description="The deadline now in force (days).")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was changed.")


@strawberry.type
class CorrectionQueries:
    @permissions.query(
        "Correction requests addressed to your organisation, earliest deadline first (open ones "
        "unless `openOnly` is false); only women whose record your organisation may see for your "
        "purpose. Logged.",
        requires=[("data_request", "manage")],
        args={
            "open_only": "true (default): only requests not yet answered; false: answered ones too.",
        })
    async def correction_requests(self, info: Info,
                                  open_only: bool = True) -> list[CorrectionRequest]:
        rows = await info.context.loaders.call(corrections.for_my_organisation,
                                               info.context.access, open_only=open_only)
        return [CorrectionRequest.from_model(r, message) for r, message in rows]


@strawberry.type
class CorrectionMutations:
    @permissions.mutation(
        "Answer her correction request (the organisation it is addressed to): CORRECTED — a "
        "profile field's value is written through the ordinary update, checked and logged — or "
        "DECLINED with a reason. Stops its escalation; she is told by a notice "
        "(`correction_answered`, IDs only) and reads the answer in `me.dataRequests`. Logged.",
        requires=[("data_request", "manage")])
    async def answer_correction_request(self, info: Info,
                                        input: AnswerCorrectionInput) -> AnswerCorrectionPayload:
        request_id = ids.decode(input.request_id, "DataRequest", "requestId")
        done, errors = await guarded(info, lambda: info.context.loaders.call(
            corrections.answer, info.context.access, request_id, outcome=input.outcome.value,
            reason=input.reason, corrected_value=input.corrected_value))
        return AnswerCorrectionPayload(request=DataRequest.from_model(done) if done else None,
                                       user_errors=errors)

    @permissions.mutation(
        "Your organisation's deadline for answering her correction requests (days). Logged.",
        requires=[("organisation", "manage_settings")])
    async def set_correction_deadline(self, info: Info,
                                      input: CorrectionDeadlineInput) -> CorrectionDeadlinePayload:
        days, errors = await guarded(info, lambda: info.context.loaders.call(
            corrections.set_days, info.context.access, input.days))
        return CorrectionDeadlinePayload(days=days, user_errors=errors)
