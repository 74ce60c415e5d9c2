#!/usr/bin/env python3
"""Safety Net benchmarks, one command:

    python3 bench/run.py [--db sqlite|postgresql|both] [--full]

Re-executes itself with .venv's python (creating .venv with dev.py's bootstrap when missing),
then runs bench/suite.py. See bench/README.md for what is measured and how to read the table.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


def _in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def main() -> int:
    if not _in_venv() and os.environ.get("SAFETY_NET_BENCH_BOOTSTRAP") != "done":
        sys.path.insert(0, str(ROOT))
        import dev  # the project's own bootstrap: creates .venv, installs the lock file

        dev.ensure_venv()
        python = VENV / "bin" / "python"
        os.environ["SAFETY_NET_BENCH_BOOTSTRAP"] = "done"  # never loop
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])  # noqa: S606
    sys.path.insert(0, str(ROOT))
    from bench import suite

    return suite.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
