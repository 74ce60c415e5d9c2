"""Keyset (cursor) pagination over SQL: stable under inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import Select, TypeDecorator, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import BadInput

T = TypeVar("T")

DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass(frozen=True)
class PageRequest:
    first: int = DEFAULT_PAGE
    after: str | None = None
    descending: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.first <= MAX_PAGE:
            raise BadInput(f"first must be between 0 and {MAX_PAGE}.", field="first")


class Cursors(Sequence[str]):
    """The cursors of a page's rows, each encoded when first asked for: most clients never
    select `cursor` on every edge (only `pageInfo.endCursor`, or nothing)."""

    __slots__ = ("_encoded", "_keys")

    def __init__(self, keys: list[tuple[Any, ...]]) -> None:
        self._keys = keys
        self._encoded: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self._keys)
        found = self._encoded.get(index)
        if found is None:
            found = self._encoded[index] = encode_cursor(*self._keys[index])
        return found


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: Sequence[str]
    has_next: bool
    has_previous: bool


def encode_cursor(*key: Any) -> str:
    parts = [v.isoformat() if isinstance(v, datetime) else str(v) for v in key]
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, kinds: tuple[type, ...]) -> tuple[Any, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError
        return tuple(_parse(kind, value) for kind, value in zip(kinds, raw, strict=True))
    except (ValueError, TypeError) as exc:
        raise BadInput("Invalid cursor.", field="after") from exc


def _parse(kind: type, value: str) -> Any:
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    return kind(value)


async def paginate(
    session: Any,
    query: Select[Any],
    *,
    keys: tuple[InstrumentedAttribute[Any], ...],
    page: PageRequest,
    rows: bool = False,
    then: Callable[[Select[Any]], Select[Any]] | None = None,
    params: dict[str, Any] | None = None,
    run: Callable[..., Awaitable[Any]] | None = None,
) -> Page[Any]:
    """Fetch one page of `query` ordered by `keys` (the last key must be unique, e.g. id): ORM
    objects, or with `rows` the selected columns as rows (cheaper; the keys must be among
    them under their own names). `then` turns the page's limited query into the statement
    sent (e.g. the page's IDs joined to what is costly to compute, for those rows only); the
    order is applied to both. `params`: the values of the statement's named parameters; `run`
    executes it (`session, statement, params`; default `session.execute`), e.g. `app.db.rows`."""
    kinds = tuple(_python_type(k) for k in keys)
    if page.after is not None:
        after = _decode_cursor(page.after, kinds)
        query = query.where(_after_clause(keys, after, page.descending))
    order = [k.desc() if page.descending else k.asc() for k in keys]
    query = query.order_by(*order).limit(page.first + 1)
    if then is not None:
        query = then(query).order_by(*order)
    result = await (run(session, query, params) if run is not None
                    else session.execute(query, params))
    found = list(result.all() if rows else result.scalars())
    has_next = len(found) > page.first
    found = found[: page.first]
    names = [k.key for k in keys]
    cursors = Cursors([tuple(getattr(row, name) for name in names) for row in found])
    return Page(items=found, cursors=cursors, has_next=has_next,
                has_previous=page.after is not None)


def _python_type(column: InstrumentedAttribute[Any]) -> type:
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    try:
        return sql_type.python_type
    except NotImplementedError:
        return str


def _after_clause(keys: tuple[InstrumentedAttribute[Any], ...], values: tuple[Any, ...],
                  descending: bool) -> Any:
    # (k1, k2, ...) > (v1, v2, ...) written portably as nested OR/AND.
    clauses = []
    for i, key in enumerate(keys):
        equal = [keys[j] == values[j] for j in range(i)]
        beyond = key < values[i] if descending else key > values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)
