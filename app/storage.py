"""Alembic migrations: the only way the schema is made, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

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


ROLE_NAME = r"^[a-z_][a-z0-9_]{0,62}$"


async def grant_service_role(owner_url: str, role: str) -> None:
    """Give the service role what it needs on the owner's tables, and nothing more: data rights
    (row-level security then filters every row), read-only migrations table, no TRUNCATE, no DDL.
    Idempotent; `safety-net migrate` runs it after every upgrade so new tables are covered."""
    import re

    if make_url(owner_url).get_backend_name() != "postgresql":
        return
    if not re.match(ROLE_NAME, role):
        raise ValueError("SAFETY_NET_DB_SERVICE_ROLE must be a plain lower-case role name")
    engine = create_async_engine(owner_url)
    try:
        async with engine.begin() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
            if not exists:
                raise ValueError(f"PostgreSQL role {role!r} does not exist: create it first "
                                 "(LOGIN NOSUPERUSER NOBYPASSRLS, not the schema owner)")
            for statement in (
                f"GRANT USAGE ON SCHEMA public TO {role}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {role}",
                f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {role}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            ):
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def url_as(url: str, role: str) -> str:
    """The same database, connecting as `role` (password from the environment, e.g. PGPASSWORD,
    or trust authentication)."""
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


async def service_role_problems(db: Database) -> list[str]:
    """Why the service's own connection could bypass row-level security (empty = it cannot)."""
    if db.dialect != "postgresql":
        return []
    async with db.engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT rolsuper, rolbypassrls, current_user FROM pg_roles WHERE rolname = current_user"
        ))).one()
        owned = await conn.scalar(text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"))
    problems = []
    if row[0]:
        problems.append("connects as a superuser (row-level security is bypassed)")
    if row[1]:
        problems.append("connects as a role with BYPASSRLS")
    if owned:
        problems.append(f"connects as the owner of {owned} tables (use a separate service role)")
    return problems
