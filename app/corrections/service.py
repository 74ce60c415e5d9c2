"""Her correction requests, answered: a task of one organisation with a deadline that escalates.

She asks (`request_correction`); the request goes to the lead
organisation of her most recent open case (else the organisation that registered her), due in
that organisation's `correction_days` (default 30). Unanswered at its deadline it escalates
along that organisation's chain (app/escalation, kind `correction_due`) on the case's timeline.
A focal point answers it: corrected — a profile field's new value is written through the
ordinary update, so it is checked and logged like any change — or declined with a reason
(sealed with her key). She is told by a notice (IDs and codes only) and reads the outcome and
reason in `me.dataRequests`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.access.context import AccessContext
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.escalation import service as escalation
from app.her import sealing
from app.her.notices import NoticeKind, tell_her
from app.incidents.service import event
from app.notify import service as notify
from app.operations.service import own_settings
from app.peacebuilders import self_service
from app.tables.cases import Case, CaseStatus
from app.tables.categories import PROFILE_FIELDS
from app.tables.consent import DataRequest
from app.tables.operations import OrganisationSettings
from app.tables.peacebuilders import Peacebuilder

DEFAULT_DAYS = 30
MIN_DAYS, MAX_DAYS = 1, 90
DUE = "correction_due"
OUTCOMES = ("corrected", "declined")
MAX_REASON = 2000


def reason_ref(request: DataRequest) -> sealing.Ref:
    return sealing.Ref(request.peacebuilder_id, None, "data_requests", request.id,
                       "answer_reason")


async def _addressee(ctx: AccessContext, pb_id: uuid.UUID) -> tuple[uuid.UUID | None,
                                                                    uuid.UUID | None]:
    """(organisation that must answer, case it escalates on) for her request."""
    case = (await ctx.session.execute(
        select(Case.id, Case.lead_org_id).where(
            Case.peacebuilder_id == pb_id, Case.status != CaseStatus.CLOSED.value)
        .order_by(Case.opened_at.desc(), Case.id).limit(1))).first()
    if case is not None:
        return case.lead_org_id, case.id
    registered = await ctx.session.scalar(select(Peacebuilder.registered_by_org_id).where(
        Peacebuilder.id == pb_id))
    return registered, None


async def days_for(ctx: AccessContext, org_id: uuid.UUID) -> int:
    """The organisation's deadline for answering (its own setting, read even when she asks)."""
    days = await ctx.org_fact(select(OrganisationSettings.correction_days).where(
        OrganisationSettings.org_id == org_id))
    return int(days) if days else DEFAULT_DAYS


async def open_task(ctx: AccessContext, request: DataRequest) -> None:
    """Address her new request to its organisation, with its deadline and escalation."""
    org_id, case_id = await _addressee(ctx, request.peacebuilder_id)
    if org_id is None:
        return
    request.org_id, request.case_id = org_id, case_id
    request.due_at = request.created_at + timedelta(days=await days_for(ctx, org_id))
    await ctx.session.flush()
    if case_id is not None:  # escalation runs on a case's timeline
        escalation.start(ctx.session, DUE, request.id, request.due_at)
        event(ctx, case_id, "correction.requested", request.id, {"field": request.field})
    payload = {"request": str(request.id), "field": request.field,
               **({"case": str(case_id)} if case_id else {})}
    await notify.notify(ctx, [(s, org_id) for s in await notify.focal_points(ctx.session, org_id)],
                        kind="correction_requested", subject_id=request.id, case_id=case_id,
                        at=request.created_at, payload=payload)


async def for_my_organisation(ctx: AccessContext, *, open_only: bool = True
                              ) -> list[tuple[DataRequest, str | None]]:
    """Correction requests addressed to the caller's organisation, for women whose record it
    may still see, with her message opened (she addressed it to them)."""
    await ctx.require("data_request", "manage")
    query = select(DataRequest).where(DataRequest.org_id == ctx.org_id,
                                      DataRequest.kind == "correction")
    if open_only:
        query = query.where(DataRequest.status == "open")
    rows = list(await ctx.session.scalars(query.order_by(DataRequest.due_at, DataRequest.id)))
    visible = await ctx.released(list({r.peacebuilder_id for r in rows}))
    rows = [r for r in rows if r.peacebuilder_id in visible]
    opened = await sealing.open_many(ctx, [(sealing.data_request_ref(r), r.message)
                                           for r in rows])
    for r in rows:
        ctx.record("data.correction_read", target_type="Peacebuilder", target_id=r.peacebuilder_id,
                   details={"request": str(r.id)})
    return [(r, o.value) for r, o in zip(rows, opened, strict=True)]


