"""Queries: the signed-in person's own alert channels."""

from __future__ import annotations

import strawberry

from app.notify import choices, webhooks
from schema.context import Info
from schema.notify.types import AlertChannelLevel, Channel


@strawberry.type
class NotifyQueries:
    @strawberry.field(description="Your active alert channels (webhooks), oldest first. Never "
                                  "their secrets.")
    async def my_channels(self, info: Info) -> list[Channel]:
        found = await info.context.loaders.call(webhooks.my_channels, info.context.access)
        return [Channel.from_model(c) for c in found]

    @strawberry.field(description="Which of your channels reach you at each escalation level "
                                  "0 to 10 (the inbox always). People of an organisation only.")
    async def my_alert_channels(self, info: Info) -> list[AlertChannelLevel]:
        found = await info.context.loaders.call(choices.mine, info.context.access)
        return [AlertChannelLevel.from_choice(c) for c in found]
