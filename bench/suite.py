"""The benchmark suite behind `python3 bench/run.py` (see bench/README.md).

Per database engine:
1. prepare databases with the bulk generator: `base` (1k cases) and, on PostgreSQL, `big`
   (the same 1k grown to 10k, or 100k with --full, plus the access log);
2. serve ours (`safety-net serve`) and the baselines with uvicorn subprocesses, all at once;
3. hammer each target with wrk in interleaved rounds (ours, baseline, ours, baseline, ...) so
   background load from other work on the machine falls on every target alike;
4. in process: SQL statements per request at page sizes 10/50/200, where the time goes, and what
   each security step costs (switched off one at a time, in this process only);
5. security costs in isolation: authorization decisions, token check, log append, audit verify.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select

from app.access.policy import PolicyEngine
from app.access.principal import SYSTEM
from app.config import REPO_ROOT, Settings
from app.crypto import KeyEncryptionKeys
from app.db import Database
from app.runtime import Runtime, context_for
from app.storage import upgrade
from app.tables.cases import Case
from app.tables.orgs import User
from app.tenants import schema as tenant_schema
from app.tenants import service as tenant_service
from bench import audit_verify, costs, datagen, harness, inprocess, plans
from bench.harness import Sample, Server, Target

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
OUT_DIR = REPO_ROOT / "var" / "bench"


@dataclass(frozen=True)
class Options:
    dbs: tuple[str, ...]
    full: bool
    seconds: float
    warmup: float
    rounds: int
    connections: int
    workers: int
    keep: bool
    pg_admin: str
    render: Path | None = None

    @property
    def base_cases(self) -> int:
        return 1_000

    @property
    def big_cases(self) -> int:
        return 100_000 if self.full else 10_000

    @property
    def base_log(self) -> int:
        return 10_000

    @property
    def big_log(self) -> int:
        return 1_000_000 if self.full else 100_000


@dataclass
class Deployment:
    """One prepared database and the data directory its server and CLI share."""

    name: str
    backend: str
    url: str
    data_dir: Path
    drop: Callable[[], Awaitable[None]]
    world: datagen.World
    log_entries: int
    caller_subject: str = ""
    case_ids: list[uuid.UUID] = field(default_factory=list)
    prepare_s: float = 0.0
    # PostgreSQL: what our service connects as, as deployed (a role under row-level security,
    # and the background role for the system scope: docs/decisions/0015); the generator and
    # the baselines use the owner's `url`.
    service_url: str = ""
    background_url: str = ""

    @property
    def served_url(self) -> str:
        return self.service_url or self.url

    @property
    def caller_org(self) -> uuid.UUID:
        return self.world.caller_org


# --- databases ------------------------------------------------------------------------------

def _loopback_only(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        raise SystemExit(f"bench: refusing a non-loopback database host {host!r}")


async def pg_reachable(admin: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(admin, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def create_database(backend: str, tmp: Path, name: str,
                          admin: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    if backend == "sqlite":
        async def nothing() -> None:
            return None

        return f"sqlite+aiosqlite:///{tmp / name / 'bench.db'}", nothing
    import asyncpg

    db_name = f"sn_bench_{name}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{db_name}"')
    await conn.close()
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")

    async def drop() -> None:
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await c.close()

    return f"{base}/{db_name}", drop


async def prepare(backend: str, tmp: Path, name: str, cases: int, log_entries: int,
                  opts: Options) -> Deployment:
    """Migrate, generate the log, apply the demo tenants (as the tests do), then the bench
    organisations and cases. The demo peacebuilders are not needed: the caller is a bench
    organisation's focal point."""
    t0 = time.perf_counter()
    url, drop = await create_database(backend, tmp, name, opts.pg_admin)
    data_dir = tmp / name / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, url)
    settings = replace(Settings(), database_url=url, data_dir=data_dir,
                       policy_dir=REPO_ROOT / "policies", tenants_dir=REPO_ROOT / "tenants",
                       log_worker=False, scheduler=False)
    runtime = Runtime.create(settings)  # also creates the signing keys in data_dir
    try:
        # The chained history first: the generator starts at the genesis entry.
        await audit_verify.generate(runtime.db, log_entries)
        async with runtime.db.transaction() as session:
            ctx = context_for(runtime, session, SYSTEM, request_id="bench-setup")
            await tenant_service.apply(ctx, tenant_schema.load_dir(settings.tenants_dir))
        world = datagen.World()
        await datagen.organisations(runtime.db, world)
        await datagen.add_cases(runtime.db, world, cases, seed=1)
        await datagen.analyze(runtime.db)
        dep = Deployment(name=name, backend=backend, url=url, data_dir=data_dir, drop=drop,
                         world=world, log_entries=log_entries)
        if backend == "postgresql":
            dep.service_url, dep.background_url = await service_role(url, opts.pg_admin,
                                                                     data_dir)
        await _caller(runtime.db, dep)
    finally:
        await runtime.close()
    dep.prepare_s = time.perf_counter() - t0
    return dep


