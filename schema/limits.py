"""Query limits, checked on the parsed document before validation and execution.

Size, tokens, depth, aliases, directives and a cost budget in which list fields count by their
page size. Defaults and the reasons for them: docs/decisions/0006-query-limits.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    parse,
    visit,
)
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from app.config import Settings
from app.errors import AppError
from app.inputs import BadText, bad_text
from app.pagination import DEFAULT_PAGE, MAX_PAGE
from schema.sizes import InputTooLong, check_inputs, list_size, output_weight

INTROSPECTION = frozenset({"__schema", "__type"})


@dataclass(frozen=True)
class Limits:
    max_depth: int = 10
    max_aliases: int = 15
    max_directives: int = 20
    max_tokens: int = 1000
    max_document_bytes: int = 32 * 1024
    max_cost: int = 5000
    max_response_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(max_depth=s.max_depth, max_aliases=s.max_aliases,
                   max_directives=s.max_directives, max_tokens=s.max_tokens,
                   max_document_bytes=s.max_document_bytes, max_cost=s.max_cost,
                   max_response_bytes=s.max_response_bytes)


class LimitExceeded(AppError):
    """The document is over one limit; `limit` names it for `extensions.limit`."""

    code = "QUERY_LIMIT_EXCEEDED"

    def __init__(self, limit: str, maximum: int, message: str) -> None:
        super().__init__(message)
        self.limit, self.maximum = limit, maximum


class _TooDeep(Exception):
    """The parser gave up on nesting (far beyond any depth limit)."""


@dataclass(frozen=True)
class Shape:
    """What a document costs regardless of its variables (cached with the parse)."""

    document: DocumentNode
    depth: int
    aliases: int
    directives: int
    bad_text: bool = False


def check(schema: GraphQLSchema, query: str, limits: Limits, *,
          variables: dict[str, Any] | None = None, operation_name: str | None = None) -> tuple[
              DocumentNode, int]:
    """The parsed document and its cost, or LimitExceeded (InputTooLong for a text input over
    its declared length); GraphQLSyntaxError passes through."""
    size = len(query.encode())
    if size > limits.max_document_bytes:
        raise LimitExceeded("documentSize", limits.max_document_bytes,
                            f"The document is larger than {limits.max_document_bytes} bytes.")
    try:
        shape = _shape(query, limits.max_tokens)
    except _TooDeep as exc:
        raise LimitExceeded("depth", limits.max_depth, "The query is nested deeper than "
                            f"{limits.max_depth} levels.") from exc
    if shape.depth > limits.max_depth:
        raise LimitExceeded("depth", limits.max_depth,
                            f"The query is nested deeper than {limits.max_depth} levels.")
    if shape.aliases > limits.max_aliases:
        raise LimitExceeded("aliases", limits.max_aliases,
                            f"The document uses more than {limits.max_aliases} aliases.")
    if shape.directives > limits.max_directives:
        raise LimitExceeded("directives", limits.max_directives,
                            f"The document uses more than {limits.max_directives} directives.")
    if shape.bad_text:
        # "\u0000" in a string literal: PostgreSQL cannot store it (lone surrogates the parser
        # already refuses).
        raise GraphQLError(BadText.message, original_error=BadText(field="document"))
    cost = operation_cost(schema, shape.document, variables or {}, operation_name)
    if cost > limits.max_cost:
        raise LimitExceeded("cost", limits.max_cost,
                            f"The query could return about {cost} objects; the budget per "
                            f"request is {limits.max_cost}. Ask for smaller pages.")
    check_inputs(schema, query, shape.document, variables, operation_name)
    return shape.document, cost


@lru_cache(maxsize=512)
def _shape(query: str, max_tokens: int) -> Shape:
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError as exc:
        if "tokens" in exc.message:
            raise LimitExceeded("tokens", max_tokens,
                                f"The document has more than {max_tokens} tokens.") from exc
        if "nested too deeply" in exc.message:
            raise _TooDeep() from exc
        raise
    counter = _Counter()
    visit(document, counter)
    return Shape(document=document, depth=_depth(document), aliases=counter.aliases,
                 directives=counter.directives, bad_text=counter.bad_text)


class _Counter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.aliases = 0
        self.directives = 0
        self.bad_text = False

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.alias is not None:
            self.aliases += 1

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        self.bad_text = self.bad_text or bad_text(node.value)

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        self.directives += 1


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _depth(document: DocumentNode) -> int:
    """Deepest chain of fields in any operation, fragments expanded (leaves count as a level;
    introspection counts one level: it is refused in production and GraphiQL needs it)."""
    fragments = _fragments(document)
    memo: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                inner = 0 if sel.name.value in INTROSPECTION else depth(sel.selection_set)
                deepest = max(deepest, 1 + inner)
            elif isinstance(sel, InlineFragmentNode):
                deepest = max(deepest, depth(sel.selection_set))
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                if name not in memo:
                    fragment = fragments.get(name)
                    if fragment is None or name in visiting:  # unknown or cyclic: validation says
                        continue
                    visiting.add(name)
                    memo[name] = depth(fragment.selection_set)
                    visiting.discard(name)
                deepest = max(deepest, memo[name])
        return deepest

    return max((depth(d.selection_set) for d in document.definitions
                if isinstance(d, OperationDefinitionNode)), default=0)


def operation_cost(schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any],
                   operation_name: str | None) -> int:
    """How many objects the operation could return: each object-typed field counts 1 per object;
    a list counts its page size (`first`, default 20, or its declared size in schema/sizes.py)
    times its selection; a text field counts its size class's weight (schema/sizes.py)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [op for op in operations if op.name and op.name.value == operation_name]
    return max((_Cost(schema, document, op, variables).total() for op in operations), default=0)


