"""Vendored third-party files are exactly the ones their VENDORED.md names: a file changed by
hand, replaced without updating the table, or added without a row fails here."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from app.config import REPO_ROOT

# Each directory of vendored files and its table (| File | Package | Version | Source | License | SHA-256 |).
DIRECTORIES = [REPO_ROOT / "schema" / "web" / "static", REPO_ROOT / "tests" / "vendor"]
ROW = re.compile(r"^\|\s*(?P<file>[^|\s]+)\s*\|\s*(?P<package>[^|]+?)\s*\|\s*(?P<version>[^|]+?)\s*\|"
                 r"\s*(?P<source>[^|]+?)\s*\|\s*(?P<license>[^|]+?)\s*\|\s*(?P<sha256>[0-9a-f]{64})\s*\|$")


def table(directory: Path) -> dict[str, dict[str, str]]:
    rows = {}
    for line in (directory / "VENDORED.md").read_text().splitlines():
        match = ROW.match(line.strip())
        if match:
            rows[match["file"]] = match.groupdict()
    return rows


@pytest.mark.parametrize("directory", DIRECTORIES, ids=lambda d: d.relative_to(REPO_ROOT).as_posix())
def test_every_vendored_file_matches_its_recorded_sha256(directory: Path) -> None:
    rows = table(directory)
    assert rows, f"{directory / 'VENDORED.md'} lists no files"
    for name, row in rows.items():
        path = directory / name
        assert path.is_file(), f"{name} is listed in VENDORED.md but missing"
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        assert actual == row["sha256"], (
            f"{path.relative_to(REPO_ROOT)}: sha256 {actual}, VENDORED.md records {row['sha256']} "
            f"({row['package']} {row['version']})")
        # the version in the table is the one in the file name of its source tarball
        assert f"-{row['version']}.tgz:" in row["source"], row


def test_no_minified_or_licensed_file_is_unlisted() -> None:
    """A minified bundle or a licence file is third-party code: it needs a row (package, version,
    checksum). The dashboard's own small assets may sit beside them without one."""
    for directory in DIRECTORIES:
        listed = set(table(directory))
        third_party = {p.name for p in directory.iterdir() if p.is_file() and (
            p.name.endswith((".min.js", ".min.css")) or p.name.startswith("LICENSE"))}
        unlisted = third_party - listed
        assert not unlisted, f"unlisted in {directory.relative_to(REPO_ROOT)}/VENDORED.md: {sorted(unlisted)}"


def test_htmx_is_a_2x_release() -> None:
    """The brief pins the stable 2.x line; 4.x changed attribute semantics."""
    version = table(DIRECTORIES[0])["htmx.min.js"]["version"]
    assert version.startswith("2."), version