async def answer(ctx: AccessContext, request_id: uuid.UUID, *, outcome: str,
                 reason: str | None, corrected_value: str | None) -> DataRequest:
    """Answer her request (the organisation it is addressed to): corrected — a profile field's
    value written through the ordinary update — or declined with a reason. She is told."""
    from app.peacebuilders import service as peacebuilders

    await ctx.require("data_request", "manage")
    request = await ctx.session.get(DataRequest, request_id)
    if (request is None or request.kind != "correction" or request.org_id != ctx.org_id
            or request.peacebuilder_id not in await ctx.released([request.peacebuilder_id])):
        raise NotFound()
    if request.status != "open":
        raise Conflict(f"This request was already answered ({request.status}).")
    if outcome not in OUTCOMES:
        raise BadInput("Outcome is corrected or declined.", field="outcome")
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise BadInput(f"At most {MAX_REASON} characters.", field="reason")
    if outcome == "declined" and reason is None:
        raise BadInput("Tell her why it is declined.", field="reason")
    applied = False
    if outcome == "corrected" and request.field in PROFILE_FIELDS:
        if corrected_value is None:
            raise BadInput("Give the corrected value of the field.", field="correctedValue")
        await peacebuilders.update(ctx, request.peacebuilder_id,
                                   profile={request.field: corrected_value or None})
        applied = True
    elif corrected_value is not None:
        raise BadInput("Only a profile field's value is written here; correct the summary or "
                       "pseudonym where it is kept, then answer corrected.",
                       field="correctedValue")
    now = ctx.clock.now()
    request.status = outcome
    request.answered_at, request.answered_by = now, ctx.principal.subject
    request.answer_reason = await sealing.seal(ctx, reason_ref(request), reason,
                                               input_field="reason")
    details: dict[str, Any] = {"request": str(request.id), "outcome": outcome,
                               "field": request.field, "applied": applied}
    ctx.record("data.correction_answer", target_type="Peacebuilder",
               target_id=request.peacebuilder_id, details=details)
    if request.case_id is not None:
        event(ctx, request.case_id, f"correction.{outcome}", request.id,
              {"field": request.field})
    await tell_her(ctx, request.peacebuilder_id, NoticeKind.CORRECTION_ANSWERED,
                   case_id=request.case_id, subject_id=request.id, codes={"reason": outcome})
    return request


async def opened_reasons(ctx: AccessContext,
                         rows: list[DataRequest]) -> dict[uuid.UUID, str | None]:
    """The reasons of answered requests, opened with her key (for her own view)."""
    answered = [r for r in rows if r.answer_reason is not None]
    opened = await sealing.open_many(ctx, [(reason_ref(r), r.answer_reason) for r in answered])
    return {r.id: o.value for r, o in zip(answered, opened, strict=True)}


async def set_days(ctx: AccessContext, days: int) -> int:
    """The organisation's deadline for answering her correction requests. Org admins; logged."""
    await ctx.require("organisation", "manage_settings")
    assert ctx.org_id is not None
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise BadInput(f"Between {MIN_DAYS} and {MAX_DAYS} days.", field="days")
    found = await own_settings(ctx)
    found.correction_days = days
    found.updated_by, found.updated_at = ctx.principal.subject, ctx.clock.now()
    await ctx.session.flush()
    ctx.record("correction.deadline", target_type="Organisation", target_id=ctx.org_id,
               details={"days": days})
    return days


@escalation.due_item(DUE)
async def _unanswered(session: Any, request_id: uuid.UUID) -> escalation.Due | None:
    """An open correction request owes its organisation's chain until it is answered."""
    request = await session.get(DataRequest, request_id)
    if request is None or request.status != "open" or request.case_id is None \
            or request.org_id is None:
        return None
    return escalation.Due("correction", request.case_id, request.org_id, request.peacebuilder_id,
                          {"request": str(request.id), "case": str(request.case_id),
                           "due_at": request.due_at.isoformat() if request.due_at else None})


async def request_correction(ctx: AccessContext, field: str, message: str) -> DataRequest:
    """She asks for a correction of her record: addressed, due, escalating (`open_task`)."""
    pb_id = self_service.my_id(ctx)
    if field not in PROFILE_FIELDS and field not in {"summary", "pseudonym", "other"}:
        raise BadInput("Name the field to correct (a profile field, summary or other).",
                       field="field")
    if not message.strip() or len(message) > 2000:
        raise BadInput("Say what is wrong (at most 2000 characters).", field="message")
    request = DataRequest(id=new_id(), peacebuilder_id=pb_id, kind="correction", field=field,
                          requested_by=ctx.principal.subject, created_at=ctx.clock.now())
    request.message = await sealing.seal(ctx, sealing.data_request_ref(request), message.strip(),
                                         input_field="message")
    ctx.session.add(request)
    await ctx.session.flush()
    await open_task(ctx, request)  # addressed, due, escalating
    ctx.record("data.correction_request", target_type="Peacebuilder", target_id=pb_id,
               details={"field": field, "request": str(request.id),
                        "organisation": str(request.org_id) if request.org_id else None})
    return request