async def grow(dep: Deployment, cases: int, log_entries: int) -> None:
    t0 = time.perf_counter()
    db = Database(dep.url)
    db.keys = KeyEncryptionKeys(dep.data_dir / "kek")  # the KEKs its servers use (data_dir/kek)
    try:
        await datagen.add_cases(db, dep.world, cases - dep.world.cases, seed=2)
        await datagen.append_log(db, log_entries - dep.log_entries)
        dep.log_entries = log_entries
        await datagen.analyze(db)
    finally:
        await db.dispose()
    dep.prepare_s += time.perf_counter() - t0


async def _caller(db: Database, dep: Deployment) -> None:
    async with db.sessionmaker() as session:
        uid = await session.scalar(select(User.id).where(User.org_id == dep.caller_org,
                                                         User.username == "focal"))
        dep.caller_subject = f"user:{uid}"
        dep.case_ids = list(await session.scalars(
            select(Case.id).where(Case.lead_org_id == dep.caller_org)
            .order_by(Case.opened_at.desc(), Case.id.desc()).limit(50)))


# --- servers ----------------------------------------------------------------------------------

def rate_limit_settings() -> list[str]:
    """SAFETY_NET_RATE_* and SAFETY_NET_COST_QUOTA_* settings, if this version of the service
    has them: the benchmark switches them off (it is one client sending thousands of requests).
    Query limits (depth, cost per request) stay at their defaults."""
    import re

    text = (REPO_ROOT / "app" / "config.py").read_text()
    return sorted(set(re.findall(r"\"(SAFETY_NET_(?:RATE|COST_QUOTA)_[A-Z0-9_]+)\"", text)))


async def service_role(url: str, pg_admin: str, data_dir: Path) -> tuple[str, str]:
    """The service and background roles of a production deployment (LOGIN, not owner, no
    BYPASSRLS), granted their data rights and the keys installed as `safety-net migrate` does;
    returns the database URLs as those roles."""
    import asyncpg

    from app.storage import grant_service_role, install_wall, url_as

    conn = await asyncpg.connect(pg_admin)
    try:
        for role in (SERVICE_ROLE, BACKGROUND_ROLE):
            await conn.execute(f"DO $$ BEGIN CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS; "
                               "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    finally:
        await conn.close()
    for role in (SERVICE_ROLE, BACKGROUND_ROLE):
        await grant_service_role(url, role)
    await install_wall(url, KeyEncryptionKeys(data_dir / "kek"), BACKGROUND_ROLE)
    return url_as(url, SERVICE_ROLE), url_as(url, BACKGROUND_ROLE)


SERVICE_ROLE = "safety_net_service"
BACKGROUND_ROLE = "safety_net_background"


def server_env(dep: Deployment, *, baseline: bool = False) -> dict[str, str]:
    """Ours connects as the service role; the baselines (no security at all) as the owner."""
    env = costs.cli_env(dep.url if baseline else dep.served_url, dep.data_dir)
    if dep.background_url and not baseline:
        env["SAFETY_NET_BACKGROUND_DATABASE_URL"] = dep.background_url
    for name in rate_limit_settings():
        env[name] = "off"
    # The page measured (50 cases with every incident's description) is over the default cost
    # budget since decision 0018, as in-process (inprocess.unlimited): it measures the read
    # path, not the limit.
    env["SAFETY_NET_MAX_COST"] = "1000000"
    return env


def uvicorn_argv(app: str, workers: int) -> list[str]:
    return [str(harness.VENV_BIN / "python"), "-m", "uvicorn", app, "--factory",
            "--host", harness.HOST, "--port", "{port}", "--workers", str(workers),
            "--no-access-log", "--log-level", "warning"]


def token(dep: Deployment) -> str:
    done = subprocess.run([str(harness.VENV_BIN / "safety-net"), "token", "--org", "bench-000",
                           "--user", "focal"], env=server_env(dep), capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


# --- HTTP -----------------------------------------------------------------------------------

@dataclass
class Result:
    label: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(s, attr) for s in self.samples))

    @property
    def failures(self) -> int:
        return sum(s.failures for s in self.samples)

    def summary(self) -> dict[str, Any]:
        return {"rps": self.median("rps"), "p50_ms": self.median("p50_ms"),
                "p95_ms": self.median("p95_ms"), "p99_ms": self.median("p99_ms"),
                "requests": sum(s.requests for s in self.samples), "failures": self.failures,
                "rounds": [asdict(s) for s in self.samples]}


