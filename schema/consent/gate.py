"""Field-level release of a peacebuilder's data: value, or null plus an entry in
`extensions.redacted`. The decision itself is made in app (AccessContext.released)."""

from __future__ import annotations

import uuid
from typing import Any

from schema.context import Info


def _path(info: Info) -> list[str | int]:
    out: list[str | int] = []
    node: Any = info.path
    while node is not None:
        out.append(node.key)
        node = node.prev
    return out[::-1]


def redact(info: Info, pb_id: uuid.UUID, category: str) -> None:
    access = info.context.access
    access.note_withheld(pb_id, category)
    info.context.redactions.append({"path": _path(info), "reason": access.redaction_reason().value})


def release(info: Info, pb_id: uuid.UUID, category: str, released: frozenset[str] | None,
            value: Any) -> Any:
    """The value if its category is released to this request, else null and a redaction."""
    if released is None or category not in released:
        redact(info, pb_id, category)
        return None
    info.context.access.note_read(pb_id, category)
    return value
