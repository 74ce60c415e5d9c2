"""Consent-gated fields as declarations, and what a client selected (for the read path).

A type declares each gated field once — `gated("summary", category)` — and the read path
(app/read/) has already decided and opened it: the field only reads the row's `Gate`. Its value,
or null with an entry in `extensions.redacted` (CONSENT_DOES_NOT_COVER / NEED_TO_KNOW /
NO_PURPOSE_DECLARED, or ERASED / UNREADABLE for a value stored but not openable); the access log
notes exactly the categories the response carried and withheld.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from app.read.gate import Gate, Want
from schema.consent.gate import redact, unreadable
from schema.context import Info

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def read_gated(info: Info, gate: Gate, column: str, category: str) -> str | None:
    """The decided value of one gated field (see the module's docstring)."""
    if not gate.releases(category):
        redact(info, gate.peacebuilder_id, category)
        return None
    info.context.access.note_read(gate.peacebuilder_id, category)
    problem = gate.problems.get(column)
    if problem is not None:
        unreadable(info, problem)
        return None
    return gate.values.get(column)


def gated(column: str, category: str, description: str) -> Any:
    """A field that reads `self._gate` (the row's decision) for `column` of `category`."""
    def resolve(self: Any, info: Info) -> str | None:
        return read_gated(info, self._gate, column, category)

    return strawberry.field(resolver=resolve, description=(
        f"{description} Data category `{category}`: null, and listed in `extensions.redacted`, "
        "unless her consent releases it to you."))


def want_of(info: Info, *path: str) -> Want:
    """What the client selected below the field being resolved (all aliases, fragments merged),
    after descending through `path` (e.g. "edges", "node" of a connection)."""
    levels: list[Sequence[Selection]] = [f.selections for f in info.selected_fields]
    for name in path:
        levels = [s.selections for sel in levels for s in _fields(sel) if s.name == name]
    return _want([s for sel in levels for s in _fields(sel)])


def _fields(selections: Sequence[Selection]) -> list[SelectedField]:
    out: list[SelectedField] = []
    for s in selections:
        if isinstance(s, SelectedField):
            out.append(s)
        else:  # a fragment spread or an inline fragment: its fields belong to this level
            out += _fields(s.selections)
    return out


def _want(fields: list[SelectedField]) -> Want:
    names = frozenset(snake(f.name) for f in fields)
    grouped: dict[str, list[SelectedField]] = {}
    for f in fields:
        if f.selections:
            grouped.setdefault(snake(f.name), []).extend(_fields(f.selections))
    return Want(names, {name: _want(children) for name, children in grouped.items()})
