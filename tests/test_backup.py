"""Backup and restore on PostgreSQL, as docs/operations/backup-restore.md says, with the real
tools: `safety-net demo`, `pg_dump -Fc`, `createdb`, `pg_restore`, `safety-net migrate` and
`safety-net audit verify` on the restored copy.

Also what the document promises around it: her sealed profile reads again only with the KEK
versions the dump was wrapped with; an auditor who accepted a later checkpoint sees the restore
of an older backup as a rollback; and one edited row in the restored copy fails verification.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.config import REPO_ROOT, Settings
from app.runtime import Runtime
from app.storage import head_revision
from schema.server import create_app
from tests.conftest import PG_ADMIN_URL, REQUIRE_SERVICES, Env, require_pg
from tests.test_cli import Site, site_env

pytestmark = pytest.mark.anyio

PG_TOOLS = ("pg_dump", "pg_restore", "createdb")
PROFILES = """{ cases(first: 10) { edges { node {
  peacebuilder { pseudonym profile { legalName } } } } } }"""


def require_pg_tools() -> None:
    missing = [tool for tool in PG_TOOLS if shutil.which(tool) is None]
    if missing:
        if REQUIRE_SERVICES:
            pytest.fail(f"PostgreSQL client tools missing: {', '.join(missing)}")
        pytest.skip(f"PostgreSQL client tools missing: {', '.join(missing)}")


def libpq_url(database: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{database}"


async def tool(*args: str) -> None:
    """A PostgreSQL client tool; fails the test with its stderr."""
    result = await asyncio.to_thread(subprocess.run, list(args), capture_output=True, text=True,
                                     timeout=60, check=False)
    assert result.returncode == 0, f"{' '.join(args[:2])}: {result.stderr}"


async def cli(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(site.run, *args)


def show(step: str, result: subprocess.CompletedProcess[str], lines: int = 4) -> None:
    """What the operator sees (`pytest -s`)."""
    print(f"$ {step}  -> exit {result.returncode}")
    for line in result.stdout.splitlines()[:lines]:
        print(f"    {line}")


def entries_of(verify_output: str) -> int:
    found = re.search(r"entries: (\d+) chained", verify_output)
    assert found, verify_output
    return int(found.group(1))


async def sql(database: str | None, statement: str) -> object:
    """One statement on a database, or on the admin database with None."""
    conn = await asyncpg.connect(libpq_url(database) if database else PG_ADMIN_URL)
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


@asynccontextmanager
async def serving(database: str, data_dir: Path) -> AsyncIterator[Env]:
    """The app in this process on one database and data directory (no background workers)."""
    settings = replace(Settings(), database_url=libpq_url(database).replace(
        "postgresql://", "postgresql+asyncpg://"), data_dir=data_dir, log_worker=False,
        scheduler=False, policy_dir=REPO_ROOT / "policies", tenants_dir=REPO_ROOT / "tenants")
    runtime = Runtime.create(settings)
    app = create_app(runtime)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://restore")
    try:
        yield Env(backend="postgresql", runtime=runtime, client=client, settings=settings)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await runtime.close()


async def legal_names(env: Env) -> dict[str, str | None]:
    """Her sealed legal name as mofa's focal point reads it, per pseudonym."""
    body = await env.gql(PROFILES, as_=("mofa", "focal"))
    assert "errors" not in body, body
    return {e["node"]["peacebuilder"]["pseudonym"]: e["node"]["peacebuilder"]["profile"]["legalName"]
            for e in body["data"]["cases"]["edges"]}


