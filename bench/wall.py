"""What the wall of docs/decisions/0015-signed-tenancy.md costs (PostgreSQL), measured alone:

    .venv/bin/python -m bench.wall [--pairs 40] [--keep] [--pg-admin URL]

(`bench/run.py` runs the same measurements on its 1k PostgreSQL database.)

- **per transaction, in Python**: signing the caller's decided tenancy (HMAC over the settings,
  SHA-256 of the peacebuilders list) next to building the unsigned settings;
- **per verification, in PostgreSQL**: one call of `sn_verified_scope()` (SECURITY DEFINER:
  HMAC from the built-in sha256, key read from sn_private) next to the unverified read of the
  setting it replaced, and the digest check of the peacebuilders list at the caller's size and
  at 10,000 IDs, next to parsing that list (which the policies did before too);
- **how many verifications a request makes**: `sn_verified_scope` calls counted by PostgreSQL
  (`track_functions`, set for the service role in the bench database only) over page requests:
  once per InitPlan, i.e. a few per statement, never per row;
- **per request, A/B in process** (the real app, as the service role, one request at a time,
  alternating): the page with the database's verification on, and with the 0007 bodies that
  trust the settings swapped in (DDL on the bench database, between requests, each side
  warmed after a swap); the consent MAC checks on the read path (admission's decided set and
  the release of categories) on and off (patched in this process only); and both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.access import context as context_mod
from app.access import visibility
from app.crypto import KeyEncryptionKeys
from app.tables import integrity
from app.tenancy import Scope, Tenancy
from app.wall import SET_TEXT, Wall
from bench import inprocess

VERIFYING = ("sn_verified_scope(name)", "sn_peacebuilders()", "sn_peacebuilder_ids()")
# The bodies of 0007 (the settings trusted as set): the "verification off" side of the A/B.
# Never anywhere but a bench database.
TRUSTING = [
    """CREATE OR REPLACE FUNCTION sn_verified_scope(caller name) RETURNS text
       LANGUAGE sql STABLE PARALLEL SAFE AS $$
       SELECT coalesce(nullif(current_setting('safety_net.scope', true), ''), 'none') $$""",
    """CREATE OR REPLACE FUNCTION sn_peacebuilders() RETURNS SETOF uuid
       LANGUAGE sql STABLE PARALLEL SAFE ROWS 100 AS $$
       SELECT unnest(string_to_array(nullif(current_setting('safety_net.peacebuilders', true),
                                            ''), ','))::uuid
       WHERE sn_scope() IN ('org', 'peacebuilder') $$""",
    """CREATE OR REPLACE FUNCTION sn_peacebuilder_ids() RETURNS uuid[]
       LANGUAGE sql STABLE PARALLEL SAFE AS $$
       SELECT CASE WHEN sn_scope() IN ('org', 'peacebuilder')
                   THEN coalesce(string_to_array(nullif(current_setting('safety_net.peacebuilders',
                                 true), ''), ',')::uuid[], '{}') ELSE '{}' END $$""",
]


async def _decided(dep: Any) -> Tenancy:
    """The caller's tenancy as admission decides it (its IDs are what each transaction sends)."""
    from app.access.context import AccessContext
    from app.access.policy import PolicyEngine
    from app.access.principal import Principal, PrincipalKind
    from app.clock import Clock
    from app.config import REPO_ROOT
    from app.db import Database
    from app.tenancy import SYSTEM, using

    db = Database(dep.url, keys=KeyEncryptionKeys(dep.data_dir / "kek"))
    try:
        with using(SYSTEM):
            async with db.transaction() as session:
                principal = Principal(kind=PrincipalKind.USER,
                                      id=uuid.UUID(dep.caller_subject.split(":", 1)[1]),
                                      org_id=dep.caller_org, org_slug="bench-000", name="focal",
                                      roles=frozenset({"focal_point"}))
                ctx = AccessContext(principal=principal, session=session, db=db,
                                    policy=PolicyEngine(REPO_ROOT / "policies"), clock=Clock(),
                                    request_id="bench-wall", purpose="protection")
                return await ctx.decide_tenancy()
    finally:
        await db.dispose()


def signing(tenancy: Tenancy, keys: KeyEncryptionKeys) -> dict[str, float]:
    wall = Wall(120)
    wall.keys = keys
    n = 2000
    signed = min(timeit.repeat(lambda: wall.signed(tenancy), number=n, repeat=5)) / n
    plain = min(timeit.repeat(tenancy.settings, number=n, repeat=5)) / n
    return {"sign_us": signed * 1e6, "settings_us": plain * 1e6,
            "peacebuilders": len(tenancy.peacebuilders),
            "setting_bytes": len(tenancy.settings()["peacebuilders"])}


