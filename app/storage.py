"""Alembic migrations: the only way the schema is made, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import resource_dir
from app.crypto import KeyEncryptionKeys
from app.db import Database, ensure_sqlite_dir


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("migrations")))
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
                # Her consent is an append-only record: nothing in the app edits or deletes it.
                f"REVOKE UPDATE, DELETE ON consent_events FROM {role}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            ):
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def install_wall(owner_url: str, keys: KeyEncryptionKeys, background_role: str = "") -> list[str]:
    """`safety-net migrate`, as the schema owner: install the database's copies of the service
    keys that sign tenancies and consent rows (app/wall.py, app/tables/integrity.py) and
    name the role allowed the system scope (docs/decisions/0015-signed-tenancy.md).

    The tenancy key is replaced outright (nothing stored depends on it; replicas still signing
    with an old key are refused until they restart with the new one). The consent key signs
    stored rows: the first installation stamps rows written before the wall existed (trusted as
    they are at that moment); a new key re-stamps only the rows whose MAC verifies under the
    old one, in the same transaction, and counts the others (they keep releasing nothing).
    SQLite has no database copy: rows without a MAC are stamped. Returns lines to print
    (counts, never keys or IDs)."""
    import re

    from app import wall
    from app.tables import integrity

    if make_url(owner_url).get_backend_name() != "postgresql":
        return await _stamp_sqlite(owner_url, keys)
    if background_role and not re.match(ROLE_NAME, background_role):
        raise ValueError("SAFETY_NET_DB_BACKGROUND_ROLE must be a plain lower-case role name")
    report: list[str] = []
    engine = create_async_engine(owner_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM sn_private.system_roles"))
            if background_role:
                if not await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                         {"r": background_role}):
                    raise ValueError(f"PostgreSQL role {background_role!r} does not exist: "
                                     "create it first (LOGIN NOSUPERUSER NOBYPASSRLS)")
                await conn.execute(text("INSERT INTO sn_private.system_roles (role) VALUES (:r)"),
                                   {"r": background_role})
            installed: dict[str, str] = {name: fp for name, fp in (await conn.execute(text(
                "SELECT name, fingerprint FROM sn_private.keys"))).all()}
            tenancy_key = keys.service_key(wall.KEY_NAME)
            if installed.get(wall.KEY_NAME) != wall.fingerprint(tenancy_key):
                await _put_key(conn, wall.KEY_NAME, tenancy_key)
                report.append("tenancy signing key installed")
            # The owner is subject to row-level security too (FORCE): a signed system scope.
            await conn.execute(text("SELECT sn_private.declare_system()"))
            consent_key = keys.service_key(wall.CONSENT_KEY_NAME)
            old = installed.get(wall.CONSENT_KEY_NAME)
            if old == wall.fingerprint(consent_key):
                return report
            previous = f"{wall.CONSENT_KEY_NAME}.previous"
            if old is not None:
                await conn.execute(text("UPDATE sn_private.keys SET name = :p WHERE name = :n"),
                                   {"p": previous, "n": wall.CONSENT_KEY_NAME})
            await _put_key(conn, wall.CONSENT_KEY_NAME, consent_key)
            for table in integrity.COVERED:
                canonical = f"sn_private.canonical_{table}(r)"
                where = ("r.mac IS NULL" if old is None else
                         f"r.mac = sn_private.hmac('{previous}', {canonical})")
                stamped = (await conn.execute(text(integrity.restamp_sql(table, where=where))))
                if stamped.rowcount:
                    report.append(f"{table}: {stamped.rowcount} rows stamped with the consent key")
                if old is not None:
                    left = await conn.scalar(text(  # table names from COVERED, not input
                        f"SELECT count(*) FROM public.{table} r WHERE r.mac IS DISTINCT FROM "  # noqa: S608
                        f"sn_private.hmac('{wall.CONSENT_KEY_NAME}', {canonical})"))
                    if left:
                        report.append(f"{table}: {left} rows did not verify under the previous "
                                      "key and were left as they were (they release nothing)")
            await conn.execute(text("DELETE FROM sn_private.keys WHERE name = :p"), {"p": previous})
    finally:
        await engine.dispose()
    return report


async def _put_key(conn: Any, name: str, key: bytes) -> None:
    from app import wall

    inner, outer = wall.pads(key)
    await conn.execute(text(
        "INSERT INTO sn_private.keys (name, inner_key, outer_key, fingerprint) "
        "VALUES (:n, :i, :o, :f) ON CONFLICT (name) DO UPDATE SET inner_key = excluded.inner_key, "
        "outer_key = excluded.outer_key, fingerprint = excluded.fingerprint, installed_at = now()"),
        {"n": name, "i": inner, "o": outer, "f": wall.fingerprint(key)})


async def _stamp_sqlite(url: str, keys: KeyEncryptionKeys) -> list[str]:
    from sqlalchemy import select, update

    from app import wall
    from app.db import canonical_json
    from app.tables import integrity

    key = keys.service_key(wall.CONSENT_KEY_NAME)
    report: list[str] = []
    engine = create_async_engine(url, json_serializer=canonical_json)
    try:
        async with engine.begin() as conn:
            for table in integrity.MODELS:
                t = integrity.table_of(table)
                rows = (await conn.execute(select(*integrity.columns(table))
                                           .where(t.c.mac.is_(None)))).all()
                for row in rows:
                    await conn.execute(update(t).where(t.c.id == row.id).values(
                        mac=integrity.compute(key, table, row._mapping)))
                if rows:
                    report.append(f"{table}: {len(rows)} rows stamped with the consent key")
    finally:
        await engine.dispose()
    return report


def url_as(url: str, role: str) -> str:
    """The same database, connecting as `role` (password from the environment, e.g. PGPASSWORD,
    or trust authentication)."""
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


async def service_role_problems(db: Database) -> list[str]:
    """Why the service's own connections could bypass row-level security (empty = they cannot):
    the service role's, and the background role's when it has its own."""
    if db.dialect != "postgresql":
        return []
    problems = await _role_problems(db, "connects")
    if db.background is not None:
        problems += await _role_problems(db.background, "background connection connects")
    return problems


async def _role_problems(db: Database, who: str) -> list[str]:
    async with db.engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT rolsuper, rolbypassrls, current_user FROM pg_roles WHERE rolname = current_user"
        ))).one()
        owned = await conn.scalar(text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"))
    problems = []
    if row[0]:
        problems.append(f"{who} as a superuser (row-level security is bypassed)")
    if row[1]:
        problems.append(f"{who} as a role with BYPASSRLS")
    if owned:
        problems.append(f"{who} as the owner of {owned} tables (use a separate service role)")
    return problems


async def wall_problems(db: Database) -> list[str]:
    """Why the signed tenancy would not let this process work (empty = it does): the database
    holds another tenancy key than this process (or none), or the background connection may not
    use the system scope. Probed with a signed tenancy for a random organisation (reads nothing)."""
    import uuid

    from sqlalchemy.exc import DBAPIError

    from app.tenancy import SYSTEM, Scope, Tenancy
    from app.wall import SET_TEXT

    if db.dialect != "postgresql":
        return []

    async def scope_seen(target: Database, tenancy: Tenancy) -> str | None:
        try:
            async with target.engine.connect() as conn, conn.begin():
                await conn.execute(text(SET_TEXT), target.signed(tenancy))
                return str(await conn.scalar(text("SELECT sn_scope()")))
        except DBAPIError:
            return None

    problems = []
    if await scope_seen(db, Tenancy(Scope.ORG, org_id=uuid.uuid4())) != "org":
        problems.append("has a tenancy key the database does not hold (or the database has none): "
                        "run `safety-net migrate` with this service's key directory")
    if db.background is None:
        problems.append("has no background connection (SAFETY_NET_BACKGROUND_DATABASE_URL): the "
                        "log chainer, the scheduler, e-mail and sign-in need the system scope")
    elif await scope_seen(db.background, SYSTEM) != "system":
        problems.append("background connection may not use the system scope: name its role in "
                        "SAFETY_NET_DB_BACKGROUND_ROLE when running `safety-net migrate`")
    return problems
