"""The response-size limit, enforced while the response is produced.

Every leaf value graphql-core completes is counted at its JSON size (escaped as the response
will escape it, plus a few bytes for its key); once the total passes the limit, execution stops
completing values, the request's loaders refuse further database work, and the HTTP edge
answers one request error `QUERY_LIMIT_EXCEEDED` (`limit: responseSize`) with no data. So a
response is never built larger than the limit plus one value (docs/decisions/0018).
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import enum
import uuid
from collections.abc import Callable
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

import graphql.execution.executor as _executor
from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from app.errors import ResponseTooLarge


async def _gather_settled(*awaitables: Any) -> list[Any]:
    """graphql-core's `gather_with_cancel`, minus the cancelling: when one sibling field fails,
    the others run to their end before the error goes on. They share the request's database
    session, and a query cancelled mid-flight leaves that connection unusable (the request then
    answered 503 instead of its field error). Timeouts still cancel everything."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


_executor.gather_with_cancel = _gather_settled  # type: ignore[attr-defined]

# Key, quotes, colon and comma around a value: an estimate per leaf.
LEAF_OVERHEAD = 16


def json_size(value: Any) -> int:
    """Bytes of `value` in the JSON response (UTF-8, control characters escaped)."""
    if isinstance(value, str):
        escaped: str = encode_basestring(value)
        return len(escaped) if escaped.isascii() else len(escaped.encode())
    return 8


# A leaf field whose value needs no resolver call: either strawberry reads one attribute of its
# object (no resolver of ours, no arguments, no permission or field extension), or its resolver
# offers a `shortcut(source, context)` that returns the value or DECLINE (e.g. a consent-gated
# field already decided: schema/gated.py). type name -> field name -> (attribute, shortcut, how
# its value becomes output, non-null).
BasicLeaves = dict[str, dict[str, tuple[str | None, Callable[[Any, Any], Any] | None,
                                        Callable[[Any], Any], bool]]]
# What a shortcut returns to say "take graphql-core's full path".
DECLINE = object()
# Types whose values are final (never an awaitable or an exception): most leaves are these.
_SETTLED: set[type] = {str, int, float, bool, datetime.datetime, datetime.date, decimal.Decimal,
                       uuid.UUID}


def _settled(value: Any, is_awaitable: Callable[[Any], bool]) -> bool:
    """A value the shortcut may complete: not an exception nor an awaitable. Enum classes join
    `_SETTLED` on first sight (being an awaitable is a property of a class, for them)."""
    if isinstance(value, enum.Enum) and not is_awaitable(value):
        _SETTLED.add(type(value))
        return True
    return not (isinstance(value, Exception) or is_awaitable(value))


def output_coercion(leaf: Any) -> Callable[[Any], Any]:
    """`leaf.coerce_output_value`, with strawberry's enums answered from a table of their members
    (strawberry compares the value with each of the enum's values in turn, for every value of
    every response). Anything the table does not hold goes to the type's own coercion."""
    found: Callable[[Any], Any] | None = getattr(leaf, "_safety_net_coerce", None)
    if found is not None:
        return found
    found = leaf.coerce_output_value
    wrapped = getattr(leaf, "wrapped_cls", None)
    if isinstance(leaf, GraphQLEnumType) and isinstance(wrapped, type) and issubclass(wrapped,
                                                                                     enum.Enum):
        names = {member: name for name, value in leaf.values.items()
                 for member in wrapped if member.value == value.value}
        own, get = found, names.get

        def coerce(output_value: Any) -> Any:
            name = get(output_value) if type(output_value) is wrapped else None
            return name if name is not None else own(output_value)

        found = coerce
    leaf._safety_net_coerce = found
    return found


