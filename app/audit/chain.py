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

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AccessLogEntry
from app.db import Database

GENESIS = "0" * 64
ADVISORY_LOCK = 0x5AFE_1061  # "safe log"
BATCH = 5000

COLUMNS = (AccessLogEntry.seq, AccessLogEntry.id, AccessLogEntry.at, AccessLogEntry.request_id,
           AccessLogEntry.actor, AccessLogEntry.org_id, AccessLogEntry.purpose,
           AccessLogEntry.action, AccessLogEntry.target_type, AccessLogEntry.target_id,
           AccessLogEntry.decision, AccessLogEntry.reason, AccessLogEntry.details,
           AccessLogEntry.refs, AccessLogEntry.prev_hash, AccessLogEntry.hash)


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(seq: int, row: Any, prev_hash: str) -> bytes:
    """Stable bytes for one entry: a JSON array in fixed field order, keys sorted inside."""
    return json.dumps(
        [seq, str(row.id), _iso(row.at), row.request_id, row.actor,
         str(row.org_id) if row.org_id else None, row.purpose, row.action, row.target_type,
         row.target_id, row.decision, row.reason, row.details, row.refs, prev_hash],
        separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def entry_hash(seq: int, row: Any, prev_hash: str) -> str:
    return hashlib.sha256(canonical(seq, row, prev_hash)).hexdigest()


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
        rows = (await session.execute(
            select(*COLUMNS[1:14]).where(AccessLogEntry.seq.is_(None))
            .order_by(AccessLogEntry.at, AccessLogEntry.id).limit(batch))).all()
        prev, seq = current.hash, current.size
        changes = []
        for row in rows:
            seq += 1
            digest = entry_hash(seq, row, prev)
            changes.append({"id": row.id, "seq": seq, "prev_hash": prev, "hash": digest})
            prev = digest
        if changes:
            # ORM bulk update by primary key: one executemany for the batch.
            await session.execute(update(AccessLogEntry), changes)
        return len(rows)


async def chain_all(db: Database) -> int:
    total = 0
    while (n := await chain_pending(db)) > 0:
        total += n
    return total
