"""Telling a dependency outage (database, broker) from a bug: the one classifier.

An outage is answered 503 with `Retry-After` at the HTTP edge (schema/outage.py), a bug 500;
both without exception text, which can quote stored values.
"""

from __future__ import annotations

import socket

from sqlalchemy import exc as sa_exc

DATABASE = "database"
BROKER = "broker"

_SA_OUTAGE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
              sa_exc.TimeoutError)


def _asyncpg_outage() -> tuple[type[BaseException], ...]:
    try:
        import asyncpg
    except ImportError:  # SQLite-only installs
        return ()
    e = asyncpg.exceptions
    return (e.PostgresConnectionError, e.InterfaceError, e.CannotConnectNowError,
            e.OperatorInterventionError, e.TooManyConnectionsError,
            e.ConnectionDoesNotExistError)


def _redis_outage() -> tuple[type[BaseException], ...]:
    try:
        import redis.exceptions as r
    except ImportError:
        return ()
    return (r.ConnectionError, r.TimeoutError, r.BusyLoadingError)


_ASYNCPG = _asyncpg_outage()
_REDIS = _redis_outage()
# The OS's word for "the other end is not there": refused, reset, unreachable, name unknown.
_OS = (ConnectionError, socket.gaierror, TimeoutError)


def _own(exc: BaseException) -> str | None:
    if isinstance(exc, _REDIS):
        return BROKER
    if isinstance(exc, _SA_OUTAGE) or (isinstance(exc, sa_exc.DBAPIError)
                                       and exc.connection_invalidated):
        return DATABASE
    if _ASYNCPG and isinstance(exc, _ASYNCPG):
        return DATABASE
    if isinstance(exc, _OS):
        return DATABASE
    return None


def outage(exc: BaseException | None) -> str | None:
    """Which dependency `exc` says is unavailable (DATABASE or BROKER), None for anything else.
    Looks through exception groups, causes and contexts: an outage often surfaces as a later
    error (a failed rollback, a task group's group)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        found = _own(current)
        if found is not None:
            return found
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        original = getattr(current, "original_error", None)  # a GraphQLError's cause
        if isinstance(original, BaseException):
            stack.append(original)
        stack.extend((current.__cause__, current.__context__))
    return None
