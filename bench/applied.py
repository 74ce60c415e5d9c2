"""Before/after numbers of the proposals applied from bench/README.md, measured in one run.

    .venv/bin/python -m bench.applied [--db sqlite|postgresql|both] [--big 10000] [--pairs 40]

"After" is the code as it is; "before" is the previous implementation of one change patched back
in *this process only* (the functions below, copied from the commit before the change). Each
change is measured on its own: requests alternate after/before one at a time (A/B, then B/A),
and the saving is the median of the paired differences, so background load on a shared machine
falls on both alike. Also: SQL statements per request with every change off and on, that the
page's data is identical either way, and the page's main statement at each size (bench/plans.py,
also run on SQLite here). Databases come from the benchmark's own generator (bench/suite.py
`prepare`, `grow`) and are dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import schema.cases.queries as case_queries
from app.access import context as context_mod
from app.access import visibility
from app.access.context import AccessContext
from app.access.visibility import (
    ALL_CATEGORIES,
    CareScope,
    Mode,
    live_clause,
    visible_peacebuilders,
)
from app.cases import repository as repo
from app.tables.cases import Case
from app.tables.categories import Purpose
from app.tables.consent import BreakGlass, ConsentAccess
from bench import inprocess, plans, suite

# --- the previous implementations ----------------------------------------------------------


async def old_categories_for(
    session: AsyncSession, scope: CareScope, pb_ids: list[uuid.UUID], *,
    consent_only: bool = False,
) -> dict[uuid.UUID, frozenset[str]]:
    """categories_for before proposal 6: the visibility query, then the categories query."""
    if consent_only and scope.purpose == Purpose.EMERGENCY_RESPONSE:
        scope = CareScope(org_id=scope.org_id, subject=scope.subject, purpose=scope.purpose,
                          now=scope.now, mode=scope.mode,
                          self_peacebuilder_id=scope.self_peacebuilder_id, glass=False)
    if not pb_ids:
        return {}
    if scope.mode is Mode.SELF:
        return {pb: ALL_CATEGORIES for pb in pb_ids if pb == scope.self_peacebuilder_id}
    candidates = visible_peacebuilders(scope).subquery()
    visible = set(await session.scalars(
        select(candidates.c[0]).where(candidates.c[0].in_(pb_ids))))
    if not visible or scope.mode is Mode.ANALYST:
        return {pb: frozenset() for pb in visible}
    out: dict[uuid.UUID, set[str]] = defaultdict(set)
    rows = await session.execute(select(ConsentAccess.peacebuilder_id, ConsentAccess.category).where(
        ConsentAccess.org_id == scope.org_id, ConsentAccess.purpose == scope.purpose,
        ConsentAccess.peacebuilder_id.in_(list(visible)), live_clause(scope.now)))
    for pb, category in rows:
        out[pb].add(category)
    if scope.purpose == Purpose.EMERGENCY_RESPONSE and scope.glass:
        glass = await session.scalars(select(BreakGlass.peacebuilder_id).where(
            BreakGlass.org_id == scope.org_id, BreakGlass.peacebuilder_id.in_(list(visible)),
            BreakGlass.opened_at <= scope.now, BreakGlass.expires_at > scope.now,
            BreakGlass.closed_at.is_(None)))
        for pb in glass:
            out[pb] |= ALL_CATEGORIES
    return {pb: frozenset(out.get(pb, set())) for pb in visible}


async def old_visible_cases(self: AccessContext, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, Case]:
    """Before proposal 6: every caller re-selected the cases through the visibility subquery."""
    return await repo.by_ids(self.session, self.care_scope(), case_ids)


def _no_remember(self: AccessContext, cases: Any) -> None:
    return None


def _always(info: Any, name: str) -> bool:
    return True


@contextlib.contextmanager
def patched(*patches: tuple[Any, str, Any]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for target, name, value in patches:
            stack.enter_context(inprocess.patched(target, name, value))
        yield


# name -> the patches that bring back the code before that change
BEFORE: dict[str, list[tuple[Any, str, Any]]] = {
    "1 page from a MATERIALIZED CTE": [(repo, "page_query", repo.query)],
    "4 count only if totalCount": [(case_queries, "selects", _always)],
    "6a visible cases once per request": [(AccessContext, "visible_cases", old_visible_cases),
                                          (AccessContext, "remember_visible_cases", _no_remember)],
    "6b categories in one query": [(context_mod, "categories_for", old_categories_for),
                                   (visibility, "categories_for", old_categories_for)],
}


def before(*names: str) -> Callable[[], Any]:
    chosen = [p for n in (names or tuple(BEFORE)) for p in BEFORE[n]]
    return lambda: patched(*chosen)


# --- measurements -------------------------------------------------------------------------


async def ab(env: inprocess.InProcess, body: Callable[[int], dict[str, Any]],
             switch: Callable[[], Any], pairs: int) -> dict[str, float]:
    """after = as the code is, before = `switch` on; saved = median(before - after)."""
    r = await inprocess.ab(env, body, switch, pairs)
    return {"before_ms": r["off_ms"], "after_ms": r["on_ms"], "saved_ms": -r["saved_ms"]}


async def statements(env: inprocess.InProcess, body: dict[str, Any]) -> tuple[int, int]:
    with before()():
        b = await env.statements(body)
    return b, await env.statements(body)


async def same_data(env: inprocess.InProcess, body: dict[str, Any]) -> bool:
    with before()():
        b = await env.post(body)
    return bool(b.get("data") == (await env.post(body)).get("data"))


async def measure(dep: suite.Deployment, pairs: int, label: str) -> dict[str, Any]:
    page = inprocess.page_body(50)
    counted = inprocess.counted_page_body(50)
    case = inprocess.case_body(dep.case_ids[0])
    out: dict[str, Any] = {"label": label, "statements": {}, "ab": {}, "same": {}}
    async with inprocess.ours(dep.url, dep.data_dir, dep.caller_subject, dep.caller_org) as env:
        for name, body in (("page", page), ("page + totalCount", counted), ("case(id)", case)):
            out["statements"][name] = await statements(env, body)
            out["same"][name] = await same_data(env, body)
        for name in BEFORE:
            out["ab"][f"page: {name}"] = await ab(env, lambda _: page, before(name), pairs)
        out["ab"]["page: all of them"] = await ab(env, lambda _: page, before(), pairs)
        out["ab"]["case(id): all of them"] = await ab(env, lambda _: case, before(), pairs)
    return out


async def plan(dep: suite.Deployment) -> dict[str, Any]:
    return await plans.page_statement(dep.url, dep.caller_org, dep.caller_subject, n=15)


def render(results: list[dict[str, Any]], plan_rows: dict[str, Any]) -> str:
    lines = []
    for r in results:
        lines.append(f"== {r['label']} ==")
        lines.append(f"{'SQL statements per request':<44}{'before':>8}{'after':>8}  same data")
        for name, (b, a) in r["statements"].items():
            lines.append(f"{name:<44}{b:>8}{a:>8}  {'yes' if r['same'][name] else 'NO'}")
        lines.append(f"{'A/B, ms per request (median)':<44}{'before':>8}{'after':>8}{'saved':>8}")
        for name, x in r["ab"].items():
            lines.append(f"{name:<44}{x['before_ms']:>8.1f}{x['after_ms']:>8.1f}"
                         f"{x['saved_ms']:>8.2f}")
        lines.append("")
    if plan_rows:
        lines.append("== the page's main statement, database ms per execution (median) ==")
        lines.append(f"{'cases':<20}{'IN (visible), before':>22}{'MATERIALIZED CTE, now':>23}"
                     f"{'+ index (not added)':>21}  same cases")
        for size, p in plan_rows.items():
            lines.append(f"{size:<20}{p['current']:>22.2f}{p['materialized CTE']:>23.2f}"
                         f"{p['+ index (opened_at, id)']:>21.2f}  {'yes' if p['same'] else 'NO'}")
    return "\n".join(lines)


async def run(a: argparse.Namespace) -> str:
    opts = suite.parse(["--db", a.db] + (["--keep"] if a.keep else []))
    tmp = Path(tempfile.mkdtemp(prefix="sn-applied-"))
    deps: list[suite.Deployment] = []
    results: list[dict[str, Any]] = []
    plan_rows: dict[str, Any] = {}
    try:
        for backend in opts.dbs:
            t0 = time.perf_counter()
            base = await suite.prepare(backend, tmp, f"{backend[:2]}a", opts.base_cases,
                                       opts.base_log, opts)
            deps.append(base)
            print(f"applied: {backend} 1k ready in {time.perf_counter() - t0:.0f} s", flush=True)
            results.append(await measure(base, a.pairs, f"{backend}, {opts.base_cases:,} cases"))
            plan_rows[f"{backend} {opts.base_cases:,}"] = await plan(base)
            if backend != "postgresql":
                continue
            for size in a.big:
                t0 = time.perf_counter()
                big = await suite.prepare(backend, tmp, f"pgb{size}", opts.base_cases,
                                          opts.base_log, opts)
                deps.append(big)
                await suite.grow(big, size, opts.base_log)
                print(f"applied: {backend} {size:,} ready in {time.perf_counter() - t0:.0f} s",
                      flush=True)
                plan_rows[f"{backend} {size:,}"] = await plan(big)
                results.append(await measure(big, a.pairs, f"{backend}, {size:,} cases"))
    finally:
        if not a.keep:
            for d in deps:
                await d.drop()
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"applied: kept {[d.url for d in deps]} and {tmp}")
    return render(results, plan_rows)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench.applied", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--big", type=int, nargs="*", default=[10_000],
                    help="PostgreSQL sizes beyond 1k to generate (default 10000)")
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    started = time.perf_counter()
    text = render_header() + "\n" + asyncio.run(run(a))
    print()
    print(text)
    print(f"\n{time.perf_counter() - started:.0f} s")
    out = suite.OUT_DIR / f"applied-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return 0


def render_header() -> str:
    from bench import harness

    return (f"applied proposals, before (patched back in this process) vs after; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, code {suite._code_version()}, "
            f"load avg {harness.load_average():.2f}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
