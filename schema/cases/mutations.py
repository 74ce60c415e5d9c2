"""Mutations for cases and notes."""

from __future__ import annotations

import strawberry

from app.cases import service as cases
from app.incidents import closure, retention
from schema import ids, permissions
from schema.cases.types import (
    AddCaseNoteInput,
    CaseNote,
    CaseNotePayload,
    CasePayload,
    CloseCaseInput,
    CloseCasePayload,
    ExtendRetentionInput,
    OpenCaseInput,
    ReopenCaseInput,
    SetRetentionHoldInput,
    UpdateCaseInput,
    case_payload,
)
from schema.common import guarded
from schema.context import Info


@strawberry.type
class CaseMutations:
    @permissions.mutation(
        "Open a case led by your organisation. Logged.",
        requires=[("case", "create"), ("peacebuilder", "read")], purpose=True)
    async def open_case(self, info: Info, input: OpenCaseInput) -> CasePayload:
        pb_id = ids.decode(input.peacebuilder_id, "Peacebuilder", "peacebuilderId")
        case, errors = await guarded(info, lambda: info.context.loaders.call(
            cases.open_case, info.context.access, peacebuilder_id=pb_id,
            risk_level=input.risk_level.value if input.risk_level else None,
            summary=input.summary,
            intake_consent=input.intake_consent.to_app() if input.intake_consent else None))
        return await case_payload(info, case, errors)

    @permissions.mutation(
        "Change the status or summary of a case your organisation leads (its risk level is its "
        "current joint risk assessment's). Logged.",
        requires=[("case", "update"), ("case", "read")], purpose=True)
    async def update_case(self, info: Info, input: UpdateCaseInput) -> CasePayload:
        case_id = ids.decode(input.id, "Case")
        case, errors = await guarded(info, lambda: info.context.loaders.call(
            cases.update, info.context.access, case_id,
            status=input.status.value if input.status else None,
            risk_level=input.risk_level.value if input.risk_level else None,
            summary=input.summary))
        return await case_payload(info, case, errors)

    @permissions.mutation(
        "Close a case your organisation leads, with a reason and a follow-up plan (each step a "
        "measure with a date and an owner her consent covers). For high or critical risk a second "
        "focal point confirms it (two-person rule). She is told. Logged.",
        requires=[("case", "update"), ("case", "read"), ("measure", "manage")], purpose=True,
        when="`measure:manage` is checked for each step of the follow-up plan")
    async def close_case(self, info: Info, input: CloseCaseInput) -> CloseCasePayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        plan = [closure.FollowUp(
            kind=step.kind.value, due_at=step.due_at,
            owner_org_id=(ids.decode(step.owner_organisation_id, "Organisation",
                                     "ownerOrganisationId")
                          if step.owner_organisation_id else None),
            description=step.description) for step in input.follow_up]
        done, errors = await guarded(info, lambda: info.context.loaders.call(
            closure.close, info.context.access, case_id, reason=input.reason.value, plan=plan))
        if done is None:
            return CloseCasePayload(case=None, confirmation_id=None, user_errors=errors)
        case, asked = done
        answered = await case_payload(info, case, errors)
        return CloseCasePayload(
            case=answered.case, user_errors=answered.user_errors,
            confirmation_id=strawberry.ID(ids.encode("Confirmation", asked.id)) if asked else None)

    @permissions.mutation(
        "Reopen a closed case your organisation leads, with a reason. She is told. Logged.",
        requires=[("case", "update"), ("case", "read")], purpose=True)
    async def reopen_case(self, info: Info, input: ReopenCaseInput) -> CasePayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        case, errors = await guarded(info, lambda: info.context.loaders.call(
            closure.reopen, info.context.access, case_id, reason=input.reason.value))
        return await case_payload(info, case, errors)

    @permissions.mutation(
        "Keep a closed case your organisation leads past its retention date, with a reason code "
        "(on the timeline). Logged.",
        requires=[("case", "update"), ("case", "read")], purpose=True)
    async def extend_retention(self, info: Info, input: ExtendRetentionInput) -> CasePayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        case, errors = await guarded(info, lambda: info.context.loaders.call(
            retention.extend, info.context.access, case_id, until=input.until,
            reason=input.reason.value))
        return await case_payload(info, case, errors)

    @permissions.mutation(
        "Place (with a reason code) or release a legal hold on a closed case your organisation "
        "leads: nothing is erased while it holds. Logged.",
        requires=[("case", "update"), ("case", "read")], purpose=True)
    async def set_retention_hold(self, info: Info, input: SetRetentionHoldInput) -> CasePayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        case, errors = await guarded(info, lambda: info.context.loaders.call(
            retention.hold, info.context.access, case_id,
            reason=input.reason.value if input.reason else None, held=input.hold))
        return await case_payload(info, case, errors)

    @permissions.mutation(
        "Add an internal note to a case. Logged (never the text).",
        requires=[("case_note", "create"), ("case", "read")])
    async def add_case_note(self, info: Info, input: AddCaseNoteInput) -> CaseNotePayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        note, errors = await guarded(info, lambda: info.context.loaders.call(
            cases.add_note, info.context.access, case_id, input.body))
        if note is None:
            return CaseNotePayload(note=None, user_errors=errors)
        from app.tables.cases import Case as CaseRow

        case = await info.context.access.session.get(CaseRow, note.case_id)  # already loaded
        assert case is not None
        return CaseNotePayload(note=CaseNote.from_model(note, case.peacebuilder_id),
                               user_errors=errors)
