"""Real-time alerts over graphql-transport-ws.

The client authenticates in `connection_init` ({"authorization": "Bearer …", "purpose": "…"}).
Each alert is read from the caller's inbox and delivered only if the caller is entitled to it at
that moment (still active, still able to see the case); a subscription ends when the token
expires or the caller loses access to a case it was alerted about (her grant revoked). A client
that reconnects passes the last cursor it saw and replays what it missed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
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
from app.runtime import Runtime
from schema.incidents.queries import alert_of
from schema.incidents.types import InboxAlert
from schema.limits import Limits
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


@strawberry.type
class Subscription:
    @strawberry.subscription(description=(
        "Your alerts as they happen (incident reported, escalation, task due, referral received), "
        "from now on; with `after` (a cursor you saw), first those you missed since. IDs and "
        "codes only. When the token expires the socket closes with 4401 \"Token expired\": "
        "reconnect with a new token and `after`."))
    async def alerts(self, info: strawberry.Info, after: str | None = None
                     ) -> AsyncGenerator[InboxAlert, None]:
        ctx: SocketContext = info.context
        assert ctx.principal is not None
        runtime = ctx.runtime
        queue = runtime.broker.subscribe(ctx.principal.subject)
        try:
            if after is not None:  # a reconnecting client replays what it missed; else from now
                async with _delivery(ctx) as access:
                    missed = await inbox.items(access, after)
                for item in missed:
                    yield alert_of(item)
            while True:
                remaining = ctx.expires_at - time.time()
                if remaining <= 0:
                    # The client reconnects with a new token (and `after`: nothing is lost).
                    await _close(ctx, *TOKEN_EXPIRED)
                    return
                try:
                    item_id = await asyncio.wait_for(queue.get(), timeout=min(remaining, 30))
                except TimeoutError:
                    continue
                try:
                    async with _delivery(ctx) as access:
                        found = await inbox.item(access, uuid.UUID(item_id))
                        raw = await access.session.get(inbox.InboxItem, uuid.UUID(item_id))
                except Unauthenticated:
                    await _close(ctx, UNAUTHORIZED, "Unauthenticated")  # deactivated since
                    return
                if found is None:
                    if raw is not None and raw.recipient == ctx.principal.subject:
                        return  # no longer entitled to this case: her grant was revoked
                    continue
                yield alert_of(found)
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
