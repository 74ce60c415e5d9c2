"""Fixtures: the real app over HTTP (httpx ASGI transport) on SQLite and on PostgreSQL.

Each backend gets a fresh database, migrated with Alembic and loaded with the demo fixture once
per session; tests create their own uniquely named data on top, so they never depend on order.
PostgreSQL tests are skipped (and said so) when no server answers, unless
SAFETY_NET_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from app import demo
from app.access.principal import SYSTEM
from app.config import REPO_ROOT, Settings
from app.crypto import KeyEncryptionKeys
from app.runtime import Runtime, context_for
from app.storage import grant_service_role, install_wall, upgrade, url_as
from app.tenancy import SYSTEM as TEST_SETUP
from app.tenants import schema as tenant_schema
from app.tenants import service as tenant_service
from schema.server import create_app

# The browser tests' fixtures and report hook (Playwright is imported only when one is used).
from tests.browser import (  # noqa: F401
    browser,
    network_guard,
    page,
    pytest_runtest_makereport,
    web_site,
)

# Hypothesis: a fixed example count keeps the suite's time predictable; `thorough` for more.
settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PG_ADMIN_URL = os.environ.get("SAFETY_NET_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SAFETY_NET_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("SAFETY_NET_REQUIRE_SERVICES") == "1"
BACKENDS = ["sqlite", "postgresql"]


FIGURES: list[str] = []


def figure(line: str) -> None:
    """A measured figure: printed now (`pytest -s`) and repeated in the closing summary."""
    print(line)
    FIGURES.append(line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("safety-net figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
    if _pg_reachable():
        line = f"safety-net: PostgreSQL at {PG_ADMIN_URL} reachable: suite ran on SQLite and PostgreSQL"
    else:
        line = (f"safety-net: PostgreSQL NOT reachable at {PG_ADMIN_URL}: every PostgreSQL test "
                "was SKIPPED; only SQLite ran (set SAFETY_NET_TEST_PG to point elsewhere)")
    terminalreporter.write_line(line, bold=True)
    if "ok" in _redis_state:
        terminalreporter.write_line(
            f"safety-net: Redis at {REDIS_URL} reachable: rate limits tested on Redis too"
            if _redis_state["ok"] else
            f"safety-net: Redis NOT reachable at {REDIS_URL}: its tests were SKIPPED "
            "(set SAFETY_NET_TEST_REDIS to point elsewhere)", bold=True)


_pg_state: dict[str, bool] = {}


def _pg_reachable() -> bool:
    if "ok" not in _pg_state:
        async def probe() -> bool:
            import asyncpg

            try:
                conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                return False
            await conn.close()
            return True

        # Probed in a thread: this may be called while the test event loop runs.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            _pg_state["ok"] = pool.submit(asyncio.run, probe()).result()
    return _pg_state["ok"]


_redis_state: dict[str, bool] = {}


def require_redis() -> str:
    """The test Redis URL; skips (or fails, with SAFETY_NET_REQUIRE_SERVICES=1) without one."""
    if "ok" not in _redis_state:
        async def probe() -> bool:
            import redis.asyncio as redis

            client = redis.from_url(REDIS_URL, socket_connect_timeout=3)
            try:
                return bool(await client.ping())
            except (OSError, redis.RedisError):
                return False
            finally:
                await client.aclose()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            _redis_state["ok"] = pool.submit(asyncio.run, probe()).result()
    if not _redis_state["ok"]:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is required but not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    return REDIS_URL


def require_pg() -> None:
    if _pg_reachable():
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"PostgreSQL is required but not reachable at {PG_ADMIN_URL}")
    pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Env:
    """One backend's prepared database, runtime, app and HTTP client."""

    backend: str
    runtime: Runtime
    client: httpx.AsyncClient
    settings: Settings
    # The schema owner's URL (PostgreSQL: the admin that migrated; SQLite: the same file): for
    # tests that act as someone with direct database access, beyond what the service can do.
    owner_url: str = ""

    async def token(self, org: str, user: str | None = None, client: str | None = None) -> str:
        from app.auth import principals

        async with self.runtime.db.transaction() as session:
            if user is not None:
                found = await principals.find_user(session, org, user)
            else:
                found = await principals.find_client(session, client or "")
            assert found is not None, f"no {org}/{user or client} in the fixture"
            subject, org_id = found.subject, found.org_id
        # A fully signed-in person: second factor just now (step-up actions work); a machine
        # client as /oauth/token issues it. Tests of password-only tokens issue "pwd" themselves.
        acr = "mfa" if user is not None else "client"
        return self.runtime.issuer.issue(subject=subject, org_id=str(org_id), acr=acr)[0]

    async def peacebuilder_token(self, login: str) -> str:
        from app.consent import repository as consent_repo

        async with self.runtime.db.transaction() as session:
            account = await consent_repo.account_by_login(session, login)
            assert account is not None, f"no peacebuilder account {login}"
            subject = f"peacebuilder:{account.peacebuilder_id}"
        return self.runtime.issuer.issue(subject=subject, org_id=None)[0]

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        as_: tuple[str, str] | None = None,
        purpose: str | None = "protection",
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST a GraphQL document and return the decoded body (asserting HTTP 200)."""
        response = await self.post(query, variables, token=token, as_=as_, purpose=purpose,
                                   headers=headers)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        as_: tuple[str, str] | None = None,
        purpose: str | None = "protection",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        if token is None and as_ is not None:
            token = await self.token(*as_)
        h = {"content-type": "application/json"}
        if token:
            h["authorization"] = f"Bearer {token}"
        if purpose:
            h["safety-net-purpose"] = purpose
        h.update(headers or {})
        return await self.client.post("/graphql", json={"query": query, "variables": variables},
                                      headers=h)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def prepare_database(backend: str, tmp: Path,
                           admin_url: str | None = None) -> tuple[str, Any]:
    """Create an empty database; returns its URL and a coroutine function that drops it.
    `admin_url`: another PostgreSQL cluster than the shared one (a test's private cluster)."""
    if backend == "sqlite":
        async def nothing() -> None:
            return None

        return f"sqlite+aiosqlite:///{tmp / 'test.db'}", nothing
    if admin_url is None:
        require_pg()
    admin = admin_url or PG_ADMIN_URL
    import asyncpg

    name = f"sn_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await ensure_service_role(conn)
    await conn.close()
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")

    async def drop() -> None:
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await c.close()

    return f"{base}/{name}", drop


SERVICE_ROLE = "safety_net_service"
BACKGROUND_ROLE = "safety_net_background"


async def ensure_service_role(conn: Any) -> None:
    """The roles the service connects as on PostgreSQL: can log in, nothing more (the schema is
    owned by the admin role that migrates; `grant_service_role` gives them data rights, and
    `install_wall` lets the background role alone use the system scope)."""
    import asyncpg

    for role in (SERVICE_ROLE, BACKGROUND_ROLE):
        try:
            await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB "
                               "NOCREATEROLE")
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass  # made by an earlier run (or a parallel one just now)


