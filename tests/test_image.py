"""The container image (Containerfile) is built and run here, with Debian's own tools and no
Docker engine or registry: `debootstrap --variant=minbase` makes a base of this machine's Debian
release with python3 and python3-venv (cached), `buildah bud` (vfs storage, chroot isolation)
builds the image FROM it offline from the cached wheelhouse, and `buildah run` (host network)
runs the image's CLI and server against the test PostgreSQL: migrate, demo, serve, /readyz, a
token from the image's CLI accepted by a GraphQL query. Build time and image size are printed.

Needs root, buildah and debootstrap; skipped without them, unless SAFETY_NET_REQUIRE_SERVICES=1
(.ci/run installs both), where that is a failure. Every step is bounded in time. The cache
(debootstrap root filesystem, wheelhouse, buildah's storage with its layer cache) lives in
SAFETY_NET_DEPLOY_CACHE (default /var/tmp/safety-net-deploy-cache)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, figure, require_pg
from tests.deploy_support import (
    REPO_ROOT,
    cache_dir,
    free_port,
    locked,
    query_cases,
    run,
    source_copy,
    unavailable,
    wait_ready,
    wheelhouse,
)

pytestmark = pytest.mark.heavy

MIRROR = os.environ.get("SAFETY_NET_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = "python3,python3-venv"
IMAGE = "localhost/safety-net:test"
UID = "10001"


def _codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    unavailable("no VERSION_CODENAME in /etc/os-release: not a Debian-like machine")
    return ""


def _tools() -> None:
    if os.geteuid() != 0:
        unavailable("building the image needs root (buildah with vfs storage, debootstrap)")
    missing = [t for t in ("buildah", "debootstrap") if not shutil.which(t)]
    if missing:
        unavailable(f"{', '.join(missing)} not installed (apt-get install buildah debootstrap)")


class Buildah:
    """buildah with storage of its own under the cache directory (never the machine's)."""

    def __init__(self, root: Path) -> None:
        self.flags = ["--root", str(root / "storage"), "--runroot", str(root / "run"),
                      "--storage-driver", "vfs"]

    def __call__(self, *args: str, timeout: float = 120) -> str:
        return run(["buildah", *self.flags, *args], timeout=timeout).stdout.strip()

    def has_image(self, name: str) -> bool:
        done = subprocess.run(["buildah", *self.flags, "images", "-q", name],
                              capture_output=True, text=True, timeout=60, check=False)
        return done.returncode == 0 and bool(done.stdout.strip())


def _base_image(buildah: Buildah, timings: dict[str, float]) -> str:
    """The debootstrap'd Debian of this machine, imported once as a buildah image."""
    codename = _codename()
    name = f"localhost/safety-net-base:{codename}"
    home = cache_dir() / f"base-{codename}"
    home.mkdir(exist_ok=True)
    rootfs = home / "rootfs"
    with locked(home):
        if not (home / ".complete").exists():
            started = time.monotonic()
            shutil.rmtree(rootfs, ignore_errors=True)
            run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", codename,
                 str(rootfs), MIRROR], timeout=1200)
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (rootfs / junk).glob("*"):
                    if path.is_file():
                        path.unlink()
            (home / ".complete").write_text(f"{codename} {BASE_PACKAGES}\n")
            timings["debootstrap"] = time.monotonic() - started
        if not buildah.has_image(name):
            started = time.monotonic()
            tar = home / "rootfs.tar"
            run(["tar", "-C", str(rootfs), "--exclude=./proc/*", "--exclude=./sys/*",
                 "--exclude=./dev/*", "-cf", str(tar), "."], timeout=300)
            ctr = buildah("from", "scratch")
            buildah("add", ctr, str(tar), "/", timeout=300)
            buildah("config", "--cmd", "/bin/sh", ctr)
            buildah("commit", "--rm", ctr, name, timeout=600)
            tar.unlink()
            timings["base import"] = time.monotonic() - started
    return name


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh database on the test PostgreSQL; the image connects as its superuser (the
    roles' separation is exercised by test_rls/test_wall, not here)."""
    require_pg()
    import asyncpg

    name = f"sn_image_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_image_builds_and_runs(tmp_path: Path, pg_database: str) -> None:
    _tools()
    timings: dict[str, float] = {}
    started = time.monotonic()
    state = cache_dir() / "buildah"
    buildah = Buildah(state)
    base = _base_image(buildah, timings)

    # The build context: the sources and the (hard-linked) cached wheelhouse, nothing else.
    t = time.monotonic()
    context = source_copy(tmp_path / "context")
    house = wheelhouse()
    shutil.copytree(house, context / "wheelhouse", copy_function=os.link,
                    ignore=shutil.ignore_patterns(".*"))
    timings["context"] = time.monotonic() - t
    revision = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    t = time.monotonic()
    # No --layers: with vfs storage every committed layer is a full copy of the root filesystem,
    # which cost more than the cache saved (pip installs from the local wheelhouse).
    buildah("bud", "--isolation", "chroot", "--format", "docker",
            "--build-arg", f"BASE={base}", "--build-arg", f"REVISION={revision or 'unknown'}",
            "-f", str(context / "Containerfile"), "-t", IMAGE, str(context), timeout=1800)
    timings["build"] = time.monotonic() - t

    info = json.loads(buildah("inspect", "--type", "image", IMAGE))
    config = info["Docker"]["config"]
    assert config["User"] == f"{UID}:{UID}"
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] == (revision or "unknown")
    size = json.loads(buildah("images", "--json", IMAGE))[0]["size"]  # buildah's own "291 MB"
    base_size = json.loads(buildah("images", "--json", base))[0]["size"]

    # Run it: one working container for the CLI, one for the server, host network, as UID 10001,
    # with the data directory a mounted volume (as the chart mounts its Secrets and claim).
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, int(UID), int(UID))
    env = [f"DATABASE_URL={pg_database}", "SAFETY_NET_LOG_LEVEL=WARNING",
           "SAFETY_NET_DATA_DIR=/var/lib/safety-net"]
    run_flags = ["--isolation", "chroot", "--network", "host", "--user", f"{UID}:{UID}",
                 "--volume", f"{data}:/var/lib/safety-net"]

    def in_image(ctr: str, *args: str, timeout: float = 180) -> str:
        return buildah("run", *run_flags, ctr, "--", "/usr/bin/env", *env,
                       "/app/.venv/bin/safety-net", *args, timeout=timeout)

    cli = buildah("from", "--pull-never", IMAGE)
    srv = buildah("from", "--pull-never", IMAGE)
    server: subprocess.Popen[str] | None = None
    try:
        # Nothing of the sources or tests, no pip, no compiler in the image.
        probe = buildah("run", *run_flags, cli, "--", "/bin/sh", "-c",
                        "ls /app; ls /app/.venv/bin; command -v cc gcc || true; "
                        "touch /app/x 2>&1 || true; touch /tmp/x && echo tmp-writable")
        assert "pip" not in probe.split() and "gcc" not in probe and "/usr/bin/cc" not in probe
        assert "tests" not in probe.split() and "tmp-writable" in probe
        assert "Permission denied" in probe, "the service's UID cannot write the image's files"

        t = time.monotonic()
        assert "migrated" in in_image(cli, "migrate")
        assert "demo data loaded" in in_image(cli, "demo")
        timings["migrate+demo"] = time.monotonic() - t
        port = free_port()
        server = subprocess.Popen(
            ["buildah", *buildah.flags, "run", *run_flags, srv, "--", "/usr/bin/env", *env,
             "/app/.venv/bin/safety-net", "serve", "--host", "127.0.0.1", "--port", str(port)],
            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, server, timeout=120)
        token = in_image(cli, "token", "--org", "mofa", "--user", "caseworker", timeout=120)
        cases = query_cases(base_url, token.splitlines()[-1])
        assert isinstance(cases["totalCount"], int) and cases["totalCount"] > 0
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)
        for ctr in (cli, srv):
            subprocess.run(["buildah", *buildah.flags, "rm", ctr], capture_output=True,
                           timeout=120, check=False)
        # Earlier builds of the tag, now untagged: vfs keeps full copies, so the cache would grow.
        subprocess.run(["buildah", *buildah.flags, "rmi", "--prune"], capture_output=True,
                       timeout=300, check=False)
    timings["total"] = time.monotonic() - started
    figure(f"image test: {', '.join(f'{k} {v:.1f}s' for k, v in timings.items())}; "
           f"image {IMAGE} {size} (base {base} {base_size})")
