"""Real-time alerts over graphql-transport-ws.

The client authenticates in `connection_init` ({"authorization": "Bearer …", "purpose": "…"}).
Each alert is read from the caller's inbox and delivered only if the caller is entitled to it at
that moment (still active, still able to see the case); a subscription ends when the token
expires or the caller loses access to a case it was alerted about (her grant revoked). A client
that reconnects passes the last cursor it saw and replays what it missed.

Alerts arrive at least once (`app/notify/outbox.py`): the subscription remembers the IDs it
delivered and never sends one twice. On a resync signal (after a Redis outage) it re-reads the
inbox from a little before the newest alert it delivered — transactions commit in another order
than they started — and sends what it has not sent yet.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from app.access.context import AccessContext
from app.access.principal import Principal
from app.auth.edge import admit, bearer_token, parse_purpose, refuse_purpose, unit_of_work
from app.errors import Unauthenticated, UnknownPurpose
from app.logs import request_id_var
from app.notify import inbox
from app.notify.broker import RESYNC
from app.runtime import Runtime
from schema.incidents.queries import alert_of
from schema.incidents.types import InboxAlert


@dataclass
class SocketContext:
    runtime: Runtime
    connection_params: dict[str, Any] = field(default_factory=dict)
    principal: Principal | None = None
    purpose: str | None = None
    expires_at: float = 0.0
    claims: Any = None


def _delivery(ctx: SocketContext) -> AbstractAsyncContextManager[AccessContext]:
    """A fresh decision for one delivery: the principal re-checked as active, its tenancy
    decided anew (a revoked grant bites on the next message), in a transaction of its own."""
    return unit_of_work(ctx.runtime, ctx.claims, ctx.purpose, f"ws-{uuid.uuid4().hex}")


# How far before the newest delivered alert a resync re-reads (commit order is not creation
# order), and how many delivered IDs a subscription remembers to drop repeats.
RESYNC_GRACE = timedelta(minutes=10)
REMEMBERED = 5_000


class _Delivered:
    """The IDs a subscription has sent, newest last (bounded), and the newest alert's time."""

    def __init__(self) -> None:
        self.ids: OrderedDict[uuid.UUID, None] = OrderedDict()
        self.newest: datetime | None = None

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.ids

    def add(self, item: inbox.InboxItem) -> None:
        self.ids[item.id] = None
        if len(self.ids) > REMEMBERED:
            self.ids.popitem(last=False)
        if self.newest is None or item.created_at > self.newest:
            self.newest = item.created_at


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Your alerts as they happen (incident reported, escalation, "
                                         "task due, referral received), after `after` if given. "
                                         "IDs and codes only.")
    async def alerts(self, info: strawberry.Info, after: str | None = None
                     ) -> AsyncGenerator[InboxAlert, None]:
        ctx: SocketContext = info.context
        assert ctx.principal is not None
        runtime = ctx.runtime
        queue = runtime.broker.subscribe(ctx.principal.subject)
        sent = _Delivered()
        started = runtime.clock.now()
        try:
            async with _delivery(ctx) as access:
                missed = await inbox.items(access, after)
            for item in missed:
                sent.add(item)
                yield alert_of(item)
            while True:
                remaining = ctx.expires_at - time.time()
                if remaining <= 0:
                    return  # the token expired: the client must reconnect with a new one
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=min(remaining, 30))
                except TimeoutError:
                    continue
                if message == RESYNC:
                    since = inbox.cursor_before((sent.newest or started) - RESYNC_GRACE)
                    try:
                        async with _delivery(ctx) as access:
                            found_all = await inbox.items(access, since, limit=1000)
                    except Unauthenticated:
                        return
                    for item in found_all:
                        if item.id not in sent:
                            sent.add(item)
                            yield alert_of(item)
                    continue
                try:
                    item_id = uuid.UUID(message)
                except ValueError:
                    continue
                if item_id in sent:
                    continue  # published again (at least once): already delivered
                try:
                    async with _delivery(ctx) as access:
                        found = await inbox.item(access, item_id)
                        raw = await access.session.get(inbox.InboxItem, item_id)
                except Unauthenticated:
                    return  # deactivated since connecting
                if found is None:
                    if raw is not None and raw.recipient == ctx.principal.subject:
                        return  # no longer entitled to this case: her grant was revoked
                    continue
                sent.add(found)
                yield alert_of(found)
        finally:
            runtime.broker.unsubscribe(ctx.principal.subject, queue)


class SocketApp(GraphQL):  # type: ignore[type-arg]
    """strawberry's ASGI app, used for WebSocket subscriptions only."""

    def __init__(self, runtime: Runtime, schema: Any) -> None:
        super().__init__(schema, graphql_ide=None, subscription_protocols=["graphql-transport-ws"])
        self.runtime = runtime

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> SocketContext:
        return SocketContext(runtime=self.runtime)

    async def on_ws_connect(self, context: SocketContext) -> Any:  # type: ignore[override]
        params = context.connection_params or {}
        # Header names are case-insensitive in HTTP; clients send either spelling here too.
        fields = {str(k).lower(): v for k, v in params.items()} if isinstance(params, dict) else {}
        token = bearer_token(fields.get("authorization"))
        if token is None:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"})
        try:
            claims = await self.runtime.verify_token(token)
            try:
                purpose = parse_purpose(fields.get("purpose"))
            except UnknownPurpose as exc:
                # The connection's request ID (ours, schema/server.py): its log line says so too.
                await refuse_purpose(self.runtime, claims, request_id_var.get())
                raise ConnectionRejectionError({"code": "INVALID_PURPOSE"}) from exc
            principal, _ = await admit(self.runtime, claims, purpose)
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"}) from exc
        context.principal, context.purpose, context.claims = principal, purpose, claims
        context.expires_at = float(claims.raw.get("exp", 0))
        return None
