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
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from app.access.context import AccessContext
from app.access.principal import Principal, PrincipalKind
from app.auth.edge import admit, bearer_token, parse_purpose, refuse_purpose, unit_of_work
from app.errors import (
    Forbidden,
    MfaEnrolmentRequired,
    SecondFactorRequired,
    Unauthenticated,
    UnknownPurpose,
)
from app.logs import request_id_var
from app.notify import inbox
from app.notify.broker import RESYNC
from app.pagination import MAX_PAGE
from app.peacebuilders import self_service
from app.runtime import Runtime
from schema import permissions
from schema.consent.types import Notice
from schema.incidents.queries import alert_of
from schema.incidents.types import InboxAlert
from schema.limits import Limits
from schema.permissions import Who
from schema.socket import TOKEN_EXPIRED, UNAUTHORIZED, TransportWSHandler


@dataclass
class SocketContext:
    runtime: Runtime
    connection_params: dict[str, Any] = field(default_factory=dict)
    principal: Principal | None = None
    purpose: str | None = None
    expires_at: float = 0.0
    claims: Any = None
    # Closes the socket with a code and reason (set by schema.socket's handler).
    close: Callable[..., Awaitable[None]] | None = None
    # Set once the subscription listens (the dashboard's stream opens only then).
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)


async def _close(ctx: SocketContext, code: int, reason: str) -> None:
    """End the connection with a code the client can act on (reconnect with a new token), then
    wait to be cancelled as the socket shuts down: no bare `complete`."""
    if ctx.close is None:
        return
    await ctx.close(code=code, reason=reason)
    await asyncio.Event().wait()


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


def _before_start(item: inbox.InboxItem, after: str | None, started: datetime) -> bool:
    """A subscription without `after` starts from now: an alert raised before it began but
    published late (the outbox retries) is not replayed; with `after`, the replay covers it."""
    return after is None and item.created_at < started


@strawberry.type
class Subscription:
    @permissions.subscription(
        "Your alerts as they happen (incident reported, escalation, task due, referral received), "
        "from now on; with `after` (a cursor you saw), first those you missed since. IDs and codes "
        "only. When the token expires the socket closes with 4401 \"Token expired\": reconnect with "
        "a new token and `after`.")
    async def alerts(self, info: strawberry.Info, after: str | None = None
                     ) -> AsyncGenerator[InboxAlert, None]:
        ctx: SocketContext = info.context
        assert ctx.principal is not None
        runtime = ctx.runtime
        queue = runtime.broker.subscribe(ctx.principal.subject)
        ctx.subscribed.set()
        sent = _Delivered()
        started = runtime.clock.now()
        try:
            if after is not None:  # a reconnecting client replays what it missed; else from now
                async with _delivery(ctx) as access:
                    missed = await inbox.items(access, after)
                for item in missed:
                    sent.add(item)
                    yield alert_of(item)
            while True:
                remaining = ctx.expires_at - time.time()
                if remaining <= 0:
                    # The client reconnects with a new token (and `after`: nothing is lost).
                    await _close(ctx, *TOKEN_EXPIRED)
                    return
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that
                    # arrives with a message, and a closed subscription would keep running.
                    async with asyncio.timeout(min(remaining, 30)):
                        message = await queue.get()
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
                        if item.id not in sent and not _before_start(item, after, started):
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
                    await _close(ctx, UNAUTHORIZED, "Unauthenticated")  # deactivated since
                    return
                if found is None:
                    if raw is not None and raw.recipient == ctx.principal.subject:
                        return  # no longer entitled to this case: her grant was revoked
                    continue
                if _before_start(found, after, started):
                    continue  # raised before this subscription, published late (outbox)
                sent.add(found)
                yield alert_of(found)
        finally:
            runtime.broker.unsubscribe(ctx.principal.subject, queue)

    @permissions.subscription(
        "Her notices as they are raised (kind, date, case reference, reason code; in her "
        "language), from now on; with `after` (a notice's cursor), first those she missed since "
        "(anyone else: FORBIDDEN). Delivered at least once: de-duplicate by `id`. When the token "
        "expires the socket closes with 4401 \"Token expired\": reconnect with a new token and "
        "`after`.",
        who=Who.HERSELF)
    async def my_notices(
        self, info: strawberry.Info, after: str | None = None,
        language: Annotated[str | None, strawberry.argument(description=(
            "en, fr, es, ar or sw instead of her preferred language."))] = None,
    ) -> AsyncGenerator[Notice, None]:
        ctx: SocketContext = info.context
        assert ctx.principal is not None
        if ctx.principal.kind is not PrincipalKind.PEACEBUILDER:
            raise Forbidden("Only a peacebuilder signed in herself has notices.")
        runtime = ctx.runtime
        queue = runtime.broker.subscribe(ctx.principal.subject)
        ctx.subscribed.set()
        sent: OrderedDict[str, None] = OrderedDict()
        newest = runtime.clock.now()

        def fresh(view: self_service.NoticeView) -> bool:
            nonlocal newest
            key = str(view.notice.id)
            if key in sent:
                return False
            sent[key] = None
            if len(sent) > REMEMBERED:
                sent.popitem(last=False)
            newest = max(newest, view.notice.created_at)
            return True

        async def read(since: str) -> list[self_service.NoticeView]:
            async with _delivery(ctx) as access:
                return await self_service.my_notices(access, after=since, first=MAX_PAGE,
                                                     language=language)

        try:
            cursor = after
            while cursor is not None:  # a reconnecting client replays what it missed
                missed = await read(cursor)
                for view in missed:
                    if fresh(view):
                        yield Notice.from_view(view)
                cursor = missed[-1].cursor if len(missed) == MAX_PAGE else None
            while True:
                remaining = ctx.expires_at - time.time()
                if remaining <= 0:
                    await _close(ctx, *TOKEN_EXPIRED)
                    return
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that
                    # arrives with a message, and a closed subscription would keep running.
                    async with asyncio.timeout(min(remaining, 30)):
                        message = await queue.get()
                except TimeoutError:
                    continue
                try:
                    if message == RESYNC:
                        views = await read(inbox.cursor_before(newest - RESYNC_GRACE))
                    else:
                        try:
                            notice_id = uuid.UUID(message)
                        except ValueError:
                            continue
                        if message in sent:
                            continue
                        async with _delivery(ctx) as access:
                            one = await self_service.my_notice(access, notice_id, language)
                        views = [one] if one is not None else []
                except Unauthenticated:
                    await _close(ctx, UNAUTHORIZED, "Unauthenticated")  # suspended since
                    return
                for view in views:
                    if fresh(view):
                        yield Notice.from_view(view)
        finally:
            runtime.broker.unsubscribe(ctx.principal.subject, queue)


