"""The log worker: chains pending entries, raises alerts and signs checkpoints — every N
entries, every T minutes and when the log goes idle. Runs in every replica; the advisory lock
in `chain_pending` lets one at a time do the work."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress

from app.access.tenancy import as_system
from app.audit import alerts, chain, checkpoints
from app.clock import Clock
from app.config import Settings
from app.db import Database

log = logging.getLogger("safety_net.audit")


class LogWorker:
    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings, self.db, self.clock = settings, db, clock
        self.signer = checkpoints.Signer(settings.checkpoint_keys)
        self._last_checkpoint = time.monotonic()
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

    @as_system
    async def maybe_checkpoint(
        self, *, idle: bool = False, force: bool = False
    ) -> checkpoints.Checkpoint | None:
        async with self.db.transaction() as session:
            head = await chain.head(session)
        latest = checkpoints.latest(self.settings.checkpoints)
        signed = latest.size if latest else 0
        if head.size <= signed:
            return None
        due = (force or idle or head.size - signed >= self.settings.checkpoint_every
               or time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_minutes * 60)
        if not due:
            return None
        cp = self.signer.sign(head.size, head.hash, self.clock.now())
        checkpoints.write(self.settings.checkpoints, cp)
        self._last_checkpoint = time.monotonic()
        return cp

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                while await self.tick() >= chain.BATCH:
                    pass
            except Exception as exc:  # keep the worker alive; the next tick retries
                log.error("log worker pass failed: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        # Chain and sign what is left so a clean shutdown leaves a complete checkpoint.
        with suppress(Exception):
            await chain.chain_all(self.db)
            await self.maybe_checkpoint(force=True)
