"""Shared by the deployable-artifact tests (test_wheel.py, test_image.py): a cached wheelhouse,
a clean copy of the sources to build from, bounded subprocesses and the quick-start smoke."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("SAFETY_NET_REQUIRE_SERVICES") == "1"
# What a build needs from the repository (the image's build context, the wheel's sources).
SOURCES = ("app", "schema", "migrations", "policies", "tenants", "scripts", "pyproject.toml",
           "setup.py", "MANIFEST.in", "requirements.lock", "Containerfile", ".containerignore")
QUERY = "{ cases(first: 10) { totalCount edges { node { id status } } } }"


def cache_dir() -> Path:
    """Survives between runs (tests run with -p no:cacheprovider): the wheelhouse and the
    debootstrap root filesystem. SAFETY_NET_DEPLOY_CACHE moves it."""
    default = "/var/tmp/safety-net-deploy-cache"  # noqa: S108 - root-run CI cache, kept across boots
    path = Path(os.environ.get("SAFETY_NET_DEPLOY_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def unavailable(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (SAFETY_NET_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One builder at a time per cached item (parallel test runs share the cache)."""
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run(cmd: list[str], timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """A bounded step; its output is in the failure message."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(map(str, cmd))[:300]} took longer than {timeout}s: "
                    f"{(exc.stderr or b'')[-2000:]!r}")
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))[:300]} exited {done.returncode}:\n"
                    f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done  # type: ignore[no-any-return]


def wheelhouse() -> Path:
    """Every wheel of requirements.lock, hash-checked, downloaded once per lock file
    (scripts/wheelhouse.sh, the operator's own step)."""
    digest = hashlib.sha256((REPO_ROOT / "requirements.lock").read_bytes()).hexdigest()[:16]
    path = cache_dir() / f"wheelhouse-{digest}"
    stamp = path / ".complete"
    with locked(path):
        if not stamp.exists():
            shutil.rmtree(path, ignore_errors=True)
            try:
                subprocess.run(["sh", str(REPO_ROOT / "scripts" / "wheelhouse.sh"), str(path)],
                               env={**os.environ, "PYTHON": sys.executable}, check=True,
                               capture_output=True, text=True, timeout=600)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                shutil.rmtree(path, ignore_errors=True)
                unavailable(f"cannot download the wheelhouse (needs PyPI once): {exc.stderr!r:.1500}")
            stamp.write_text(digest)
    return path


def source_copy(target: Path) -> Path:
    """The build inputs only: no .venv, var/, build/ or egg-info of the working tree."""
    target.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_bundle", "*.egg-info")
    for name in SOURCES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, target / name)
    return target


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the server exited {proc.returncode}:\n{out[-2000:]}\n{err[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    pytest.fail(f"{base}/readyz did not answer 200 within {timeout}s")


def query_cases(base: str, token: str) -> dict[str, object]:
    """The README's quick-start query, as a caseworker of mofa."""
    response = httpx.post(f"{base}/graphql", json={"query": QUERY}, timeout=10, headers={
        "Authorization": f"Bearer {token}", "Safety-Net-Purpose": "protection"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, json.dumps(body)[:1000]
    result: dict[str, object] = body["data"]["cases"]
    return result


def stop(proc: subprocess.Popen[str], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
