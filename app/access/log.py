"""Writing access-log entries: changes in the request's transaction, denials in their own."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, new_id
from app.tables.audit import AccessLogEntry

# Who counts the denials written through an engine: app/metrics.py registers its app's counter
# when it attaches (the writers hold a session or a Database, not the app, and several apps live
# in one test process). Registered from above, so the log never imports the metrics.
DenialCounter = Callable[[Iterable[AccessLogEntry]], None]
_COUNTERS: weakref.WeakKeyDictionary[Any, DenialCounter] = weakref.WeakKeyDictionary()


def count_denials_with(engine: Any, counter: DenialCounter) -> None:
    """Count the denials later written through this engine with `counter`."""
    _COUNTERS[engine] = counter


def _count(engine: Any, entries: Iterable[AccessLogEntry]) -> None:
    if (counter := _COUNTERS.get(engine)) is not None:
        counter(entries)


@dataclass(frozen=True)
class Actor:
    subject: str
    org_id: uuid.UUID | None
    purpose: str | None
    request_id: str
    at: datetime


def entry(
    actor: Actor,
    *,
    action: str,
    target_type: str | None,
    target_id: str | None,
    decision: str,
    reason: str | None,
    details: dict[str, Any] | None,
) -> AccessLogEntry:
    return AccessLogEntry(
        at=actor.at, request_id=actor.request_id, actor=actor.subject, org_id=actor.org_id,
        purpose=actor.purpose, action=action, target_type=target_type, target_id=target_id,
        decision=decision, reason=reason, details=details,
        refs=_refs(target_type, target_id, details),
    )


def _refs(target_type: str | None, target_id: str | None,
          details: dict[str, Any] | None) -> str | None:
    """The peacebuilders an entry concerns, so she and auditors can find it by her."""
    found: set[str] = set()
    if target_type == "Peacebuilder" and target_id:
        found.add(target_id)
    if details:
        found.update(str(k) for k in (details.get("records") or {}))
        if isinstance(details.get("peacebuilder"), str):
            found.add(details["peacebuilder"])
    return " ".join(sorted(found)) if found else None


def add(
    session: AsyncSession,
    actor: Actor,
    *,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    decision: str = "allow",
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an entry to the caller's transaction: it commits or rolls back with the change."""
    added = entry(actor, action=action, target_type=target_type, target_id=target_id,
                  decision=decision, reason=reason, details=details)
    session.add(added)
    if decision == "deny":
        _count(session.bind, [added])  # sign-in and token refusals, committed by their caller


async def write_deferred(db: Database, entries: list[AccessLogEntry]) -> None:
    """Commit entries that must outlive the request's own transaction (reads, denials)."""
    if not entries:
        return
    async with db.transaction() as session:
        await insert_entries(session, entries)
    _count(db.engine, entries)


async def add_deferred(session: AsyncSession,
                       entries: list[AccessLogEntry]) -> list[AccessLogEntry]:
    """Write a unit's reads and denials in its own transaction when it is about to commit (one
    commit instead of a second transaction): they commit or roll back with it. Then
    `count_deferred` once it has committed."""
    await insert_entries(session, entries)
    return list(entries)


# The columns an entry is written with: everything but what the chainer sets later.
_TABLE = cast(Table, AccessLogEntry.__table__)
_WRITTEN = tuple(c.key for c in _TABLE.c if c.key not in ("seq", "prev_hash", "hash"))
_INSERT = _TABLE.insert()


async def insert_entries(session: AsyncSession, entries: list[AccessLogEntry]) -> None:
    """INSERT the entries now, in the session's transaction, as one Core statement: the same
    rows the ORM's flush would write (an explicit ID, the chain's columns left NULL, `details`
    through the same JSON serialiser), without its unit-of-work machinery for objects that are
    never read back in this session."""
    if not entries:
        return
    for item in entries:
        if item.id is None:
            item.id = new_id()
    connection = await session.connection()
    await connection.execute(_INSERT, [{key: getattr(item, key) for key in _WRITTEN}
                                       for item in entries])



def count_deferred(db: Database, entries: list[AccessLogEntry]) -> None:
    if entries:
        _count(db.engine, entries)
