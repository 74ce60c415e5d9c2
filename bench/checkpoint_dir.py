"""Request latency with a large checkpoint directory: the same server, the same log, with only
the newest checkpoint file and with one file per entry (100,000 by default).

    .venv/bin/python -m bench.checkpoint_dir [--files 100000] [--seconds 10] [--rounds 2]
                                             [--connections 2] [--code DIR]

Prepares a SQLite deployment once (`safety-net demo`, then `--files` chained access-log entries
from the bulk generator, each with a real signed checkpoint, as a worker that signed at every
idle moment would have left them), copies its database for each target, then runs
`safety-net serve` (log worker on, default settings, rate limits off) under wrk for each target in
turn, round after round, one server at a time. `--code DIR` serves another checkout's code (e.g.
`git archive main | tar -x -C /tmp/sn-main`) with the same data: the before/after comparison.
Ends with `safety-net audit verify` over the large directory (every file is read and checked).
Servers are subprocesses in their own process group, stopped by their own ID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from app.audit import chain, checkpoints
from app.config import Settings
from app.db import Database
from bench import audit_verify, costs, harness
from bench.harness import Sample, Server, Target
from bench.suite import rate_limit_settings

QUERY = "{ cases(first: 10) { edges { node { id status summary } } } }"  # a logged read


def _env(url: str, data_dir: Path, checkpoint_dir: Path) -> dict[str, str]:
    env = costs.cli_env(url, data_dir)
    env.update({"SAFETY_NET_CHECKPOINT_DIR": str(checkpoint_dir), "SAFETY_NET_TOKEN_TTL": "7200",
                "SAFETY_NET_LOG_LEVEL": "WARNING"})
    for name in rate_limit_settings():
        env[name] = "off"
    return env


def _cli(code: Path, env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run([str(harness.VENV_BIN / "python"), "-m", "app.cli", *args], cwd=code,
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"safety-net {' '.join(args)} failed: {done.stdout}\n{done.stderr}")
    return done.stdout


async def _generate(url: str, files: int) -> tuple[int, list[str]]:
    """`files` chained entries after the demo's; the size before them and every head after."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            head = await chain.head(session)
        heads: list[str] = []
        await audit_verify.generate(db, files, after=head.size, prev=head.hash, heads=heads)
        return head.size, heads
    finally:
        await db.dispose()


def _history(url: str, data_dir: Path, many: Path, files: int) -> int:
    """One signed checkpoint per generated entry (plain writes: this is setup); the log size."""
    after, heads = asyncio.run(_generate(url, files))
    settings = replace(Settings(), database_url=url, data_dir=data_dir)
    signer = checkpoints.Signer(settings.checkpoint_keys)
    many.mkdir(parents=True, exist_ok=True)
    start = datetime.now(UTC)
    for i, digest in enumerate(heads, start=after + 1):
        cp = signer.sign(i, digest, start)
        (many / checkpoints.note_name(i)).write_text(checkpoints.render(cp), encoding="utf-8")
    return after + files


def _count(directory: Path) -> int:
    with os.scandir(directory) as entries:
        return sum(1 for e in entries if e.name.endswith(".note"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--code", type=Path, default=harness.ROOT,
                        help="checkout whose app/ and schema/ the servers run (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    code = args.code.resolve()
    wrk = harness.ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="sn-bench-checkpoints-"))
    try:
        data_dir = tmp / "data"
        base_db = tmp / "base.db"
        url = f"sqlite+aiosqlite:///{base_db}"
        setup_env = _env(url, data_dir, data_dir / "checkpoints")
        t0 = time.perf_counter()
        print(f"preparing: demo data, {args.files:,} entries and checkpoints ...", flush=True)
        _cli(harness.ROOT, setup_env, "demo")
        _cli(harness.ROOT, setup_env, "audit", "chain")
        many, few = tmp / "checkpoints-many", tmp / "checkpoints-few"
        size = _history(url, data_dir, many, args.files)
        few.mkdir()
        shutil.copy2(many / checkpoints.note_name(size), few / checkpoints.note_name(size))
        print(f"prepared in {time.perf_counter() - t0:.0f}s: log size {size:,}, "
              f"{_count(many):,} files / {_count(few)} file", flush=True)
        token = _cli(harness.ROOT, setup_env, "token", "--org", "mofa", "--user", "focal").split()[-1]

        targets: dict[str, tuple[Path, Path]] = {}
        for label, directory in ((f"{_count(few)} checkpoint file", few),
                                 (f"{_count(many):,} checkpoint files", many)):
            db_file = tmp / f"{directory.name}.db"
            shutil.copy2(base_db, db_file)
            targets[label] = (db_file, directory)
        body = json.dumps({"query": QUERY}, separators=(",", ":"))
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                   "Safety-Net-Purpose": "protection"}
        argv = [str(harness.VENV_BIN / "python"), "-m", "app.cli", "serve", "--host", harness.HOST,
                "--port", "{port}"]
        samples: dict[str, list[Sample]] = {label: [] for label in targets}
        signed: dict[str, int] = dict.fromkeys(targets, 0)
        for r in range(args.rounds):
            for label, (db_file, directory) in targets.items():
                before = _count(directory)
                server = Server(label, argv, _env(f"sqlite+aiosqlite:///{db_file}", data_dir,
                                                  directory),
                                tmp / "logs" / f"{directory.name}.log", cwd=code)
                server.start(timeout=180)
                try:
                    target = Target(label, server, "/graphql", headers, [body])
                    harness.run_wrk(wrk, target, tmp / "req", args.warmup, args.connections)
                    sample = harness.run_wrk(wrk, target, tmp / "req", args.seconds,
                                             args.connections)
                finally:
                    server.stop()
                samples[label].append(sample)
                signed[label] += _count(directory) - before
                print(f"  round {r + 1}: {label:<26} {sample.rps:8.1f} req/s  p50 {sample.p50_ms:8.1f}"
                      f"  p99 {sample.p99_ms:8.1f} ms  failures {sample.failures}  "
                      f"load {sample.load:.2f}", flush=True)

        def med(label: str, attr: str) -> float:
            return float(statistics.median(getattr(s, attr) for s in samples[label]))

        print()
        print(f"code {code}  ({harness.cpu_model()}, load avg {harness.load_average():.2f})")
        print(f"wrk -c{args.connections}, {args.rounds} rounds x {args.seconds:.0f}s, one server "
              "at a time, log worker on; medians of the rounds")
        print(f"{'checkpoint directory':<28}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
              f"{'fail':>6}{'signed':>8}")
        for label in targets:
            print(f"{label:<28}{med(label, 'rps'):>8.1f}{med(label, 'p50_ms'):>9.1f}"
                  f"{med(label, 'p95_ms'):>9.1f}{med(label, 'p99_ms'):>9.1f}"
                  f"{sum(s.failures for s in samples[label]):>6}{signed[label]:>8}")
        print("(signed: checkpoint files the servers added during the runs)")

        db_file, directory = targets[list(targets)[-1]]
        t1 = time.perf_counter()
        out = _cli(code, _env(f"sqlite+aiosqlite:///{db_file}", data_dir, directory), "audit",
                   "verify", "--state", str(tmp / "state.json"), "--no-progress", timeout=3600)
        print(f"audit verify over the large directory ({time.perf_counter() - t1:.1f}s):")
        print("  " + out.strip().replace("\n", "\n  "))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
