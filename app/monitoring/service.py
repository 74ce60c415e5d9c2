"""Release a declared monitoring table for a calendar period, under disclosure control.

A release is computed once per organisation, table and period (after the period has ended),
recorded with its published figures and the (digested) women it counts, and refused when,
combined with every release of the same year over overlapping women — by any organisation, of
the same table or of one sharing a total with it — it would narrow a suppressed cell to a range
under K wide (app/monitoring/disclosure.py). Asking again returns the recorded figures.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text

from app import tenancy
from app.access.context import AccessContext
from app.access.visibility import with_category
from app.errors import BadInput, Conflict, NotFound
from app.monitoring import disclosure, tables
from app.monitoring.disclosure import BASE, TOTAL, K, Period, Release
from app.monitoring.tables import SPECS, TableSpec
from app.notify import service as notify
from app.tables import declared
from app.tables.categories import Purpose
from app.tables.monitoring import MonitoringRelease
from app.tables.orgs import Organisation


class DisclosureRisk(Conflict):
    message = ("Refused: combined with figures already published for the same women and "
               "periods, this release would let a suppressed count be worked out "
               "(differencing). Nothing was published.")


# One lock for every release (PostgreSQL advisory lock key): the check reads the whole ledger.
RELEASE_LOCK = 0x5AFE_2020


@dataclass(frozen=True)
class Published:
    """A recorded release, as served (GraphQL, CSV, the printable report)."""

    id: uuid.UUID
    table: TableSpec
    period: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    figures: dict[tuple[str, str], int | None]
    no_data_rows: tuple[str, ...]
    k: int
    base: int
    released_at: Any

    def value(self, row: str, col: str) -> int | None:
        return self.figures.get((row, col))


def _published(row: MonitoringRelease) -> Published:
    f = row.figures
    return Published(id=row.id, table=SPECS[row.table_name], period=row.period,
                     rows=tuple(f["rows"]), cols=tuple(f["cols"]),
                     figures={(r, c): v for r, c, v in f["cells"]},
                     no_data_rows=tuple(f.get("no_data_rows", ())), k=f["k"], base=f["base"],
                     released_at=row.released_at)


def _as_release(row: MonitoringRelease) -> Release:
    p = _published(row)
    population = row.figures.get("population")
    return Release(row.table_name, disclosure.parse_period(row.period), p.rows, p.cols,
                   p.figures, series=str(row.org_id),
                   population=None if population is None else frozenset(population))


async def _require(ctx: AccessContext, act: str) -> None:
    await ctx.require("monitoring", act)
    if ctx.purpose != Purpose.AGGREGATE_REPORTING:
        ctx.deny(f"monitoring.{act}", reason="purpose is not aggregate_reporting")
        raise BadInput("Monitoring needs the aggregate_reporting purpose "
                       "(Safety-Net-Purpose header).", field="purpose")


def _spec(name: str) -> TableSpec:
    if name not in SPECS:
        raise BadInput("Unknown table: one of " + ", ".join(SPECS) + ".", field="table")
    return SPECS[name]


def _period(label: str) -> Period:
    try:
        return disclosure.parse_period(label)
    except ValueError:
        raise BadInput("A period is a calendar year (2026), quarter (2026-Q2) or month "
                       "(2026-04).", field="period") from None


async def _recorded(ctx: AccessContext, table: str) -> list[MonitoringRelease]:
    return list(await ctx.session.scalars(
        select(MonitoringRelease).where(MonitoringRelease.org_id == ctx.org_id,
                                        MonitoringRelease.table_name == table)
        .order_by(MonitoringRelease.released_at)))


async def _ledger_of_year(ctx: AccessContext, year: int) -> list[MonitoringRelease]:
    """Every organisation's releases of `year` (the differencing check's input only: nothing
    of another organisation's record is returned to the caller). Row-level security shows an
    organisation its own rows, so on PostgreSQL this reads in the system scope, after taking
    the release lock in the request's transaction: a concurrent release of another
    organisation waits for this one to commit, then sees it."""
    query = (select(MonitoringRelease)
             .where(MonitoringRelease.period.startswith(f"{year}"),
                    MonitoringRelease.table_name.in_(list(SPECS)))
             .order_by(MonitoringRelease.released_at, MonitoringRelease.id))
    if ctx.db.dialect != "postgresql":
        return list(await ctx.session.scalars(query))
    await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELEASE_LOCK})
    with tenancy.using(tenancy.SYSTEM):
        async with ctx.db.transaction() as session:
            return list(await session.scalars(query))


async def release(ctx: AccessContext, *, table: str, period: str) -> Published:
    """Publish `table` for `period` to the caller's organisation (or return what was
    published before): counts of women only, suppressed, rounded, recorded."""
    await _require(ctx, "release")
    spec = _spec(table)
    when = _period(period)
    start, end = tables.bounds(when)
    now = ctx.clock.now()
    if end > now:
        raise BadInput("A period is released once it has ended (a running period would be "
                       "released again, and the two could be subtracted).", field="period")
    earlier = await _recorded(ctx, spec.name)
    same = next((r for r in earlier if r.period == when.label), None)
    if same is not None:
        return _published(same)
    counted = with_category(ctx.aggregate_scope(), spec.categories[0].value)
    for category in spec.categories[1:]:  # every category the table counts must be released
        women = counted.subquery()
        counted = select(women.c[0]).where(
            women.c[0].in_(with_category(ctx.aggregate_scope(), category.value)))
    fetched = await spec.fetch(ctx.session, counted, start, end, now)
    true = tables.count(spec, fetched)
    population = tables.counted_women(fetched)
    rows, cols = spec.rows(), spec.cols
    figures = disclosure.protect(true, rows, cols, k=K, base=BASE)
    new = Release(spec.name, when, rows, cols, figures, series=str(ctx.org_id),
                  population=population)
    # Every release of the same calendar year (the only periods that nest with this one), by
    # any organisation, of any table: published figures are public, so whoever released them,
    # those over the same women combine with this one (decision 0033).
    same_year = [*(_as_release(r) for r in await _ledger_of_year(ctx, when.start.year)), new]
    linked = [same_year[i] for i in disclosure.connected(same_year, len(same_year) - 1,
                                                          tables.SHARED)]
    narrow = await asyncio.to_thread(disclosure.narrow_cells, linked, k=K, base=BASE,
                                     shared=tables.SHARED)
    if narrow:
        # Counts only: which other organisation or table made it so is never said.
        ctx.deny("monitoring.release", reason="differencing",
                 details={"table": spec.name, "period": when.label, "cells": len(narrow)})
        raise DisclosureRisk()
    mechanism = {r.code: r.mechanism for r in declared.regions()}
    no_data = [r for r in rows if mechanism.get(r) is False and not true.get((r, TOTAL))]
    row = MonitoringRelease(
        org_id=ctx.org_id, table_name=spec.name, period=when.label, released_by=ctx.principal.subject,
        released_at=now, figures={
            "rows": list(rows), "cols": list(cols), "k": K, "base": BASE, "no_data_rows": no_data,
            "cells": [[r, c, v] for (r, c), v in figures.items()],
            "population": sorted(population)})
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.record("monitoring.release", target_type="MonitoringRelease", target_id=row.id,
               details={"table": spec.name, "period": when.label,
                        "suppressed": sum(v is None for v in figures.values())})
    return _published(row)


async def releases(ctx: AccessContext, *, table: str | None = None) -> list[Published]:
    """What the caller's organisation has released (the record the differencing check uses)."""
    await _require(ctx, "read")
    query = select(MonitoringRelease).where(MonitoringRelease.org_id == ctx.org_id)
    if table is not None:
        query = query.where(MonitoringRelease.table_name == _spec(table).name)
    rows = await ctx.session.scalars(query.order_by(MonitoringRelease.period,
                                                    MonitoringRelease.table_name))
    ctx.record("monitoring.read", details={"table": table})
    return [_published(r) for r in rows]