def _bodies(make: Callable[[Any], dict[str, Any]], items: list[Any]) -> list[str]:
    return [json.dumps(make(x), separators=(",", ":")) for x in items]


def http_phase(backend: str, deps: dict[str, Deployment], opts: Options, wrk: str,
               work: Path) -> dict[str, Any]:
    """`deps`: "base" and optionally "big" (the grown copy)."""
    base = deps["base"]
    logs = work / "logs"
    ours_argv = [str(harness.VENV_BIN / "safety-net"), "serve", "--host", harness.HOST,
                 "--port", "{port}", "--workers", str(opts.workers)]
    servers: dict[str, Server] = {}
    for role, dep in deps.items():
        env = server_env(dep)
        env_b = {**server_env(dep, baseline=True), "BENCH_ORG_ID": str(dep.caller_org)}
        servers[f"ours {role}"] = Server(f"ours {role}", ours_argv, env,
                                         logs / f"{backend}-ours-{role}.log")
        servers[f"bare {role}"] = Server(
            f"bare {role}", uvicorn_argv("bench.baselines.bare_schema:create_app", opts.workers),
            env_b, logs / f"{backend}-bare-{role}.log")
    servers["raw"] = Server("raw", uvicorn_argv("bench.baselines.raw:create_app", opts.workers),
                            {**server_env(base, baseline=True), "BENCH_ORG_ID": str(base.caller_org)},
                            logs / f"{backend}-raw.log")
    try:
        for s in servers.values():
            s.start()
        targets = _targets(backend, deps, servers)
        checks = _sanity(backend, targets)
        for t in targets.values():  # warm-up: caches, pools, prepared statements
            harness.run_wrk(wrk, t, work / "req", opts.warmup, opts.connections)
        results = {label: Result(label) for label in targets}
        for r in range(opts.rounds):
            print(f"  {backend}: round {r + 1}/{opts.rounds} ...", flush=True)
            for label, t in targets.items():
                results[label].samples.append(
                    harness.run_wrk(wrk, t, work / "req", opts.seconds, opts.connections))
    finally:
        for s in servers.values():
            s.stop()
    return {"checks": checks, "results": {k: v.summary() for k, v in results.items()}}


def _targets(backend: str, deps: dict[str, Deployment],
             servers: dict[str, Server]) -> dict[str, Target]:
    """In run order: each operation on the small and the big database side by side, then its
    baselines, so that what is compared is measured close together in time."""
    json_h = {"Content-Type": "application/json"}
    page = _bodies(lambda _: inprocess.page_body(50), [0])
    tokens = {role: token(dep) for role, dep in deps.items()}
    t: dict[str, Target] = {}

    def add(label: str, server: Server, path: str, headers: dict[str, str],
            bodies: list[str], connections: int | None = None) -> None:
        t[label] = Target(label, server, path, headers, bodies, connections)

    def ours_h(role: str) -> dict[str, str]:
        return {**json_h, "Authorization": f"Bearer {tokens[role]}",
                "Safety-Net-Purpose": inprocess.PURPOSE}

    for role in deps:
        add(f"page ours {role}", servers[f"ours {role}"], "/graphql", ours_h(role), page)
    for role in deps:
        add(f"page bare {role}", servers[f"bare {role}"], "/graphql", json_h, page)
    if backend == "postgresql":
        add("page sql base", servers["raw"], "/sql?first=50", json_h, ["{}"])
    add("page const", servers["raw"], "/const", json_h, ["{}"])
    # Unloaded latency: one connection, one request at a time.
    add("page ours base c1", servers["ours base"], "/graphql", ours_h("base"), page, 1)
    add("page bare base c1", servers["bare base"], "/graphql", json_h, page, 1)
    for role, dep in deps.items():
        add(f"case ours {role}", servers[f"ours {role}"], "/graphql", ours_h(role),
            _bodies(inprocess.case_body, dep.case_ids))
    add("case bare base", servers["bare base"], "/graphql", json_h,
        _bodies(inprocess.case_body, deps["base"].case_ids))
    for role, dep in deps.items():
        add(f"note ours {role}", servers[f"ours {role}"], "/graphql", ours_h(role),
            _bodies(lambda c: inprocess.note_body(c), dep.case_ids))
    return t


