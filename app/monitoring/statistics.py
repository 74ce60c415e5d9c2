"""Aggregate reports: how many women reported incidents of which kind, never who (invariant 7).

For monitoring and reporting on the situation of women peacebuilders (the guidance asks states to
"monitor and report" and to evaluate their response). Counts include only women whose live consent
releases incident details to the caller's organisation for the `aggregate_reporting` purpose, and a
count is published only when at least `MIN_WOMEN` different women stand behind it; otherwise it is
suppressed (null), and so is any figure that would give a suppressed one away. Since issue 20 the
report is the declared monitoring table `incidents_by_type` for a calendar period, released
through the monitoring ledger (no free windows: they could be subtracted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.access.context import AccessContext
from app.errors import BadInput
from app.monitoring import disclosure
from app.monitoring import service as monitoring
from app.monitoring import tables as monitoring_tables
from app.monitoring.disclosure import TOTAL
from app.tables.categories import Purpose

# Below this many different women a count could point at one of them (a common statistical
# disclosure threshold; higher is safer, lower is never allowed here).
MIN_WOMEN = disclosure.K


@dataclass(frozen=True)
class Cell:
    type: str
    severity: str
    incidents: int | None  # None: suppressed

    @property
    def suppressed(self) -> bool:
        return self.incidents is None


@dataclass(frozen=True)
class IncidentCounts:
    cells: list[Cell]
    total: int | None  # None: suppressed
    min_women: int = MIN_WOMEN
    period: str = ""


TABLE = "incidents_by_type"  # the declared monitoring table this report is served from


def calendar_period(period: str | None, reported_after: datetime | None,
                    reported_before: datetime | None, now: datetime) -> str:
    """The calendar period asked for. Free windows are retired (two windows differing by one
    woman's report subtract to her incident): `reportedAfter`/`reportedBefore` are accepted
    only as the exact bounds of a month, quarter or year (UTC); nothing at all means the last
    month that has ended."""
    if reported_after is None and reported_before is None:
        if period is not None:
            return period
        last = (now.astimezone(UTC).replace(day=1) - timedelta(days=1))
        return f"{last.year}-{last.month:02d}"
    if reported_after is None or reported_before is None:
        raise BadInput(WINDOW, field="reportedAfter" if reported_after is None else "reportedBefore")
    after, before = reported_after.astimezone(UTC), reported_before.astimezone(UTC)
    for label in (f"{after.year}", f"{after.year}-Q{(after.month - 1) // 3 + 1}",
                  f"{after.year}-{after.month:02d}"):
        start, end = monitoring_tables.bounds(disclosure.parse_period(label))
        if (start, end) == (after, before):
            if period is not None and _label(period) != label:
                raise BadInput("period and reportedAfter/reportedBefore disagree.",
                               field="period")
            return label
    raise BadInput(WINDOW, field="reportedAfter")


WINDOW = ("Free time windows are retired: give a calendar `period` (2026, 2026-Q2, 2026-04); "
          "reportedAfter/reportedBefore are accepted only as its exact bounds (UTC).")


def _label(period: str) -> str | None:
    try:
        return disclosure.parse_period(period).label
    except ValueError:
        return None


async def incident_counts(ctx: AccessContext, *, period: str | None = None,
                          reported_after: datetime | None = None,
                          reported_before: datetime | None = None) -> IncidentCounts:
    """Women by incident type and severity for a calendar period that has ended: the declared
    `incidents_by_type` monitoring table, released (or served as recorded) through the same
    disclosure control and release ledger as every monitoring table (decision 0033)."""
    await ctx.require("statistics", "read")
    if ctx.purpose != Purpose.AGGREGATE_REPORTING:
        ctx.deny("statistics.read", reason="purpose is not aggregate_reporting")
        raise BadInput("Aggregate reports need the aggregate_reporting purpose "
                       "(Safety-Net-Purpose header).", field="purpose")
    label = calendar_period(period, reported_after, reported_before, ctx.clock.now())
    published = await monitoring.release(ctx, table=TABLE, period=label)
    cells = [Cell(type=t, severity=sev, incidents=published.value(t, sev))
             for t in published.rows for sev in published.cols
             if published.value(t, sev) != 0]
    ctx.record("statistics.read", details={
        "report": "incident_counts", "period": published.period, "cells": len(cells),
        "suppressed": sum(c.suppressed for c in cells)})
    return IncidentCounts(cells=cells, total=published.value(TOTAL, TOTAL),
                          min_women=published.k, period=published.period)
