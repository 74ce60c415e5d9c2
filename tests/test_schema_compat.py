"""The API contract: `schema/released.graphql` is the last released SDL (0.2); the schema as it
stands may add to it, but every breaking change (graphql-core's `find_breaking_changes`) fails
here unless CHANGELOG.md records it under "Unreleased" — and a removal needs a deprecation
period: what is removed must have been `@deprecated` in the released SDL.
"""

from __future__ import annotations

import re
from pathlib import Path

from graphql import BreakingChangeType, build_schema, find_breaking_changes

from schema.__main__ import sdl

ROOT = Path(__file__).resolve().parent.parent
RELEASED = ROOT / "schema" / "released.graphql"
CHANGELOG = ROOT / "CHANGELOG.md"
REMOVALS = {BreakingChangeType.FIELD_REMOVED, BreakingChangeType.TYPE_REMOVED,
            BreakingChangeType.VALUE_REMOVED_FROM_ENUM, BreakingChangeType.ARG_REMOVED}


def unreleased_section() -> str:
    text = CHANGELOG.read_text(encoding="utf-8")
    match = re.search(r"^## Unreleased\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    return match.group(1) if match else ""


def deprecated_in(sdl: str) -> set[str]:
    """`Type.field` and `Enum.VALUE` names marked @deprecated in an SDL text."""
    released = build_schema(sdl)
    out: set[str] = set()
    for name, type_ in released.type_map.items():
        for field_name, field in (getattr(type_, "fields", None) or {}).items():
            if getattr(field, "deprecation_reason", None):
                out.add(f"{name}.{field_name}")
        for value_name, value in (getattr(type_, "values", None) or {}).items():
            if getattr(value, "deprecation_reason", None):
                out.add(f"{name}.{value_name}")
    return out


def test_released_sdl_parses_and_names_its_version():
    head = RELEASED.read_text(encoding="utf-8").splitlines()[0]
    assert head.startswith("# Safety Net API") and "0.2" in head, head
    build_schema(RELEASED.read_text(encoding="utf-8"))


def test_no_unrecorded_breaking_change_since_the_release():
    released_sdl = RELEASED.read_text(encoding="utf-8")
    changes = find_breaking_changes(build_schema(released_sdl), build_schema(sdl()))
    recorded = unreleased_section()
    deprecated = deprecated_in(released_sdl)
    unrecorded = [c.description for c in changes if c.description not in recorded]
    assert not unrecorded, (
        "breaking changes since schema/released.graphql; record each line under "
        f"'## Unreleased' in CHANGELOG.md (after a deprecation period): {unrecorded}")
    for change in changes:
        if change.type in REMOVALS:
            named = re.findall(r"([A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)",
                               change.description)
            assert any(n in deprecated for n in named), (
                f"removed without a deprecation period: {change.description}")


def test_the_check_sees_a_breaking_change():
    # The mechanism itself: removing a field from the released SDL is reported.
    released_sdl = RELEASED.read_text(encoding="utf-8")
    # The field with its description (one line or a block) goes.
    smaller = build_schema(re.sub(r'\n(  """(?:[^"]|"(?!""))*"""\n)?  closedAt: DateTime\n', "\n",
                                  released_sdl, count=1))
    changes = find_breaking_changes(build_schema(released_sdl), smaller)
    assert any(c.type is BreakingChangeType.FIELD_REMOVED and "closedAt" in c.description
               for c in changes)