def _sanity(backend: str, targets: dict[str, Target]) -> dict[str, Any]:
    """Every target answers without errors, and the pages are the same data everywhere."""
    out: dict[str, Any] = {}
    pages: dict[str, Any] = {}
    for label, t in targets.items():
        body = json.loads(t.bodies[0])
        r = harness.post(t.server.url + t.path, body, {k: v for k, v in t.headers.items()
                                                       if k != "Content-Type"})
        if r.get("errors"):
            raise RuntimeError(f"{backend} {label}: {r['errors']}")
        if label.startswith("note"):
            errs = r["data"]["addCaseNote"]["userErrors"]
            if errs:
                raise RuntimeError(f"{backend} {label}: {errs}")
        if label.startswith("page") and label != "page const" and not label.endswith("c1"):
            edges = r["data"]["cases"]["edges"]
            if len(edges) != 50 or any(len(e["node"]["incidents"]) != 3 or
                                       e["node"]["summary"] is None for e in edges):
                raise RuntimeError(f"{backend} {label}: expected 50 visible cases with 3 "
                                   "incidents and a summary each")
            pages[label] = r["data"]
        if label == "page ours base":
            out["redacted"] = len(r.get("extensions", {}).get("redacted", []))
    ref = _unsealed_fields_only(pages["page ours base"])
    out["same_page"] = {k: _unsealed_fields_only(v) == ref for k, v in pages.items()
                        if k.endswith("base")}
    # Ours opens what it reads; the baselines read the stored column, i.e. the ciphertext.
    ours = pages["page ours base"]["cases"]["edges"]
    if any(str(e["node"]["summary"]).startswith("enc1:") for e in ours):
        raise RuntimeError(f"{backend}: our page returned sealed summaries")
    return out


def _unsealed_fields_only(page: Any) -> Any:
    """A page without the sealed text fields (summary, description): the baselines have no keys
    and return the stored ciphertext there, so only IDs, enum names and order are compared."""
    if isinstance(page, dict):
        return {k: _unsealed_fields_only(v) for k, v in page.items()
                if k not in ("summary", "description")}
    if isinstance(page, list):
        return [_unsealed_fields_only(v) for v in page]
    return page


# --- in process -------------------------------------------------------------------------------

async def inprocess_phase(base: Deployment, big: Deployment | None) -> dict[str, Any]:
    from strawberry.extensions import validation_cache
    from strawberry.schema.schema import validate_document

    from app.access import log as audit_service
    from app.access import policy as policy_mod
    from app.cases import repository as cases_repo
    from schema import http as http_mod
    from schema import limits as query_limits

    out: dict[str, Any] = {"statements": {}, "time": {}, "ablations": {}}
    cid = base.case_ids[0]
    async with inprocess.ours(base.served_url, base.data_dir, base.caller_subject,
                              base.caller_org, base.background_url) as env, \
            inprocess.bare(base.url, base.caller_org) as bare_env:
        with inprocess.max_page(200):
            for n in (10, 50, 200):
                out["statements"][f"page {n} ours"] = await env.statements(inprocess.page_body(n))
                out["statements"][f"page {n} bare"] = await bare_env.statements(
                    inprocess.page_body(n))
        out["statements"]["case ours"] = await env.statements(inprocess.case_body(cid))
        out["statements"]["case bare"] = await bare_env.statements(inprocess.case_body(cid))
        out["statements"]["note ours"] = await env.statements(inprocess.note_body(cid))

        def page(_: int) -> dict[str, Any]:
            return inprocess.page_body(50)

        def note(i: int) -> dict[str, Any]:
            return inprocess.note_body(base.case_ids[i % len(base.case_ids)], i)

        def one(i: int) -> dict[str, Any]:
            return inprocess.case_body(base.case_ids[i % len(base.case_ids)])

        out["ladder"] = await inprocess.ladder({"ours": env, "bare": bare_env})
        out["time"]["page ours base"] = await inprocess.where_time_goes(env, page, 30)
        out["time"]["page bare base"] = await inprocess.where_time_goes(bare_env, page, 30)
        out["time"]["note ours base"] = await inprocess.where_time_goes(env, note, 30)

        async def no_write(*_: Any, **__: Any) -> None:
            return None

        def no_add(*_: Any, **__: Any) -> None:
            return None

        async def zero(*_: Any) -> int:
            return 0

        async def no_refresh(self: Any, session: Any, version: Any = None) -> None:
            return None

        def log_off() -> Any:
            import contextlib

            stack = contextlib.ExitStack()
            stack.enter_context(inprocess.patched(http_mod, "write_deferred", no_write))
            stack.enter_context(inprocess.patched(audit_service, "add", no_add))
            return stack

        ablations = {
            "page: access-log writes off": (page, log_off),
            "note: access-log writes off": (note, log_off),
            # The page counts only when totalCount is selected (proposal 4, applied).
            "page + totalCount: count query off": (
                lambda _: inprocess.counted_page_body(50),
                lambda: inprocess.patched(cases_repo, "count", zero)),
            "page: policy-version query off": (
                page, lambda: inprocess.patched(policy_mod.PolicyEngine, "refresh", no_refresh)),
            # The two caches every request goes through (a negative saving = the cache pays).
            "page: validation cache off": (
                page, lambda: inprocess.patched(validation_cache, "_get_validate_cache",
                                                lambda _maxsize: validate_document)),
            "page: parse (+ limits) cache off": (
                page, lambda: inprocess.patched(query_limits, "_shape", query_limits._shape.__wrapped__)),
            "case(id): validation cache off": (
                one, lambda: inprocess.patched(validation_cache, "_get_validate_cache",
                                               lambda _maxsize: validate_document)),
        }
        for name, (body, switch) in ablations.items():
            out["ablations"][name] = await inprocess.ab(env, body, switch)
    if big is not None:
        async with inprocess.ours(base.served_url, base.data_dir, base.caller_subject,
                                  base.caller_org, base.background_url) as small_env, \
                inprocess.ours(big.served_url, big.data_dir, big.caller_subject,
                               big.caller_org, big.background_url) as big_env:
            out["time"]["page ours big"] = await inprocess.where_time_goes(
                big_env, lambda _: inprocess.page_body(50), 30)
            out["scale"] = {}
            pairs = {
                "cases(first:50)": (lambda _: inprocess.page_body(50),
                                    lambda _: inprocess.page_body(50)),
                "case(id)": (lambda i: inprocess.case_body(base.case_ids[i % 50]),
                             lambda i: inprocess.case_body(big.case_ids[i % 50])),
                "addCaseNote": (lambda i: inprocess.note_body(base.case_ids[i % 50], i),
                                lambda i: inprocess.note_body(big.case_ids[i % 50], i)),
            }
            for name, (small_body, big_body) in pairs.items():
                a, b = await inprocess.scale_ab(small_env, big_env, small_body, big_body)
                out["scale"][name] = {"small_ms": a, "big_ms": b, "growth": b / a}
        if base.backend == "postgresql":
            out["plans"] = {
                "small": await plans.page_statement(base.url, base.caller_org,
                                                    base.caller_subject),
                "big": await plans.page_statement(big.url, big.caller_org, big.caller_subject)}
    return out


