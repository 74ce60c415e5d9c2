"""CPU per request of the serving process, ours against the bare baseline, in one process.

    .venv/bin/python -m bench.cpu [--db postgresql|sqlite] [--op page|case] [--requests 40]
                                  [--profile]

With one uvicorn worker sharing two cores with PostgreSQL and wrk, HTTP figures move by +-10 %
between runs of the same code; the CPU time the serving process spends per request
(`time.process_time`, ours and bare alternating, medians) is the steadier measure of what a change
to the app saves. `--profile` adds a cProfile (on CPU time) of each, grouped by package, sorted by
ours minus bare: where the difference goes. Prepares its own 1k-case deployment like bench/run.py
(the service role on PostgreSQL) and drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import inprocess, suite


def _group(fn: tuple[str, int, str]) -> str:
    path = fn[0]
    found = re.search(r"site-packages/([^/]+)", path)
    if found:
        return found.group(1)
    found = re.search(r"/(app|schema|bench)/(\w+)", path)
    if found:
        return f"{found.group(1)}/{found.group(2)}"
    if path == "~":
        return "builtin:" + fn[2][:40]
    return "stdlib:" + path.rsplit("/", 1)[-1]


async def _measure(dep: Any, op: str, n: int, profile: bool) -> None:
    async with inprocess.ours(dep.served_url, dep.data_dir, dep.caller_subject, dep.caller_org,
                              dep.background_url) as ours, \
            inprocess.bare(dep.url, dep.caller_org) as bare:
        def body(i: int) -> dict[str, Any]:
            if op == "page":
                return inprocess.page_body(50)
            return inprocess.case_body(dep.case_ids[i % len(dep.case_ids)])

        for i in range(5):
            await ours.post(body(i))
            await bare.post(body(i))
        cpu: dict[str, list[float]] = {"ours": [], "bare": []}
        for i in range(n):
            for name, env in (("ours", ours), ("bare", bare)):
                t0 = time.process_time()
                await env.post(body(i))
                cpu[name].append(time.process_time() - t0)
        o, b = statistics.median(cpu["ours"]) * 1000, statistics.median(cpu["bare"]) * 1000
        print(f"{dep.backend} {op}: CPU per request ours {o:.2f} ms, bare {b:.2f} ms "
              f"(bare/ours {b / o:.2f}x)")
        if not profile:
            return
        groups: dict[str, collections.Counter[str]] = {}
        for name, env in (("ours", ours), ("bare", bare)):
            prof = cProfile.Profile(time.process_time)
            prof.enable()
            for i in range(n):
                await env.post(body(i))
            prof.disable()
            counter: collections.Counter[str] = collections.Counter()
            for fn, (_cc, _nc, tottime, _ct, _callers) in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
                counter[_group(fn)] += tottime
            groups[name] = counter
        keys = sorted(set(groups["ours"]) | set(groups["bare"]),
                      key=lambda k: groups["bare"][k] - groups["ours"][k])
        print(f"{'profiled ms per request (cProfile overhead included)':50s} {'ours':>8s} {'bare':>8s}")
        for k in keys[:30]:
            print(f"{k:50s} {groups['ours'][k] / n * 1000:8.2f} {groups['bare'][k] / n * 1000:8.2f}")
        print(f"{'total':50s} {sum(groups['ours'].values()) / n * 1000:8.2f} "
              f"{sum(groups['bare'].values()) / n * 1000:8.2f}")


async def _main(backend: str, op: str, n: int, profile: bool) -> None:
    opts = suite.parse(["--db", backend])
    work = Path(tempfile.mkdtemp(prefix="sn-cpu-"))
    try:
        dep = await suite.prepare(backend, work, "cpu", opts.base_cases, 1_000, opts)
        try:
            await _measure(dep, op, n, profile)
        finally:
            await dep.drop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench.cpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    ap.add_argument("--op", choices=["page", "case"], default="page")
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args(argv)
    asyncio.run(_main(a.db, a.op, a.requests, a.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
