"""Private PostgreSQL and Redis instances that a test may stop, crash or freeze, and a
`safety-net serve` process it may kill: never the shared services on 5432 and 6379.

PostgreSQL: `initdb` and `pg_ctl` of the machine, run as the `postgres` OS user when the test
runs as root (CI does; `initdb` refuses root), into a fresh directory under the system's temp
directory owned by that user, on a free port, trust authentication on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES

PG_USER = "postgres"  # the OS user that owns the private cluster when we run as root
COMMAND_TIMEOUT = 120  # seconds for any one initdb/pg_ctl call on a busy 2-core machine


def _unavailable(why: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(why)
    pytest.skip(why)


def _pg_tool(name: str) -> str:
    """initdb/pg_ctl: on PATH (Debian puts them in /usr/lib/postgresql/N/bin, not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in (v / name for v in versions):
        if candidate.exists():
            return str(candidate)
    _unavailable(f"PostgreSQL server tool {name!r} not found (install postgresql)")
    raise AssertionError("unreachable")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivatePostgres:
    """One private cluster: `start`, `stop(mode)`, `url(database)`."""

    root: Path
    port: int
    as_root: bool
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "postgres.log"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.as_root:
            command = ["runuser", "-u", PG_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=self.root)

    @classmethod
    def create(cls) -> PrivatePostgres:
        as_root = os.geteuid() == 0
        if as_root and shutil.which("runuser") is None:
            _unavailable("running as root without `runuser`: cannot run initdb as postgres")
        root = Path(tempfile.mkdtemp(prefix="sn-private-pg-"))
        if as_root:
            import pwd

            try:
                user = pwd.getpwnam(PG_USER)
            except KeyError:
                shutil.rmtree(root)
                _unavailable(f"running as root and there is no {PG_USER!r} OS user for initdb")
            os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
        pg = cls(root, free_port(), as_root)
        done = pg._run(_pg_tool("initdb"), "-D", str(pg.data), "-U", "postgres", "-A", "trust",
                       "-E", "UTF8", "--locale=C", "--no-instructions")
        if done.returncode != 0:
            pg.remove()
            raise AssertionError(f"initdb failed: {done.stdout}\n{done.stderr}")
        return pg

    def start(self) -> float:
        """Start and wait until it accepts connections; returns the seconds it took."""
        started = time.monotonic()
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                   "-c max_connections=60 -c shared_buffers=32MB -c fsync=on")
        done = self._run(_pg_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                         "-t", "60", "-o", options, "start")
        assert done.returncode == 0, f"pg_ctl start failed: {done.stdout}{done.stderr}\n{self.tail()}"
        return time.monotonic() - started

    def stop(self, mode: str = "fast") -> float:
        """`pg_ctl stop -m fast` (a clean shutdown) or `-m immediate` (a crash: no checkpoint,
        recovery from the WAL at the next start)."""
        started = time.monotonic()
        done = self._run(_pg_tool("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-m", mode,
                         "stop")
        assert done.returncode == 0, f"pg_ctl stop -m {mode} failed: {done.stdout}{done.stderr}"
        return time.monotonic() - started

    def running(self) -> bool:
        return self._run(_pg_tool("pg_ctl"), "-D", str(self.data), "status").returncode == 0

    def url(self, database: str = "postgres", driver: str = "postgresql") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def remove(self) -> None:
        if self.data.exists() and self.running():
            self._run(_pg_tool("pg_ctl"), "-D", str(self.data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class PrivateRedis:
    """One `redis-server` on a free port, no persistence; `freeze` sends SIGSTOP."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls) -> PrivateRedis:
        if shutil.which("redis-server") is None:
            _unavailable("redis-server not found (install redis-server)")
        return cls(free_port())

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                                      capture_output=True, text=True, timeout=5, check=False)
                if done.stdout.strip() == "PONG":
                    return
            except subprocess.TimeoutExpired:
                pass
            assert self.process.poll() is None, "private redis-server exited"
            assert time.monotonic() < deadline, "private redis-server did not answer"
            time.sleep(0.1)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@dataclass
class Server:
    """One `safety-net serve` process on a free port, restartable after a kill."""

    command: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, ready_within: float = 120) -> float:
        started = time.monotonic()
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts + 1} ---\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *self.command, "--port", str(self.port), env=self.env, cwd=self.cwd,
                stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as http:
            while True:
                assert self.process.returncode is None, f"server exited: {self.output()}"
                assert time.monotonic() - started < ready_within, f"not ready: {self.output()}"
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """`kill -9`: no shutdown of any kind."""
        assert self.process is not None and self.process.returncode is None
        self.process.send_signal(signal.SIGKILL)

    async def wait_dead(self) -> None:
        assert self.process is not None
        await asyncio.wait_for(self.process.wait(), 30)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""