def service_url(owner_url: str) -> str:
    """The same database, as the service role (trust authentication in CI and here)."""
    return url_as(owner_url, SERVICE_ROLE)


def background_url(owner_url: str) -> str:
    """The same database, as the background role (the system scope's only role)."""
    return url_as(owner_url, BACKGROUND_ROLE)


async def build_env(backend: str, tmp: Path, *, demo_data: bool = True, clock: Any = None,
                    pg_admin_url: str | None = None, **overrides: Any) -> tuple[Env, Any]:
    url, drop = await prepare_database(backend, tmp, pg_admin_url)
    overrides.setdefault("log_worker", False)  # tests drive the chainer and scheduler themselves
    overrides.setdefault("scheduler", False)
    # The shared deployment serves the whole suite as a few callers: rates are tested on their own.
    for rate in ("rate_client", "rate_org", "cost_quota_client", "cost_quota_org", "rate_login",
                 "rate_login_ip", "rate_token", "rate_token_ip", "signin_failures",
                 "signin_failures_ip", "rate_help_ip"):
        overrides.setdefault(rate, "off")
    owner_url = url
    await asyncio.to_thread(upgrade, owner_url)
    pg = backend == "postgresql"
    if pg:
        # Migrated by the owner; served by roles that are neither owner nor superuser, so
        # row-level security applies to everything the app does, as in production.
        for role in (SERVICE_ROLE, BACKGROUND_ROLE):
            await grant_service_role(owner_url, role)
        url = service_url(owner_url)
    settings = replace(Settings(), database_url=url, data_dir=tmp / "data",
                       policy_dir=REPO_ROOT / "policies", tenants_dir=REPO_ROOT / "tenants",
                       db_service_role=SERVICE_ROLE if pg else "",
                       db_background_role=BACKGROUND_ROLE if pg else "",
                       background_database_url=background_url(owner_url) if pg else "",
                       **overrides)
    # What `safety-net migrate` does next: the database's copies of the service's keys.
    await install_wall(owner_url, KeyEncryptionKeys(settings.keks, settings.kek),
                       settings.db_background_role)
    runtime = Runtime.create(settings, clock=clock, tenancy_fallback=TEST_SETUP)
    if demo_data:
        async with runtime.db.transaction() as session:
            ctx = context_for(runtime, session, SYSTEM, request_id="test-setup")
            await tenant_service.apply(ctx, tenant_schema.load_dir(settings.tenants_dir))
        await demo.load(runtime)
    app = create_app(runtime)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    env = Env(backend=backend, runtime=runtime, client=client, settings=settings,
              owner_url=owner_url)

    async def close() -> None:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await runtime.close()
        await drop()

    return env, close


@pytest.fixture(scope="session", params=BACKENDS)
async def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              anyio_backend: str) -> AsyncIterator[Env]:
    """The demo deployment on one backend, shared by the session's tests."""
    built, close = await build_env(request.param, tmp_path_factory.mktemp(request.param))
    try:
        yield built
    finally:
        await close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """For tests that build their own database (fresh state) per backend."""
    if request.param == "postgresql":
        require_pg()
    yield request.param