async def get(ctx: AccessContext, release_id: uuid.UUID) -> Published:
    await _require(ctx, "read")
    row = await ctx.session.get(MonitoringRelease, release_id)
    if row is None or row.org_id != ctx.org_id:
        raise NotFound()
    ctx.record("monitoring.read", target_type="MonitoringRelease", target_id=row.id)
    return _published(row)


async def for_period(ctx: AccessContext, period: str) -> tuple[str, list[Published]]:
    """The caller organisation's name and every table it released for `period` (the
    printable report and the CSV export serve recorded figures only)."""
    await _require(ctx, "read")
    label = _period(period).label
    rows = await ctx.session.scalars(select(MonitoringRelease).where(
        MonitoringRelease.org_id == ctx.org_id, MonitoringRelease.period == label)
        .order_by(MonitoringRelease.table_name))
    org = await ctx.session.get(Organisation, ctx.org_id)
    ctx.record("monitoring.export", details={"period": label})
    return (org.name if org else ""), [_published(r) for r in rows]


@dataclass(frozen=True)
class Coverage:
    name: str
    code: str
    mechanism: bool  # False: shown as "no data", never as zero


async def coverage(ctx: AccessContext) -> tuple[list[Coverage], list[Coverage]]:
    """Regions and organisations with and without a reporting mechanism: a declared region
    marked without one, an organisation with no active focal point to receive a report."""
    await _require(ctx, "read")
    regions = [Coverage(r.name, r.code, r.mechanism) for r in declared.regions()]
    orgs = []
    for org in await ctx.session.scalars(select(Organisation).order_by(Organisation.name)):
        orgs.append(Coverage(org.name, org.slug, bool(await notify.focal_points(ctx.session, org.id))))
    return regions, orgs
