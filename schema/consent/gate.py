"""Field-level release of a peacebuilder's data: value, or null plus an entry in
`extensions.redacted`. The decision itself is made in app (AccessContext.released)."""

from __future__ import annotations

import uuid
from typing import Any

from app.her import sealing
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


def unreadable(info: Info, problem: str) -> None:
    """A value that is stored but cannot be opened: ERASED (her key was destroyed) or
    UNREADABLE (it failed its integrity check). Null, with the reason, never an error."""
    info.context.redactions.append({"path": _path(info), "reason": problem})


async def open_sealed(info: Info, ref: sealing.Ref, token: str | None) -> str | None:
    """A sealed value opened with her key (batched per tick), or null and a redaction entry."""
    if token is None:
        return None
    opened: sealing.Opened = await info.context.loaders.sealed.load((ref, token))
    if opened.problem is not None:
        unreadable(info, opened.problem)
    return opened.value


async def release_sealed(info: Info, pb_id: uuid.UUID, category: str,
                         released: frozenset[str] | None, ref: sealing.Ref,
                         token: str | None) -> str | None:
    """`release` for a sealed value: decrypted only when its category is released."""
    if released is None or category not in released:
        redact(info, pb_id, category)
        return None
    info.context.access.note_read(pb_id, category)
    return await open_sealed(info, ref, token)
