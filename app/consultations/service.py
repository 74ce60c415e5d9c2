"""The consultations log: meetings with her or her network, under her consent for
`risk_assessment` (the same rule as check-ins: `safety_plan:manage`, else not found).

What she said about her risks is hers: topics, risks raised and follow-ups are sealed with her
key; organisations present are IDs. A consultation is amended by the organisation that recorded
it (what was agreed changes as follow-ups are done)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.access.context import AccessContext
from app.checkins import refs
from app.checkins.service import RISK, log, risk_case, text
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.escalation import service as escalation
from app.her import sealing
from app.incidents.response import check_owner_person
from app.incidents.service import event
from app.orgs import repository as orgs_repo
from app.tables.cases import Case
from app.tables.consultations import (
    Consultation,
    ConsultationFollowUp,
    ConsultedWith,
    FollowUpStatus,
)

MAX_ORGS = 30
MAX_FOLLOW_UPS = 30
FOLLOW_UP_OVERDUE = "consultation_follow_up"  # the due item: an open follow-up past its date


async def _organisations(ctx: AccessContext, org_ids: list[uuid.UUID]) -> list[str]:
    wanted = list(dict.fromkeys(org_ids))
    if len(wanted) > MAX_ORGS:
        raise BadInput(f"At most {MAX_ORGS} organisations.", field="organisationIds")
    known = await orgs_repo.orgs_by_ids(ctx.session, wanted) if wanted else {}
    if set(wanted) - set(known):
        raise BadInput("No such organisation.", field="organisationIds")
    return [str(o) for o in wanted]


async def _follow_ups(ctx: AccessContext,
                      items: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The sealed list's text (what is to be done, in her words, with its task's ID) and the
    follow-ups as tasks: owner organisation, named person, due date."""
    if len(items) > MAX_FOLLOW_UPS:
        raise BadInput(f"At most {MAX_FOLLOW_UPS} follow-ups.", field="followUps")
    owners = [i["owner_organisation"] for i in items]
    known = await orgs_repo.orgs_by_ids(ctx.session, owners) if owners else {}
    out, tasks = [], []
    for item in items:
        action = text(item.get("action"), "followUps")
        if action is None:
            raise BadInput("Each follow-up says what is to be done.", field="followUps")
        owner = item["owner_organisation"]
        if owner not in known:
            raise BadInput("No such organisation.", field="followUps")
        person: uuid.UUID | None = item.get("owner_user")
        if person is not None:
            # Only the owner organisation names its own people (as for a measure's owner).
            await check_owner_person(ctx, owner, person)
        due: datetime | None = item.get("due_at")
        task = new_id()
        out.append({"action": action, "owner_organisation": str(owner),
                    "due_at": due.isoformat() if due else None, "task": str(task)})
        tasks.append({"id": task, "owner_org_id": owner, "owner_user_id": person,
                      "due_at": due})
    text_ = json.dumps(out, ensure_ascii=False, separators=(",", ":")) if out else None
    return text_, tasks


async def _set_tasks(ctx: AccessContext, row: Consultation, tasks: list[dict[str, Any]]) -> None:
    """The consultation's follow-ups become its tasks (those it had and still open are
    withdrawn: replaced by the new list); each with a due date falls due then and escalates
    along its owner's chain until done."""
    now = ctx.clock.now()
    for old in await ctx.session.scalars(select(ConsultationFollowUp).where(
            ConsultationFollowUp.consultation_id == row.id,
            ConsultationFollowUp.status == FollowUpStatus.OPEN.value)):
        old.status = FollowUpStatus.WITHDRAWN.value
    for position, spec in enumerate(tasks):
        ctx.session.add(ConsultationFollowUp(
            id=spec["id"], case_id=row.case_id, consultation_id=row.id, position=position,
            owner_org_id=spec["owner_org_id"], owner_user_id=spec["owner_user_id"],
            due_at=spec["due_at"], status=FollowUpStatus.OPEN.value, created_at=now))
    await ctx.session.flush()
    for spec in tasks:
        if spec["due_at"] is not None:
            escalation.start(ctx.session, FOLLOW_UP_OVERDUE, spec["id"], spec["due_at"])


async def _seal(ctx: AccessContext, row: Consultation, pb: uuid.UUID, column: str,
                value: str | None, field: str) -> None:
    setattr(row, column, await sealing.seal(ctx, refs.ref("consultations", column)(row, pb),
                                            value, input_field=field))


