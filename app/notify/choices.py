"""Which of her channels a person wants at which escalation level (issue 17, "channels that
reach people at night"): the inbox always; e-mail and each of her webhook channels per level.

A level she has not chosen keeps the defaults (e-mail when she has an address; a webhook from
its `minLevel`), so nothing changes for anyone until she says so. Level 0 is every alert that is
not an escalation (an incident reported, a referral received, a task due); 1, 2, … are the
levels of the chain that alerts her (`payload.level`; a task's named owner is level 1 of its
chain). Delivery reads the choice as the system, at queueing time (app/notify/service.Mailer,
app/notify/webhooks.Webhooks.enqueue)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.errors import BadInput, Forbidden, MfaEnrolmentRequired
from app.tables.channels import AlertChannelChoice, NotifyChannel
from app.tables.notify import InboxItem

MAX_LEVEL = 10  # as webhooks.MAX_LEVEL: the deepest level a choice or a channel names


def level_of(item: InboxItem) -> int:
    """An alert's escalation level (0: not an escalation)."""
    level = (item.payload or {}).get("level", 0)
    return level if isinstance(level, int) and not isinstance(level, bool) else 0


@dataclass(frozen=True, slots=True)
class LevelChoice:
    """What reaches her at one level: e-mail or not, which webhook channels; `chosen` False
    means the defaults apply (what is shown is what the defaults do)."""

    level: int
    email: bool
    webhooks: list[uuid.UUID]
    chosen: bool


def _person(ctx: AccessContext) -> uuid.UUID:
    if ctx.principal.kind is not PrincipalKind.USER or ctx.principal.org_id is None:
        ctx.deny("notify.alert_channels", reason="not a person of an organisation")
        raise Forbidden("Only people of an organisation have alert channels.")
    if ctx.principal.mfa_pending:
        ctx.deny("notify.alert_channels", reason="second factor required")
        raise MfaEnrolmentRequired()
    return ctx.principal.id


async def choice_for(session: AsyncSession, user_id: uuid.UUID,
                     level: int) -> AlertChannelChoice | None:
    """Her choice for this level (None: the defaults)."""
    return await session.scalar(select(AlertChannelChoice).where(
        AlertChannelChoice.user_id == user_id, AlertChannelChoice.level == level))


async def mine(ctx: AccessContext) -> list[LevelChoice]:
    """Every level 0…MAX_LEVEL as it reaches the caller now: chosen, or the defaults."""
    user_id = _person(ctx)
    chosen = {c.level: c for c in await ctx.session.scalars(select(AlertChannelChoice).where(
        AlertChannelChoice.user_id == user_id))}
    channels = list(await ctx.session.scalars(select(NotifyChannel).where(
        NotifyChannel.user_id == user_id, NotifyChannel.active.is_(True))
        .order_by(NotifyChannel.created_at, NotifyChannel.id)))
    active = {c.id for c in channels}
    out = []
    for level in range(MAX_LEVEL + 1):
        c = chosen.get(level)
        if c is not None:
            out.append(LevelChoice(level, c.email, [uuid.UUID(w) for w in c.webhooks
                                                    if uuid.UUID(w) in active], True))
        else:
            out.append(LevelChoice(level, True, [ch.id for ch in channels
                                                 if ch.min_level <= level], False))
    return out


async def set_mine(ctx: AccessContext,
                   levels: list[tuple[int, bool, list[uuid.UUID]]]) -> list[LevelChoice]:
    """Replace the caller's choices: the levels given take exactly those channels, every other
    level goes back to the defaults. Her own active webhook channels only. Logged (levels and
    counts, no URL)."""
    user_id = _person(ctx)
    seen: set[int] = set()
    own = set(await ctx.session.scalars(select(NotifyChannel.id).where(
        NotifyChannel.user_id == user_id, NotifyChannel.active.is_(True))))
    for i, (level, _email, hooks) in enumerate(levels):
        if not 0 <= level <= MAX_LEVEL:
            raise BadInput(f"A level is between 0 and {MAX_LEVEL}.", field=f"levels.{i}.level")
        if level in seen:
            raise BadInput("Each level once.", field=f"levels.{i}.level")
        seen.add(level)
        if len(hooks) > len(own) or set(hooks) - own:
            raise BadInput("Not one of your active channels.",
                           field=f"levels.{i}.webhookChannelIds")
    await ctx.session.execute(delete(AlertChannelChoice).where(
        AlertChannelChoice.user_id == user_id))
    now = ctx.clock.now()
    ctx.session.add_all([AlertChannelChoice(
        org_id=ctx.principal.org_id, user_id=user_id, level=level, email=email,
        webhooks=[str(h) for h in dict.fromkeys(hooks)], updated_at=now)
        for level, email, hooks in levels])
    await ctx.session.flush()
    ctx.record("notify.alert_channels_set", target_type="User", target_id=user_id,
               details={"levels": [{"level": level, "email": email, "webhooks": len(hooks)}
                                   for level, email, hooks in sorted(levels)]})
    return await mine(ctx)
