"""Types shared by every domain: Node, connections, user errors, pagination arguments."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from app.errors import BadInput, Conflict
from app.pagination import DEFAULT_PAGE, MAX_PAGE, Page, PageRequest
from schema.context import Info

T = TypeVar("T")
R = TypeVar("R")
E = TypeVar("E", bound=enum.Enum)


def member(kind: type[E], value: Any) -> E:
    """`kind(value)` from its table of members (EnumMeta's call costs more, for each value of a
    page); a value it does not hold goes to `kind(value)`, which raises as before. None stays
    None: a column the selection did not ask for."""
    if value is None:
        return None  # type: ignore[return-value]
    found = kind._value2member_map_.get(value)
    return found if found is not None else kind(value)  # type: ignore[return-value]


def closed_set(app_enum: type[enum.Enum], description: str, values: Mapping[str, str],
               name: str | None = None) -> Any:
    """A GraphQL enum of a closed set defined once in app, each member with its description (a
    member without one fails at import). Its GraphQL values are the stored codes (`done`,
    `incident_reported`): these sets were String fields, and a client that compared strings
    keeps working."""
    missing = {m.name for m in app_enum} ^ set(values)
    if missing:
        raise TypeError(f"{app_enum.__name__}: describe exactly its members ({sorted(missing)})")
    members = [(m.name, strawberry.enum_value(m.value, name=m.value, description=values[m.name]))
               for m in app_enum]
    return strawberry.enum(enum.Enum(name or app_enum.__name__, members),  # type: ignore[misc]
                           description=description)


@strawberry.interface(description="An object with a globally unique, opaque ID.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global ID; do not parse it.")


@strawberry.type(description="Where a page of a connection starts and ends.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow `endCursor`.")
    has_previous_page: bool = strawberry.field(description="Items precede `startCursor`.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last edge; pass as `after`.")


@strawberry.type(description="An item of a connection with its cursor.")
class Edge(Generic[T]):
    # Encoded only when selected (app.pagination.Cursors).
    _cursors: strawberry.Private[Sequence[str]]
    _index: strawberry.Private[int]

    @strawberry.field(description="Opaque cursor of this item.")
    def cursor(self) -> str:
        return self._cursors[self._index]

    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items (Relay cursor connection, forward pagination).")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Pagination information.")
    total_count: int | None = strawberry.field(
        default=None, description="How many items match in all (null where not counted).")


def connection(page: Page[R], convert: Callable[[R], T], total: int | None = None) -> Connection[T]:
    if len(page.items) != len(page.cursors):
        raise ValueError("a page needs one cursor per item")
    edges = [Edge(_cursors=page.cursors, _index=i, node=convert(item))
             for i, item in enumerate(page.items)]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next, has_previous_page=page.has_previous,
                           start_cursor=page.cursors[0] if page.cursors else None,
                           end_cursor=page.cursors[-1] if page.cursors else None),
        total_count=total,
    )


def selects(info: Info, name: str) -> bool:
    """Whether the field being resolved selects its own field `name` (under any alias, in a
    fragment too): e.g. count only when `totalCount` is asked for."""
    def walk(selections: Sequence[Selection]) -> bool:
        for s in selections:
            if isinstance(s, SelectedField):
                if s.name == name:
                    return True
            elif walk(s.selections):  # a fragment spread or inline fragment
                return True
        return False

    return any(walk(f.selections) for f in info.selected_fields)


def page_request(first: int | None, after: str | None, descending: bool = False) -> PageRequest:
    return PageRequest(first=DEFAULT_PAGE if first is None else first, after=after,
                       descending=descending)


FIRST_DESCRIPTION = f"Page size (default {DEFAULT_PAGE}, at most {MAX_PAGE})."
AFTER_DESCRIPTION = "Return items after this cursor (`pageInfo.endCursor`)."


@strawberry.type(description="A business validation problem with the mutation's input.")
class UserError:
    field: list[str] | None = strawberry.field(description=(
        "Path of the input field, if any, one element per level (list positions as digits): "
        "[\"input\", \"followUp\", \"0\", \"dueAt\"]."))
    message: str = strawberry.field(description="What is wrong, in plain language.")
    code: str = strawberry.field(description="Stable machine code: BAD_USER_INPUT or CONFLICT.")


async def guarded(info: Info, action: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    """Run a mutation's service call; validation problems become user errors and roll back."""
    try:
        return await action(), []
    except BadInput as exc:
        info.context.rollback_only = True
        path = ["input", *exc.field.split(".")] if exc.field else None
        return None, [UserError(field=path, message=exc.message, code=exc.code)]
    except Conflict as exc:
        info.context.rollback_only = True
        return None, [UserError(field=None, message=exc.message, code=exc.code)]


def ids_of(values: Sequence[strawberry.ID] | None) -> list[str]:
    return [str(v) for v in values or []]


def describe_values(enum_type: Any, descriptions: Mapping[str, str]) -> None:
    """Describe the values of a strawberry enum made from an app enum (the app knows nothing of
    GraphQL); values described in the enum itself keep theirs. Every value must end described."""
    definition = enum_type.__strawberry_definition__
    names = {v.name for v in definition.values}
    unknown = set(descriptions) - names
    if unknown:
        raise ValueError(f"{definition.name} has no value(s) {sorted(unknown)}")
    for value in definition.values:
        value.description = descriptions.get(value.name, value.description)
    missing = sorted(v.name for v in definition.values if not v.description)
    if missing:
        raise ValueError(f"{definition.name}: describe {missing}")
