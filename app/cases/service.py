"""Opening, reading, updating and closing cases; organisations' internal notes."""

from __future__ import annotations

import uuid

from app.access import visibility
from app.access.context import AccessContext
from app.cases import repository as repo
from app.cases import teams
from app.consent import service as consent_service
from app.db import new_id
from app.errors import BadInput, NotFound
from app.her import sealing
from app.pagination import Page, PageRequest, paginate
from app.peacebuilders import service as peacebuilders
from app.tables.cases import Case, CaseNote, CaseStatus, RiskLevel
from app.tables.categories import CASE_FIELDS
from app.tables.peacebuilders import Peacebuilder

MAX_NOTE = 20_000


async def get(ctx: AccessContext, case_id: uuid.UUID, *, org_level: bool = False) -> Case:
    """One case the caller may see under consent; any other case is simply not found."""
    await ctx.require("case", "read")
    scope = ctx.org_care_scope() if org_level else ctx.care_scope()
    case = (await repo.by_ids(ctx.session, scope, [case_id])).get(case_id)
    if case is None:
        # For the log only: whose case it was, so she and auditors see the attempt.
        owner = await repo.peacebuilder_of(ctx.session, case_id)
        ctx.deny("case.read", target_type="Case", target_id=case_id,
                 reason=ctx.redaction_reason().value,
                 details={"peacebuilder": str(owner)} if owner else None)
        raise NotFound()
    return case


def _risk(value: str | None, default: str) -> str:
    """The level is no longer set by hand: it is the current joint risk assessment's
    (app/risk). The old argument is refused, so a client learns it instead of being ignored."""
    if value is None:
        return default
    raise BadInput("The risk level comes from her joint risk assessment (draftRiskAssessment, "
                   "agreed or contested by her); it is not set by hand.", field="riskLevel")


async def open_case(
    ctx: AccessContext,
    *,
    peacebuilder_id: uuid.UUID,
    risk_level: str | None = None,
    summary: str | None = None,
    intake_consent: peacebuilders.IntakeConsent | None = None,
) -> Case:
    """Open a case led by the caller's organisation. Its access rests on her consent: a live
    grant it already holds for the declared purpose. Intake consent may be recorded here only
    for the first case of a woman the organisation itself registered (pending until confirmed,
    like any consent staff record). The person opening it joins the case team."""
    await ctx.require("case", "create")
    assert ctx.org_id is not None
    if intake_consent is not None:
        await consent_service.standing(ctx, peacebuilder_id, action="consent.intake")
        registered = await ctx.session.get(Peacebuilder, peacebuilder_id)
        if (registered is None or registered.registered_by_org_id != ctx.org_id
                or await repo.any_case_of(ctx.session, peacebuilder_id)):
            ctx.deny("consent.intake", target_type="Peacebuilder", target_id=peacebuilder_id,
                     reason="intake only when registering her or opening her first case")
            raise BadInput("Intake consent is recorded when your organisation registers her or "
                           "opens her first case; record a grant (grantConsent) instead.",
                           field="intakeConsent")
        await peacebuilders.record_intake(ctx, peacebuilder_id, intake_consent)
        await peacebuilders.record_counting(ctx, peacebuilder_id, intake_consent)
    pb = await peacebuilders.get(ctx, peacebuilder_id, org_level=True)
    if intake_consent is None and ctx.mode is visibility.Mode.TEAM and not await ctx.released([pb.id]):
        # A case worker not on the team of her existing cases cannot join by opening another.
        if await repo.led_by(ctx.session, pb.id, ctx.org_id):
            raise NotFound()
    if summary is not None:
        summary = _summary(summary)
        if CASE_FIELDS["summary"].value not in (await ctx.released_to_org([pb.id])).get(pb.id, ()):
            # Org-level consent may not cover incident details for this purpose.
            raise BadInput("Her consent does not cover incident details for this purpose.",
                           field="summary")
    now = ctx.clock.now()
    case = Case(id=new_id(), peacebuilder_id=pb.id, lead_org_id=ctx.org_id,
                status=CaseStatus.OPEN.value, risk_level=_risk(risk_level, RiskLevel.MEDIUM.value),
                opened_at=now, opened_by=ctx.principal.subject, updated_at=now)
    case.summary = await sealing.seal(ctx, sealing.case_ref(case), summary)
    ctx.session.add(case)
    await ctx.session.flush()
    ctx.record("case.open", target_type="Case", target_id=case.id,
               details={"categories": ["incident_details"] if summary else []})
    await teams.add_member(ctx, case, ctx.principal.subject)
    return case


