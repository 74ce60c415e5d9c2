"""Peak memory of a real server under the worst legal queries (issue 15), against the chart's
limit (768 MiB).

    .venv/bin/python -m bench.memory [--incidents 300] [--chars 20000] [--parallel 15]
                                     [--rounds 3] [--database-url URL] [--code DIR]

Starts `safety-net serve` on 127.0.0.1 (a fresh SQLite deployment with the demo data, or the
PostgreSQL database `--database-url` names, which it migrates and loads), seeds one case with
`--incidents` incidents whose description and alleged source are `--chars` characters each —
half of them control characters, which grow six-fold once JSON-escaped — through ordinary
`reportIncident` calls, then fires the worst queries the limits admit, `--parallel` at a time:

- the issue's query: 15 aliases of `node(id) { ... on Case { incidents { description
  allegedSourceAsReported } } }` (refused by cost before it runs),
- the largest legal variant of it (as many aliases as the cost budget admits),
- her `me { dataCopy }` as many times as the budget admits, and 15 times (refused by cost),
- her streamed download `GET /me/data-copy`.

Prints each query's outcome and the server's peak resident memory (VmHWM from /proc, i.e. the
high-water mark of the whole run) next to its memory right after seeding. The server is a
subprocess in its own process group, stopped by its own ID. `--code DIR` serves another
checkout's code (e.g. `git archive main | tar -x -C /tmp/sn-main`) for a before/after figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench import costs, harness
from bench.harness import Server
from bench.suite import rate_limit_settings

CHART_LIMIT_MIB = 768
REPORT = """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
  incident { id } userErrors { field message } } }"""
CASES = "{ cases(first: 20) { edges { node { id leadOrganisation { slug } } } } }"


def hostile(chars: int) -> str:
    """Half control characters (six bytes each once escaped), half letters."""
    unit = "\x01" * 50 + "x" * 50
    return (unit * (chars // len(unit) + 1))[:chars]


def worst(case_id: str, copies: int) -> str:
    aliases = " ".join(f'a{i}: node(id: "{case_id}") {{ ... on Case {{ ...I }} }}'
                       for i in range(copies))
    return ("fragment I on Case { incidents { description allegedSourceAsReported } } "
            f"query {{ {aliases} }}")


def copies(copies: int) -> str:
    return "{ " + " ".join(f"c{i}: me {{ dataCopy }}" for i in range(copies)) + " }"


def _cli(code: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(harness.VENV_BIN / "python"), "-m", "app.cli", *args], cwd=code,
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"safety-net {' '.join(args)} failed: {done.stdout}\n{done.stderr}")
    return done.stdout


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            name, value = line.split(":", 1)
            out[name] = int(value.split()[0]) * 1024
    return out


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def outcome(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            body = response.json()
        except ValueError:
            return f"HTTP {response.status_code} (not JSON)"
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            ext = errors[0].get("extensions") or {}
            return f"HTTP {response.status_code} {ext.get('code')} {ext.get('limit', '')}".strip()
        if "data" in body:
            return f"HTTP {response.status_code} data, {len(response.content):,} bytes"
        return f"HTTP {response.status_code} JSON document, {len(response.content):,} bytes"
    return f"HTTP {response.status_code} {len(response.content):,} bytes"


async def seed(client: httpx.AsyncClient, staff: dict[str, str], case_id: str, count: int,
               text: str) -> None:
    sem = asyncio.Semaphore(4)

    async def one() -> None:
        async with sem:
            r = await client.post("/graphql", headers=staff, json={"query": REPORT, "variables": {
                "i": {"caseId": case_id, "type": "THREATS", "severity": "LOW",
                      "reportedBy": "herself", "reportedVia": "phone", "description": text,
                      "allegedSourceAsReported": text}}}, timeout=120)
            body = r.json()
            if r.status_code != 200 or body.get("errors") or \
                    body["data"]["reportIncident"]["userErrors"]:
                raise RuntimeError(f"reportIncident failed: {str(body)[:300]}")

    await asyncio.gather(*(one() for _ in range(count)))


async def attack(base: str, staff: dict[str, str], her: dict[str, str], case_id: str,
                 parallel: int, rounds: int, max_cost: int) -> dict[str, Counter[str]]:
    per_copy = 1 + 20 * 21  # the cost model's figure for one alias (tests/test_bounded.py)
    legal = max(1, max_cost // per_copy)
    legal_copies = max(1, max_cost // 501)
    kinds: list[tuple[str, str, dict[str, str], Any]] = [
        ("issue query, 15 aliases", "POST", staff, {"query": worst(case_id, 15)}),
        (f"largest legal variant, {legal} aliases", "POST", staff,
         {"query": worst(case_id, legal)}),
        (f"me {{ dataCopy }} x {legal_copies}", "POST", her, {"query": copies(legal_copies)}),
        ("me { dataCopy } x 15", "POST", her, {"query": copies(15)}),
        ("GET /me/data-copy (streamed)", "GET", her, None),
    ]
    results: dict[str, Counter[str]] = {label: Counter() for label, *_ in kinds}
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        async def fire(label: str, method: str, headers: dict[str, str], body: Any) -> None:
            if method == "GET":
                # Read as a client would: chunk by chunk, counting bytes.
                async with client.stream("GET", "/me/data-copy", headers=headers) as r:
                    size = 0
                    async for chunk in r.aiter_bytes():
                        size += len(chunk)
                results[label][f"HTTP {r.status_code} streamed {size / 2**20:,.1f} MiB"] += 1
                return
            r = await client.post("/graphql", headers=headers, json=body)
            results[label][outcome(r)] += 1

        for _ in range(rounds):
            for label, method, headers, body in kinds:
                await asyncio.gather(*(fire(label, method, headers, body)
                                       for _ in range(parallel)))
            # And all of them at once.
            await asyncio.gather(*(fire(label, method, headers, body)
                                   for label, method, headers, body in kinds
                                   for _ in range(max(1, parallel // len(kinds)))))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--chars", type=int, default=20_000)
    parser.add_argument("--parallel", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL URL (migrated and loaded here); default: fresh SQLite")
    parser.add_argument("--code", type=Path, default=harness.ROOT)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    code = args.code.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="sn-bench-memory-"))
    url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'memory.db'}"
    env = costs.cli_env(url, tmp / "data")
    env.update({"SAFETY_NET_TOKEN_TTL": "7200", "SAFETY_NET_LOG_LEVEL": "WARNING",
                "SAFETY_NET_REQUEST_TIMEOUT": "120"})
    for name in rate_limit_settings():
        env[name] = "off"
    print(f"preparing {url.split('://')[0]} with the demo data ...", flush=True)
    _cli(harness.ROOT, env, "demo")
    staff_token = _cli(harness.ROOT, env, "token", "--org", "mofa", "--user",
                       "caseworker").split()[-1]
    her_token = _cli(harness.ROOT, env, "token", "--peacebuilder", "mariam").split()[-1]
    staff = {"authorization": f"Bearer {staff_token}", "safety-net-purpose": "protection"}
    her = {"authorization": f"Bearer {her_token}"}
    argv = [str(harness.VENV_BIN / "python"), "-m", "app.cli", "serve", "--host", harness.HOST,
            "--port", "{port}"]
    server = Server("memory", argv, env, tmp / "server.log", cwd=code)
    server.start()
    try:
        assert server.proc is not None
        pid = server.proc.pid
        print(f"server pid {pid}: {mib(_status(pid)['VmRSS'])} after start", flush=True)

        async def run() -> dict[str, Counter[str]]:
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
                found = (await client.post("/graphql", headers=staff,
                                           json={"query": CASES})).json()
                edges = found["data"]["cases"]["edges"]
                case_id = next(e["node"]["id"] for e in edges
                               if e["node"]["leadOrganisation"]["slug"] == "mofa")
                t0 = time.perf_counter()
                await seed(client, staff, case_id, args.incidents, hostile(args.chars))
                print(f"seeded {args.incidents} incidents x 2 texts x {args.chars:,} characters "
                      f"in {time.perf_counter() - t0:.0f}s through reportIncident", flush=True)
            seeded = _status(pid)
            print(f"after seeding: {mib(seeded['VmRSS'])} resident "
                  f"(peak so far {mib(seeded['VmHWM'])})", flush=True)
            return await attack(server.url, staff, her, case_id, args.parallel, args.rounds,
                                5000)

        t0 = time.perf_counter()
        results = asyncio.run(run())
        took = time.perf_counter() - t0
        final = _status(pid)
        print(f"\nworst legal queries, {args.parallel} in parallel, {args.rounds} rounds "
              f"({took:.0f}s):")
        for label, seen in results.items():
            print(f"  {label}:")
            for what, n in seen.most_common():
                print(f"      {n:4} x {what}")
        peak = final["VmHWM"]
        verdict = "under" if peak < CHART_LIMIT_MIB * 2**20 else "OVER"
        print(f"\nserver peak resident memory (VmHWM): {mib(peak)} — {verdict} the chart's "
              f"limit of {CHART_LIMIT_MIB} MiB; now {mib(final['VmRSS'])}")
        print(json.dumps({"peak_rss_bytes": peak, "limit_bytes": CHART_LIMIT_MIB * 2**20,
                          "incidents": args.incidents, "chars": args.chars,
                          "parallel": args.parallel, "rounds": args.rounds}))
        return 0 if verdict == "under" else 1
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
