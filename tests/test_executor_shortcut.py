"""The executor's shortcut for basic leaves (schema/bounded.py) answers exactly as graphql-core's
own path: the same data, errors, paths and key order, for ordinary values and for every unusual
one it hands back (null in a non-null field, a value its type cannot coerce, an awaitable, an
exception). The oracle is the same schema executed by strawberry's own execution context."""

from __future__ import annotations

import asyncio
import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.bounded import basic_leaves, bounded_execution


@strawberry.enum
class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


@strawberry.type
class Row:
    name: str
    level: Level
    maybe: str | None
    at: datetime
    count: int

    @strawberry.field
    def computed(self) -> str:
        return self.name.upper()


async def _later() -> str:
    await asyncio.sleep(0)
    return "awaited"


def _rows() -> list[Any]:
    good = Row(name="a", level=Level.HIGH, maybe=None, at=datetime(2026, 1, 2, tzinfo=UTC),
               count=3)
    null_in_non_null = Row(name=None, level=Level.LOW, maybe="x",  # type: ignore[arg-type]
                           at=datetime(2026, 1, 3, tzinfo=UTC), count=1)
    bad_enum = Row(name="c", level="nonsense", maybe="y",  # type: ignore[arg-type]
                   at=datetime(2026, 1, 4, tzinfo=UTC), count=2)
    raw_enum_value = Row(name="d", level="low", maybe="z",  # type: ignore[arg-type]
                         at=datetime(2026, 1, 5, tzinfo=UTC), count=4)
    not_an_int = Row(name="e", level=Level.LOW, maybe=None,
                     at=datetime(2026, 1, 6, tzinfo=UTC), count="many")  # type: ignore[arg-type]
    failing = Row(name="f", level=Level.LOW, maybe=ValueError("boom"),  # type: ignore[arg-type]
                  at=datetime(2026, 1, 7, tzinfo=UTC), count=5)
    return [good, null_in_non_null, bad_enum, raw_enum_value, not_an_int, failing]


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Pet(Named):
    legs: int
    friend: Pet | None = None


def _pets() -> list[Any]:
    # An object of the wrong type (is_type_of says no), null and an exception where an object
    # must be, and objects nested in objects: the object shortcut hands each back.
    return [Pet(name="p", legs=4, friend=Pet(name="q", legs=3)),
            Row(name="r", level=Level.LOW, maybe=None, at=datetime(2026, 1, 2, tzinfo=UTC),
                count=1),
            None, ValueError("no pet"), Pet(name="s", legs=2)]


@strawberry.type
class Query:
    @strawberry.field
    def rows(self) -> list[Row | None]:
        return _rows()

    @strawberry.field
    def pets(self) -> list[Pet]:
        return _pets()

    @strawberry.field
    def maybe_pets(self) -> list[Pet | None]:
        return _pets()

    @strawberry.field
    def no_pet(self) -> Pet | None:
        return None

    @strawberry.field
    def wrong_pet(self) -> Pet:
        return _pets()[1]  # type: ignore[no-any-return]

    @strawberry.field
    def lazy(self) -> Row:
        row = _rows()[0]
        row.maybe = _later()  # type: ignore[assignment]
        return row


def _schemas(max_bytes: int = 1_000_000) -> tuple[strawberry.Schema, strawberry.Schema]:
    ours = strawberry.Schema(query=Query, execution_context_class=bounded_execution(max_bytes))
    plain = strawberry.Schema(query=Query,
                              execution_context_class=StrawberryGraphQLCoreExecutionContext)
    return ours, plain


QUERIES = [
    "{ rows { name level maybe at count computed __typename } }",
    "{ rows { count c2: count at name n2: name level } }",
    "{ rows { ...F computed } } fragment F on Row { level name }",
    "{ lazy { name maybe level } }",
    "{ rows { name @skip(if: true) level @include(if: false) count } }",
    "{ pets { name legs friend { name legs friend { name } } } }",
    "{ maybePets { name ... on Pet { legs friend { name } } } noPet { name } }",
    "{ wrongPet { name } rows { name } }",
    "{ maybePets { __typename name } }",
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_shortcut_answers_as_graphql_core_does(query: str) -> None:
    ours, plain = _schemas()
    got = asyncio.run(ours.execute(query))
    want = asyncio.run(plain.execute(query))
    assert got.data == want.data
    assert list(_keys(got.data)) == list(_keys(want.data))  # key order too
    assert sorted((e.message, tuple(e.path or ())) for e in got.errors or []) == sorted(
        (e.message, tuple(e.path or ())) for e in want.errors or [])


def test_the_unusual_values_really_are_errors() -> None:
    ours, _ = _schemas()
    result = asyncio.run(ours.execute("{ rows { name level count maybe } }"))
    paths = sorted(tuple(e.path or ()) for e in result.errors or [])
    # null in a non-null name nulls the row; an unknown enum value, a count that is not an
    # Int and an exception each are errors at their own path; "low" (the enum's value) is fine.
    assert paths == [("rows", 1, "name"), ("rows", 2, "level"), ("rows", 4, "count"),
                     ("rows", 5, "maybe")]
    assert result.data is not None
    assert result.data["rows"][1] is None and result.data["rows"][3]["level"] == "LOW"


def test_the_schema_shortcuts_only_plain_attribute_fields() -> None:
    ours, _ = _schemas()
    leaves = basic_leaves(ours._schema)
    assert set(leaves["Row"]) == {"name", "level", "maybe", "at", "count"}  # not `computed`
    assert "Query" not in leaves


def test_the_size_limit_still_stops_at_a_shortcut_leaf() -> None:
    ours, _ = _schemas(max_bytes=200)
    result = asyncio.run(ours.execute("{ rows { name level maybe at count } }"))
    assert result.errors
    assert any("limit" in e.message.lower() or "large" in e.message.lower()
               for e in result.errors)


def _keys(data: Any) -> Any:
    if isinstance(data, dict):
        for k, v in data.items():
            yield k
            yield from _keys(v)
    elif isinstance(data, list):
        for item in data:
            yield from _keys(item)
