"""The `safety-net` command, run as a real subprocess (and one real uvicorn server)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from app.auth.tokens import Issuer
from app.config import REPO_ROOT, Settings
from app.storage import head_revision
from tests.conftest import prepare_database

CLI = str(Path(sys.executable).with_name("safety-net"))
TIMEOUT = 60  # seconds, for any one command


@dataclass
class Site:
    """One deployment's environment: a SQLite file and a data directory under tmp."""

    root: Path
    env: dict[str, str]

    @property
    def db_file(self) -> Path:
        return self.root / "safety-net.db"

    def run(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, *args], env=self.env, cwd=self.root, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with closing(sqlite3.connect(self.db_file)) as conn:
            return conn.execute(sql, params).fetchall()


def site_env(root: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SAFETY_NET_") and k != "DATABASE_URL"}
    env.update({
        "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{root / 'safety-net.db'}",
        "SAFETY_NET_DATA_DIR": str(root),
        "SAFETY_NET_TENANTS_DIR": str(REPO_ROOT / "tenants"),
        "SAFETY_NET_LOG_LEVEL": "WARNING",
    })
    return env


def new_site(root: Path) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    return Site(root, site_env(root))


DOMAIN_TABLES = ["organisations", "users", "clients", "role_assignments", "working_groups",
                 "working_group_members", "peacebuilders", "cases"]


def domain_counts(site: Site) -> dict[str, int]:
    return {t: int(site.query(f"SELECT count(*) FROM {t}")[0][0]) for t in DOMAIN_TABLES}


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, str]]:
    """`safety-net demo` run once on a fresh SQLite file; yields the site and its first output."""
    site = new_site(tmp_path_factory.mktemp("cli-demo"))
    result = site.run("demo")
    assert result.returncode == 0, result.stderr
    yield site, result.stdout


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def id_of(site: Site, sql: str, *params: object) -> uuid.UUID:
    rows = site.query(sql, *params)
    assert len(rows) == 1, rows
    return uuid.UUID(str(rows[0][0]))


# --- demo --------------------------------------------------------------------------------------


def test_demo_twice_is_idempotent(demo_site: tuple[Site, str]) -> None:
    site, first = demo_site
    assert "database migrated" in first
    assert "organisation mofa: created" in first
    assert "peacebuilder mariam: registered" in first
    assert "client secret for mofa-system (shown once)" in first
    creds_path = site.root / "demo-credentials.json"
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    creds = json.loads(creds_path.read_text())
    assert "mofa/caseworker" in creds["users"] and len(creds["users"]) == 31
    assert sorted(creds["clients"]) == ["embassy-system", "fund-system", "mofa-system",
                                        "nhri-system", "unpc-system", "wpn-system"]
    before = domain_counts(site)
    assert {"organisations": 6, "users": 31, "clients": 6, "working_groups": 1,
            "working_group_members": 3, "peacebuilders": 4, "cases": 4}.items() <= before.items()

    second = site.run("demo")
    assert second.returncode == 0, second.stderr
    assert "tenants applied: nothing to change" in second.stdout
    for word in ("created", "registered", "joined", "roles added", "(shown once)", "kept:"):
        assert word not in second.stdout, second.stdout
    assert domain_counts(site) == before
    # nobody got a new password and the client secrets are still the first ones
    assert json.loads(creds_path.read_text()) == creds


