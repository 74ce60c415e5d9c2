"""The queue's live updates: the API's `alerts` subscription relayed as server-sent events.

`GET /queue/live` (text/event-stream) admits the browser session's person exactly as the
WebSocket admits a partner's client (`admit_subscriber`, the same rate check), with her access
token and declared purpose, and runs the same `alerts` subscription of the same schema: what
reaches the page is what would reach her over graphql-transport-ws. Each alert becomes an
`alert` event carrying its kind only (a code) and its cursor as the event ID, so a browser that
reconnects (`Last-Event-ID`) replays what it missed; static/web/live.js then fetches the
queue's lists again (`/queue/fragment`).

The stream never keeps a session alive: it reads the session without moving its idle clock,
checks it again at every heartbeat (the browser session, and the API's admission of its
token: signed out everywhere, deactivated) and ends (`end: signedout`) once it is gone; it also ends
when the token runs out or after `MAX_STREAM`, and the browser reconnects with a fresh token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.auth import web as browsers
from app.auth.edge import admit
from app.errors import Unauthenticated
from schema.socket import within_rate
from schema.subscriptions import SocketContext, SubscriberRefused, admit_subscriber
from schema.web import core

ALERTS = "subscription QueueLive($after: String) { alerts(after: $after) { kind cursor } }"
HEARTBEAT = 15.0  # seconds between keep-alive comments (and session checks)
MAX_STREAM = 300.0  # then the stream ends and the browser reconnects (fresh token, fresh check)
RETRY_MS = 3000  # the browser's wait before reconnecting
MAX_CURSOR = 2000  # the subscription's own limit for `after`
STREAM_HEADERS = {**core.PAGE_HEADERS, "X-Accel-Buffering": "no"}
_END = object()


def _refused(status: int) -> Response:
    return Response(status_code=status, headers=core.PAGE_HEADERS)


async def live(request: Request) -> Response:
    """Signed-in staff with a declared purpose only (401 without a session, 404 for her, 403
    without a purpose): no event stream is opened otherwise."""
    visit = await core.visit(request, touch=False)
    if visit is None:
        return _refused(401)
    if visit.is_her:
        return _refused(404)
    if visit.purpose is None:
        return _refused(403)
    context = SocketContext(runtime=visit.runtime)
    try:
        await admit_subscriber(context, {"authorization": f"Bearer {visit.browser.tokens.access}",
                                         "purpose": visit.purpose})
    except SubscriberRefused as exc:
        if exc.code == "UNAUTHENTICATED":  # signed out elsewhere, deactivated: as a page does
            await browsers.close_browser(visit.runtime, visit.browser.id)
            return _refused(401)
        return _refused(403)
    if not await within_rate(visit.runtime, context.claims):
        return Response(status_code=429, headers={**core.PAGE_HEADERS, "Retry-After": "30"})
    after = request.headers.get("last-event-id") or None
    if after is not None and (len(after) > MAX_CURSOR or not after.isprintable()):
        after = None
    relay = Relay(request.app.state.graphql.schema, context, visit.secret, after)
    # The response (and the browser's `open`) only once the subscription listens, so nothing
    # raised after the page saw `open` is missed.
    await relay.started()
    return StreamingResponse(relay.events(), media_type="text/event-stream",
                             headers=STREAM_HEADERS)


class Relay:
    """One subscription, run in a task of its own, its results read by the stream."""

    def __init__(self, schema: Any, context: SocketContext, secret: str,
                 after: str | None) -> None:
        self.schema, self.context, self.secret, self.after = schema, context, secret, after
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        context.close = self._closed
        self.task = asyncio.create_task(self._pump())

    async def _closed(self, code: int = 1000, reason: str = "") -> None:
        # The subscription ends itself (token expired, deactivated, access lost): so does the
        # stream; the browser reconnects and is admitted anew.
        self.inbox.put_nowait(_END)

    async def _pump(self) -> None:
        try:
            # Bounded even if the stream is never read (the browser left before it started).
            async with asyncio.timeout(MAX_STREAM + 2 * HEARTBEAT):
                result = await self.schema.subscribe(
                    ALERTS, variable_values={"after": self.after}, context_value=self.context)
                if not hasattr(result, "__aiter__"):
                    return  # refused before it ran
                try:
                    async for item in result:
                        self.inbox.put_nowait(item)
                finally:
                    await result.aclose()
        except TimeoutError:
            return
        finally:
            self.inbox.put_nowait(_END)

    async def started(self) -> None:
        listening = asyncio.create_task(self.context.subscribed.wait())
        await asyncio.wait({listening, self.task}, timeout=10,
                           return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()

    async def _signed_in(self) -> bool:
        """The browser session is still there and the API still admits its person: a sign-out
        everywhere or a deactivation ends the stream at its next check, as a page would."""
        runtime = self.context.runtime
        browser = await browsers.load(runtime, self.secret, touch=False)
        if browser is None:
            return False
        try:
            await admit(runtime, self.context.claims, self.context.purpose)
        except Unauthenticated:
            await browsers.close_browser(runtime, browser.id)
            return False
        return True

    async def events(self) -> AsyncIterator[str]:
        began = time.monotonic()
        try:
            yield f"retry: {RETRY_MS}\n\n"
            while True:
                try:
                    async with asyncio.timeout(HEARTBEAT):
                        item = await self.inbox.get()
                except TimeoutError:
                    if not await self._signed_in():
                        yield "event: end\ndata: signedout\n\n"
                        return
                    if time.monotonic() - began > MAX_STREAM:
                        return  # the browser reconnects after RETRY_MS
                    yield ": keep-alive\n\n"
                    continue
                if item is _END:
                    return
                if getattr(item, "errors", None):
                    yield "event: end\ndata: stopped\n\n"
                    return
                alert = (getattr(item, "data", None) or {}).get("alerts") or {}
                cursor = str(alert.get("cursor") or "").replace("\n", "")
                body = json.dumps({"kind": alert.get("kind")})
                yield (f"id: {cursor}\n" if cursor else "") + f"event: alert\ndata: {body}\n\n"
        finally:
            self.task.cancel()
            # The subscription's own `finally` (unsubscribing from the broker) runs here.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
