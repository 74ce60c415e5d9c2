"""What no input may carry, checked once at each edge: NUL characters (PostgreSQL cannot store
them), unpaired UTF-16 surrogates (no UTF-8 encodes them), and JSON nested deeper than any of our
inputs (a parser's recursion is not a limit). Refusals are `BadInput` naming where, never quoting
the value."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from app.errors import BadInput

# No input of ours nests deeper (an input object with lists of input objects is ~4 levels).
MAX_JSON_DEPTH = 32
_BAD = re.compile("[\x00\ud800-\udfff]")


class BadText(BadInput):
    message = "Text may not contain NUL characters or unpaired surrogates."


class TooDeep(BadInput):
    message = f"JSON input may be nested at most {MAX_JSON_DEPTH} levels deep."


def bad_text(value: str) -> bool:
    return _BAD.search(value) is not None


def check_text(value: str, field: str) -> str:
    if bad_text(value):
        raise BadText(field=field[:120])
    return value


def check_json(value: Any, where: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Walk a decoded JSON value without recursion: every string (and object key) clean, depth
    bounded. `where` names the top (e.g. "variables"); the refusal names the path."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > max_depth:
            raise TooDeep(field=where)
        if isinstance(item, str):
            check_text(item, path)
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{path}.{key}" if isinstance(key, str) and not bad_text(key) else path
                if isinstance(key, str):
                    check_text(key, path)
                stack.append((child, name, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{i}", depth + 1) for i, child in enumerate(item))


class BadDateTime(BadInput):
    message = ("A date-time must be ISO 8601 with a timezone offset, e.g. "
               "2026-11-30T10:00:00Z or 2026-11-30T10:00:00+03:00, within years 1-9999 in UTC.")


def parse_datetime(value: object, field: str) -> datetime:
    """The one reading of a client's date-time (GraphQL's DateTime, export filters): ISO 8601
    with an offset, returned in UTC. No offset is refused, never guessed: a guessed timezone
    moves an incident's time by hours."""
    if not isinstance(value, str) or bad_text(value):
        raise BadDateTime(field=field)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadDateTime(field=field) from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise BadDateTime(field=field)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise BadDateTime(field=field) from exc
