"""Mutations for cases and notes."""

from __future__ import annotations

import strawberry

from app.cases import service as cases
from schema import ids
from schema.cases.types import (
    AddCaseNoteInput,
    CaseNote,
    CaseNotePayload,
    CasePayload,
    OpenCaseInput,
    UpdateCaseInput,
    case_payload,
)
from schema.common import guarded
from schema.context import Info


@strawberry.type
class CaseMutations:
    @strawberry.mutation(description="Open a case led by your organisation. "
                                     "Requires `case:create`. Logged.")
    async def open_case(self, info: Info, input: OpenCaseInput) -> CasePayload:
        pb_id = ids.decode(input.peacebuilder_id, "Peacebuilder", "peacebuilderId")
        case, errors = await guarded(info, lambda: info.context.loaders.call(
            cases.open_case, info.context.access, peacebuilder_id=pb_id,
            risk_level=input.risk_level.value if input.risk_level else None,
            summary=input.summary,
            intake_consent=input.intake_consent.to_app() if input.intake_consent else None))
        return await case_payload(info, case, errors)

    @strawberry.mutation(description="Change status or risk level of a case your organisation "
                                     "leads. Requires `case:update`. Logged.")
    async def update_case(self, info: Info, input: UpdateCaseInput) -> CasePayload:
        case_id = ids.decode(input.id, "Case")
        case, errors = await guarded(info, lambda: info.context.loaders.call(
            cases.update, info.context.access, case_id,
            status=input.status.value if input.status else None,
            risk_level=input.risk_level.value if input.risk_level else None,
            summary=input.summary))
        return await case_payload(info, case, errors)

    @strawberry.mutation(description="Add an internal note to a case. Requires "
                                     "`case_note:create`. Logged (never the text).")
    async def add_case_note(self, info: Info, input: AddCaseNoteInput) -> CaseNotePayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        note, errors = await guarded(info, lambda: info.context.loaders.call(
            cases.add_note, info.context.access, case_id, input.body))
        if note is None:
            return CaseNotePayload(note=None, user_errors=errors)
        from app.cases.models import Case as CaseRow

        case = await info.context.access.session.get(CaseRow, note.case_id)  # already loaded
        assert case is not None
        return CaseNotePayload(note=CaseNote.from_model(note, case.peacebuilder_id),
                               user_errors=errors)
