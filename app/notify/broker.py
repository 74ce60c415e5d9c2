"""Pushing inbox items to live subscribers: in-process by default, across replicas through Redis
pub/sub when REDIS_URL is set. Messages carry inbox item IDs only; subscribers read the item
from the database, so a dropped message costs latency, never data.

Only the outbox worker publishes (`app/notify/outbox.py`), never a request: a publish is bounded
by `SAFETY_NET_REDIS_TIMEOUT_MS` and a circuit breaker (component `alerts`), and a failed one
raises `BrokerUnavailable` so the alerts stay in the outbox. Delivery is at least once, so a
subscriber may see an item ID twice: the subscription de-duplicates by ID. After an outage —
the first successful publish after failures, or this replica's listener reconnecting — every
subscriber gets `RESYNC` and re-reads its inbox from its cursor, so nothing published while it
could not hear is missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from typing import Any

from app.breaker import CircuitBreaker

log = logging.getLogger("safety_net.notify")
CHANNEL = "safety-net:inbox"
RESYNC = "resync"  # put on every local queue: re-read the inbox from your cursor


class BrokerUnavailable(Exception):
    """Redis is configured but did not take the messages (down, slow, or its circuit open)."""


class Broker:
    def __init__(self, redis_url: str = "", *, timeout: float = 0.05, failures: int = 3,
                 open_seconds: float = 30.0) -> None:
        self.redis_url = redis_url
        self.timeout = timeout
        self.breaker = CircuitBreaker("alerts", failures=failures, open_seconds=open_seconds)
        self._queues: dict[str, set[asyncio.Queue[str]]] = {}
        self._redis: Any = None  # publishing: bounded calls
        self._listen_client: Any = None  # the subscription: a long-lived connection
        self._listener: asyncio.Task[None] | None = None
        self._owe_resync = False
        self.listening = asyncio.Event()

    @property
    def distributed(self) -> bool:
        return bool(self.redis_url)

    async def start(self) -> None:
        if not self.redis_url:
            return
        import redis.asyncio as redis

        from app.ratelimit import bounded_client

        self._redis = bounded_client(self.redis_url, self.timeout)
        self._listen_client = redis.from_url(self.redis_url, socket_connect_timeout=1.0)
        self._listener = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        """Subscribe, and after any failure subscribe again and tell local subscribers to
        resync: what was published while this replica could not hear is in the inbox."""
        lost = False
        while True:
            pubsub = self._listen_client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self.listening.set()
                if lost:
                    log.info("redis listener subscribed again: subscribers resync")
                    self.resync_local()
                    lost = False
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=1.0)
                    if message and message.get("type") == "message":
                        self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep listening; subscribers resync once it is back
                self.listening.clear()
                if not lost:
                    log.warning("redis listener lost: %s", type(exc).__name__)
                lost = True
                await asyncio.sleep(1)
            finally:
                with suppress(Exception):
                    await pubsub.aclose()

    def _on_message(self, raw: Any) -> None:
        try:
            data = json.loads(raw)
            if data.get("resync"):
                self.resync_local()
            else:
                self.deliver_local([(str(data["recipient"]), str(data["id"]))])
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("redis listener: malformed message ignored")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with suppress(asyncio.CancelledError):
                await self._listener
        for client in (self._redis, self._listen_client):
            if client is not None:
                with suppress(Exception):
                    await client.aclose()

    def deliver_local(self, items: list[tuple[str, str]]) -> None:
        for recipient, item_id in items:
            for queue in self._queues.get(recipient, set()):
                queue.put_nowait(item_id)

    def resync_local(self) -> None:
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait(RESYNC)

    async def publish(self, items: list[tuple[str, str]]) -> None:
        """(recipient, inbox item id) pairs, already stored. Without Redis: to this process's
        subscribers. With Redis: to every replica's, or `BrokerUnavailable`."""
        if self._redis is None:
            self.deliver_local(items)
            return
        if not self.breaker.allow():
            raise BrokerUnavailable("circuit open")
        messages = [json.dumps({"recipient": r, "id": i}) for r, i in items]
        if self._owe_resync:
            messages.append(json.dumps({"resync": True}))
        try:
            async with asyncio.timeout(self.timeout * 4):
                pipe = self._redis.pipeline(transaction=False)
                for message in messages:
                    pipe.publish(CHANNEL, message)
                await pipe.execute()
        except Exception as exc:
            self.breaker.failure(exc)
            self._owe_resync = True
            raise BrokerUnavailable(type(exc).__name__) from exc
        self.breaker.success()
        self._owe_resync = False

    async def publish_resync(self) -> None:
        """Tell every replica's subscribers to re-read their inbox from their cursor."""
        if self._redis is None:
            self.resync_local()
            return
        self._owe_resync = True
        await self.publish([])

    def subscribe(self, recipient: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._queues.setdefault(recipient, set()).add(queue)
        return queue

    def unsubscribe(self, recipient: str, queue: asyncio.Queue[str]) -> None:
        self._queues.get(recipient, set()).discard(queue)
