"""The log worker: chains pending entries, raises alerts and signs checkpoints — every N
entries, every T minutes and when the log goes idle, never more often than the minimum interval
(forced checkpoints aside: exports, shutdown, `audit chain`). Runs in every replica; the advisory
lock in `chain_pending` lets one at a time do the work.

Checkpoint files are read and written in a thread (`asyncio.to_thread`): the event loop serving
requests never waits on the disk. A pass reads the `latest` pointer and the file it names, not
the directory (see `checkpoints`)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from contextlib import suppress

from app.audit import alerts, chain, checkpoints
from app.clock import Clock
from app.config import Settings
from app.db import Database, background_task
from app.tenancy import as_system

log = logging.getLogger("safety_net.audit")


class LogWorker:
    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings, self.db, self.clock = settings, db, clock
        self.signer = checkpoints.Signer(settings.checkpoint_keys)
        self.monotonic = time.monotonic  # tests replace it
        # The newest checkpoint this worker has seen (whoever signed it) and since when, by the
        # monotonic clock: with the checkpoint's own time this spaces checkpoints across
        # replicas without trusting any replica's wall clock alone.
        self._seen: tuple[int, float] | None = None
        # A size whose file exists but is not a valid checkpoint (an old power cut): not signed
        # again every pass; the next entry gets a checkpoint of its own.
        self._unwritable: int | None = None
        self._task: asyncio.Task[None] | None = None

    @as_system
    async def tick(self) -> int:
        """One pass: chain a batch, scan it for unusual access, checkpoint if due."""
        async with self.db.transaction() as session:
            before = await chain.head(session)
        chained = await chain.chain_pending(self.db)
        if chained:
            async with self.db.transaction() as session:
                await alerts.scan(session, self.settings, before.size + 1, before.size + chained)
        await self.maybe_checkpoint(idle=chained == 0)
        return chained

    def _age(self, latest: checkpoints.Checkpoint | None, now: float) -> float:
        """Seconds since the newest checkpoint: by its signed time, or since this worker first
        saw it, whichever is longer (a replica whose clock runs ahead cannot stall the others)."""
        if latest is None:
            return math.inf
        wall = (self.clock.now() - latest.time).total_seconds()
        seen = now - self._seen[1] if self._seen is not None else 0.0
        return max(wall, seen)

    @as_system
    async def maybe_checkpoint(
        self, *, idle: bool = False, force: bool = False
    ) -> checkpoints.Checkpoint | None:
        async with self.db.transaction() as session:
            head = await chain.head(session)
        directory = self.settings.checkpoints
        latest = await asyncio.to_thread(checkpoints.latest, directory, hint=head.size)
        signed = latest.size if latest else 0
        now = self.monotonic()
        if self._seen is None or self._seen[0] != signed:
            self._seen = (signed, now)
        if head.size <= signed or head.size == self._unwritable:
            return None
        if not force:
            s = self.settings
            age = self._age(latest, now)
            if age < s.checkpoint_min_interval:
                return None
            if not (idle or head.size - signed >= s.checkpoint_every
                    or age >= s.checkpoint_minutes * 60):
                return None
        cp = self.signer.sign(head.size, head.hash, self.clock.now())
        stored = await asyncio.to_thread(checkpoints.publish, directory, cp)
        if stored is None:
            self._unwritable = head.size
            log.warning("checkpoint %s exists but is not a valid checkpoint: left for "
                        "`audit verify` to report; the next entry gets a checkpoint",
                        checkpoints.note_name(head.size))
            return None
        self._seen = (stored.size, self.monotonic())
        return stored

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                while await self.tick() >= chain.BATCH:
                    pass
            except Exception as exc:  # keep the worker alive; the next tick retries
                log.error("log worker pass failed: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    def start(self) -> None:
        self._task = background_task(self.run(), "log-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        # Chain and sign what is left so a clean shutdown leaves a complete checkpoint.
        with suppress(Exception):
            await chain.chain_all(self.db)
            await self.maybe_checkpoint(force=True)
