"""The wheel is the deployable package: built from the repository, installed into a fresh
virtualenv with the locked runtime dependencies only (hash-checked, offline from the cached
wheelhouse), and run from an unrelated directory: migrate, demo, serve, one GraphQL query with a
token from the CLI, audit verify (issue 21; docs/decisions/0019-deployable-artifact.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import figure
from tests.deploy_support import (
    REPO_ROOT,
    free_port,
    query_cases,
    run,
    source_copy,
    stop,
    wait_ready,
    wheelhouse,
)

pytestmark = pytest.mark.heavy


def test_wheel_installs_and_runs_from_anywhere(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    house = wheelhouse()
    timings["wheelhouse"] = time.monotonic() - started

    # Build from a clean copy of the sources (no stale build/ of the working tree).
    t = time.monotonic()
    src = source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(dist), str(src)], timeout=180)
    (wheel,) = dist.glob("safety_net-*.whl")
    timings["wheel"] = time.monotonic() - t

    # A fresh venv: the runtime part of the lock, hash-checked, then the wheel itself.
    t = time.monotonic()
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    py = str(venv / "bin" / "python")
    lock = tmp_path / "runtime.lock"
    lock.write_text(run([sys.executable, str(REPO_ROOT / "scripts" / "runtime_lock.py")],
                        timeout=30).stdout)
    pip = [py, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-index",
           "--find-links", str(house)]
    run([*pip, "--require-hashes", "-r", str(lock)], timeout=300)
    run([*pip, "--no-deps", str(wheel)], timeout=120)
    run([py, "-m", "pip", "check"], timeout=60)
    timings["install"] = time.monotonic() - t

    # Another directory, an environment without the repository on any path.
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAFETY_NET_", "DATABASE_URL", "REDIS_URL", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    cli = str(venv / "bin" / "safety-net")

    def sn(*args: str, timeout: float = 180) -> str:
        return run([cli, *args], timeout=timeout, cwd=work, env=env).stdout

    where = run([py, "-c", "import app, alembic; from app.config import resource_dir; "
                 "print(app.__file__); print(resource_dir('migrations'))"],
                timeout=60, cwd=work, env=env).stdout.split()
    assert all(str(venv) in p for p in where), where
    t = time.monotonic()
    assert "migrated" in sn("migrate")
    assert "demo data loaded" in sn("demo")
    assert (work / "var" / "safety-net.db").exists(), "the data directory is ./var"
    timings["migrate+demo"] = time.monotonic() - t

    port = free_port()
    server = subprocess.Popen([cli, "serve", "--port", str(port)], cwd=work, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, server, timeout=60)
        token = sn("token", "--org", "mofa", "--user", "caseworker", timeout=60).strip()
        cases = query_cases(base, token)
        assert isinstance(cases["totalCount"], int) and cases["totalCount"] > 0
    finally:
        stop(server)
    verified = sn("audit", "verify", "--no-progress", timeout=120)
    assert "OK:" in verified, verified
    timings["total"] = time.monotonic() - started
    figure("wheel test: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
           + f"; wheel {wheel.name} {wheel.stat().st_size / 1024:.0f} KiB")
