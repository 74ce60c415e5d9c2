"""Pushing inbox items to live subscribers: in-process by default, across replicas through Redis
pub/sub when REDIS_URL is set. Messages carry inbox item IDs only; subscribers read the item
from the database, so a dropped message costs latency, never data (clients replay by cursor)."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from typing import Any

log = logging.getLogger("safety_net.notify")
CHANNEL = "safety-net:inbox"


class Broker:
    def __init__(self, redis_url: str = "") -> None:
        self.redis_url = redis_url
        self._queues: dict[str, set[asyncio.Queue[str]]] = {}
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.redis_url:
            return
        import redis.asyncio as redis

        self._redis = redis.from_url(self.redis_url)
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        self._listener = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message and message.get("type") == "message":
                    data = json.loads(message["data"])
                    self._deliver(data["recipient"], data["id"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep listening; clients replay what they missed
                log.warning("redis listener: %s", type(exc).__name__)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    def _deliver(self, recipient: str, item_id: str) -> None:
        for queue in self._queues.get(recipient, set()):
            queue.put_nowait(item_id)

    async def publish(self, items: list[tuple[str, str]]) -> None:
        """(recipient, inbox item id) pairs, after the transaction that stored them committed."""
        for recipient, item_id in items:
            if self._redis is not None:
                try:
                    await self._redis.publish(CHANNEL, json.dumps({"recipient": recipient,
                                                                   "id": item_id}))
                    continue
                except Exception as exc:
                    log.warning("redis publish failed: %s", type(exc).__name__)
            self._deliver(recipient, item_id)

    def subscribe(self, recipient: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._queues.setdefault(recipient, set()).add(queue)
        return queue

    def unsubscribe(self, recipient: str, queue: asyncio.Queue[str]) -> None:
        self._queues.get(recipient, set()).discard(queue)
