"""How fast `safety-net audit verify` checks a large log.

    .venv/bin/python bench/audit_verify.py [--entries 1000000] [--database-url URL]

Generates a chained log with a fast bulk generator (not the API), signs a checkpoint, then runs
the real verifier and prints entries, seconds and entries per second.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import insert

from app.audit import chain, checkpoints
from app.audit.verify import verify
from app.config import Settings
from app.db import Database
from app.storage import upgrade
from app.tables.audit import AccessLogEntry

ACTIONS = ["data.read", "case.update", "consent.grant", "user.roles", "data.read"]


async def generate(db: Database, n: int, batch: int = 20_000, *, after: int = 0,
                   prev: str = chain.GENESIS, heads: list[str] | None = None) -> str:
    """Append `n` chained entries after entry `after` (whose hash is `prev`); returns the head.
    `heads`, if given, receives the chain head after each entry (for signing checkpoints)."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    org = uuid.uuid4()
    seq = after
    while seq < after + n:
        rows = []
        for _ in range(min(batch, after + n - seq)):
            seq += 1
            row = SimpleNamespace(
                id=uuid.uuid4(), at=start + timedelta(milliseconds=seq), request_id=f"r{seq}",
                actor=f"user:{org}", org_id=org, purpose="protection",
                action=ACTIONS[seq % len(ACTIONS)], target_type="Peacebuilder",
                target_id=str(org), decision="allow" if seq % 7 else "deny", reason=None,
                details={"records": {str(org): ["identity", "incident_details"]}}, refs=str(org))
            row.seq = seq
            digest = chain.entry_hash(chain.raw_of(row), prev)
            rows.append({**vars(row), "prev_hash": prev, "hash": digest})
            prev = digest
            if heads is not None:
                heads.append(digest)
        async with db.transaction() as session:
            await session.execute(insert(AccessLogEntry), rows)
    return prev


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sn-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    settings = replace(Settings(), database_url=url, data_dir=tmp)
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    t0 = time.perf_counter()
    head = await generate(db, args.entries)
    generated = time.perf_counter() - t0
    signer = checkpoints.Signer(settings.checkpoint_keys)
    checkpoints.write(settings.checkpoints, signer.sign(args.entries, head, datetime.now(UTC)))
    t1 = time.perf_counter()
    report = await verify(db, settings.checkpoints, settings.checkpoint_keys, None)
    took = time.perf_counter() - t1
    await db.dispose()
    print(f"{'engine':<12}{'entries':>10}{'generate s':>12}{'verify s':>10}{'entries/s':>12}  ok")
    print(f"{db.dialect:<12}{report.entries:>10}{generated:>12.1f}{took:>10.1f}"
          f"{report.entries / took:>12,.0f}  {report.ok}")


if __name__ == "__main__":
    asyncio.run(main())
