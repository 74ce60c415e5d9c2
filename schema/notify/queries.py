"""Queries: the signed-in person's own alert channels."""

from __future__ import annotations

import strawberry

from app.notify import choices, webhooks
from schema import permissions
from schema.context import Info
from schema.notify.types import AlertChannelLevel, Channel
from schema.permissions import Who


@strawberry.type
class NotifyQueries:
    @permissions.query(
        "Your active alert channels (webhooks), oldest first. Never their secrets.",
        who=Who.STAFF_PEOPLE)
    async def my_channels(self, info: Info) -> list[Channel]:
        found = await info.context.loaders.call(webhooks.my_channels, info.context.access)
        return [Channel.from_model(c) for c in found]

    @permissions.query(
        "Which of your channels reach you at each escalation level 0 to 10 (the inbox always).",
        who=Who.STAFF_PEOPLE)
    async def my_alert_channels(self, info: Info) -> list[AlertChannelLevel]:
        found = await info.context.loaders.call(choices.mine, info.context.access)
        return [AlertChannelLevel.from_choice(c) for c in found]
