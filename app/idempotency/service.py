"""Idempotency keys: a mutation retried with the same `Idempotency-Key` gets its first answer.

A client that timed out cannot know whether its `reportIncident` was saved; sending it again
with the same key is safe. The key is per caller (the same key from two callers is two keys)
and stored as a SHA-256, with a SHA-256 of the request (document, variables, operation name,
declared purpose) and the first answer, in the same transaction as the mutation itself: either
both are saved or neither. Within `SAFETY_NET_IDEMPOTENCY_TTL` (24 h):

- the same key with the same request answers the stored response (HTTP status and body, header
  `Idempotent-Replayed: true`), runs nothing and creates nothing;
- the same key with another request is refused: `IDEMPOTENCY_KEY_REUSED` (422);
- two requests with the same key at once: the second's transaction fails on the key's primary
  key when the first commits; it is rolled back (nothing it did is kept) and answers the first's
  response.

Only successful mutations are stored: a failed one changed nothing, and retrying it runs it
again. The stored answer can hold her data (what the mutation returned), so it is sealed with
the `idempotency` service key (AES-256-GCM, kept with the KEKs), bound to the caller and key,
and is deleted when it expires (sweeps run as keys are used) and, all of them, whenever a
woman's data is erased (`forget_all`). Replays are written to the access
log (`idempotency.replay`, IDs only).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from app import crypto
from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.tables.idempotency import IdempotencyRecord
from app.tenancy import as_system

MAX_KEY_LENGTH = 255
SWEEP_ONE_IN = 50


class InvalidKey(ValueError):
    code = "INVALID_IDEMPOTENCY_KEY"
    message = ("Idempotency-Key must be 1 to 255 printable ASCII characters "
               "(a UUID is a good choice).")


@dataclass(frozen=True)
class Key:
    key_hash: str
    request_hash: str


@dataclass(frozen=True)
class Stored:
    """What a request with an already used key gets: its first answer, or a refusal."""

    status: int
    body: bytes | None  # None: the key was used for another request
    at: datetime


def parse(header: str | None, *, document: str, variables: Any, operation: str | None,
          purpose: str | None) -> Key | None:
    """The request's key and fingerprint, or None without the header."""
    if header is None:
        return None
    if not (0 < len(header) <= MAX_KEY_LENGTH) or not all(" " <= c <= "~" for c in header):
        raise InvalidKey(InvalidKey.message)
    request = json.dumps({"document": document, "variables": variables or {},
                          "operation": operation, "purpose": purpose},
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Key(key_hash=hashlib.sha256(header.encode()).hexdigest(),
               request_hash=hashlib.sha256(request.encode()).hexdigest())


def _aad(subject: str, key: Key) -> bytes:
    return f"idempotency_keys|{subject}|{key.key_hash}".encode()


def _service_key(ctx: AccessContext) -> bytes:
    return bytes(ctx.db.keys.service_key("idempotency"))


async def find(ctx: AccessContext, key: Key) -> Stored | None:
    """The stored answer for this caller's key, if any and not expired."""
    subject = ctx.principal.subject
    now = ctx.clock.now()
    row = await ctx.session.get(IdempotencyRecord, (subject, key.key_hash))
    if row is None:
        return None
    if row.expires_at <= now:
        await ctx.session.delete(row)
        await ctx.session.flush()
        return None
    if row.request_hash != key.request_hash:
        return Stored(status=422, body=None, at=row.created_at)
    body = crypto.open_sealed(_service_key(ctx), _aad(subject, key), row.response)
    return Stored(status=row.status, body=body.encode(), at=row.created_at)


async def store(ctx: AccessContext, key: Key, status: int, body: bytes, ttl_seconds: int) -> None:
    """Keep this answer in the request's own transaction (committed with the mutation)."""
    p = ctx.principal
    now = ctx.clock.now()
    if secrets.randbelow(SWEEP_ONE_IN) == 0:
        await ctx.session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.subject == p.subject, IdempotencyRecord.expires_at <= now))
    ctx.session.add(IdempotencyRecord(
        subject=p.subject, key_hash=key.key_hash, org_id=p.org_id,
        peacebuilder_id=p.id if p.kind is PrincipalKind.PEACEBUILDER else None,
        request_hash=key.request_hash, status=status,
        response=crypto.seal(_service_key(ctx), _aad(p.subject, key), body.decode()),
        created_at=now, expires_at=now + timedelta(seconds=ttl_seconds)))
    await ctx.session.flush()


async def forget_all(ctx: AccessContext) -> None:
    """Delete every stored answer (her erasure: an answer may quote what her key sealed, and is
    sealed under a service key her erasure does not destroy). Retries of mutations answered
    before then run again. PostgreSQL: in a transaction of its own in the system scope (all
    callers' rows, beyond this request's tenancy); SQLite (one writer, no RLS): in this one."""
    if ctx.db.dialect != "postgresql":
        await ctx.session.execute(delete(IdempotencyRecord))
        return
    await _forget_all(ctx.db)


@as_system
async def _forget_all(db: Any) -> None:
    async with db.transaction() as session:
        await session.execute(delete(IdempotencyRecord))


async def expired_count(ctx: AccessContext) -> int:
    """Expired answers still stored for this caller (tests)."""
    rows = await ctx.session.scalars(select(IdempotencyRecord.key_hash).where(
        IdempotencyRecord.subject == ctx.principal.subject,
        IdempotencyRecord.expires_at <= ctx.clock.now()))
    return len(list(rows))
