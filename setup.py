"""Build hook: ship the top-level `migrations/`, `policies/` and `tenants/` inside the wheel.

Those directories stay the source of truth at the top of the repository (where a checkout and
an editable install use them). A built wheel (`pip wheel .`, `python -m build`) carries copies
under `app/_bundle/<name>/`, which `app.config.resource_dir` finds when the package is
installed: the service then runs from any directory (docs/decisions/0019-deployable-artifact.md).
Everything else is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("migrations", "policies", "tenants")


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the top-level directories themselves
        target = Path(self.build_lib) / "app" / "_bundle"
        for name in BUNDLED:
            source = ROOT / name
            if not source.is_dir():
                raise SystemExit(f"setup.py: {source} is missing (build from the repository or sdist)")
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(source, target / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildWithResources})
