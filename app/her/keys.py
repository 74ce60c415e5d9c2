"""Her data key: created with her record, unwrapped per request, destroyed on erasure."""

from __future__ import annotations

import logging
import uuid

from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from app.access.context import AccessContext
from app.crypto import KeyEncryptionKeys, new_data_key
from app.db import rows as db_rows
from app.tables.peacebuilders import DataKey

log = logging.getLogger("safety_net.keys")


def _keks(ctx: AccessContext) -> KeyEncryptionKeys:
    keys = ctx.db.keys
    if keys is None:
        raise RuntimeError("no key-encryption keys configured")
    return keys  # type: ignore[no-any-return]


def lookup_key(ctx: AccessContext) -> bytes:
    return _keks(ctx).lookup_key()


async def create(ctx: AccessContext, pb_id: uuid.UUID) -> bytes:
    data_key = new_data_key()
    version, wrapped = _keks(ctx).wrap(data_key, str(pb_id))
    ctx.session.add(DataKey(peacebuilder_id=pb_id, kek_version=version, wrapped=wrapped,
                            created_at=ctx.clock.now()))
    ctx.cache.setdefault("data_keys", {})[pb_id] = data_key
    return data_key


async def of(ctx: AccessContext, pb_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes | None]:
    """Unwrapped data keys (None once erased), kept for the request."""
    cache: dict[uuid.UUID, bytes | None] = ctx.cache.setdefault("data_keys", {})
    missing = [p for p in pb_ids if p not in cache]
    if missing:
        rows = await db_rows(ctx.session, select(
            DataKey.peacebuilder_id, DataKey.kek_version, DataKey.wrapped).where(
                DataKey.peacebuilder_id.in_(missing)))
        found = {pb: (version, wrapped) for pb, version, wrapped in rows}
        unwrap(ctx, {pb: found.get(pb, (None, None)) for pb in missing})
    return {pb: cache[pb] for pb in pb_ids}


def unwrap(ctx: AccessContext,
           wrapped: dict[uuid.UUID, tuple[int | None, bytes | None]]) -> None:
    """Unwrap data keys read along with their rows (one statement for a page and its keys)."""
    cache: dict[uuid.UUID, bytes | None] = ctx.cache.setdefault("data_keys", {})
    open_key = _keks(ctx).unwrapper()
    for pb, (version, blob) in wrapped.items():
        if pb in cache:
            continue
        if version is None or blob is None:
            cache[pb] = None
            continue
        try:
            cache[pb] = open_key(version, blob, str(pb))
        except KeyError:  # its KEK version was destroyed: as good as erased
            cache[pb] = None
        except (InvalidTag, ValueError):
            # Altered or moved wrapped key: her fields fail closed; the others on the page
            # still open (one bad key must not fail a whole batch).
            log.warning("data key does not unwrap", extra={"peacebuilder": str(pb)})
            cache[pb] = None


async def destroy(ctx: AccessContext, pb_id: uuid.UUID) -> None:
    row = await ctx.session.get(DataKey, pb_id)
    if row is not None:
        row.wrapped, row.kek_version, row.destroyed_at = None, None, ctx.clock.now()
    ctx.cache.setdefault("data_keys", {})[pb_id] = None


async def rewrap_all(session: object, keks: KeyEncryptionKeys) -> int:
    """Re-wrap every live data key under the current KEK (rotation without downtime)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(session, AsyncSession)
    current, n = keks.current, 0
    for row in await session.scalars(select(DataKey).where(DataKey.wrapped.is_not(None),
                                                           DataKey.kek_version != current)):
        assert row.kek_version is not None and row.wrapped is not None
        data_key = keks.unwrap(row.kek_version, row.wrapped, str(row.peacebuilder_id))
        row.kek_version, row.wrapped = keks.wrap(data_key, str(row.peacebuilder_id))
        n += 1
    return n
