"""Engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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

from app.access.tenancy import NOBODY, SET_TEXT, Tenancy, effective

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

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def canonical_json(value: Any) -> str:
    """The one JSON serialisation of stored JSON columns: sorted keys, no spaces. The access
    log's hash chain is computed over this stored text."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class StatementCounter:
    """Counts SQL statements sent by an engine; tests use it to catch N+1 queries."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The tenancy statement opens every PostgreSQL transaction: constant per transaction,
        # so it would only hide an N+1 in the noise (bench/ reports its cost separately).
        if not statement.startswith(TENANCY_PREFIX):
            self.count += 1


TENANCY_PREFIX = "SELECT set_config('safety_net.scope'"


class TenantSession(Session):
    """A session whose every PostgreSQL transaction first declares its tenancy (see below)."""


@event.listens_for(TenantSession, "after_begin")
def _declare_tenancy(session: Session, _tx: SessionTransaction, connection: Connection) -> None:
    """Row-level security's settings, as the transaction's first statement: what the session was
    given, else what the task declared, else the database's fallback (NOBODY in the service)."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(text(SET_TEXT), effective(session.info).settings())


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, *, echo: bool = False, fallback: Tenancy = NOBODY) -> None:
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": canonical_json}
        ensure_sqlite_dir(url)
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.fallback = fallback
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False,
                                               sync_session_class=TenantSession,
                                               info={"fallback": fallback})
        self.statements = StatementCounter()
        # Key-encryption keys for fields sealed per peacebuilder (app/crypto.py); set by Runtime.
        self.keys: Any = None
        event.listen(self.engine.sync_engine, "before_cursor_execute", self.statements)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any exception."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def declare(self, conn: Any, tenancy: Tenancy | None = None) -> None:
        """For Core connections (no session): declare the tenancy inside their transaction."""
        if self.dialect == "postgresql":
            chosen = tenancy or effective({"fallback": self.fallback})
            await conn.execute(text(SET_TEXT), chosen.settings())

    async def dispose(self) -> None:
        await self.engine.dispose()


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
