"""Who may read which access-log entries, and the reads themselves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select

from app import tenancy
from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.errors import BadInput, NotFound
from app.pagination import Page, PageRequest, paginate
from app.tables.audit import AccessLogEntry, Alert, Oversight
from app.tables.orgs import Organisation
from app.tables.peacebuilders import Peacebuilder


@dataclass(frozen=True)
class LogFilter:
    since: datetime | None = None
    until: datetime | None = None
    org_id: uuid.UUID | None = None
    actor: str | None = None
    peacebuilder_ids: list[uuid.UUID] | None = None
    decision: str | None = None
    purpose: str | None = None
    action_prefix: str | None = None



async def audited_orgs(ctx: AccessContext) -> list[uuid.UUID]:
    """The caller's own organisation and those that accepted its oversight."""
    assert ctx.org_id is not None
    overseen = await ctx.session.scalars(select(Oversight.org_id).where(
        Oversight.overseer_org_id == ctx.org_id))
    return [ctx.org_id, *overseen]


async def readable_orgs(ctx: AccessContext) -> list[Organisation]:
    """The organisations whose entries the caller may read (`audited_orgs`), by name."""
    await ctx.require("audit_log", "read")
    org_ids = await audited_orgs(ctx)
    return list(await ctx.session.scalars(select(Organisation).where(
        Organisation.id.in_(org_ids)).order_by(Organisation.name)))


async def _query(ctx: AccessContext, f: LogFilter) -> Select[Any]:
    orgs = await audited_orgs(ctx)
    if f.org_id is not None and f.org_id not in orgs:
        raise NotFound()
    q = select(AccessLogEntry).where(AccessLogEntry.org_id.in_([f.org_id] if f.org_id else orgs))
    if f.since:
        q = q.where(AccessLogEntry.at >= f.since)
    if f.until:
        q = q.where(AccessLogEntry.at < f.until)
    if f.actor:
        q = q.where(AccessLogEntry.actor == f.actor)
    if f.decision:
        q = q.where(AccessLogEntry.decision == f.decision)
    if f.purpose:
        q = q.where(AccessLogEntry.purpose == f.purpose)
    if f.action_prefix:
        q = q.where(AccessLogEntry.action.startswith(f.action_prefix))
    if f.peacebuilder_ids is not None:
        if not f.peacebuilder_ids:
            return q.where(AccessLogEntry.id.is_(None))
        q = q.where(or_(*(AccessLogEntry.refs.contains(str(pb)) for pb in f.peacebuilder_ids)))
    return q


async def pseudonym_ids(ctx: AccessContext, pseudonym: str) -> list[uuid.UUID]:
    """IDs to filter log entries by; an auditor holds no grant for her record, so this one lookup
    reads across organisations (only IDs leave it, to filter entries the caller may read)."""
    await ctx.require("audit_log", "read")  # before any cross-organisation work
    with tenancy.using(tenancy.SYSTEM):
        async with ctx.db.transaction() as session:
            rows = await session.scalars(select(Peacebuilder.id).where(
                Peacebuilder.pseudonym == pseudonym))
            return list(rows)


async def search(ctx: AccessContext, f: LogFilter, page: PageRequest) -> Page[AccessLogEntry]:
    """Entries of the audited organisations, newest first (chained or still pending)."""
    await ctx.require("audit_log", "read")
    ctx.record("audit_log.search", details={"filter": {k: str(v) for k, v in vars(f).items()
                                                       if v is not None}})
    q = await _query(ctx, f)
    return await paginate(ctx.session, q, keys=(AccessLogEntry.at, AccessLogEntry.id), page=page)


async def export_rows(ctx: AccessContext, f: LogFilter, up_to_seq: int) -> tuple[set[uuid.UUID], int]:
    """IDs of the chained entries the caller may export, and the first seq among them."""
    await ctx.require("audit_log", "export")
    q = (await _query(ctx, f)).where(AccessLogEntry.seq.is_not(None),
                                     AccessLogEntry.seq <= up_to_seq)
    rows = (await ctx.session.execute(q.with_only_columns(AccessLogEntry.id, AccessLogEntry.seq))).all()
    if not rows:
        return set(), up_to_seq + 1
    return {r[0] for r in rows}, min(int(r[1] or 0) for r in rows)


async def her_history(ctx: AccessContext, pb_id: uuid.UUID | None, page: PageRequest) -> Page[AccessLogEntry]:
    """Who accessed her data: for her, or a focal point of her network acting for her."""
    from app.consent.service import require_self_or_network, standing

    if pb_id is None:
        if ctx.principal.kind is not PrincipalKind.PEACEBUILDER:
            raise BadInput("Name the peacebuilder.", field="peacebuilderId")
        pb_id = ctx.principal.id
    require_self_or_network(ctx, await standing(ctx, pb_id, action="access_history.read"),
                            "access_history.read", pb_id)
    q = select(AccessLogEntry).where(AccessLogEntry.refs.contains(str(pb_id)),
                                     AccessLogEntry.org_id.is_not(None))
    return await paginate(ctx.session, q, keys=(AccessLogEntry.at, AccessLogEntry.id), page=page)


async def alerts(ctx: AccessContext, page: PageRequest) -> Page[Alert]:
    await ctx.require("alert", "read")
    assert ctx.org_id is not None
    q = select(Alert).where(Alert.org_id == ctx.org_id)
    return await paginate(ctx.session, q, keys=(Alert.created_at, Alert.id), page=page)


async def entry(ctx: AccessContext, entry_id: uuid.UUID) -> AccessLogEntry:
    """One entry (`node(id:)`) of the organisations the caller audits, as `accessLog` lists."""
    await ctx.require("audit_log", "read")
    found = await ctx.session.scalar((await _query(ctx, LogFilter()))
                                     .where(AccessLogEntry.id == entry_id))
    if found is None:
        raise NotFound()
    return found


async def alert(ctx: AccessContext, alert_id: uuid.UUID) -> Alert:
    """One alert of the caller's organisation (`node(id:)`), as `alerts` lists it."""
    await ctx.require("alert", "read")
    found = await ctx.session.scalar(select(Alert).where(Alert.org_id == ctx.org_id,
                                                         Alert.id == alert_id))
    if found is None:
        raise NotFound()
    return found