class _Cost:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode,
                 operation: OperationDefinitionNode, variables: dict[str, Any]) -> None:
        self.schema, self.operation = schema, operation
        self.fragments = _fragments(document)
        self.variables = dict(variables)
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value, IntValueNode):
                self.variables[name] = int(definition.default_value.value)
        self.memo: dict[tuple[str, int | None], int] = {}
        self.visiting: set[str] = set()

    def total(self) -> int:
        root = {"query": self.schema.query_type, "mutation": self.schema.mutation_type,
                "subscription": self.schema.subscription_type}[self.operation.operation.value]
        return self.selection(self.operation.selection_set, root, None)

    def first(self, node: FieldNode) -> int | None:
        """The page asked for; above MAX_PAGE the resolver refuses it with a precise error."""
        for arg in node.arguments or ():
            if arg.name.value != "first":
                continue
            value: Any = arg.value
            if isinstance(value, IntValueNode):
                return min(max(0, int(value.value)), MAX_PAGE)
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                return min(max(0, given), MAX_PAGE) if isinstance(given, int) else DEFAULT_PAGE
            return DEFAULT_PAGE
        return None

    def selection(self, selection_set: SelectionSetNode | None, parent: Any,
                  page: int | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                total += self.field(sel, parent, page)
            elif isinstance(sel, InlineFragmentNode):
                cond = self.schema.get_type(sel.type_condition.name.value) if sel.type_condition \
                    else parent
                total += self.selection(sel.selection_set, cond, page)
            elif isinstance(sel, FragmentSpreadNode):
                total += self.spread(sel.name.value, page)
        return total

    def spread(self, name: str, page: int | None) -> int:
        key = (name, page)
        if key not in self.memo:
            fragment = self.fragments.get(name)
            if fragment is None or name in self.visiting:
                return 0
            self.visiting.add(name)
            cond = self.schema.get_type(fragment.type_condition.name.value)
            self.memo[key] = self.selection(fragment.selection_set, cond, page)
            self.visiting.discard(name)
        return self.memo[key]

    def field(self, node: FieldNode, parent: Any, page: int | None) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0  # introspection is not data
        type_name = getattr(parent, "name", "")
        if node.selection_set is None:
            # Short leaves are part of their object; long texts count by their size class.
            return output_weight(type_name, name)
        fields = getattr(parent, "fields", None) or {}
        definition = fields.get(name)
        field_type = definition.type if definition is not None else None
        if isinstance(field_type, GraphQLNonNull):
            field_type = field_type.of_type
        first = self.first(node)
        if isinstance(field_type, GraphQLList):
            # `edges` of a connection is as long as the connection's page; other lists as `first`.
            count = first if first is not None else (
                page if page is not None else (list_size(type_name, name) or DEFAULT_PAGE))
            child_page = None
        else:
            count = 1
            child_page = (first if first is not None else DEFAULT_PAGE) if _paged(definition) \
                else None
        child = get_named_type(field_type) if field_type is not None else None
        return count * (1 + self.selection(node.selection_set, child, child_page))


def _paged(definition: Any) -> bool:
    return definition is not None and "first" in definition.args


class QueryLimits(SchemaExtension):
    """The same limits inside `schema.execute`, for callers other than the HTTP edge (WebSocket
    subscriptions, scripts). A document the edge already checked (`context.document`) is used
    as is and never parsed again."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits
        self.refused: LimitExceeded | InputTooLong | None = None

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        checked = getattr(ec.context, "document", None)
        if checked is not None:
            ec.graphql_document = checked
        elif ec.query is not None:
            try:
                ec.graphql_document, _ = check(ec.schema._schema, ec.query, self.limits,
                                               variables=ec.variables,
                                               operation_name=ec.operation_name)
            except (LimitExceeded, InputTooLong) as exc:
                # Refused in on_validate; a stand-in document keeps strawberry from parsing
                # the oversized one.
                self.refused = exc
                name = ec.operation_name if (ec.operation_name or "").isidentifier() else ""
                kind = "query" if OperationType.QUERY in ec.allowed_operations else "subscription"
                ec.graphql_document = parse(f"{kind} {name} {{ __typename }}")
            except GraphQLError:
                pass  # a syntax error: strawberry's own parse reports it
        yield

    def on_validate(self) -> Iterator[None]:
        if self.refused is not None:
            self.execution_context.pre_execution_errors = [
                GraphQLError(self.refused.message, original_error=self.refused)]
        yield
