"""Queries: the signed-in person's own alert channels."""

from __future__ import annotations

import strawberry

from app.notify import webhooks
from schema.context import Info
from schema.notify.types import Channel


@strawberry.type
class NotifyQueries:
    @strawberry.field(description="Your active alert channels (webhooks), oldest first. Never "
                                  "their secrets.")
    async def my_channels(self, info: Info) -> list[Channel]:
        found = await info.context.loaders.call(webhooks.my_channels, info.context.access)
        return [Channel.from_model(c) for c in found]
