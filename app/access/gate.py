"""Rows that carry their decision: what a read module hands to the GraphQL layer.

A read module (app/read/: cases, children, peacebuilders) makes the access decision once for all
the rows of a level (`visibility.released_mask`, in the same statement as the rows), opens only
the sealed values that are both released and selected, and attaches the result to each row as a
`Gate`. Fields then only read what was decided: a gated
field is one declaration (its column and category) and never asks again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Want:
    """What the client selected below an object: its field names (GraphQL names) and, per
    nested object field, what it selected there. Over-approximates (@skip/@include ignored):
    it only decides what is loaded and opened, never what is released. `exact`: it is a GraphQL
    selection (`schema.gated.want_of`), so a read module may leave out the columns of fields it
    does not name; a selection written by hand loads every column."""

    fields: frozenset[str] = EMPTY
    children: Mapping[str, Want] = field(default_factory=dict)
    exact: bool = False

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def child(self, name: str) -> Want | None:
        return self.children.get(name)


NOTHING = Want()


@dataclass(slots=True)
class Gate:
    """The decision for one row about her: the categories released to this request (None: the
    record is not visible), the sealed values opened (released and selected only), and the
    stored values that could not be opened (ERASED / UNREADABLE)."""

    peacebuilder_id: uuid.UUID
    released: frozenset[str] | None
    values: dict[str, str | None] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def releases(self, category: str) -> bool:
        return self.released is not None and category in self.released
