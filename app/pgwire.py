"""Fewer round trips to PostgreSQL per transaction (asyncpg), every guarantee kept (issue 14).

Through SQLAlchemy's asyncpg adapter, each transaction paid a round trip before BEGIN for the
pool's ping at checkout; a request runs two transactions (admission, then the request itself).

**The ping only for a connection idle a while.** A connection checked in less than `PING_AFTER`
seconds ago answered its last round trip then; unless the driver already saw its socket close,
it is not pinged. A connection that died in that window fails at its first statement instead,
which SQLAlchemy reports as a disconnect (the pool is invalidated, the request answered 503, as
when the database dies mid-request). Older connections are pinged with one round trip.

Not done, on purpose: sending BEGIN and the signed tenancy declaration as one simple-protocol
message would save another round trip per transaction, but only with the signature as an SQL
literal — statement text, which `pg_stat_activity` shows to every session of the same role and
statement logging prints (decision 0015 keeps it a bound parameter).
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import await_

# A connection returned to the pool this recently skips the checkout ping: within a burst of
# requests each checkout would otherwise pay a round trip to re-check a connection that just
# worked. Beyond it (an idle pool), every checkout is pinged as before.
PING_AFTER = 2.0  # seconds

# When each connection (asyncpg's, by identity) was last returned to the pool.
_CHECKED_IN: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def _checked_in(dbapi_connection: Any, _record: Any) -> None:
    if dbapi_connection is not None:  # None: the connection was invalidated
        _CHECKED_IN[dbapi_connection._connection] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any) -> bool:
    """The pool's check before a checkout. Skipped for a connection checked in within
    PING_AFTER seconds whose socket the driver has not seen close; otherwise one round trip: an
    empty simple-protocol `SELECT 1` (asyncpg's own ping wraps it in BEGIN ... ROLLBACK for
    pgbouncer's transaction mode, which we do not use: three round trips). A dead connection
    fails here and is replaced before the request uses it."""
    connection = dbapi_connection._connection
    at = _CHECKED_IN.get(connection)
    if at is not None and time.monotonic() - at < PING_AFTER and not connection.is_closed():
        return True
    try:
        await_(connection.execute("SELECT 1"))
    except Exception as error:
        dbapi_connection._handle_exception(error)  # the DBAPI error the pool understands
    return True


def install(engine: AsyncEngine) -> None:
    """On an engine whose driver is asyncpg (others are left as they are)."""
    sync_engine = engine.sync_engine
    if sync_engine.dialect.driver != "asyncpg":
        return
    sync_engine.dialect.do_ping = _ping_if_idle  # type: ignore[method-assign]
    event.listen(sync_engine.pool, "checkin", _checked_in)
