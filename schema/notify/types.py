"""GraphQL types for a person's own alert channels (webhooks)."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from app.notify.channels_models import NotifyChannel
from schema import ids
from schema.common import Node, UserError


@strawberry.enum(description="How a channel reaches you.")
class ChannelKind(enum.Enum):
    WEBHOOK = "webhook"


@strawberry.type(description="One of your own alert channels: for each new alert worth waking "
                             "you for (escalation, incident reported, referral received, task "
                             "due) at or above `minLevel`, a signed, content-free POST to `url`.")
class Channel(Node):
    kind: ChannelKind
    url: str = strawberry.field(description="Where alerts are POSTed (https).")
    min_level: int = strawberry.field(description="The escalation level from which this channel "
                                                  "is used; 0 = every alert of those kinds.")
    active: bool
    created_at: datetime

    @classmethod
    def from_model(cls, channel: NotifyChannel) -> Channel:
        return cls(id=strawberry.ID(ids.encode("Channel", channel.id)),
                   kind=ChannelKind(channel.kind), url=channel.url, min_level=channel.min_level,
                   active=channel.active, created_at=channel.created_at)


@strawberry.type(description="Result of addMyChannel: the channel and its signing secret, shown "
                             "this once. Configure your receiver with it to verify "
                             "`Safety-Net-Signature`.")
class AddChannelPayload:
    channel: Channel | None
    secret: str | None = strawberry.field(description="The signing secret (shown once).")
    user_errors: list[UserError]


@strawberry.type(description="Result of removeMyChannel.")
class RemoveChannelPayload:
    channel: Channel | None
    user_errors: list[UserError]