class SocketApp(GraphQL):  # type: ignore[type-arg]
    """strawberry's ASGI app, used for WebSocket subscriptions only."""

    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(self, runtime: Runtime, schema: Any) -> None:
        super().__init__(schema, graphql_ide=None, subscription_protocols=["graphql-transport-ws"])
        self.runtime = runtime
        self.limits = Limits.from_settings(runtime.settings)
        self.hints = not runtime.settings.production

    def decode_json(self, data: str | bytes) -> object:
        try:
            return json.loads(data)
        except RecursionError as exc:  # nested thousands deep: a bad message (4400)
            raise json.JSONDecodeError("nested too deeply", "", 0) from exc

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> SocketContext:
        return SocketContext(runtime=self.runtime)

    async def on_ws_connect(self, context: SocketContext) -> Any:  # type: ignore[override]
        try:
            await admit_subscriber(context, context.connection_params)
        except SubscriberRefused as exc:
            raise ConnectionRejectionError({"code": exc.code}) from exc
        return None


class SubscriberRefused(Exception):
    """A subscriber not admitted: `code` is UNAUTHENTICATED, INVALID_PURPOSE or (a role that
    needs a second factor, signed in without one) MFA_ENROLMENT_REQUIRED /
    SECOND_FACTOR_REQUIRED."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def admit_subscriber(context: SocketContext, params: object) -> None:
    """Admit the caller of a subscription from its credentials ({"authorization": "Bearer …",
    "purpose": "…"}, names in any case) and fill `context` with who it is: the one admission of
    the WebSocket's `connection_init` and the dashboard's event stream (schema/web/live.py)."""
    runtime = context.runtime
    # Header names are case-insensitive in HTTP; clients send either spelling here too.
    fields = {str(k).lower(): v for k, v in params.items()} if isinstance(params, dict) else {}
    token = bearer_token(fields.get("authorization"))
    if token is None:
        raise SubscriberRefused("UNAUTHENTICATED")
    try:
        claims = await runtime.verify_token(token)
        try:
            purpose = parse_purpose(fields.get("purpose"))
        except UnknownPurpose as exc:
            # The connection's request ID (ours, schema/server.py): its log line says so too.
            await refuse_purpose(runtime, claims, request_id_var.get())
            raise SubscriberRefused("INVALID_PURPOSE") from exc
        principal, _ = await admit(runtime, claims, purpose)
    except Unauthenticated as exc:
        raise SubscriberRefused("UNAUTHENTICATED") from exc
    if principal.mfa_pending:
        # Her role needs a second factor this token was issued without: it may only enrol.
        raise SubscriberRefused(SecondFactorRequired.code if principal.external
                                else MfaEnrolmentRequired.code)
    context.principal, context.purpose, context.claims = principal, purpose, claims
    context.expires_at = float(claims.raw.get("exp", 0))