def basic_leaves(schema: GraphQLSchema) -> BasicLeaves:
    """The schema's basic leaf fields, found once per schema (kept on it)."""
    found: BasicLeaves | None = getattr(schema, "_safety_net_basic_leaves", None)
    if found is not None:
        return found
    found = {}
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType):
            continue
        for name, gql_field in named.fields.items():
            definition = (gql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            shortcut = getattr(gql_field.resolve, "shortcut", None)
            attribute: str | None = None
            if shortcut is None:
                if (not isinstance(definition, StrawberryField) or gql_field.args
                        or not getattr(gql_field.resolve, "_is_default", False)
                        or not definition.is_basic_field
                        or type(definition).get_result is not StrawberryField.get_result
                        or definition.default_resolver is not getattr):
                    continue
                attribute = definition.python_name
            elif gql_field.args:
                continue
            non_null = isinstance(gql_field.type, GraphQLNonNull)
            leaf = gql_field.type.of_type if non_null else gql_field.type
            if isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
                found.setdefault(named.name, {})[name] = (attribute, shortcut,
                                                          output_coercion(leaf), non_null)
    schema._safety_net_basic_leaves = found  # type: ignore[attr-defined]
    return found


def bounded_execution(max_bytes: int) -> type[StrawberryGraphQLCoreExecutionContext]:
    """An execution context class that stops once the response passes `max_bytes`."""

    complete_leaf = StrawberryGraphQLCoreExecutionContext.complete_leaf_value  # a staticmethod

    class BoundedExecutionContext(StrawberryGraphQLCoreExecutionContext):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.response_bytes = 0
            self.too_large: ResponseTooLarge | None = None
            # Resolver middleware (tracing) must see every field: then no shortcut.
            manager = self.middleware_manager
            self.basic_leaves: BasicLeaves = (
                {} if manager is not None and manager.middlewares else basic_leaves(self.schema))

        def execute_fields(self, parent_type: Any, source_value: Any, path: Any,
                           grouped_field_set: Any, position_context: Any) -> Any:
            # graphql-core's execute_fields (3.3), with a shortcut for basic leaves (most of a
            # page's values: IDs, enums, dates): the object's attribute, coerced and counted as
            # complete_leaf_value does, without resolve info, resolver wrapper, path or dispatch
            # on its type. Anything unusual (null where non-null, an exception or awaitable, a
            # value its type does not coerce) takes graphql-core's own path, which raises and
            # reports its own error.
            basic = self.basic_leaves.get(parent_type.name)
            if basic is None:
                return super().execute_fields(parent_type, source_value, path,
                                              grouped_field_set, position_context)
            results: dict[str, Any] = {}
            is_awaitable = self.is_awaitable
            context = self.context_value
            awaitable_fields: list[str] = []
            try:
                for response_name, field_details_list in grouped_field_set.items():
                    node = field_details_list[0].node
                    leaf = basic.get(node.name.value)
                    if leaf is not None and not node.arguments and self.too_large is None:
                        attribute, shortcut, coerce, non_null = leaf
                        value = (shortcut(source_value, context) if shortcut is not None
                                 else getattr(source_value, attribute, DECLINE))  # type: ignore[arg-type]
                        if value is None or value is Undefined:
                            if not non_null:
                                results[response_name] = None
                                continue
                        elif value is not DECLINE and (type(value) in _SETTLED or _settled(
                                value, is_awaitable)):
                            try:
                                coerced = coerce(value)
                            except Exception:
                                coerced = None
                            if coerced is not None and coerced is not Undefined:
                                # count(), inlined; at the limit graphql-core's path counts it
                                # again and raises the limit as this field's error.
                                if isinstance(coerced, str):
                                    escaped: str = encode_basestring(coerced)
                                    size = LEAF_OVERHEAD + (len(escaped) if escaped.isascii()
                                                            else len(escaped.encode()))
                                else:
                                    size = LEAF_OVERHEAD + 8
                                if self.response_bytes + size <= max_bytes:
                                    self.response_bytes += size
                                    results[response_name] = coerced
                                    continue
                    result = self.execute_field(parent_type, source_value, field_details_list,
                                                Path(path, response_name, parent_type.name),
                                                position_context)
                    if result is not Undefined:
                        results[response_name] = result
                        if is_awaitable(result):
                            awaitable_fields.append(response_name)
            except Exception:
                if awaitable_fields:
                    self.settle_in_background([results[f] for f in awaitable_fields])
                raise
            if not awaitable_fields:
                return results

            async def get_results() -> dict[str, Any]:
                if len(awaitable_fields) == 1:
                    results[awaitable_fields[0]] = await results[awaitable_fields[0]]
                else:
                    awaited = await _gather_settled(*(results[f] for f in awaitable_fields))
                    results.update(zip(awaitable_fields, awaited, strict=True))
                return results

            return get_results()

        # Checked where values are produced (leaves) and where execution descends (objects),
        # not at every value graphql-core completes: a page completes thousands of values, and
        # a Python override on each of them cost more than the rest of this limit.
        def settle_in_background(self, awaitables: list[Any]) -> None:
            # graphql-core lets siblings of a failed field finish on their own; they use the
            # request's one database session, so the edge must wait for them (Context.settle)
            # before it rolls back or commits, or it closes the session under them.
            super().settle_in_background(awaitables)
            background = getattr(self.context_value, "background", None)
            if background is not None:
                background.update(self.background_futures)

        def complete_value(self, return_type: Any, field_details_list: Any, info: Any,
                           path: Any, result: Any, position_context: Any) -> Any:
            # graphql-core's complete_value, for an object (or non-null object) that is there:
            # straight to complete_object_value, without the dispatch on the type (twice for a
            # non-null one) for each of a page's ~300 objects. A non-null object's completion
            # is a dict or an awaitable, never null: the outer check has nothing to catch.
            # Anything else (null, an exception, lists, leaves, abstract types) takes its path.
            object_type = return_type.of_type if type(return_type) is GraphQLNonNull \
                else return_type
            if (type(object_type) is GraphQLObjectType and result is not None
                    and result is not Undefined and not isinstance(result, Exception)):
                return self.complete_object_value(object_type, field_details_list, info, path,
                                                  result, position_context)
            return super().complete_value(return_type, field_details_list, info, path, result,
                                          position_context)

        def complete_object_value(self, return_type: Any, field_details_list: Any, info: Any,
                                  path: Any, result: Any, position_context: Any) -> Any:
            if self.too_large is not None:
                raise self.too_large
            # graphql-core's complete_object_value and collect_and_execute_subfields, for an
            # object its type accepts at once (is_type_of True, not awaitable) with no deferred
            # fragment: execute_fields directly. Otherwise graphql-core's own path (which asks
            # is_type_of again and raises its own error).
            is_type_of = return_type.is_type_of
            if position_context is None and (is_type_of is None
                                             or is_type_of(result, info) is True):
                grouped_field_set, new_defer_usages, _ = self.collect_subfields(
                    return_type, field_details_list)
                if not new_defer_usages:
                    return self.execute_fields(return_type, result, path, grouped_field_set,
                                               None)
            return super().complete_object_value(return_type, field_details_list, info, path,
                                                 result, position_context)

        def complete_leaf_value(self, return_type: Any, result: Any) -> Any:  # type: ignore[override]
            if self.too_large is not None:
                raise self.too_large
            # graphql-core's complete_leaf_value, inlined (one call less per leaf); on the
            # error path it runs itself, to raise its own error.
            coerced = output_coercion(return_type)(result)
            if coerced is None or coerced is Undefined:
                coerced = complete_leaf(return_type, result)
            self.count(coerced)
            return coerced

        def count(self, coerced: Any) -> None:
            """Add one leaf's JSON size; past the limit, stop the request. (The shortcut in
            execute_fields, which most leaves take, inlines the same arithmetic.)"""
            self.response_bytes += LEAF_OVERHEAD + json_size(coerced)
            if self.response_bytes > max_bytes:
                self.too_large = ResponseTooLarge(max_bytes)
                stop = getattr(self.context_value, "stop", None)
                if stop is not None:
                    stop(self.too_large)
                raise self.too_large

    return BoundedExecutionContext
