"""The alert outbox: alerts leave the service after the request that raised them has answered.

`notify()` writes each inbox item and its `alert_outbox` row in the request's own transaction, so
an alert exists exactly when the change that caused it was committed. This worker (one in every
replica) claims rows, publishes them (`Broker.publish`: Redis pub/sub, or in-process without
Redis), emails the links that warrant it, and deletes the rows. A request only wakes it: its
answer never waits for Redis or SMTP.

Several replicas share the table. A pass claims a batch with one UPDATE … RETURNING that sets a
lease (`claimed_until`, `claimed_by`); on PostgreSQL the rows it picks are locked `FOR UPDATE
SKIP LOCKED`, so concurrent workers take different rows instead of waiting; on SQLite the UPDATE
itself is atomic (one writer). A worker that dies after publishing and before deleting leaves
rows whose lease runs out; another publishes them again: delivery is at least once, and
subscribers de-duplicate by inbox item ID. While Redis is down the rows stay (released at once,
retried every pass) and are handed to this replica's own subscribers once; when Redis answers
again they go to every replica, followed by a resync signal (`app/notify/broker.py`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from contextlib import suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, literal, or_, select, update

from app.db import UTCDateTime, background_task
from app.notify.broker import BrokerUnavailable
from app.tables.notify import OutboxEntry
from app.tenancy import as_system

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger("safety_net.notify")

BATCH = 200
LEASE = timedelta(seconds=30)
INTERVAL = 1.0  # seconds between passes when nothing wakes the worker
_REMEMBERED = 10_000  # items already handed to local subscribers / the mailer during an outage


class OutboxWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.worker_id = uuid.uuid4().hex
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._handled: OrderedDict[str, None] = OrderedDict()
        self.failing = False

    def notify(self) -> None:
        """New rows were committed: run a pass now rather than at the next interval."""
        self.wake.set()

    @as_system
    async def _claim(self) -> list[tuple[uuid.UUID, str]]:
        db = self.runtime.db
        now = self.runtime.clock.now()
        at = literal(now, UTCDateTime())
        async with db.transaction() as session:
            pick = (select(OutboxEntry.item_id)
                    .where(or_(OutboxEntry.claimed_until.is_(None), OutboxEntry.claimed_until < at))
                    .order_by(OutboxEntry.created_at).limit(BATCH))
            if session.get_bind().dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            rows = (await session.execute(
                update(OutboxEntry).where(OutboxEntry.item_id.in_(pick.scalar_subquery()))
                .values(claimed_until=now + LEASE, claimed_by=self.worker_id,
                        attempts=OutboxEntry.attempts + 1)
                .returning(OutboxEntry.item_id, OutboxEntry.recipient, OutboxEntry.created_at)
                .execution_options(synchronize_session=False))).all()
        return [(item_id, recipient) for item_id, recipient, _ in
                sorted(rows, key=lambda r: (r[2], r[0]))]

    @as_system
    async def _finish(self, ids: list[uuid.UUID], *, published: bool) -> None:
        """Published: the rows go. Not: the lease is given back, so the next pass retries."""
        async with self.runtime.db.transaction() as session:
            mine = (OutboxEntry.item_id.in_(ids), OutboxEntry.claimed_by == self.worker_id)
            if published:
                await session.execute(delete(OutboxEntry).where(*mine)
                                      .execution_options(synchronize_session=False))
            else:
                await session.execute(update(OutboxEntry).where(*mine)
                                      .values(claimed_until=None, claimed_by=None)
                                      .execution_options(synchronize_session=False))

    def _first_time(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        fresh = [i for i in items if i[1] not in self._handled]
        for _, item_id in fresh:
            self._handled[item_id] = None
        while len(self._handled) > _REMEMBERED:
            self._handled.popitem(last=False)
        return fresh

    async def tick(self) -> int:
        """One pass: claim a batch, publish it, email it, delete it. Returns how many were
        published; raises BrokerUnavailable (rows kept) when Redis did not take them."""
        claimed = await self._claim()
        if not claimed:
            return 0
        items = [(recipient, str(item_id)) for item_id, recipient in claimed]
        ids = [item_id for item_id, _ in claimed]
        runtime = self.runtime
        metrics = runtime.metrics
        try:
            await runtime.broker.publish(items)
        except BrokerUnavailable:
            await self._finish(ids, published=False)
            if metrics is not None:
                metrics.outbox_failures.inc()
            if not self.failing:
                log.warning("alert outbox: Redis unavailable, %d alert(s) kept for retry; "
                            "this replica's subscribers get them now", len(items))
            self.failing = True
            fresh = self._first_time(items)
            runtime.broker.deliver_local(fresh)
            await self._mail([i for _, i in fresh])
            raise
        if self.failing:
            log.info("alert outbox: Redis takes alerts again")
        self.failing = False
        await self._finish(ids, published=True)
        if metrics is not None:
            metrics.outbox_published.inc(len(items))
        await self._mail([i for _, i in items if i not in self._handled])
        return len(items)

    async def _mail(self, item_ids: list[str]) -> None:
        """The channels beyond the inbox and subscriptions: e-mail links and webhooks (each
        decides per item, as the recipient, at delivery)."""
        if not item_ids:
            return
        webhooks = self.runtime.webhooks
        if webhooks is not None:
            await webhooks.after_commit(self.runtime, item_ids)  # never raises: a sweep retries
        mailer = self.runtime.mailer
        if mailer is None or not mailer.enabled:
            return
        try:
            await mailer.deliver(self.runtime, item_ids)  # marks them emailed: never twice
        except Exception as exc:  # the alert is in the inbox whatever happens to the email
            log.warning("alert e-mail pass failed: %s", type(exc).__name__)

    async def drain(self) -> int:
        """Publish everything waiting (tests, shutdown); BrokerUnavailable if Redis refuses."""
        total = 0
        while n := await self.tick():
            total += n
        return total

    async def run(self) -> None:
        while True:
            self.wake.clear()
            try:
                if await self.tick():
                    continue  # more may be waiting
            except BrokerUnavailable:
                pass
            except Exception as exc:  # keep the worker alive; the next pass retries
                log.error("alert outbox pass failed: %s", type(exc).__name__)
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that arrives as
            # the wake-up does (a notice just written at shutdown), and stop() then waits forever.
            with suppress(TimeoutError):
                async with asyncio.timeout(INTERVAL):
                    await self.wake.wait()

    def start(self) -> None:
        self._task = background_task(self.run(), "outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def worker(runtime: Any) -> OutboxWorker:
    """The runtime's outbox worker, made on first use."""
    found = runtime.extras.get("outbox")
    if found is None:
        found = runtime.extras["outbox"] = OutboxWorker(runtime)
    return found  # type: ignore[no-any-return]
