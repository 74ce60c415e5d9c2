"""Shaping errors for clients: stable codes, fixed messages, no stack traces, no personal data."""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from graphql import GraphQLError
from strawberry.types import ExecutionContext

from app.errors import AppError, BadInput, ResponseTooLarge
from schema.limits import LimitExceeded

log = logging.getLogger("safety_net.graphql")

# graphql-core suggests names it knows ("Did you mean 'x'?") for fields, arguments, types and
# enum values: schema hints that production must not give (introspection is off there).
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


# The prefix of a variable's coercion error, graphql-core's ("Variable '$i' got invalid value
# <value> at 'i.occurredAt'; <message>") or strawberry's ("Variable '$i' has invalid value at
# .occurredAt: <message>"). The value is not repeated to the client; the path is.
_VARIABLE = re.compile(r"^Variable '\$(\w+)' (?:got|has) invalid value")
_AT = re.compile(r" at '?([\w.\[\]]*)'?$")


def _input_path(message: str, inner: str) -> str | None:
    """Where in the variables the input was refused, e.g. "i.occurredAt"."""
    variable = _VARIABLE.match(message)
    if variable is None:
        return None
    name = variable.group(1)
    for separator in ("; ", ": "):
        if message.endswith(separator + inner):
            at = _AT.search(message[:-len(separator + inner)])
            if at and at.group(1):
                path = at.group(1)
                return name + path if path.startswith(".") else path
    return name


def classify(error: GraphQLError) -> tuple[str, str, dict[str, Any]]:
    """(code, message, extra extensions) for one error."""
    original = error.original_error
    if isinstance(original, LimitExceeded):
        return "QUERY_LIMIT_EXCEEDED", original.message, {"limit": original.limit,
                                                          "max": original.maximum}
    if isinstance(original, ResponseTooLarge):
        return original.code, original.message, {"limit": original.limit,
                                                 "max": original.maximum}
    if isinstance(original, AppError):
        extra: dict[str, Any] = {}
        if isinstance(original, BadInput) and original.field:
            extra["field"] = original.field
        return original.code, original.message, extra
    if original is None:
        # graphql-core's own parse, validation and variable-coercion errors: about the document
        # the client sent, never about stored data.
        return "GRAPHQL_VALIDATION_FAILED", error.message, {}
    if isinstance(original, GraphQLError):
        where = _input_path(error.message, original.message)
        return "BAD_USER_INPUT", original.message, {"field": where} if where else {}
    return "INTERNAL_SERVER_ERROR", "Internal error.", {}


def format_error(error: GraphQLError, request_id: str, *, hints: bool = True) -> dict[str, Any]:
    code, message, extra = classify(error)
    if not hints:
        message = SUGGESTION.sub("", message)
    out: dict[str, Any] = {"message": message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = list(error.path)
    ext: dict[str, Any] = {"code": code, **extra}
    if code == "INTERNAL_SERVER_ERROR":
        ext["requestId"] = request_id
    out["extensions"] = ext
    return out


def log_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Log unexpected errors by type and stack only: exception text can hold personal data."""
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, AppError | GraphQLError):
            continue
        # Frames only (file, line, function): no source text, no values.
        stack = "".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
                        for f in traceback.extract_tb(original.__traceback__))
        log.error("unexpected %s at %s\n%s", type(original).__name__,
                  ".".join(str(p) for p in error.path or []), stack)
