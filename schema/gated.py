"""Consent-gated fields as declarations, and what a client selected (for the read path).

A type declares each gated field once — `gated("summary", category)` — and the read path
(app/read/) has already decided and opened it: the field only reads the row's `Gate`. Its value,
or null with an entry in `extensions.redacted` (CONSENT_DOES_NOT_COVER / NEED_TO_KNOW /
NO_PURPOSE_DECLARED, or ERASED / UNREADABLE for a value stored but not openable); the access log
notes exactly the categories the response carried and withheld.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLObjectType, GraphQLSchema
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField
from strawberry.types.nodes import SelectedField, Selection

from app.access.gate import Gate, Want
from app.access.visibility import Redaction
from schema.bounded import DECLINE
from schema.consent.enums import DataCategory
from schema.consent.gate import redact, unreadable
from schema.context import Info

DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF
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

    resolve.gated = (column, category)  # type: ignore[attr-defined]  # read by `withheld`
    resolve.lean = (column, category)  # type: ignore[attr-defined]  # read by `lean_resolvers`
    return strawberry.field(resolver=resolve, description=(
        f"{description} Data category `{category}`: null, and listed in `withheld` and "
        "`extensions.redacted`, unless her consent releases it to you."))


@strawberry.enum(description="Why a field is null. None of them tells whether a value exists.")
class WithheldReason(enum.Enum):
    NO_PURPOSE_DECLARED = strawberry.enum_value(
        Redaction.NO_PURPOSE.value, description="The request declared no purpose "
                                                "(`Safety-Net-Purpose` header).")
    CONSENT_DOES_NOT_COVER = strawberry.enum_value(
        Redaction.NOT_COVERED.value, description="Her consent does not release this category to "
                                                 "your organisation for the declared purpose.")
    NEED_TO_KNOW = strawberry.enum_value(
        Redaction.NEED_TO_KNOW.value, description="Your role does not read case content (analysts "
                                                  "see the pseudonymous record only; admins and "
                                                  "auditors none).")
    ERASED = strawberry.enum_value("ERASED", description="Her data key was destroyed (erasure).")
    UNREADABLE = strawberry.enum_value("UNREADABLE", description="The stored value failed its "
                                                                 "integrity check.")


@strawberry.type(description="A field of this object that is null because it was withheld from "
                             "you, and why. The same facts as `extensions.redacted`, in-band.")
class WithheldField:
    field: str = strawberry.field(description="The GraphQL name of the field, e.g. `summary`.")
    category: DataCategory = strawberry.field(  # type: ignore[valid-type]
        description="Its data category.")
    reason: WithheldReason = strawberry.field(description="Why it is null.")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def withheld_of(obj: Any, gate: Gate, reason: Redaction) -> list[WithheldField]:
    """The gated fields of `obj` withheld by the decision in `gate` (every one of them, selected
    or not), and those released but stored unreadable (among the ones opened, i.e. selected)."""
    out: list[WithheldField] = []
    for f in type(obj).__strawberry_definition__.fields:
        spec = getattr(f.base_resolver.wrapped_func, "gated", None) if f.base_resolver else None
        if spec is None:
            continue
        column, category = spec
        if not gate.releases(category):
            why = WithheldReason(reason.value)
        elif column in gate.problems:
            why = WithheldReason(gate.problems[column])
        else:
            continue
        out.append(WithheldField(field=f.graphql_name or _camel(f.python_name),
                                 category=DataCategory(category), reason=why))
    return out


@strawberry.interface(description=(
    "An object with fields released only under her consent. `withheld` lists those null "
    "because they were withheld from you, so \"withheld\" is never mistaken for \"empty\"."))
class ConsentGated:
    @strawberry.field(description=(
        "Every consent-gated field of this object that is withheld from this request (selected "
        "or not), with its category and the reason; values you selected that are stored but "
        "cannot be opened appear as ERASED or UNREADABLE. Empty when nothing is withheld."))
    def withheld(self, info: Info) -> list[WithheldField]:
        return withheld_of(self, self._gate, info.context.access.redaction_reason())  # type: ignore[attr-defined]


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
    return Want(names, {name: _want(children) for name, children in grouped.items()},
                exact=True)


def read_plain(info: Info, gate: Gate, category: str, value: Any) -> Any:
    """A gated field stored in the clear (a code, an ID, an amount): the value only where the
    row's decision releases `category`, else null with its `extensions.redacted` entry."""
    if not gate.releases(category):
        redact(info, gate.peacebuilder_id, category)
        return None
    info.context.access.note_read(gate.peacebuilder_id, category)
    return value


def declares(column: str, category: str) -> Any:
    """Mark a hand-written gated resolver so `withheld` lists it like a `gated(...)` field."""
    def mark(fn: Any) -> Any:
        fn.gated = (column, category)
        return fn
    return mark


def lean_resolvers(schema: GraphQLSchema) -> int:
    """Give every `gated(...)` field of the built schema a plain graphql-core resolver: the same
    `read_gated` on the row's decided `Gate`, called with graphql-core's own info (it has the
    `context` and `path` that `read_gated` uses) instead of through strawberry's wrapper, which
    builds an Info, inspects arguments and runs extension hooks for each of a page's hundreds of
    gated values. Nothing is decided here: the value, the redaction entry and the access log's
    note are `read_gated`'s, as before. Returns how many fields were set."""
    done = 0
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType):
            continue
        for gql_field in named.fields.values():
            definition = (gql_field.extensions or {}).get(DEFINITION)
            resolver = getattr(definition, "base_resolver", None)
            func = getattr(resolver, "wrapped_func", None)
            if getattr(definition, "extensions", None) or gql_field.args:
                continue
            spec = getattr(func, "lean", None)
            if spec is not None:
                gql_field.resolve = _lean(*spec)
                done += 1
            elif (getattr(func, "plain", False) and not resolver.arguments
                  and resolver.info_parameter is None and not resolver.is_async
                  and type(definition).get_result is StrawberryField.get_result):
                gql_field.resolve = _plain(func)
                done += 1
    return done


def plain(fn: Any) -> Any:
    """Mark a resolver that only reads its own object (`self`: no info, no arguments), e.g. the
    rows the read path already attached to it: `lean_resolvers` calls it directly, as
    strawberry's wrapper would (`base_resolver(source)`), without building a strawberry Info or
    parsing arguments for each of a page's objects."""
    fn.plain = True
    return fn


def _plain(func: Any) -> Any:
    def resolve(source: Any, info: Any) -> Any:
        return func(source)

    return resolve


def _lean(column: str, category: str) -> Any:
    def resolve(source: Any, info: Any) -> str | None:
        return read_gated(info, source._gate, column, category)

    def shortcut(source: Any, context: Any) -> Any:
        # The executor's shortcut (schema/bounded.py): a released, readable value is
        # `read_gated`'s answer without the resolve info it needs only to report a redaction
        # or an unreadable value; those take the full path (DECLINE), which reports them.
        gate: Gate = source._gate
        if not gate.releases(category) or column in gate.problems:
            return DECLINE
        context.access.note_read(gate.peacebuilder_id, category)
        return gate.values.get(column)

    resolve.shortcut = shortcut  # type: ignore[attr-defined]
    return resolve