# --- costs ------------------------------------------------------------------------------------

async def costs_phase(dep: Deployment, verify_dep: Deployment) -> dict[str, Any]:
    db = Database(dep.url)
    try:
        policy = await costs.policy(db)
        append_ms = await costs.log_append(db)
    finally:
        await db.dispose()
    verify = await asyncio.to_thread(costs.audit_verify, costs.cli_env(verify_dep.url,
                                                                       verify_dep.data_dir))
    return {"policy": policy, "token_verify_us": costs.token_verify(dep.data_dir),
            "log_append_ms": append_ms, "verify": verify, "verify_db": verify_dep.name}


# --- report -----------------------------------------------------------------------------------

def _f(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _div(a: float, b: float) -> float:
    """a / b, or NaN when b is zero (a target that completed no request in a run)."""
    return a / b if b else float("nan")


def render(report: dict[str, Any]) -> str:
    lines: list[str] = []
    meta = report["meta"]
    lines.append(f"Safety Net benchmarks  {meta['date']}  ({meta['cpu']}, {meta['cores']} cores, "
                 f"load avg {meta['load_before']:.2f} -> {meta['load_after']:.2f})")
    lines.append(f"code {meta.get('code', '?')}")
    lines.append(f"wrk -c{meta['connections']}, {meta['rounds']} interleaved rounds x "
                 f"{meta['seconds']:.0f}s per target, uvicorn workers={meta['workers']}, "
                 f"sizes {meta['base_cases']:,} / {meta['big_cases']:,} cases, "
                 f"{datagen.ORGS} organisations")
    goals: list[tuple[str, bool, str]] = []
    for backend, r in report["backends"].items():
        res = r["http"]["results"]
        lines.append("")
        lines.append(f"== {backend}: HTTP, {meta['base_cases']:,} cases "
                     f"(medians of the rounds) ==")
        lines.append(f"{'operation':<28}{'server':<26}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
                     f"{'p99 ms':>9}{'ratio':>8}  fail")
        rows = [("cases(first:50) page", "page ours base", "Safety Net", None),
                ("", "page bare base", "(1) bare strawberry", "page ours base"),
                ("", "page sql base", "(2) SQL json_agg", "page ours base"),
                ("", "page const", "(3) constant JSON", "page ours base"),
                ("  1 connection", "page ours base c1", "Safety Net", None),
                ("", "page bare base c1", "(1) bare strawberry", "page ours base c1"),
                ("case(id)", "case ours base", "Safety Net", None),
                ("", "case bare base", "(1) bare strawberry", "case ours base"),
                ("addCaseNote (write+log)", "note ours base", "Safety Net", None)]
        for op, key, name, ours_key in rows:
            if key not in res:
                continue
            s = res[key]
            ratio = f"{_div(res[ours_key]['rps'], s['rps']):.2f}x" if ours_key else ""
            lines.append(f"{op:<28}{name:<26}{_f(s['rps'], 0):>9}{_f(s['p50_ms']):>9}"
                         f"{_f(s['p95_ms']):>9}{_f(s['p99_ms']):>9}{ratio:>8}  {s['failures']}")
        lines.append("ratio = Safety Net req/s / that baseline's req/s (same run, same data)")
        same = r["http"]["checks"]["same_page"]
        lines.append("same page data from every server: " + ", ".join(
            f"{k.split()[1]}={'yes' if v else 'NO'}" for k, v in same.items()))
        ratio1 = _div(res["page ours base"]["rps"], res["page bare base"]["rps"])
        goals.append((f"{backend}: page throughput vs bare strawberry >= 0.7x", ratio1 >= 0.7,
                      f"{ratio1:.2f}x"))
        if "page ours big" in res:
            lines.append("")
            lines.append(f"== {backend}: scale, p50 at {meta['base_cases']:,} vs "
                         f"{meta['big_cases']:,} cases ({r['big_log']:,} log entries) ==")
            lines.append(f"{'operation':<28}{'p50 small':>11}{'p50 big':>10}{'growth':>9}"
                         f"{'req/s small':>13}{'req/s big':>11}")
            scale = r["inprocess"].get("scale", {})
            for op, key, ip_key in (("cases(first:50) ours", "page ours", "cases(first:50)"),
                                    ("case(id) ours", "case ours", "case(id)"),
                                    ("addCaseNote ours", "note ours", "addCaseNote"),
                                    ("cases(first:50) bare (1)", "page bare", None)):
                a, b = res[f"{key} base"], res[f"{key} big"]
                growth = _div(b["p50_ms"], a["p50_ms"])
                lines.append(f"{op:<28}{_f(a['p50_ms']):>11}{_f(b['p50_ms']):>10}"
                             f"{growth:>8.2f}x{_f(a['rps'], 0):>13}{_f(b['rps'], 0):>11}")
                if ip_key and ip_key in scale:
                    g = scale[ip_key]
                    lines.append(f"{'  in process, one at a time':<28}{g['small_ms']:>11.1f}"
                                 f"{g['big_ms']:>10.1f}{g['growth']:>8.2f}x")
                    goals.append((f"{backend}: {op} p50 growth <= 1.2x (HTTP / in process)",
                                  growth <= 1.2 and g["growth"] <= 1.2,
                                  f"{growth:.2f}x / {g['growth']:.2f}x"))
            pl = r["inprocess"].get("plans")
            if pl:
                lines.append("")
                lines.append(f"== {backend}: the page's main statement, database ms per "
                             "execution (median) ==")
                lines.append(f"{'variant':<28}{'small':>9}{'big':>9}{'growth':>9}")
                for k, shown in (("current", "IN (visible), before"),
                                 ("+ index (opened_at, id)", "+ index (opened_at, id)"),
                                 ("materialized CTE", "materialized CTE, now")):
                    a, b = pl["small"][k], pl["big"][k]
                    lines.append(f"{shown:<28}{a:>9.2f}{b:>9.2f}{_div(b, a):>8.1f}x")
                lines.append("same cases from every variant: "
                             + ("yes" if pl["small"]["same"] and pl["big"]["same"] else "NO"))
        ip = r["inprocess"]
        st = ip["statements"]
        lines.append("")
        lines.append(f"== {backend}: SQL statements per request (in process) ==")
        lines.append(f"{'operation':<28}{'first:10':>9}{'first:50':>9}{'first:200':>10}")
        for who in ("ours", "bare"):
            lines.append(f"{'cases page ' + who:<28}{st[f'page 10 {who}']:>9}"
                         f"{st[f'page 50 {who}']:>9}{st[f'page 200 {who}']:>10}")
        lines.append(f"{'case(id) ours / bare':<28}{st['case ours']:>9} / {st['case bare']}")
        lines.append(f"{'addCaseNote ours':<28}{st['note ours']:>9}")
        flat = st["page 10 ours"] == st["page 50 ours"] == st["page 200 ours"]
        goals.append((f"{backend}: statements per page constant in page size", flat,
                      f"{st['page 10 ours']}/{st['page 50 ours']}/{st['page 200 ours']}"))
        lines.append("")
        lines.append(f"== {backend}: where a request's time goes (in process, one at a time) ==")
        lines.append(f"{'request':<28}{'ms':>8}{'db ms':>8}{'db %':>6}  slowest statements "
                     "(ms per request)")
        for key, t in ip["time"].items():
            top = ", ".join(f"{x['statement']} {x['ms']:.2f}" for x in t["top"][:3])
            lines.append(f"{key:<28}{t['request_ms']:>8.1f}{t['db_ms']:>8.1f}"
                         f"{t['db_share'] * 100:>5.0f}%  {top}")
        lad = ip.get("ladder")
        if lad:
            lines.append("")
            lines.append(f"== {backend}: the 50-case page built up field by field "
                         "(in process, ms per request) ==")
            lines.append(f"{'fields':<28}{'ours':>8}{'bare (1)':>10}{'ours/bare':>11}")
            for name in lad["ours"]:
                o, b = lad["ours"][name], lad["bare"][name]
                lines.append(f"{name:<28}{o:>8.1f}{b:>10.1f}{_div(o, b):>10.2f}x")
            shape = lad["bare"].get("gates' shape only")
            if shape is not None:
                last = list(lad["ours"])[-1]
                lines.append(f"{'bare, 200 gates async+DL':<28}{'':>8}{shape:>10.1f}"
                             f"{lad['ours'][last] / shape:>10.2f}x")
            lines.append("(the bare schema always loads peacebuilder and incidents; its last row "
                         "puts summary and description\n behind async resolvers awaiting a "
                         "DataLoader, with no SQL or logic: the price of the gate's shape)")
        lines.append("")
        lines.append(f"== {backend}: one step switched off (in process, A/B interleaved) ==")
        lines.append(f"{'step':<36}{'on ms':>8}{'off ms':>8}{'saved ms':>10}{'share':>7}")
        for name, a in ip["ablations"].items():
            lines.append(f"{name:<36}{a['on_ms']:>8.2f}{a['off_ms']:>8.2f}"
                         f"{a.get('saved_ms', a['on_ms'] - a['off_ms']):>10.2f}"
                         f"{a['saved'] * 100:>6.0f}%")
        lines.append("(saved = median of paired A/B differences; negative = switching it off costs: "
                     "a cache that pays, or noise)")
        if r.get("wall"):
            from bench import wall

            lines.append("")
            lines.append(f"== {backend}: what the wall costs (docs/decisions/0013, in process) ==")
            lines.extend(wall.render(r["wall"]))
    c = report.get("costs")
    if c:
        p = c["policy"]
        lines.append("")
        lines.append(f"== security costs in isolation ({c['backend']}) ==")
        lines.append(f"authorization, {p['organisations']} organisations, {p['lines']:,} policy "
                     f"lines: allowed() {p['allowed_us']:.2f} us, enforce() {p['enforce_us']:.1f} "
                     f"us ({p['enforce_us'] / p['allowed_us']:.0f}x), role_allows() "
                     f"{p['role_allows_us']:.2f} us; mismatches {p['mismatches']}/500")
        lines.append(f"policy reload after a role change (every replica, in a request): "
                     f"{p['reload_ms']:.0f} ms now; Casbin batch add {p['reload_batch_ms']:.0f} ms;"
                     f" compiled straight from the rows {p['reload_direct_ms']:.1f} ms")
        lines.append(f"token verification (Ed25519 JWT): {c['token_verify_us']:.0f} us; "
                     f"one deferred access-log write (own transaction): "
                     f"{c['log_append_ms']:.2f} ms")
        v = c["verify"]
        lines.append(f"audit verify ({c['verify_db']}): {v['entries']:,} entries in "
                     f"{v['seconds']:.1f} s = {v['rate']:,.0f} entries/s, "
                     f"{'OK' if v['ok'] else 'FAILED'}")
        goals.append(("authorization decision <= 50 us (allowed())", p["allowed_us"] <= 50,
                      f"{p['allowed_us']:.2f} us"))
    lines.append("")
    lines.append("== goals ==")
    for name, ok, value in goals:
        lines.append(f"{'MET    ' if ok else 'NOT MET'} {name}: {value}")
    lines.append("")
    lines.append(f"run time {report['meta']['run_s']:.0f} s "
                 f"(data generation {report['meta']['prepare_s']:.0f} s)")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------

def parse(argv: list[str]) -> Options:
    ap = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--full", action="store_true",
                    help="100k cases and 1M access-log entries (default 10k / 100k); longer runs")
    ap.add_argument("--seconds", type=float, help="seconds per wrk run (default 5, --full 10)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per target (default 2)")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers for every server")
    ap.add_argument("--keep", action="store_true", help="keep the databases and temp files")
    ap.add_argument("--render", type=Path, help="print the table of a saved run-*.json and exit")
    ap.add_argument("--pg-admin", default=PG_ADMIN,
                    help=f"PostgreSQL admin URL (loopback only; default {PG_ADMIN})")
    a = ap.parse_args(argv)
    dbs = ("sqlite", "postgresql") if a.db == "both" else (a.db,)
    return Options(dbs=dbs, full=a.full, seconds=a.seconds or (10.0 if a.full else 5.0),
                   warmup=1.0, rounds=a.rounds or (3 if a.full else 2),
                   connections=a.connections, workers=a.workers, keep=a.keep,
                   pg_admin=a.pg_admin, render=a.render)


