"""Alembic migrations: the only way the schema is made, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from app.config import REPO_ROOT
from app.db import Database, ensure_sqlite_dir


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def migration_status(db: Database) -> tuple[str | None, str | None]:
    """(current revision of the database, head revision of the code)."""

    def current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        rev = await conn.run_sync(current)
    return rev, head_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Run migrations (synchronously; env.py drives the async engine itself)."""
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)


def schema_is_usable(current: str | None, head: str | None) -> bool:
    """At the code's head, or at a newer revision this code does not know (a rolling upgrade or
    a rollback: migrations stay compatible with the previous release's code)."""
    if current is None:
        return False
    if current == head:
        return True
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config("sqlite://"))
             .walk_revisions()}
    return current not in known
