"""Dataloaders, created per request and bound to the caller: one query per relation per tick."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from app.access.context import AccessContext
from app.errors import ResponseTooLarge
from app.her import sealing
from app.incidents import attachments
from app.orgs import service as orgs
from app.peacebuilders import service as peacebuilders

K = TypeVar("K")
V = TypeVar("V")


class Loaders:
    """All loaders of one request. They share the request's session, so calls are serialised."""

    def __init__(self, access: AccessContext) -> None:
        self.access = access
        self.lock = asyncio.Lock()
        self.closed = False
        self.stopped: Exception | None = None
        self.organisation = self._loader(lambda ids: orgs.orgs_by_ids(access.session, ids))
        self.networks = self._loader(lambda ids: peacebuilders.networks_of(access, ids),
                                     default=list)
        self.roles = self._loader(lambda subjects: orgs.roles_by_subjects(access, subjects),
                                  default=list)
        self.members = self._loader(lambda ids: orgs.members_of(access, ids), default=list)
        # Incident ID -> its attachments' metadata (never content), one statement per level.
        self.attachments = self._loader(lambda ids: attachments.of_incidents(access, ids),
                                        default=list)
        # (Ref, stored token) -> Opened: every sealed value of a tick opened with ONE key lookup.
        self.sealed = self._loader(lambda items: _opened(access, items))

    async def call(self, fn: Callable[..., Awaitable[V]], *args: Any, **kwargs: Any) -> V:
        """Run a service call alone on the request's session."""
        async with self.lock:
            self._check_open()
            try:
                return await fn(*args, **kwargs)
            except ResponseTooLarge as exc:
                # The read path found it could never fit: nothing more for this request.
                self.stop(exc)
                raise

    async def close(self) -> None:
        """No more session work (a timed-out request): waits for the call in progress."""
        async with self.lock:
            self.closed = True

    def stop(self, reason: Exception) -> None:
        """Every later call raises `reason` (the response is already over its size limit)."""
        self.stopped = reason

    def _check_open(self) -> None:
        if self.closed:
            raise asyncio.CancelledError("the request ended")
        if self.stopped is not None:
            raise self.stopped

    def _loader(
        self,
        fetch: Callable[[list[Any]], Awaitable[dict[Any, Any]]],
        default: Callable[[], Any] | None = None,
    ) -> DataLoader[Any, Any]:
        async def batch(keys: list[Any]) -> list[Any]:
            async with self.lock:
                self._check_open()
                found = await fetch(list(keys))
            return [found.get(k, default() if default else None) for k in keys]

        return DataLoader(load_fn=batch)


async def _opened(access: AccessContext,
                  items: list[tuple[sealing.Ref, str | None]]) -> dict[Any, sealing.Opened]:
    return dict(zip(items, await sealing.open_many(access, items), strict=True))