async def run(opts: Options, work: Path, wrk: str) -> dict[str, Any]:
    started = time.perf_counter()
    report: dict[str, Any] = {"backends": {}, "meta": {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": harness.cpu_model(),
        "cores": _cores(), "load_before": harness.load_average(), "workers": opts.workers,
        "connections": opts.connections, "rounds": opts.rounds, "seconds": opts.seconds,
        "base_cases": opts.base_cases, "big_cases": opts.big_cases, "prepare_s": 0.0,
        "rate_limit_settings_off": rate_limit_settings(), "code": _code_version()}}
    deployments: list[Deployment] = []
    costs_done = False
    try:
        for backend in opts.dbs:
            print(f"bench: {backend}: generating data ...", flush=True)
            deps = {"base": await prepare(backend, work, f"{backend[:2]}base", opts.base_cases,
                                          opts.base_log, opts)}
            deployments.append(deps["base"])
            if backend == "postgresql":
                big = await prepare(backend, work, "pgbig", opts.base_cases, opts.base_log, opts)
                deployments.append(big)
                await grow(big, opts.big_cases, opts.big_log)
                deps["big"] = big
            report["meta"]["prepare_s"] += sum(d.prepare_s for d in deps.values())
            print(f"bench: {backend}: HTTP with wrk ...", flush=True)
            http = await asyncio.to_thread(http_phase, backend, deps, opts, wrk, work)
            print(f"bench: {backend}: in-process measurements ...", flush=True)
            ip = await inprocess_phase(deps["base"], deps.get("big"))
            report["backends"][backend] = {"http": http, "inprocess": ip,
                                           "big_log": opts.big_log}
            if backend == "postgresql":
                print(f"bench: {backend}: what the wall costs ...", flush=True)
                from bench import wall

                report["backends"][backend]["wall"] = await wall.measure(deps["base"])
            if backend == "postgresql" or (not costs_done and backend == opts.dbs[-1]):
                print(f"bench: {backend}: security costs and audit verify ...", flush=True)
                report["costs"] = {"backend": backend, **await costs_phase(
                    deps["base"], deps.get("big", deps["base"]))}
                costs_done = True
    finally:
        if not opts.keep:
            for d in deployments:
                await d.drop()
    report["meta"]["load_after"] = harness.load_average()
    report["meta"]["run_s"] = time.perf_counter() - started
    return report