async def _per_call(conn: Any, expr: str, n: int = 20_000) -> float:
    """Microseconds per evaluation of `expr` (minus the loop itself), median of 5."""
    loop = f"SELECT count(*) FROM generate_series(1, {n}) g WHERE %s <> g::text"  # noqa: S608
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        await conn.execute(text(loop % f"({expr})"))
        with_expr = time.perf_counter() - t0
        t0 = time.perf_counter()
        await conn.execute(text(loop % "'x'"))
        times.append(with_expr - (time.perf_counter() - t0))
    return max(0.0, statistics.median(times)) / n * 1e6


async def per_verification(dep: Any, tenancy: Tenancy, keys: KeyEncryptionKeys) -> dict[str, float]:
    wall = Wall(600)
    wall.keys = keys
    big = ",".join(sorted(str(uuid.uuid4()) for _ in range(10_000)))
    engine = create_async_engine(dep.service_url)
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text(SET_TEXT), wall.signed(tenancy))
            await conn.execute(text("SELECT set_config('bench.big', :v, true)"), {"v": big})
            assert await conn.scalar(text("SELECT sn_scope()")) == "org"
            out = {
                "verify_us": await _per_call(conn, "sn_verified_scope(current_user)"),
                "unverified_us": await _per_call(
                    conn, "coalesce(nullif(current_setting('safety_net.scope', true), ''), 'none')"),
            }
            for label, setting in (("caller", "safety_net.peacebuilders"), ("10k", "bench.big")):
                value = f"coalesce(current_setting('{setting}', true), '')"
                out[f"digest_{label}_us"] = await _per_call(
                    conn, f"encode(sha256(convert_to({value}, 'UTF8')), 'hex')", n=2000)
                out[f"parse_{label}_us"] = await _per_call(
                    conn, f"cardinality(string_to_array(nullif({value}, ''), ',')::uuid[])::text",
                    n=2000)
    finally:
        await engine.dispose()
    return out


