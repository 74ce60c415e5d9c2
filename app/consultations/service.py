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

from app.access.context import AccessContext
from app.checkins import refs
from app.checkins.service import log, risk_case, text
from app.consultations.models import Consultation, ConsultedWith
from app.db import new_id
from app.errors import BadInput, NotFound
from app.incidents.service import event
from app.orgs import repository as orgs_repo
from app.peacebuilders import sealing

MAX_ORGS = 30
MAX_FOLLOW_UPS = 30


async def _organisations(ctx: AccessContext, org_ids: list[uuid.UUID]) -> list[str]:
    wanted = list(dict.fromkeys(org_ids))
    if len(wanted) > MAX_ORGS:
        raise BadInput(f"At most {MAX_ORGS} organisations.", field="organisationIds")
    known = await orgs_repo.orgs_by_ids(ctx.session, wanted) if wanted else {}
    if set(wanted) - set(known):
        raise BadInput("No such organisation.", field="organisationIds")
    return [str(o) for o in wanted]


async def _follow_ups(ctx: AccessContext, items: list[dict[str, Any]]) -> str | None:
    if len(items) > MAX_FOLLOW_UPS:
        raise BadInput(f"At most {MAX_FOLLOW_UPS} follow-ups.", field="followUps")
    owners = [i["owner_organisation"] for i in items]
    known = await orgs_repo.orgs_by_ids(ctx.session, owners) if owners else {}
    out = []
    for item in items:
        action = text(item.get("action"), "followUps")
        if action is None:
            raise BadInput("Each follow-up says what is to be done.", field="followUps")
        if item["owner_organisation"] not in known:
            raise BadInput("No such organisation.", field="followUps")
        due: datetime | None = item.get("due_at")
        out.append({"action": action, "owner_organisation": str(item["owner_organisation"]),
                    "due_at": due.isoformat() if due else None})
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")) if out else None


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
    await _seal(ctx, row, pb, "follow_ups", await _follow_ups(ctx, follow_ups), "followUps")
    ctx.session.add(row)
    await ctx.session.flush()
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
        await _seal(ctx, row, pb, "follow_ups", await _follow_ups(ctx, follow_ups), "followUps")
    row.updated_at = ctx.clock.now()
    await ctx.session.flush()
    event(ctx, case.id, "consultation.amended", row.id, {})
    log(ctx, "consultation.amend", case, consultation=str(row.id))
    return row
