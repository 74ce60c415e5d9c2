"""Queries: referrals, the inbox."""

from __future__ import annotations

import json

import strawberry

from app.incidents import response
from app.notify import inbox
from schema import ids
from schema.context import Info
from schema.incidents.types import InboxAlert, Referral


def alert_of(item: object) -> InboxAlert:
    return InboxAlert(id=strawberry.ID(ids.encode("Alert", item.id)), kind=item.kind,  # type: ignore[attr-defined]
                      created_at=item.created_at, cursor=inbox.cursor_of(item),  # type: ignore[attr-defined,arg-type]
                      payload=json.dumps(item.payload, sort_keys=True))  # type: ignore[attr-defined]


@strawberry.type
class IncidentQueries:
    @strawberry.field(description="Referrals your organisation received (incoming) or sent, "
                                  "on cases you may see.")
    async def referrals(self, info: Info, incoming: bool = True) -> list[Referral]:
        rows = await info.context.loaders.call(response.referrals_for, info.context.access, incoming)
        return [Referral.from_model(r) for r in rows]

    @strawberry.field(description="Your alerts after a cursor, oldest first (what a reconnecting "
                                  "client replays). Only alerts you are still entitled to.")
    async def inbox(self, info: Info, after: str | None = None) -> list[InboxAlert]:
        rows = await info.context.loaders.call(inbox.items, info.context.access, after)
        return [alert_of(r) for r in rows]
