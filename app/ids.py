"""Opaque global IDs: base64url("Type:uuid"). Clients must not parse them. One codec for
GraphQL and the HTTP routes (attachments): a malformed ID is BAD_USER_INPUT, an ID of another
type is NOT_FOUND, everywhere."""

from __future__ import annotations

import base64
import binascii
import uuid

from app.errors import BadInput, NotFound


def encode(type_name: str, id_: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{id_}".encode()).decode().rstrip("=")


def decode_any(value: str, field: str = "id") -> tuple[str, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        type_name, _, raw_id = raw.partition(":")
        if not type_name.isidentifier():
            raise ValueError
        return type_name, uuid.UUID(raw_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadInput("Invalid ID.", field=field) from exc


def decode(value: str, type_name: str, field: str = "id") -> uuid.UUID:
    """The UUID inside an ID of the expected type; any other type of ID is simply not found."""
    found_type, id_ = decode_any(value, field)
    if found_type != type_name:
        raise NotFound()
    return id_