def _summary(value: str) -> str:
    if len(value) > 20_000:
        raise BadInput("Summary is limited to 20000 characters.", field="summary")
    return value


async def update(
    ctx: AccessContext,
    case_id: uuid.UUID,
    *,
    status: str | None = None,
    risk_level: str | None = None,
    summary: str | None = None,
) -> Case:
    """Change status, risk level or summary; closing stamps closed_at, reopening clears it."""
    await ctx.require("case", "update")
    case = await get(ctx, case_id)
    if case.lead_org_id != ctx.org_id:
        raise NotFound()
    changes: dict[str, str] = {}
    if summary is not None:
        if CASE_FIELDS["summary"].value not in (await ctx.released([case.peacebuilder_id])).get(
                case.peacebuilder_id, ()):
            raise NotFound()  # you may not write what you may not read
        case.summary = await sealing.seal(ctx, sealing.case_ref(case), _summary(summary))
        changes["summary"] = "changed"
    if status is not None:
        if status not in {s.value for s in CaseStatus}:
            raise BadInput("Unknown status.", field="status")
        if status != case.status and CaseStatus.CLOSED in (status, case.status):
            # Closing needs a reason and a follow-up plan, reopening a reason (closeCase,
            # reopenCase: app/incidents/closure.py).
            raise BadInput("Close a case with closeCase (a reason and a follow-up plan) and "
                           "reopen it with reopenCase (a reason).", field="status")
        if status != case.status:
            changes["status"] = status
            case.status = status
            case.closed_at = ctx.clock.now() if status == CaseStatus.CLOSED else None
    if risk_level is not None:
        _risk(risk_level, case.risk_level)
    if changes:
        case.updated_at = ctx.clock.now()
        ctx.record("case.update", target_type="Case", target_id=case.id, details=changes)
    return case


async def add_note(ctx: AccessContext, case_id: uuid.UUID, body: str) -> CaseNote:
    """An internal note, visible only to the writing organisation."""
    await ctx.require("case_note", "create")
    assert ctx.org_id is not None
    case = await get(ctx, case_id)
    if not body.strip():
        raise BadInput("Note body is required.", field="body")
    if len(body) > MAX_NOTE:
        raise BadInput(f"Note body is limited to {MAX_NOTE} characters.", field="body")
    note = CaseNote(id=new_id(), case_id=case.id, org_id=ctx.org_id,
                    author=ctx.principal.subject, created_at=ctx.clock.now())
    body_sealed = await sealing.seal(ctx, sealing.note_ref(note, case.peacebuilder_id), body)
    assert body_sealed is not None
    note.body = body_sealed
    ctx.session.add(note)
    await ctx.session.flush()
    ctx.record("case_note.create", target_type="CaseNote", target_id=note.id,
               details={"case": str(case.id)})
    return note


async def list_notes(ctx: AccessContext, case_id: uuid.UUID, page: PageRequest) -> Page[CaseNote]:
    """The caller's own organisation's notes on a case it can reach."""
    await ctx.require("case_note", "read")
    assert ctx.org_id is not None
    case = await get(ctx, case_id)
    return await paginate(ctx.session, repo.notes_query(case.id, ctx.org_id),
                          keys=(CaseNote.created_at, CaseNote.id), page=page)


async def get_note(ctx: AccessContext, note_id: uuid.UUID) -> tuple[CaseNote, uuid.UUID]:
    """One note of the caller's own organisation (`node(id:)`), as `Case.notes` lists it, with
    her ID (its body is sealed with her key)."""
    await ctx.require("case_note", "read")
    case_id = await repo.case_of_note(ctx.session, note_id)
    if case_id is None or ctx.org_id is None:
        raise NotFound()
    case = await get(ctx, case_id)
    found = await ctx.session.scalar(repo.notes_query(case.id, ctx.org_id)
                                     .where(CaseNote.id == note_id))
    if found is None:
        raise NotFound()
    return found, case.peacebuilder_id
