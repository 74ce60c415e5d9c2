"""Mutations: the signed-in person adds and removes her own alert channels."""

from __future__ import annotations

import strawberry

from app.errors import BadInput
from app.notify import choices, webhooks
from schema import ids, permissions
from schema.common import guarded
from schema.context import Info
from schema.notify.types import (
    AddChannelPayload,
    AlertChannelLevel,
    Channel,
    ChannelKind,
    RemoveChannelPayload,
    SetAlertChannelsPayload,
)
from schema.permissions import Who


@strawberry.input(description="A channel that wakes you: a webhook for an SMS gateway, a Signal "
                              "bridge or a paging service.")
class AddMyChannelInput:
    url: str = strawberry.field(description="https URL of your receiver (plain http only to "
                                            "this machine, outside production).")
    kind: ChannelKind = strawberry.field(
        default=ChannelKind.WEBHOOK, description="How the channel reaches you (only WEBHOOK today).")
    min_level: int = strawberry.field(default=0, description=(
        "Use this channel from this escalation level on (0 = every alert worth waking for; "
        "1 = escalations only, …)."))


@strawberry.input(description="One of your channels.")
class RemoveMyChannelInput:
    channel_id: strawberry.ID = strawberry.field(description="The channel's global ID.")


@strawberry.input(description="What reaches you at one level.")
class AlertChannelLevelInput:
    level: int = strawberry.field(description="0 (not an escalation) to 10.")
    email: bool = strawberry.field(description="E-mail alerts of this level (when you have an "
                                               "address).")
    webhook_channel_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Your own active webhook channels to use at this "
                                          "level (none: no webhook).")


@strawberry.input(description="Your channels per escalation level: the levels listed take "
                              "exactly these channels; every other level keeps the defaults.")
class SetMyAlertChannelsInput:
    levels: list[AlertChannelLevelInput] = strawberry.field(
        description="At most one entry per level (11 at most).")


@strawberry.type
class NotifyMutations:
    @permissions.mutation(
        "Add an alert channel for yourself; returns its signing secret once. At most 5. Logged "
        "(not the URL).",
        step_up=True, who=Who.STAFF_PEOPLE)
    async def add_my_channel(self, info: Info, input: AddMyChannelInput) -> AddChannelPayload:
        production = bool(getattr(info.schema, "production", True))
        added, errors = await guarded(info, lambda: info.context.loaders.call(
            webhooks.add_channel, info.context.access, kind=input.kind.value, url=input.url,
            min_level=input.min_level, production=production))
        return AddChannelPayload(channel=Channel.from_model(added.channel) if added else None,
                                 secret=added.secret if added else None, user_errors=errors)

    @permissions.mutation(
        "Stop using one of your channels; alerts still owed to it are not sent. Logged.",
        who=Who.STAFF_PEOPLE)
    async def remove_my_channel(self, info: Info,
                                input: RemoveMyChannelInput) -> RemoveChannelPayload:
        channel_id = ids.decode(input.channel_id, "Channel", "channelId")
        removed, errors = await guarded(info, lambda: info.context.loaders.call(
            webhooks.remove_channel, info.context.access, channel_id))
        return RemoveChannelPayload(channel=Channel.from_model(removed) if removed else None,
                                    user_errors=errors)

    @permissions.mutation(
        "Choose which of your channels reach you at which escalation level (the inbox always "
        "does). Replaces your earlier choice. Logged (no URL).",
        who=Who.STAFF_PEOPLE)
    async def set_my_alert_channels(self, info: Info,
                                    input: SetMyAlertChannelsInput) -> SetAlertChannelsPayload:
        if len(input.levels) > choices.MAX_LEVEL + 1:
            raise BadInput("At most one entry per level.", field="levels")
        levels = [(entry.level, entry.email,
                   [ids.decode(w, "Channel", f"levels.{i}.webhookChannelIds")
                    for w in entry.webhook_channel_ids])
                  for i, entry in enumerate(input.levels)]
        found, errors = await guarded(info, lambda: info.context.loaders.call(
            choices.set_mine, info.context.access, levels))
        return SetAlertChannelsPayload(
            levels=[AlertChannelLevel.from_choice(c) for c in found] if found else None,
            user_errors=errors)
