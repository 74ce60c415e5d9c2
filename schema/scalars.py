"""Scalars stricter than strawberry's: every DateTime input needs a timezone."""

from __future__ import annotations

from datetime import datetime

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

from app.inputs import BadDateTime, parse_datetime


def _parse(value: object) -> datetime:
    try:
        return parse_datetime(value, "DateTime")
    except BadDateTime as exc:
        # Never quotes the value: graphql-core names the variable and the path beside it.
        raise StrawberryInputCoercionError(BadDateTime.message) from exc


StrictDateTime = ScalarDefinition(
    name="DateTime",
    description=("Date with time, ISO 8601 with a timezone offset (e.g. 2026-11-30T10:00:00Z); "
                 "input without an offset is refused. Output is UTC."),
    specified_by_url=None,
    serialize=DateTimeDefinition.serialize,
    parse_value=_parse,
    parse_literal=None,
    origin=datetime,
)

SCALAR_OVERRIDES = {datetime: StrictDateTime}
