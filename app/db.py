"""Engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction

from app import pgwire
from app.tenancy import NOBODY, Scope, Tenancy, effective
from app.wall import SET_TEXT, Wall, WallError

# Named constraints: Alembic's batch mode on SQLite needs names to alter or drop them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every engine (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """None (no Python call per value) where the driver already gives what
        `process_result_value` would return: asyncpg decodes a `timestamptz` column (type OID
        1184, what every UTCDateTime column is on PostgreSQL) to a datetime in UTC, so the
        admission's ~900 and a page's ~2,000 timestamps pass untouched. Any other column type
        the driver reports keeps the conversion."""
        if coltype == TIMESTAMPTZ_OID and dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        tz = value.tzinfo
        if tz is UTC:  # asyncpg's timestamptz: already UTC (a page reads ~2,000 of them)
            return value
        return value.replace(tzinfo=UTC) if tz is None else value.astimezone(UTC)


TIMESTAMPTZ_OID = 1184  # PostgreSQL's pg_type OID of `timestamp with time zone`


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def canonical_json(value: Any) -> str:
    """The one JSON serialisation of stored JSON columns: sorted keys, no spaces. The access
    log's hash chain is computed over this stored text."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


# Background workers run under task names with this prefix: their statements are theirs, not
# a request's, and the counter leaves them out (a request's count stays exact while they poll).
BACKGROUND_TASK = "safety-net-background:"


def background_task(coro: Any, name: str) -> asyncio.Task[Any]:
    return asyncio.create_task(coro, name=BACKGROUND_TASK + name)


class StatementCounter:
    """Counts SQL statements sent by an engine for requests (not background workers); tests use
    it to catch N+1 queries."""

    def __init__(self) -> None:
        self.count = 0
        self.measured = 0

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Also count in `measured` the statements sent from this context and the tasks it starts
        (a request served in-process), not those of other tasks running meanwhile (a server or
        worker another test left in the same event loop)."""
        token = _MEASURED.set(self)
        try:
            yield
        finally:
            _MEASURED.reset(token)

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        if task is not None and task.get_name().startswith(BACKGROUND_TASK):
            return
        # The tenancy statement opens every PostgreSQL transaction: constant per transaction,
        # so it would only hide an N+1 in the noise (bench/ reports its cost separately).
        if not statement.startswith(TENANCY_PREFIX):
            self.count += 1
            if _MEASURED.get() is self:
                self.measured += 1


_MEASURED: ContextVar[StatementCounter | None] = ContextVar("safety_net_measured", default=None)


TENANCY_PREFIX = "SELECT set_config('safety_net.scope'"


class TenantSession(Session):
    """A session whose every PostgreSQL transaction first declares its tenancy (see below)."""


@event.listens_for(TenantSession, "after_begin")
def _declare_tenancy(session: Session, _tx: SessionTransaction, connection: Connection) -> None:
    """Row-level security's settings, as the transaction's first statement: what the session was
    given, else what the task declared, else the database's fallback (NOBODY in the service),
    signed by this engine's Wall (a session without one sends no signature: it sees nothing)."""
    if connection.dialect.name != "postgresql":
        return
    wall = session.info.get("wall")
    chosen = effective(session.info)
    params = wall.signed(chosen) if isinstance(wall, Wall) else Wall(0).signed(NOBODY)
    connection.execute(text(SET_TEXT), params)


class Database:
    """One engine and session factory per process (and, on PostgreSQL, the background role's).

    Transactions that run in the system scope (`tenancy.SYSTEM`: the log chainer, the scheduler,
    e-mail delivery, sign-in and admission, console commands) go to `background`, a second
    engine connecting as the background role, the only role the database lets use that scope
    (docs/decisions/0015-signed-tenancy.md); every other transaction runs as the service role.
    Without a background URL (SQLite, or one role for everything) both are the same engine."""

    def __init__(self, url: str, *, echo: bool = False, fallback: Tenancy = NOBODY,
                 background_url: str | None = None, tenancy_ttl: int = 120,
                 background_tenancy_ttl: int = 3600, keys: Any = None) -> None:
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": canonical_json}
        ensure_sqlite_dir(url)
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # LIFO: a light load keeps reusing the connection it just used, which skips the
            # checkout ping (app/pgwire.py); connections left idle are pinged when next used.
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True, pool_use_lifo=True)
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            pgwire.install(self.engine)  # the checkout ping only when idle (app/pgwire.py)
        self.fallback = fallback
        separate = bool(background_url) and background_url != url
        self.wall = Wall(tenancy_ttl, may_sign_system=not separate)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False,
                                               sync_session_class=TenantSession,
                                               info={"fallback": fallback, "wall": self.wall})
        self.statements = StatementCounter()
        event.listen(self.engine.sync_engine, "before_cursor_execute", self.statements)
        self.background: Database | None = None
        if separate:
            assert background_url is not None
            self.background = Database(background_url, echo=echo, fallback=fallback,
                                       tenancy_ttl=background_tenancy_ttl)
            # One count per process: sign-in and admission run there, and tests count them.
            event.listen(self.background.engine.sync_engine, "before_cursor_execute",
                         self.statements)
        # Key-encryption keys for fields sealed per peacebuilder, and the service keys that sign
        # tenancies and consent rows (app/crypto.py); set by Runtime.
        self.keys = keys

    @property
    def keys(self) -> Any:
        return self.wall.keys

    @keys.setter
    def keys(self, value: Any) -> None:
        self.wall.keys = value
        self.wall._cache.clear()
        if self.background is not None:
            self.background.keys = value

    @property
    def system(self) -> Database:
        """The Database whose connections may use the system scope (Core connections that
        declare SYSTEM themselves, e.g. `audit verify`, must use this one's engine)."""
        return self.background or self

    def signed(self, tenancy: Tenancy) -> dict[str, str]:
        """SET_TEXT's parameters for a tenancy declared again inside a transaction (`reach()`)."""
        return self.wall.signed(tenancy)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any exception; on the
        background role's engine when the task's tenancy is the system scope."""
        chosen = effective({"fallback": self.fallback})
        target = self.system if chosen.scope is Scope.SYSTEM else self
        async with target.sessionmaker() as session, session.begin():
            yield session

    async def declare(self, conn: Any, tenancy: Tenancy | None = None) -> None:
        """For Core connections (no session): declare the tenancy inside their transaction.
        A connection of `self.engine` cannot declare SYSTEM when a background engine exists:
        open it on `self.system.engine`."""
        if self.dialect == "postgresql":
            chosen = tenancy or effective({"fallback": self.fallback})
            if chosen.scope is Scope.SYSTEM and self.background is not None:
                raise WallError("the system scope runs on the background role's connection only")
            await conn.execute(text(SET_TEXT), self.wall.signed(chosen))

    async def dispose(self) -> None:
        if self.background is not None:
            await self.background.dispose()
        await self.engine.dispose()


async def rows(session: AsyncSession, statement: Any,
               params: dict[str, Any] | None = None) -> Any:
    """Run a Core SELECT of columns in the session's transaction and return its buffered
    result: the same rows as `session.execute`, without the ORM's result machinery (a page's
    statements return ~500 rows; the ORM's per-row loading cost more than the rows). What the
    session holds unflushed is flushed first, as its autoflush would."""
    if session.new or session.deleted or session.sync_session.identity_map.check_modified():
        await session.flush()
    connection = await session.connection()
    return await connection.execute(statement, params)


def ensure_sqlite_dir(url: str) -> None:
    """Create the directory of an SQLite database file, so a fresh checkout just works."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
