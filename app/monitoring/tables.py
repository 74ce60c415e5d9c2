"""The declared monitoring tables: for one period, which women stand in which cell.

Each table is rows x columns of women (the unit protected is the person, not the incident): a
woman stands in a cell when one of her incidents in the period (or her case's response to it)
falls there. Counted are only the women whose live consent releases the table's categories to
the asking organisation for `aggregate_reporting` (app/access/visibility.py, whatever the lead
organisation); nothing here ever leaves as a record, only as counts.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.monitoring.disclosure import TOTAL, Key, Period
from app.tables import declared
from app.tables.cases import Case
from app.tables.categories import DataCategory
from app.tables.incidents import (
    Incident,
    IncidentStatus,
    IncidentType,
    Measure,
    Proceeding,
    Referral,
    ScheduledStep,
    Severity,
)
from app.tables.justice import Detention

Rows = list[tuple[uuid.UUID, str, str]]  # (woman, row, column)
Fetch = Callable[[AsyncSession, Select[Any], datetime, datetime, datetime], Awaitable[Rows]]

TYPES = tuple(t.value for t in IncidentType)
SEVERITIES = tuple(s.value for s in Severity)
WOMEN = ("women",)
CLOSED_TASKS = ("done", "cancelled")


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    rows: Callable[[], tuple[str, ...]]
    cols: tuple[str, ...]
    categories: tuple[DataCategory, ...]
    fetch: Fetch


def _incidents(counted: Select[Any], start: datetime, end: datetime, *cols: Any) -> Select[Any]:
    return (select(Case.peacebuilder_id, *cols).join(Case, Case.id == Incident.case_id)
            .where(Case.peacebuilder_id.in_(counted), Incident.reported_at >= start,
                   Incident.reported_at < end))


async def _by_region(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                     now: datetime) -> Rows:
    rows = await s.execute(_incidents(counted, start, end, Incident.region_code, Incident.type))
    return [(pb, region or "not_recorded", t) for pb, region, t in rows]


async def _by_source(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                     now: datetime) -> Rows:
    rows = await s.execute(_incidents(counted, start, end, Incident.source_category, Incident.type))
    return [(pb, src or "not_reported", t) for pb, src, t in rows]


async def _by_type(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                   now: datetime) -> Rows:
    rows = await s.execute(_incidents(counted, start, end, Incident.type, Incident.severity))
    return [(pb, t, sev) for pb, t, sev in rows]


async def _by_outcome(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                      now: datetime) -> Rows:
    rows = await s.execute(_incidents(counted, start, end, Incident.status, Incident.severity))
    return [(pb, status, sev) for pb, status, sev in rows]


async def _acknowledgement(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                           now: datetime) -> Rows:
    rows = await s.execute(_incidents(counted, start, end, Incident.acknowledged_at,
                                      Incident.ack_deadline, Incident.severity))
    return [(pb, "not_acknowledged" if at is None else
             "within_deadline" if at <= deadline else "after_deadline", sev)
            for pb, at, deadline, sev in rows]


def _band(delta: timedelta | None) -> str:
    if delta is None:
        return "none_yet"
    if delta <= timedelta(hours=72):
        return "within_72_hours"
    return "within_14_days" if delta <= timedelta(days=14) else "later"


async def _first_measure(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                         now: datetime) -> Rows:
    first = (select(Measure.incident_id, func.min(Measure.created_at).label("at"))
             .where(Measure.incident_id.is_not(None)).group_by(Measure.incident_id).subquery())
    rows = await s.execute(_incidents(counted, start, end, Incident.reported_at, first.c.at,
                                      Incident.severity)
                           .outerjoin(first, first.c.incident_id == Incident.id))
    return [(pb, _band(at - reported if at is not None else None), sev)
            for pb, reported, at, sev in rows]


async def _escalation(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                      now: datetime) -> Rows:
    fired = (select(ScheduledStep.subject_id, func.max(ScheduledStep.step).label("level"))
             .where(ScheduledStep.kind == "escalation", ScheduledStep.outcome == "fired")
             .group_by(ScheduledStep.subject_id).subquery())
    rows = await s.execute(_incidents(counted, start, end, fired.c.level, Incident.severity)
                           .outerjoin(fired, fired.c.subject_id == Incident.id))
    return [(pb, "not_escalated" if not level else f"level_{min(level, 3)}"
             + ("_or_more" if level >= 3 else ""), sev) for pb, level, sev in rows]


async def _overdue_tasks(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                         now: datetime) -> Rows:
    overdue = (select(Measure.incident_id).where(
        Measure.due_at < now, Measure.status.not_in(CLOSED_TASKS),
        Measure.incident_id.is_not(None)).distinct().subquery())
    rows = await s.execute(_incidents(counted, start, end, overdue.c.incident_id, Incident.severity)
                           .outerjoin(overdue, overdue.c.incident_id == Incident.id))
    return [(pb, "with_overdue_task" if late else "no_overdue_task", sev) for pb, late, sev in rows]


async def _referrals(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                     now: datetime) -> Rows:
    rows = await s.execute(select(Case.peacebuilder_id, Referral.status)
                           .join(Case, Case.id == Referral.case_id)
                           .where(Case.peacebuilder_id.in_(counted), Referral.created_at >= start,
                                  Referral.created_at < end))
    return [(pb, status, "women") for pb, status in rows]


async def _proceedings(s: AsyncSession, counted: Select[Any], start: datetime, end: datetime,
                       now: datetime) -> Rows:
    opened = await s.execute(select(Case.peacebuilder_id).join(Case, Case.id == Proceeding.case_id)
                             .where(Case.peacebuilder_id.in_(counted), Proceeding.kind == "investigation",
                                    Proceeding.created_at >= start, Proceeding.created_at < end))
    out: Rows = [(pb, "investigation_opened", "women") for (pb,) in opened]
    detained = await s.execute(
        select(Case.peacebuilder_id, Detention.detained_at, Detention.released_at)
        .join(Case, Case.id == Detention.case_id).where(Case.peacebuilder_id.in_(counted)))
    for pb, at, released in detained:
        if start <= at < end:
            out.append((pb, "detained", "women"))
        if released is not None and start <= released < end:
            out.append((pb, "released_from_detention", "women"))
    return out


INCIDENT = (DataCategory.INCIDENT_DETAILS,)
SPECS: dict[str, TableSpec] = {spec.name: spec for spec in (
    TableSpec("incidents_by_region", "Women reporting incidents, by region and type",
              lambda: (*(r.code for r in declared.regions()), "not_recorded"), TYPES,
              (DataCategory.INCIDENT_DETAILS, DataCategory.LOCATION_COARSE), _by_region),
    TableSpec("incidents_by_source", "Women reporting incidents, by alleged source and type",
              lambda: (*declared.SOURCE_CATEGORIES, "not_reported"), TYPES, INCIDENT, _by_source),
    TableSpec("incidents_by_type", "Women reporting incidents, by type and severity",
              lambda: TYPES, SEVERITIES, INCIDENT, _by_type),
    TableSpec("incidents_by_outcome", "Women reporting incidents, by outcome and severity",
              lambda: tuple(s.value for s in IncidentStatus), SEVERITIES, INCIDENT, _by_outcome),
    TableSpec("response_acknowledgement", "Acknowledgement against the deadline, by severity",
              lambda: ("within_deadline", "after_deadline", "not_acknowledged"), SEVERITIES,
              INCIDENT, _acknowledgement),
    TableSpec("response_first_measure", "Time to the first protection measure, by severity",
              lambda: ("within_72_hours", "within_14_days", "later", "none_yet"), SEVERITIES,
              INCIDENT, _first_measure),
    TableSpec("response_escalation", "How far escalation went, by severity",
              lambda: ("not_escalated", "level_1", "level_2", "level_3_or_more"), SEVERITIES,
              INCIDENT, _escalation),
    TableSpec("response_overdue_tasks", "Women with an overdue task, by severity",
              lambda: ("with_overdue_task", "no_overdue_task"), SEVERITIES, INCIDENT,
              _overdue_tasks),
    TableSpec("response_referrals", "Referrals made in the period, by status",
              lambda: ("pending", "accepted", "completed", "declined", "revoked"), WOMEN, INCIDENT,
              _referrals),
    TableSpec("justice_proceedings", "Investigations opened, detentions and releases",
              lambda: ("investigation_opened", "detained", "released_from_detention"), WOMEN,
              (DataCategory.LEGAL,), _proceedings),
)}

# What tables count in common (disclosure.Shared): over the same women and period, a type or
# severity total, or the women with any incident at all, is the same figure whichever table
# publishes it, so one table's figures bound another's suppressed cells.
_BY_TYPE_COLUMN = ("incidents_by_region", "incidents_by_source")
_BY_SEVERITY_COLUMN = ("incidents_by_outcome", "response_acknowledgement",
                       "response_first_measure", "response_escalation", "response_overdue_tasks")


def _shared() -> dict[str, dict[Key, str]]:
    out: dict[str, dict[Key, str]] = {}
    for name in (*_BY_TYPE_COLUMN, *_BY_SEVERITY_COLUMN, "incidents_by_type"):
        out[name] = {(TOTAL, TOTAL): "women_with_an_incident"}
    for name in _BY_TYPE_COLUMN:
        out[name].update({(TOTAL, t): f"type:{t}" for t in TYPES})
    for name in _BY_SEVERITY_COLUMN:
        out[name].update({(TOTAL, s): f"severity:{s}" for s in SEVERITIES})
    out["incidents_by_type"].update({(t, TOTAL): f"type:{t}" for t in TYPES})
    out["incidents_by_type"].update({(TOTAL, s): f"severity:{s}" for s in SEVERITIES})
    return out


SHARED = _shared()

# Asked for by the guidance, with no structured source yet: absent, never shown as zero.
ABSENT: dict[str, str] = {
    "justice_charges_and_convictions": "Investigation stages are free text: nothing to count yet.",
    "emergency_grants_within_72_hours": "Emergency grants are not recorded in this service yet.",
    "relocations_and_returns": "Relocations are not recorded in this service yet.",
}


def count(spec: TableSpec, rows: Rows) -> dict[Key, int]:
    """Women per cell, per row and column total, and in all (each woman once per entry). A
    code no longer declared falls in the last row (not recorded), so every woman of a total
    stands in one of its cells."""
    declared_rows = spec.rows()
    sets: dict[Key, set[uuid.UUID]] = {}
    for pb, row, c in rows:
        r = row if row in declared_rows else declared_rows[-1]
        for key in ((r, c), (r, TOTAL), (TOTAL, c), (TOTAL, TOTAL)):
            sets.setdefault(key, set()).add(pb)
    return {key: len(women) for key, women in sets.items()}


def counted_women(rows: Rows) -> frozenset[str]:
    """Digests of the women a table counts (the release record's population, never served:
    how many women two releases do not share bounds what one says about the other)."""
    return frozenset(hashlib.sha256(pb.bytes).hexdigest()[:20] for pb, _, _ in rows)


def bounds(period: Period) -> tuple[datetime, datetime]:
    return (datetime.combine(period.start, time(), UTC), datetime.combine(period.end, time(), UTC))