async def record(ctx: AccessContext, *, case_id: uuid.UUID, held_at: datetime, consulted: str,
                 organisation_ids: list[uuid.UUID], topics: str | None, risks_raised: str | None,
                 follow_ups: list[dict[str, Any]]) -> Consultation:
    """A meeting with her or her network, logged."""
    case = await risk_case(ctx, case_id, "consultation.record")
    try:
        ConsultedWith(consulted)
    except ValueError as exc:
        raise BadInput("With her, her network, or both.", field="consulted") from exc
    now = ctx.clock.now()
    if held_at > now:
        raise BadInput("A consultation is logged once held.", field="heldAt")
    assert ctx.org_id is not None
    orgs = await _organisations(ctx, [ctx.org_id, *organisation_ids])
    row = Consultation(id=new_id(), case_id=case.id, org_id=ctx.org_id, held_at=held_at,
                       consulted=consulted, organisations=orgs,
                       recorded_by=ctx.principal.subject, created_at=now, updated_at=now)
    pb = case.peacebuilder_id
    await _seal(ctx, row, pb, "topics", text(topics, "topics"), "topics")
    await _seal(ctx, row, pb, "risks_raised", text(risks_raised, "risksRaised"), "risksRaised")
    sealed, tasks = await _follow_ups(ctx, follow_ups)
    await _seal(ctx, row, pb, "follow_ups", sealed, "followUps")
    ctx.session.add(row)
    await ctx.session.flush()
    await _set_tasks(ctx, row, tasks)
    event(ctx, case.id, "consultation.recorded", row.id,
          {"consulted": consulted, "held_at": held_at.isoformat(), "organisations": orgs,
           "follow_ups": len(follow_ups)})
    log(ctx, "consultation.record", case, consultation=str(row.id))
    return row


async def amend(ctx: AccessContext, *, consultation_id: uuid.UUID, topics: str | None,
                risks_raised: str | None,
                follow_ups: list[dict[str, Any]] | None) -> Consultation:
    """The recording organisation amends what it logged (fields given replace the old ones)."""
    await ctx.require("safety_plan", "manage")
    row = await ctx.session.get(Consultation, consultation_id)
    if row is None:
        raise NotFound()
    case = await risk_case(ctx, row.case_id, "consultation.amend")
    if row.org_id != ctx.org_id:
        raise NotFound()  # another organisation's record
    pb = case.peacebuilder_id
    if topics is not None:
        await _seal(ctx, row, pb, "topics", text(topics, "topics"), "topics")
    if risks_raised is not None:
        await _seal(ctx, row, pb, "risks_raised", text(risks_raised, "risksRaised"),
                    "risksRaised")
    if follow_ups is not None:
        sealed, tasks = await _follow_ups(ctx, follow_ups)
        await _seal(ctx, row, pb, "follow_ups", sealed, "followUps")
        await _set_tasks(ctx, row, tasks)
    row.updated_at = ctx.clock.now()
    await ctx.session.flush()
    event(ctx, case.id, "consultation.amended", row.id, {})
    log(ctx, "consultation.amend", case, consultation=str(row.id))
    return row


async def complete_follow_up(ctx: AccessContext, follow_up_id: uuid.UUID) -> ConsultationFollowUp:
    """Its owner organisation (or the one that recorded the consultation) marks a follow-up
    done: its escalation stops."""
    await ctx.require("safety_plan", "manage")
    task = await ctx.session.get(ConsultationFollowUp, follow_up_id)
    if task is None:
        raise NotFound()
    case = await risk_case(ctx, task.case_id, "consultation_follow_up.done")
    consultation = await ctx.session.get(Consultation, task.consultation_id)
    assert consultation is not None
    if ctx.org_id not in (task.owner_org_id, consultation.org_id):
        ctx.deny("consultation_follow_up.done", target_type="Case", target_id=case.id,
                 reason="neither its owner nor the recording organisation",
                 details={"follow_up": str(task.id)})
        raise NotFound()
    if task.status != FollowUpStatus.OPEN:
        raise Conflict(f"The follow-up is {task.status}.")
    now = ctx.clock.now()
    task.status, task.done_at, task.done_by = FollowUpStatus.DONE.value, now, ctx.principal.subject
    await ctx.session.flush()
    event(ctx, case.id, "consultation_follow_up.done", task.id,
          {"consultation": str(consultation.id),
           "late": task.due_at is not None and now > task.due_at})
    log(ctx, "consultation_follow_up.done", case, follow_up=str(task.id),
        consultation=str(consultation.id))
    return task


@escalation.due_item(FOLLOW_UP_OVERDUE)
async def _follow_up_overdue(session: Any, follow_up_id: uuid.UUID) -> escalation.Due | None:
    """An open follow-up past its due date owes its owner organisation's chain (its named
    person first), like an overdue task; under her consent for `risk_assessment` (else the
    recording organisation's, the lead's, or content-free)."""
    task = await session.get(ConsultationFollowUp, follow_up_id)
    if task is None or task.status != FollowUpStatus.OPEN:
        return None
    case = await session.get(Case, task.case_id)
    consultation = await session.get(Consultation, task.consultation_id)
    if case is None or consultation is None or case.status == "closed":
        return None
    # "follow_up": the prefix of its timeline events (`follow_up.escalated`; 40 characters).
    return escalation.Due("follow_up", case.id, task.owner_org_id,
                          case.peacebuilder_id,
                          {"follow_up": str(task.id), "consultation": str(consultation.id),
                           "case": str(case.id),
                           "due_at": task.due_at.isoformat() if task.due_at else None},
                          owner=task.owner_user_id, category=RISK,
                          alternates=(consultation.org_id, case.lead_org_id))