def test_tenants_apply_on_demo_site_changes_nothing(demo_site: tuple[Site, str]) -> None:
    site, _ = demo_site
    result = site.run("tenants", "apply", str(REPO_ROOT / "tenants"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tenants applied: nothing to change"


# --- token -------------------------------------------------------------------------------------


def test_token_for_user_is_a_jwt_the_issuer_verifies(demo_site: tuple[Site, str]) -> None:
    site, _ = demo_site
    issued_before = site.query("SELECT count(*) FROM access_log WHERE action = 'token.issue'")[0][0]
    result = site.run("token", "--org", "mofa", "--user", "caseworker")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert "\n" not in token
    parts = token.split(".")
    assert len(parts) == 3 and all(parts)

    settings = replace(Settings(), data_dir=site.root)
    claims = Issuer(settings).verify(token)
    mofa = id_of(site, "SELECT id FROM organisations WHERE slug = 'mofa'")
    user = id_of(site, "SELECT id FROM users WHERE username = 'caseworker' AND org_id = ?",
                 site.query("SELECT id FROM organisations WHERE slug = 'mofa'")[0][0])
    assert claims.subject == f"user:{user}"
    assert uuid.UUID(claims.org or "") == mofa
    assert claims.raw["aud"] == "safety-net"
    assert claims.raw["exp"] - claims.raw["iat"] == 900
    issued = site.query("SELECT count(*) FROM access_log WHERE action = 'token.issue'")[0][0]
    assert issued == issued_before + 1


def test_token_for_client(demo_site: tuple[Site, str]) -> None:
    site, _ = demo_site
    result = site.run("token", "--org", "mofa", "--client", "mofa-system")
    assert result.returncode == 0, result.stderr
    claims = Issuer(replace(Settings(), data_dir=site.root)).verify(result.stdout.strip())
    client = id_of(site, "SELECT id FROM clients WHERE client_id = 'mofa-system'")
    assert claims.subject == f"client:{client}"
    # a client named with another organisation is refused
    wrong = site.run("token", "--org", "fund", "--client", "mofa-system")
    assert wrong.returncode != 0
    assert wrong.stdout == ""


@pytest.mark.parametrize("args", [
    ["--org", "mofa", "--user", "nobody"],
    ["--org", "nowhere", "--user", "caseworker"],
    ["--org", "mofa", "--client", "no-such-client"],
])
def test_token_for_unknown_principal_fails_clearly(demo_site: tuple[Site, str], args: list[str]) -> None:
    site, _ = demo_site
    result = site.run("token", *args)
    assert result.returncode != 0
    assert result.stdout == ""  # no token
    assert "error: no such active user or client in that organisation" in result.stderr
    assert "Traceback" not in result.stderr


def test_enrolment_code_for_the_first_people(demo_site: tuple[Site, str]) -> None:
    """The operator's bootstrap: a code printed once, stored as an HMAC, logged by ID only.
    (tests/test_enrolment.py enrols with one, on both databases.)"""
    site, _ = demo_site
    result = site.run("users", "enrolment-code", "--org", "wpn", "--user", "focal2")
    assert result.returncode == 0, result.stderr
    code = result.stdout.split("by email): ", 1)[1].split()[0]
    assert len(code.replace("-", "")) == 20 and "valid until" in result.stdout
    user = site.query("SELECT u.id FROM users u JOIN organisations o ON o.id = u.org_id "
                      "WHERE o.slug = 'wpn' AND u.username = 'focal2'")[0][0]
    rows = site.query("SELECT status, code_hash, issued_by FROM enrolment_codes WHERE user_id = ?",
                      user)
    assert [(r[0], r[2]) for r in rows] == [("claimed", "system")]
    assert str(rows[0][1]).startswith("h1:") and code.replace("-", "") not in str(rows[0][1])
    logged = site.query("SELECT action, details FROM access_log WHERE target_id = ? "
                        "AND action LIKE 'mfa.enrolment_code%'", str(uuid.UUID(str(user))))
    assert [a for a, _ in logged] == ["mfa.enrolment_code.issue"]
    assert code not in json.dumps(logged) and code.replace("-", "") not in json.dumps(logged)
    # Issued again: the earlier one is void (one live code per person).
    again = site.run("users", "enrolment-code", "--org", "wpn", "--user", "focal2")
    assert again.returncode == 0, again.stderr
    statuses = sorted(r[0] for r in site.query(
        "SELECT status FROM enrolment_codes WHERE user_id = ?", user))
    assert statuses == ["claimed", "void"]
    unknown = site.run("users", "enrolment-code", "--org", "wpn", "--user", "nobody")
    assert unknown.returncode == 1 and unknown.stdout == "" and "Traceback" not in unknown.stderr


# --- tenants apply -----------------------------------------------------------------------------


def test_tenants_apply_bad_file_exits_2_naming_file_line_field(tmp_path: Path) -> None:
    site = new_site(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text('# bad\nslug: bad-org\nname: Bad\nkind: ministry\ncountry: NO\n')
    result = site.run("tenants", "apply", str(bad))
    assert result.returncode == 2
    assert f"{bad}:5: country: expected a string" in result.stderr
    assert 'quotes: "NO"' in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_tenants_apply_unknown_working_group_member_exits_2(demo_site: tuple[Site, str],
                                                            tmp_path: Path) -> None:
    site, _ = demo_site
    before = domain_counts(site)
    bad = tmp_path / "wg.yaml"
    bad.write_text('slug: wg-org\nname: WG org\nkind: fund\ncountry: "KE"\n'
                   'working_groups:\n  - slug: wg-new\n    name: New group\n'
                   '    members:\n      - mofa\n      - atlantis\n')
    result = site.run("tenants", "apply", str(bad))
    assert result.returncode == 2
    assert f"{bad}:10: working_groups[0].members[1]: unknown organisation 'atlantis'" in result.stderr
    assert domain_counts(site) == before  # rolled back: the organisation was not created


# --- serve and migrate -------------------------------------------------------------------------


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    site = new_site(tmp_path)
    started = time.monotonic()
    # must exit on its own; a server that started would run into the timeout
    result = site.run("serve", "--port", str(free_port()), timeout=30)
    assert result.returncode != 0
    assert "not migrated" in result.stderr
    assert "safety-net migrate" in result.stderr
    assert time.monotonic() - started < 30

    # after `migrate` the same database is accepted by the readiness check
    migrated = site.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "database migrated to the latest revision" in migrated.stdout
    assert site.query("SELECT version_num FROM alembic_version") == [(head_revision(),)]


CASES = "{ cases(first: 5) { edges { node { id status riskLevel leadOrganisation { slug } } } } }"


def test_real_server_smoke(demo_site: tuple[Site, str], tmp_path: Path) -> None:
    site, _ = demo_site
    token = site.run("token", "--org", "mofa", "--user", "caseworker")
    assert token.returncode == 0, token.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        # At INFO, so uvicorn's own lines are there to check: JSON, no ANSI colour codes.
        proc = subprocess.Popen([CLI, "serve", "--port", str(port)],
                                env={**site.env, "SAFETY_NET_LOG_LEVEL": "INFO"}, cwd=site.root,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, f"server exited: {log_path.read_text()}"
                assert time.monotonic() < deadline, f"server not healthy: {log_path.read_text()}"
                try:
                    health = http.get("/healthz")
                    if health.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            assert health.text == "ok"
            assert health.headers["x-content-type-options"] == "nosniff"

            ready = http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ok", "reason": "ok"}

            anonymous = http.post("/graphql", json={"query": CASES})
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

            response = http.post("/graphql", json={"query": CASES}, headers={
                "authorization": f"Bearer {token.stdout.strip()}",
                "safety-net-purpose": "protection"})
            assert response.status_code == 200, response.text
            body = response.json()
            assert "errors" not in body, body
            nodes = [e["node"] for e in body["data"]["cases"]["edges"]]
            own = [n for n in nodes if n["leadOrganisation"]["slug"] == "mofa"]
            assert len(own) == 1, nodes
            assert own[0]["id"] and (own[0]["status"], own[0]["riskLevel"]) == ("OPEN", "HIGH")
            # ... and it is the demo case the fixture opened for mariam, the only one mofa leads
            assert site.query(
                "SELECT p.pseudonym, c.status, c.risk_level FROM cases c "
                "JOIN peacebuilders p ON p.id = c.peacebuilder_id "
                "JOIN organisations o ON o.id = c.lead_org_id WHERE o.slug = 'mofa'"
            ) == [("mariam", "open", "high")]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    logged = log_path.read_text()
    assert "Uvicorn running on" in logged and "Application startup complete" in logged
    assert "\x1b[" not in logged and "color_message" not in logged
    for line in logged.splitlines():
        json.loads(line)  # every line is one JSON object


# --- clear failures: one line, non-zero, no traceback --------------------------------------------


def test_version() -> None:
    result = subprocess.run([CLI, "--version"], capture_output=True, text=True, timeout=TIMEOUT,
                            check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == "safety-net 0.1.0"


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


UNREACHABLE = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:{port}/x"
MIGRATE, TOKEN, SERVE = ["migrate"], ["token", "--org", "mofa", "--user", "focal"], \
    ["serve", "--port", "{port}"]


@pytest.mark.parametrize(("command", "setting", "value", "says", "code"), [
    (MIGRATE, "DATABASE_URL", UNREACHABLE, "cannot reach the database", 1),
    (TOKEN, "DATABASE_URL", UNREACHABLE, "cannot reach the database", 1),
    (SERVE, "DATABASE_URL", UNREACHABLE, "cannot reach the database", 1),
    (MIGRATE, "DATABASE_URL", "postgresql+asyncpg://postgres:s3cret@no-such-host.invalid/x",
     "cannot reach the database", 1),
    (MIGRATE, "DATABASE_URL", "not a url", "bad configuration: DATABASE_URL", 2),
    (SERVE, "DATABASE_URL", "nosuchdb+driver://x/y", "bad configuration: DATABASE_URL", 2),
    (TOKEN, "SAFETY_NET_TOKEN_TTL", "fifteen", "bad configuration: SAFETY_NET_TOKEN_TTL must be",
     2),
    (SERVE, "SAFETY_NET_ENV", "staging", "bad configuration: SAFETY_NET_ENV", 2),
])
def test_bad_configuration_and_unreachable_database_are_one_line(
        tmp_path: Path, command: list[str], setting: str, value: str, says: str,
        code: int) -> None:
    site = new_site(tmp_path)
    port = str(free_port())  # nothing listens there
    env = {**site.env, setting: value.format(port=port)}
    result = subprocess.run([CLI, *(c.format(port=port) for c in command)], env=env,
                            cwd=site.root, capture_output=True, text=True, timeout=TIMEOUT,
                            check=False)
    line = _one_clear_line(result)
    assert says in line and result.returncode == code, line
    assert "s3cret" not in result.stderr


def test_missing_files_are_one_line(tmp_path: Path) -> None:
    site = new_site(tmp_path)
    for args in (["tenants", "apply", str(tmp_path / "missing.yaml")],
                 ["audit", "verify-export", str(tmp_path / "missing.jsonl")]):
        line = _one_clear_line(site.run(*args))
        assert line == f"error: no such file or directory: {tmp_path / args[-1].rsplit('/', 1)[-1]}"
    policies = {**site.env, "SAFETY_NET_POLICY_DIR": str(tmp_path / "nowhere")}
    migrated = site.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    result = subprocess.run([CLI, "token", "--org", "mofa", "--user", "focal"], env=policies,
                            cwd=site.root, capture_output=True, text=True, timeout=TIMEOUT,
                            check=False)
    assert "no such file or directory: " + str(tmp_path / "nowhere") in _one_clear_line(result)


def test_an_unmigrated_database_says_so(tmp_path: Path) -> None:
    site = new_site(tmp_path)
    line = _one_clear_line(site.run("token", "--org", "mofa", "--user", "focal"))
    assert "not migrated" in line and "safety-net migrate" in line


# --- PostgreSQL --------------------------------------------------------------------------------


def test_migrate_on_postgresql(tmp_path: Path) -> None:
    url, drop = asyncio.run(prepare_database("postgresql", tmp_path))
    try:
        site = Site(tmp_path, site_env(tmp_path, url))
        for _ in range(2):  # the second run is a no-op
            result = site.run("migrate")
            assert result.returncode == 0, result.stderr
            assert "database migrated to the latest revision" in result.stdout
        applied = site.run("tenants", "apply", str(REPO_ROOT / "tenants"))
        assert applied.returncode == 0, applied.stderr
        assert "organisation mofa: created" in applied.stdout

        async def version() -> list[str]:
            import asyncpg

            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                rows = await conn.fetch("SELECT version_num FROM alembic_version")
                orgs = await conn.fetchval("SELECT count(*) FROM organisations")
            finally:
                await conn.close()
            return [*(r["version_num"] for r in rows), str(orgs)]

        assert asyncio.run(version()) == [head_revision(), "6"]
    finally:
        asyncio.run(drop())


def test_kek_rotation_in_two_steps_then_the_old_version_goes(tmp_path: Path) -> None:
    """Stage a new KEK (every replica gets the file first), re-wrap, destroy the old one."""
    site = new_site(tmp_path)
    assert site.run("demo").returncode == 0
    versions = lambda: sorted(site.query("SELECT DISTINCT kek_version FROM data_keys "  # noqa: E731
                                         "WHERE wrapped IS NOT NULL"))
    assert versions() == [(1,)]
    refused = site.run("keys", "destroy", "--version", "1")
    assert refused.returncode == 1 and "still wrapped" in refused.stderr
    staged = site.run("keys", "rotate", "--stage")
    assert staged.returncode == 0 and "KEK version 2 created" in staged.stdout, staged.stderr
    assert versions() == [(1,)]  # nothing re-wrapped yet: replicas without v2 keep reading
    rewrapped = site.run("keys", "rewrap")
    assert rewrapped.returncode == 0 and "KEK version 2 is current" in rewrapped.stdout
    assert versions() == [(2,)]
    destroyed = site.run("keys", "destroy", "--version", "1")
    assert destroyed.returncode == 0, destroyed.stderr
    kek_dir = Path(site.env["SAFETY_NET_DATA_DIR"]) / "kek"
    assert sorted(p.name for p in kek_dir.glob("kek-v*.key")) == ["kek-v2.key"]


def test_migrate_grants_the_service_role_only_data_rights(tmp_path: Path) -> None:
    from tests.conftest import SERVICE_ROLE, ensure_service_role

    url, drop = asyncio.run(prepare_database("postgresql", tmp_path))
    try:
        site = Site(tmp_path, {**site_env(tmp_path, url), "SAFETY_NET_DB_SERVICE_ROLE": SERVICE_ROLE})
        result = site.run("migrate")
        assert result.returncode == 0, result.stderr

        async def rights() -> list[bool]:
            import asyncpg

            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                await ensure_service_role(conn)
                return [await conn.fetchval("SELECT has_table_privilege($1, $2, $3)", SERVICE_ROLE,
                                            table, right)
                        for table, right in [("cases", "SELECT"), ("cases", "INSERT"),
                                             ("cases", "TRUNCATE"), ("alembic_version", "UPDATE"),
                                             ("alembic_version", "SELECT")]]
            finally:
                await conn.close()

        assert asyncio.run(rights()) == [True, True, False, False, True]
        bad = site.run("migrate", timeout=60)
        assert bad.returncode == 0
        site.env["SAFETY_NET_DB_SERVICE_ROLE"] = "no_such_role_here"
        missing = site.run("migrate")
        assert missing.returncode == 2 and "does not exist" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        asyncio.run(drop())