async def test_pg_dump_restore_migrate_and_verify(tmp_path: Path) -> None:
    require_pg()
    require_pg_tools()
    suffix = uuid.uuid4().hex[:10]
    live_db, restored_db = f"sn_backup_live_{suffix}", f"sn_backup_restored_{suffix}"
    live_dir, restored_dir = tmp_path / "live", tmp_path / "restored"
    backup, secrets = tmp_path / "backup", tmp_path / "kek-backup"
    auditor = tmp_path / "auditor-state.json"  # the auditor's own, never part of a backup
    live = Site(live_dir, site_env(live_dir, libpq_url(live_db).replace(
        "postgresql://", "postgresql+asyncpg://")))
    restored = Site(restored_dir, site_env(restored_dir, libpq_url(restored_db).replace(
        "postgresql://", "postgresql+asyncpg://")))
    live_dir.mkdir()
    await sql(None, f'CREATE DATABASE "{live_db}"')
    try:
        # --- a deployment with some history -------------------------------------------------
        result = await cli(live, "demo")
        assert result.returncode == 0, result.stderr
        async with serving(live_db, live_dir) as env:
            names = await legal_names(env)  # reads: entries in the log
            assert names["mariam"] == "Demo Person D"
        result = await cli(live, "audit", "chain")
        assert result.returncode == 0 and "checkpoint at size" in result.stdout, result
        result = await cli(live, "audit", "verify", "--state", str(auditor))
        show("live: safety-net audit verify", result)
        assert result.returncode == 0, result.stdout
        size = entries_of(result.stdout)
        assert f"accepted checkpoint at size {size}" in result.stdout

        # --- the backup, in the documented order --------------------------------------------
        # 1. checkpoints, then the checkpoint public keys (files outside the database)
        shutil.copytree(live_dir / "checkpoints", backup / "checkpoints")
        shutil.copytree(live_dir / "checkpoint-keys", backup / "checkpoint-keys",
                        ignore=shutil.ignore_patterns("signing.pem"))
        # 2. the database: one consistent snapshot, taken while the service keeps running
        # (without the database's copies of the tenancy and consent keys: they stay with the
        # secrets, and `migrate` installs them again)
        await tool("pg_dump", "--format=custom", "--exclude-table-data=sn_private.keys",
                   f"--file={backup / 'db.dump'}", libpq_url(live_db))
        # 3. key material, kept apart from the dump, with its own retention (the erasure window)
        shutil.copytree(live_dir / "kek", secrets / "kek")
        shutil.copy2(live_dir / "signing-keys.json", secrets / "signing-keys.json")
        shutil.copytree(live_dir / "checkpoint-keys", secrets / "checkpoint-keys")

        # --- life goes on after the backup: more entries, a KEK rotation --------------------
        async with serving(live_db, live_dir) as env:
            await legal_names(env)
        result = await cli(live, "keys", "rotate")
        assert result.returncode == 0 and "KEK version 2 is current" in result.stdout, result
        result = await cli(live, "audit", "chain")
        assert result.returncode == 0, result.stderr
        result = await cli(live, "audit", "verify", "--state", str(auditor))
        show("live, after the backup: safety-net audit verify", result)
        assert result.returncode == 0, result.stdout
        later = entries_of(result.stdout)
        assert later > size

        # --- restore into a new database ----------------------------------------------------
        await tool("createdb", f"--maintenance-db={PG_ADMIN_URL}", restored_db)
        await tool("pg_restore", "--exit-on-error", f"--dbname={libpq_url(restored_db)}",
                   str(backup / "db.dump"))
        restored_dir.mkdir()
        shutil.copytree(backup / "checkpoints", restored_dir / "checkpoints")
        shutil.copytree(secrets / "kek", restored_dir / "kek")
        shutil.copytree(secrets / "checkpoint-keys", restored_dir / "checkpoint-keys")
        shutil.copy2(secrets / "signing-keys.json", restored_dir / "signing-keys.json")

        version = "SELECT version_num FROM alembic_version"
        before = await sql(restored_db, version)
        assert before == await sql(live_db, version) == head_revision()
        keys = "SELECT count(*) FROM sn_private.keys"
        assert await sql(restored_db, keys) == 0 and await sql(live_db, keys) == 2
        result = await cli(restored, "migrate")  # no schema change: the dump carries its revision
        show("restored: safety-net migrate", result)
        assert result.returncode == 0, result.stderr
        assert await sql(restored_db, version) == before
        assert await sql(restored_db, keys) == 2  # installed again from the key directory

        result = await cli(restored, "audit", "verify")
        show("restored: safety-net audit verify", result)
        assert result.returncode == 0, result.stdout
        assert entries_of(result.stdout) == size  # every entry of the dump, none lost or added
        assert f"accepted checkpoint at size {size}" in result.stdout

        async with serving(restored_db, restored_dir) as env:
            ready = await env.client.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"status": "ok", "reason": "ok"}
            names = await legal_names(env)
            print(f"restored: /readyz {ready.json()}; mariam's legal name with the backed-up KEK "
                  f"v1: {names['mariam']!r}")
            assert names["mariam"] == "Demo Person D"

        # --- the erasure window: once v1 is destroyed everywhere, this backup stays sealed ---
        result = await cli(live, "keys", "destroy", "--version", "1")
        assert result.returncode == 0, result.stderr
        shutil.rmtree(restored_dir / "kek")
        shutil.copytree(live_dir / "kek", restored_dir / "kek")  # v2 only
        async with serving(restored_db, restored_dir) as env:
            unreadable = await legal_names(env)
            print(f"restored, KEK v1 destroyed everywhere: mariam's legal name {unreadable['mariam']!r}")
            assert unreadable["mariam"] is None and set(unreadable.values()) == {None}

        # --- an auditor who accepted the later checkpoint sees the older backup honestly -----
        result = await cli(restored, "audit", "verify", "--state", str(auditor))
        show("restored, auditor's state from after the backup: safety-net audit verify", result)
        assert result.returncode == 1, result.stdout
        assert (f"checkpoints go back to size {size}, but size {later} was accepted before"
                in result.stdout)
        # against the live checkpoints: the restored log is an intact prefix, its tail is gone
        result = await cli(restored, "audit", "verify", "--state", str(tmp_path / "fresh.json"),
                           "--checkpoints", str(live_dir / "checkpoints"))
        show("restored, live checkpoints: safety-net audit verify --checkpoints LIVE", result)
        assert result.returncode == 1, result.stdout
        problems = [line for line in result.stdout.splitlines() if line.startswith("  - ")]
        assert problems == [f"  - the log has {size} entries but checkpoint size {later} was "
                            "signed: its tail was truncated"], result.stdout

        # --- one edited row in the restored copy is found ----------------------------------
        conn = await asyncpg.connect(libpq_url(restored_db))
        try:
            async with conn.transaction():  # as superuser, past the append-only triggers
                await conn.execute("ALTER TABLE access_log DISABLE TRIGGER ALL")
                edited = await conn.execute(
                    "UPDATE access_log SET purpose = 'media' WHERE seq = 2")
                await conn.execute("ALTER TABLE access_log ENABLE TRIGGER ALL")
            assert edited == "UPDATE 1"
        finally:
            await conn.close()
        result = await cli(restored, "audit", "verify", "--state", str(tmp_path / "other.json"))
        show("restored, entry 2 edited: safety-net audit verify", result)
        assert result.returncode == 1, result.stdout
        assert "FAILED: first bad entry 2" in result.stdout
        assert "entry 2 does not match its hash (edited)" in result.stdout
    finally:
        for name in (live_db, restored_db):
            await sql(None, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
