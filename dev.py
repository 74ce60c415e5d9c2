#!/usr/bin/env python3
"""Bootstrap and run Safety Net with nothing but python3.

    python3 dev.py run     # demo tenants + data on embedded SQLite, serves http://127.0.0.1:8000/graphql
    python3 dev.py test    # the whole test suite (SQLite, plus PostgreSQL/Redis when reachable)

Both create `.venv/` on first use and install the pinned dependencies from `requirements.lock`.
Any other arguments are passed on (`dev.py run --port 9000`, `dev.py test -k consent`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".installed-lock"


def _bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def ensure_venv() -> None:
    """Create the virtual environment and install the lock file when it changed."""
    if not _bin("python").exists():
        print("dev.py: creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    print("dev.py: installing pinned dependencies (requirements.lock) ...", flush=True)
    pip = [str(_bin("python")), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--require-hashes", "-r", str(LOCK)], check=True)
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT)],
                   check=True)
    STAMP.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test"}:
        print(__doc__)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    env = dict(os.environ)
    if command == "run":
        cli = str(_bin("safety-net"))
        subprocess.run([cli, "demo"], check=True, env=env)
        return subprocess.call([cli, "serve", *rest], env=env)
    return subprocess.call([str(_bin("python")), "-m", "pytest", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
