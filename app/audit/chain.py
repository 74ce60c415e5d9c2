"""The hash chain: a canonical encoding of each entry, and the chainer that orders pending
entries, numbers them gap-free and links each to the previous one.

One chainer runs at a time per database: on PostgreSQL under a transaction-scoped advisory lock
(other replicas skip their turn), on SQLite under the database's single-writer lock. Requests
never wait for it: they insert pending rows and the chainer catches up in batches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Uuid, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, canonical_json
from app.tables.audit import AccessLogEntry
from app.tenancy import as_system

GENESIS = "0" * 64
ADVISORY_LOCK = 0x5AFE_1061  # "safe log"
BATCH = 5000

COLUMNS = (AccessLogEntry.seq, AccessLogEntry.id, AccessLogEntry.at, AccessLogEntry.request_id,
           AccessLogEntry.actor, AccessLogEntry.org_id, AccessLogEntry.purpose,
           AccessLogEntry.action, AccessLogEntry.target_type, AccessLogEntry.target_id,
           AccessLogEntry.decision, AccessLogEntry.reason, AccessLogEntry.details,
           AccessLogEntry.refs, AccessLogEntry.prev_hash, AccessLogEntry.hash)

# The canonical encoding is defined on the stored form, so verifying a million entries does not
# pay for building Python objects: IDs as 32 lowercase hex digits, times as UTC
# "YYYY-MM-DD HH:MM:SS.ffffff", details as the stored JSON text (written by `canonical_json`).
_RAW = {
    "sqlite": ("SELECT seq, id, at, request_id, actor, org_id, purpose, action, target_type, "
               "target_id, decision, reason, details, refs, prev_hash, hash FROM access_log"),
    "postgresql": ("SELECT seq, replace(id::text, '-', ''), "
                   "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), request_id, actor, "
                   "replace(org_id::text, '-', ''), purpose, action, target_type, target_id, "
                   "decision, reason, details::text, refs, prev_hash, hash FROM access_log"),
}


def raw_select(dialect: str) -> str:
    """SELECT of the stored form, in canonical field order (then prev_hash, hash)."""
    return _RAW[dialect]


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def canonical(raw: Any, prev_hash: str) -> bytes:
    """Stable bytes for one entry (a raw row from `raw_select`): a JSON array in fixed order."""
    head = _dumps(raw[:12])
    details = raw[12] if raw[12] is not None else "null"
    return f"{head[:-1]},{details},{_dumps(raw[13])},\"{prev_hash}\"]".encode()


def entry_hash(raw: Any, prev_hash: str) -> str:
    return hashlib.sha256(canonical(raw, prev_hash)).hexdigest()


def at_text(at: datetime) -> str:
    if at.tzinfo is not UTC:
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return (f"{at.year:04d}-{at.month:02d}-{at.day:02d} {at.hour:02d}:{at.minute:02d}:"
            f"{at.second:02d}.{at.microsecond:06d}")


def raw_of(entry: Any) -> tuple[Any, ...]:
    """The stored form of an entry held as Python values (exports, generators, tests)."""
    return (entry.seq, entry.id.hex, at_text(entry.at), entry.request_id, entry.actor,
            entry.org_id.hex if entry.org_id else None, entry.purpose, entry.action,
            entry.target_type, entry.target_id, entry.decision, entry.reason,
            canonical_json(entry.details), entry.refs)


@dataclass(frozen=True)
class Head:
    size: int
    hash: str


async def head(session: AsyncSession) -> Head:
    row = (await session.execute(select(AccessLogEntry.seq, AccessLogEntry.hash)
                                 .where(AccessLogEntry.seq.is_not(None))
                                 .order_by(AccessLogEntry.seq.desc()).limit(1))).first()
    return Head(0, GENESIS) if row is None else Head(int(row[0] or 0), str(row[1]))


async def pending_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(AccessLogEntry)
                                    .where(AccessLogEntry.seq.is_(None))) or 0)


@as_system
async def chain_pending(db: Database, batch: int = BATCH) -> int:
    """Chain up to `batch` pending entries; returns how many (0 if another chainer holds the lock)."""
    async with db.transaction() as session:
        if db.dialect == "postgresql":
            got = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                       {"k": ADVISORY_LOCK})
            if not got:
                return 0
        else:
            # Take SQLite's write lock now, so two chainers cannot read the same head.
            await session.execute(text("UPDATE policy_state SET version = version WHERE id = 1"))
        current = await head(session)
        ids = list(await session.scalars(
            select(AccessLogEntry.id).where(AccessLogEntry.seq.is_(None))
            .order_by(AccessLogEntry.at, AccessLogEntry.id).limit(batch)))
        stored = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            placeholders = ", ".join(f":i{n}" for n in range(len(chunk)))
            result = await session.execute(
                text(f"{raw_select(db.dialect)} WHERE id IN ({placeholders})")
                .bindparams(*[bindparam(f"i{n}", v, type_=Uuid) for n, v in enumerate(chunk)]))
            for raw in result.all():
                stored[raw[1]] = raw
        prev, seq = current.hash, current.size
        changes = []
        for entry_id in ids:
            raw = stored[entry_id.hex]
            seq += 1
            digest = entry_hash((seq, *raw[1:14]), prev)
            changes.append({"id": entry_id, "seq": seq, "prev_hash": prev, "hash": digest})
            prev = digest
        if changes:
            # ORM bulk update by primary key: one executemany for the batch.
            await session.execute(update(AccessLogEntry), changes)
        return len(ids)


async def chain_all(db: Database) -> int:
    total = 0
    while (n := await chain_pending(db)) > 0:
        total += n
    return total
