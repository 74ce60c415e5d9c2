"""Failed sign-ins counted in the database, per account and per client address.

The request rate limits live in Redis and fail open when it is down (`app/ratelimit.py`); these
counters must not: they are what stops password guessing. Each attempt is charged before the
password is checked, atomically (an upsert returning the new count), in a short transaction of
its own (so concurrent attempts neither wait on each other's password hashing nor slip through
together); over either limit the attempt is refused without checking anything. A successful
sign-in takes its charge back (the account's count starts again, the address's drops by one), so
only failures accumulate. Windows are fixed: a locked account opens again when its window ends.

Keys are SHA-256 hashes of "account:<org>/<name>" and "address:<ip>": no name or address is
stored. Expired rows are swept now and then by the sign-ins themselves.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, literal, update
from sqlalchemy.dialects import postgresql, sqlite

from app.db import UTCDateTime
from app.ratelimit import Rate
from app.tables.auth import SignInCounter
from app.tenancy import as_system

SWEEP_ONE_IN = 200  # attempts between sweeps of expired counters, on average


@dataclass(frozen=True)
class Charged:
    """An attempt charged against both counters: refused (with a wait) or allowed."""

    keys: tuple[tuple[str, str], ...]  # (limit name, counter key)
    retry_after: int = 0
    limit: str | None = None

    @property
    def allowed(self) -> bool:
        return self.limit is None


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


async def _charge(session: Any, key: str, rate: Rate, now: datetime) -> tuple[int, datetime]:
    """Count one more attempt under `key` (a new window if the old one ended): (count, end)."""
    t: Any = SignInCounter.__table__
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now_ = literal(now, UTCDateTime())
    end = now + timedelta(seconds=rate.seconds)
    ended = t.c.window_end <= now_
    stmt: Any = insert(t).values(key=key, window_end=end, count=1)
    stmt = stmt.on_conflict_do_update(index_elements=[t.c.key], set_={
        "count": case((ended, 1), else_=t.c.count + 1),
        "window_end": case((ended, literal(end, UTCDateTime())), else_=t.c.window_end),
    }).returning(t.c.count, t.c.window_end)
    count, window_end = (await session.execute(stmt)).one()
    if isinstance(window_end, datetime) and window_end.tzinfo is None:
        window_end = window_end.replace(tzinfo=now.tzinfo)
    return int(count), window_end


@as_system  # sign-in: before anyone is known, in the system scope
async def charge(runtime: Any, account: str, address: str) -> Charged:
    """Charge one sign-in attempt to its account and its address; refused over a limit."""
    from app.ratelimit import limiter

    rates = limiter(runtime).signin_rates
    wanted = [(name, _key(kind, value), rate) for name, kind, value in (
        ("signin_account", "account", account), ("signin_address", "address", address))
        if (rate := rates[name]) is not None]
    if not wanted:
        return Charged(())
    now = runtime.clock.now()
    refused: tuple[str, int] | None = None
    async with runtime.db.transaction() as session:
        for name, key, rate in wanted:
            count, end = await _charge(session, key, rate, now)
            if count > rate.amount and refused is None:
                refused = name, max(1, math.ceil((end - now).total_seconds()))
        if secrets.randbelow(SWEEP_ONE_IN) == 0:
            await session.execute(delete(SignInCounter).where(
                SignInCounter.window_end < literal(now, UTCDateTime())))
    keys = tuple((name, key) for name, key, _ in wanted)
    if refused is not None:
        return Charged(keys, refused[1], refused[0])
    return Charged(keys)


@as_system
async def succeeded(runtime: Any, charged: Charged) -> None:
    """A sign-in that succeeded: its account's failures start afresh, and the address gets this
    attempt back (only failures accumulate there)."""
    if not charged.keys:
        return
    async with runtime.db.transaction() as session:
        for name, key in charged.keys:
            await session.execute(update(SignInCounter).where(
                SignInCounter.key == key, SignInCounter.count > 0).values(
                count=0 if name == "signin_account" else SignInCounter.count - 1))
