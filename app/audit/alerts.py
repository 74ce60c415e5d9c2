"""Unusual access, noticed as entries are chained: bulk reads, repeated denials, repeated
break-glass. Alerts go to the organisation's focal points and auditors (and, with the
incidents issue, to their inboxes). Each carries IDs and counts only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.tables.audit import AccessLogEntry, Alert


async def _add(session: AsyncSession, org_id: Any, kind: str, key: str,
               details: dict[str, Any], at: Any) -> None:
    exists = await session.scalar(select(Alert.id).where(Alert.dedupe_key == key))
    if exists is None:
        session.add(Alert(org_id=org_id, kind=kind, dedupe_key=key, details=details, created_at=at))


async def scan(session: AsyncSession, settings: Settings, first_seq: int, last_seq: int) -> int:
    """Look at newly chained entries (first_seq..last_seq) and raise alerts; returns how many."""
    before = int(await session.scalar(select(func.count()).select_from(Alert)) or 0)
    rows = (await session.execute(select(AccessLogEntry).where(
        AccessLogEntry.seq >= first_seq, AccessLogEntry.seq <= last_seq,
        AccessLogEntry.org_id.is_not(None)))).scalars().all()
    for e in rows:
        if e.action == "data.read" and e.decision == "allow":
            records = len((e.details or {}).get("records", {}))
            if records >= settings.alert_bulk_records:
                await _add(session, e.org_id, "bulk_read", f"bulk:{e.id}",
                           {"actor": e.actor, "records": records, "entry": e.seq}, e.at)
        if e.decision == "deny":
            since = e.at - timedelta(minutes=settings.alert_denial_minutes)
            count = int(await session.scalar(select(func.count()).select_from(AccessLogEntry).where(
                AccessLogEntry.actor == e.actor, AccessLogEntry.decision == "deny",
                AccessLogEntry.at > since, AccessLogEntry.at <= e.at)) or 0)
            if count >= settings.alert_denials:
                window = int(e.at.timestamp() // (settings.alert_denial_minutes * 60))
                await _add(session, e.org_id, "repeated_denials", f"deny:{e.actor}:{window}",
                           {"actor": e.actor, "denials": count,
                            "minutes": settings.alert_denial_minutes}, e.at)
        if e.action == "break_glass.open":
            since = e.at - timedelta(hours=24)
            count = int(await session.scalar(select(func.count()).select_from(AccessLogEntry).where(
                AccessLogEntry.org_id == e.org_id, AccessLogEntry.action == "break_glass.open",
                AccessLogEntry.at > since, AccessLogEntry.at <= e.at)) or 0)
            if count >= settings.alert_break_glass:
                await _add(session, e.org_id, "repeated_break_glass", f"glass:{e.id}",
                           {"break_glass_in_24h": count, "entry": e.seq}, e.at)
    await session.flush()
    return int(await session.scalar(select(func.count()).select_from(Alert)) or 0) - before