@contextlib.asynccontextmanager
async def owner(dep: Any) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(dep.url, isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        await engine.dispose()


async def verifications_per_request(dep: Any, body: dict[str, Any], n: int = 20) -> float:
    """`sn_verified_scope` calls per page request, counted by PostgreSQL."""
    from bench.suite import SERVICE_ROLE

    db_name = dep.url.rsplit("/", 1)[-1]
    count = ("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
             "WHERE funcname = 'sn_verified_scope'")
    async with owner(dep) as eng:
        async with eng.connect() as conn:
            await conn.execute(text(f'ALTER ROLE {SERVICE_ROLE} IN DATABASE "{db_name}" '
                                    "SET track_functions = 'pl'"))
        try:
            async with inprocess.ours(dep.served_url, dep.data_dir, dep.caller_subject,
                                      dep.caller_org, dep.background_url) as env:
                await env.post(body)
                await asyncio.sleep(11)  # backends flush their function counts when idle
                async with eng.connect() as conn:
                    before = int(await conn.scalar(text(count)) or 0)
                for _ in range(n):
                    await env.post(body)
                await asyncio.sleep(11)
                async with eng.connect() as conn:
                    after = int(await conn.scalar(text(count)) or 0)
        finally:
            async with eng.connect() as conn:
                await conn.execute(text(f'ALTER ROLE {SERVICE_ROLE} IN DATABASE "{db_name}" '
                                        "RESET track_functions"))
    return (after - before) / n


async def _unverified_org_level_ids(session: Any, scope: Any) -> set[uuid.UUID]:
    """Admission's decided set as before the MAC check (one SQL query, no rows checked)."""
    if scope.org_id is None or scope.purpose is None:
        return set()
    return set(await session.scalars(visibility.visible_peacebuilders(scope)))


def _trusting_reads() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(inprocess.patched(integrity, "intact", lambda *_a, **_k: True))
    stack.enter_context(inprocess.patched(context_mod, "verified_org_level_ids",
                                          _unverified_org_level_ids))
    return stack


async def page_ab(dep: Any, body: dict[str, Any], pairs: int) -> dict[str, dict[str, float]]:
    async with owner(dep) as eng:
        async with eng.connect() as conn:
            verifying = [await conn.scalar(text(f"SELECT pg_get_functiondef('{f}'::regprocedure)"))
                         for f in VERIFYING]

        async def swap(bodies: list[str]) -> None:
            async with eng.connect() as conn:
                for sql in bodies:
                    await conn.execute(text(sql))

        out: dict[str, dict[str, float]] = {}
        try:
            async with inprocess.ours(dep.served_url, dep.data_dir, dep.caller_subject,
                                      dep.caller_org, dep.background_url) as env:
                async def timed(db_off: bool, reads_off: bool) -> float:
                    await swap(TRUSTING if db_off else verifying)
                    with _trusting_reads() if reads_off else contextlib.nullcontext():
                        await env.post(body)  # replanned after the swap: not timed
                        t0 = time.perf_counter()
                        await env.post(body)
                        return time.perf_counter() - t0

                for name, db_off, reads_off in (
                        ("signed tenancy: verification in PostgreSQL", True, False),
                        ("consent MACs checked on read", False, True),
                        ("both", True, True)):
                    on: list[float] = []
                    off: list[float] = []
                    for i in range(pairs):
                        if i % 2:
                            on.append(await timed(False, False))
                            off.append(await timed(db_off, reads_off))
                        else:
                            off.append(await timed(db_off, reads_off))
                            on.append(await timed(False, False))
                    saved = statistics.median(a - b for a, b in zip(on, off, strict=True))
                    out[name] = {"on_ms": statistics.median(on) * 1000,
                                 "off_ms": statistics.median(off) * 1000,
                                 "cost_ms": saved * 1000,
                                 "share": saved / statistics.median(on) if on else 0.0}
        finally:
            await swap(verifying)
    return out


async def measure(dep: Any, pairs: int = 30) -> dict[str, Any]:
    """Everything above on one PostgreSQL deployment of bench/suite.py (`prepare`)."""
    keys = KeyEncryptionKeys(dep.data_dir / "kek")
    tenancy = await _decided(dep)
    assert tenancy.scope is Scope.ORG and tenancy.peacebuilders, "the caller should reach women"
    body = inprocess.page_body(50)
    return {"signing": signing(tenancy, keys),
            "per_verification": await per_verification(dep, tenancy, keys),
            "per_request": await verifications_per_request(dep, body),
            "ab": await page_ab(dep, body, pairs)}


def render(w: dict[str, Any]) -> list[str]:
    s, v = w["signing"], w["per_verification"]
    lines = [f"per transaction (Python): signing the caller's tenancy ({s['peacebuilders']} women,"
             f" {s['setting_bytes']:,} bytes of IDs) {s['sign_us']:.1f} us; unsigned settings "
             f"{s['settings_us']:.1f} us",
             f"per verification (PostgreSQL): sn_verified_scope() {v['verify_us']:.1f} us; the "
             f"unverified read it replaced {v['unverified_us']:.2f} us",
             f"the list's digest check: {v['digest_caller_us']:.1f} us at the caller's size, "
             f"{v['digest_10k_us']:.0f} us at 10,000 IDs (parsing the list, as before: "
             f"{v['parse_caller_us']:.1f} / {v['parse_10k_us']:.0f} us)",
             f"verifications per page request (counted by PostgreSQL): {w['per_request']:.1f}",
             f"{'A/B, page in process, one at a time':<44}{'on ms':>8}{'off ms':>8}{'cost ms':>9}"
             f"{'share':>7}"]
    for name, a in w["ab"].items():
        lines.append(f"{name:<44}{a['on_ms']:>8.2f}{a['off_ms']:>8.2f}{a['cost_ms']:>9.2f}"
                     f"{a['share'] * 100:>6.0f}%")
    lines.append("(cost = median of paired on-off differences; off = the 0007 bodies swapped into "
                 "the bench database / the MAC checks patched out in this process)")
    return lines


async def _main(a: argparse.Namespace) -> str:
    from bench import suite

    opts = suite.parse(["--db", "postgresql", "--pg-admin", a.pg_admin]
                       + (["--keep"] if a.keep else []))
    tmp = Path(tempfile.mkdtemp(prefix="sn-wall-"))
    dep = await suite.prepare("postgresql", tmp, "pgwall", opts.base_cases, 10_000, opts)
    try:
        print(f"bench.wall: 1k cases ready in {dep.prepare_s:.0f} s", flush=True)
        return "\n".join(render(await measure(dep, a.pairs)))
    finally:
        if not a.keep:
            await dep.drop()


def main(argv: list[str]) -> int:
    from bench import harness, suite

    ap = argparse.ArgumentParser(prog="bench.wall", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--pg-admin", default=suite.PG_ADMIN)
    a = ap.parse_args(argv)
    started = time.perf_counter()
    body = asyncio.run(_main(a))
    header = (f"the wall's cost, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, code "
              f"{suite._code_version()}, load avg {harness.load_average():.2f}")
    print(f"\n{header}\n{body}\n\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
