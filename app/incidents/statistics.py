"""Aggregate reports: how many incidents of which kind, never who (invariant 7).

For monitoring and reporting on the situation of women peacebuilders (the guidance asks states to
"monitor and report" and to evaluate their response). Counts include only women whose live consent
releases incident details to the caller's organisation for the `aggregate_reporting` purpose, and a
count is published only when at least `MIN_WOMEN` different women stand behind it; otherwise it is
suppressed (null), and so is the total when it would give a single suppressed cell away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.access.context import AccessContext
from app.access.visibility import with_category
from app.cases.models import Case
from app.consent.categories import DataCategory, Purpose
from app.errors import BadInput
from app.incidents.models import Incident

# Below this many different women a count could point at one of them (a common statistical
# disclosure threshold; higher is safer, lower is never allowed here).
MIN_WOMEN = 5


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


async def incident_counts(ctx: AccessContext, *, reported_after: datetime | None = None,
                          reported_before: datetime | None = None) -> IncidentCounts:
    await ctx.require("statistics", "read")
    if ctx.purpose != Purpose.AGGREGATE_REPORTING:
        ctx.deny("statistics.read", reason="purpose is not aggregate_reporting")
        raise BadInput("Aggregate reports need the aggregate_reporting purpose "
                       "(Safety-Net-Purpose header).", field="purpose")
    if reported_after and reported_before and reported_after >= reported_before:
        raise BadInput("reportedAfter must be before reportedBefore.", field="reportedAfter")
    counted = with_category(ctx.aggregate_scope(), DataCategory.INCIDENT_DETAILS.value)
    incidents = (select(Incident.type, Incident.severity, Incident.id, Case.peacebuilder_id)
                 .join(Case, Case.id == Incident.case_id)
                 .where(Case.peacebuilder_id.in_(counted)))
    if reported_after is not None:
        incidents = incidents.where(Incident.reported_at >= reported_after)
    if reported_before is not None:
        incidents = incidents.where(Incident.reported_at < reported_before)
    counted_rows = incidents.subquery()
    women = func.count(func.distinct(counted_rows.c.peacebuilder_id))
    rows = (await ctx.session.execute(
        select(counted_rows.c.type, counted_rows.c.severity, func.count(counted_rows.c.id), women)
        .group_by(counted_rows.c.type, counted_rows.c.severity)
        .order_by(counted_rows.c.type, counted_rows.c.severity))).all()
    total_women = int(await ctx.session.scalar(select(women)) or 0)
    cells = [Cell(type=t, severity=s, incidents=n if w >= MIN_WOMEN else None)
             for t, s, n, w in rows]
    suppressed = sum(c.suppressed for c in cells)
    # One suppressed cell would be the total minus the others: withhold the total as well.
    publish_total = total_women >= MIN_WOMEN and suppressed != 1
    ctx.record("statistics.read", details={
        "report": "incident_counts", "cells": len(cells), "suppressed": suppressed,
        "from": reported_after.isoformat() if reported_after else None,
        "to": reported_before.isoformat() if reported_before else None})
    return IncidentCounts(cells=cells, total=sum(n for _, _, n, _ in rows) if publish_total else None)