def _code_version() -> str:
    """The commit measured, and whether app/, schema/ or migrations/ had uncommitted changes
    (other engineers may be working in the same tree)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=30, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "app", "schema", "migrations", "policies")
    n = len(dirty.splitlines()) if dirty else 0
    return head + (f" + {n} uncommitted changes in app/schema/migrations" if n else "")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main(argv: list[str]) -> int:
    opts = parse(argv)
    if opts.render:
        print(render(json.loads(opts.render.read_text())))
        return 0
    _loopback_only(opts.pg_admin)
    wrk = harness.ensure_wrk()
    if "postgresql" in opts.dbs and not asyncio.run(pg_reachable(opts.pg_admin)):
        if opts.dbs == ("postgresql",):
            print(f"bench: PostgreSQL not reachable at {opts.pg_admin}", file=sys.stderr)
            return 2
        print(f"bench: PostgreSQL NOT reachable at {opts.pg_admin}: SQLite only (no SQL "
              "baseline, no scale run)", flush=True)
        opts = replace(opts, dbs=("sqlite",))
    _ = PolicyEngine  # imported early so a broken policy directory fails before any work
    tmp = Path(tempfile.mkdtemp(prefix="sn-bench-"))
    report = asyncio.run(run(opts, tmp, wrk))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (OUT_DIR / f"run-{stamp}.json").write_text(json.dumps(report, indent=2, default=str))
    text = render(report)
    print()
    print(text)
    (OUT_DIR / f"run-{stamp}.txt").write_text(text + "\n")
    print(f"\nfull results: {OUT_DIR / f'run-{stamp}.json'} (server logs in {tmp / 'logs'})")
    if not opts.keep:  # databases files, data directories, request files; the logs stay
        import shutil

        for child in tmp.iterdir():
            if child.name != "logs":
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
    return 0
