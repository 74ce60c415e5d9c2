"""Break-glass: a focal point opens access without consent in her vital interest.

Emergency response only, a written reason, at most 72 hours; it ends by itself, she is told
(a notice on her record) and it is in the access log for auditors.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from app import crypto
from app.access.context import AccessContext
from app.consent import repository as repo
from app.consent.categories import Purpose
from app.consent.models import BreakGlass, Notice
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.peacebuilders import keys as pb_keys
from app.peacebuilders import sealing
from app.peacebuilders.models import Peacebuilder

MAX_HOURS = 72
MIN_REASON = 20


async def open_(ctx: AccessContext, pb_id: uuid.UUID, *, reason: str, hours: int) -> BreakGlass:
    await ctx.require("break_glass", "open", target_type="Peacebuilder", target_id=str(pb_id))
    ctx.require_recent_mfa("break_glass.open", target_type="Peacebuilder", target_id=pb_id)
    assert ctx.org_id is not None
    if ctx.purpose != Purpose.EMERGENCY_RESPONSE:
        ctx.deny("break_glass.open", target_type="Peacebuilder", target_id=pb_id,
                 reason="purpose is not emergency_response")
        raise BadInput("Break-glass is only for the emergency_response purpose.", field="purpose")
    if len(reason.strip()) < MIN_REASON:
        raise BadInput(f"Write the reason (at least {MIN_REASON} characters).", field="reason")
    if not 1 <= hours <= MAX_HOURS:
        raise BadInput(f"Break-glass lasts 1 to {MAX_HOURS} hours.", field="hours")
    await ctx.reach([pb_id])  # decided: the database must now let this transaction find her
    if await ctx.session.get(Peacebuilder, pb_id) is None:
        raise NotFound()
    now = ctx.clock.now()
    if await repo.open_break_glass(ctx.session, pb_id, ctx.org_id, now):
        raise Conflict("Break-glass is already open for her in your organisation.")
    glass = BreakGlass(id=new_id(), peacebuilder_id=pb_id, org_id=ctx.org_id,
                       opened_by=ctx.principal.subject, opened_at=now,
                       expires_at=now + timedelta(hours=hours))
    # Free text that may name her: sealed with her key (if she was erased, her key is gone and
    # the reason cannot be kept; break-glass still opens, with the reason left out).
    key = (await pb_keys.of(ctx, [pb_id]))[pb_id]
    glass.reason = (crypto.seal(key, sealing.break_glass_ref(glass).aad, reason.strip())
                    if key is not None else "")
    ctx.session.add(glass)
    ctx.session.add(Notice(peacebuilder_id=pb_id, kind="break_glass_opened",
                           details={"organisation": str(ctx.org_id), "hours": hours},
                           created_at=now))
    await ctx.session.flush()
    ctx.forget_decisions()
    # The reason is free text and may name her: it stays in break_glass, not in the log.
    ctx.record("break_glass.open", target_type="Peacebuilder", target_id=pb_id,
               details={"break_glass": str(glass.id), "hours": hours})
    return glass


async def close(ctx: AccessContext, glass_id: uuid.UUID) -> BreakGlass:
    await ctx.require("break_glass", "open")
    glass = await ctx.session.get(BreakGlass, glass_id)
    if glass is None or glass.org_id != ctx.org_id:
        raise NotFound()
    if glass.closed_at is None:
        glass.closed_at = ctx.clock.now()
        ctx.forget_decisions()
        ctx.record("break_glass.close", target_type="Peacebuilder", target_id=glass.peacebuilder_id,
                   details={"break_glass": str(glass.id)})
    return glass
