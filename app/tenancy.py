"""What PostgreSQL's row-level security lets this unit of work touch: the database's second wall.

The application decides (`AccessContext`, `app/access/visibility.py`); the database only checks
membership in what the application decided, set per transaction as its first statement
(`app/db.py`). SQL holds no consent logic: a `Tenancy` is the caller's organisation, the IDs of
peacebuilders whose records it may reach (its live grants, computed by the one decision
function), and the organisations whose access-log entries it may read (its own and those that
accept its oversight). Background work (log chainer, scheduler, CLI, sign-in) runs as `SYSTEM`,
on the background role's own connection: the only role the database lets use it. What is sent is
signed (`app/wall.py`), so the database believes it only from the application.

A transaction that declared nothing runs as `NOBODY` and sees no row of any protected table:
forgetting to declare a tenancy denies, it never grants. SQLite has no row-level security; there
the application's checks are the only wall (docs/decisions/0012-row-level-security.md).
"""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Scope(enum.StrEnum):
    NONE = "none"
    ORG = "org"
    PEACEBUILDER = "peacebuilder"
    SYSTEM = "system"


@dataclass(frozen=True)
class Tenancy:
    scope: Scope
    org_id: uuid.UUID | None = None
    peacebuilders: frozenset[uuid.UUID] = field(default_factory=frozenset)
    log_orgs: frozenset[uuid.UUID] = field(default_factory=frozenset)

    def settings(self) -> dict[str, str]:
        """The values of the `safety_net.*` settings (strings; '' means none)."""
        return {
            "scope": self.scope.value,
            "org": str(self.org_id) if self.org_id else "",
            "peacebuilders": ",".join(sorted(map(str, self.peacebuilders))),
            "log_orgs": ",".join(sorted(map(str, self.log_orgs))),
        }


NOBODY = Tenancy(Scope.NONE)
SYSTEM = Tenancy(Scope.SYSTEM)

# Unset means "not inside any declared unit of work": the database's fallback applies (NOBODY in
# the service; the test harness's own setup code runs as SYSTEM). Every HTTP request and
# WebSocket connection sets NOBODY first (schema/server.py), then what it was decided to reach.
current: ContextVar[Tenancy | None] = ContextVar("safety_net_tenancy", default=None)


@contextmanager
def using(tenancy: Tenancy) -> Iterator[Tenancy]:
    """Run the block's transactions under `tenancy` (they must begin inside the block)."""
    token = current.set(tenancy)
    try:
        yield tenancy
    finally:
        current.reset(token)


def effective(info: dict[str, object]) -> Tenancy:
    """The tenancy a transaction runs under: its session's own (set by `reach()`), else the
    task's, else the database's fallback kept in the session's info, else NOBODY."""
    for chosen in (info.get("tenancy"), current.get(), info.get("fallback")):
        if isinstance(chosen, Tenancy):
            return chosen
    return NOBODY


def declare(tenancy: Tenancy) -> None:
    """Set the tenancy for the rest of the current task (a request or a connection handler)."""
    current.set(tenancy)


def as_system(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """For background work that serves every organisation (chaining, escalation, delivery)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with using(SYSTEM):
            return await fn(*args, **kwargs)

    return wrapper
