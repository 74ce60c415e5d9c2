"""Servers as subprocesses on loopback, and the external load generator (wrk).

Every wait is bounded; servers are started in their own session and stopped by their own
process-group ID (never by name).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
LUA = ROOT / "bench" / "wrk" / "requests.lua"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def ensure_wrk() -> str:
    """wrk from Debian; installed with apt-get when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: wrk is missing; installing the Debian package (apt-get install -y wrk) ...",
              flush=True)
        cmd = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(cmd, capture_output=True, timeout=300, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300,
                           check=False)
            subprocess.run(cmd, capture_output=True, timeout=300, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("bench: wrk is required (Debian: apt-get install -y wrk)")


@dataclass
class Server:
    """One uvicorn server (ours or a baseline) in its own process group."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    cwd: Path = ROOT  # another checkout's code runs with `python -m app.cli` from its directory

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /healthz within {timeout:.0f}s; "
                           f"see {self.log}")

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # our own child's group, by its ID
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def post(url: str, body: dict[str, Any] | None, headers: dict[str, str],
         timeout: float = 30.0) -> Any:
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(url, data=data, method="POST",  # noqa: S310 - loopback only
                                 headers={"content-type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
        return json.loads(r.read())


@dataclass(frozen=True)
class Target:
    """One thing wrk hammers: a server, a path, headers and the bodies it rotates through."""

    label: str
    server: Server
    path: str
    headers: dict[str, str]
    bodies: list[str]
    connections: int | None = None  # None: the run's default

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        f = directory / f"{self.label.replace(' ', '_').replace('/', '_')}.req"
        lines = [self.path, *(f"{k}: {v}" for k, v in self.headers.items()), "--", *self.bodies]
        f.write_text("\n".join(lines) + "\n")
        return f


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    failures: int
    load: float


def run_wrk(wrk: str, target: Target, work: Path, seconds: float, connections: int,
            threads: int = 1) -> Sample:
    req = target.write(work)
    load = load_average()
    connections = target.connections or connections
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--timeout", "10s", "-s", str(LUA), target.server.url, "--", str(req)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed for {target.label}: {done.stdout}\n{done.stderr}")
    r = json.loads(line[len("BENCH_JSON "):])
    seconds_run = r["duration_us"] / 1e6
    failures = r["socket_errors"] + r["bad_status"] + r["graphql_errors"]
    return Sample(rps=r["requests"] / seconds_run, p50_ms=r["p50_us"] / 1000,
                  p95_ms=r["p95_us"] / 1000, p99_ms=r["p99_us"] / 1000, requests=r["requests"],
                  failures=failures, load=(load + load_average()) / 2)
