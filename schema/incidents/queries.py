"""Queries: referrals, the inbox."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import strawberry

from app import ids as app_ids
from app.incidents import response
from app.monitoring import statistics
from app.notify import inbox
from schema import ids, permissions
from schema.context import Info
from schema.incidents.types import InboxAlert, IncidentCount, IncidentStatistics, Referral

_WINDOW = "Free time windows are retired: use `period` (a calendar month, quarter or year)."


def alert_of(item: object) -> InboxAlert:
    return InboxAlert(id=strawberry.ID(ids.encode("Alert", item.id)), kind=item.kind,  # type: ignore[attr-defined]
                      created_at=item.created_at, cursor=inbox.cursor_of(item),  # type: ignore[attr-defined,arg-type]
                      payload=json.dumps(app_ids.globalize(item.payload),  # type: ignore[attr-defined]
                                         sort_keys=True))


@strawberry.type
class IncidentQueries:
    @permissions.query(
        "Referrals your organisation received (incoming) or sent, on cases you may see.",
        args={
            "incoming": "true: referrals your organisation received; false: those it sent.",
        })
    async def referrals(self, info: Info, incoming: bool = True) -> list[Referral]:
        rows = await info.context.loaders.call(response.referrals_for, info.context.access, incoming)
        return [Referral.from_view(v) for v in rows]

    @permissions.query(
        "Your alerts after a cursor, oldest first (what a reconnecting client replays; at most "
        "100). Only alerts you are still entitled to.")
    async def inbox(self, info: Info, after: str | None = None) -> list[InboxAlert]:
        rows = await info.context.loaders.call(inbox.items, info.context.access, after)
        return [alert_of(r) for r in rows]

    @permissions.query(
        "Aggregate report: women reporting incidents, by type and severity, for a calendar "
        "period that has ended — the monitoring table `incidents_by_type`, released to your "
        "organisation (or served as recorded) under the same disclosure control and release "
        "ledger as `releaseMonitoringTable`: counts of women whose consent releases incident "
        "details to you for aggregate reporting, rounded to multiples of 5, under "
        "`minWomenPerCount` suppressed with what would reveal them; CONFLICT when, with figures "
        "already published, a suppressed count could be worked out (declare the "
        "aggregate_reporting purpose).",
        requires=[("statistics", "read"), ("monitoring", "release")],
        deprecated=("Use releaseMonitoringTable(table: \"incidents_by_type\") and "
                    "monitoringReleases; free time windows are retired (decision 0033)."),
        args={
            "period": "A year (2026), quarter (2026-Q2) or month (2026-04) that has ended; the "
                      "last ended month when omitted.",
            "reported_after": "Only as the exact start of a calendar period (UTC), with "
                              "`reportedBefore` its end.",
            "reported_before": "Only as the exact end of a calendar period (UTC), with "
                               "`reportedAfter` its start.",
        })
    async def incident_statistics(
        self, info: Info, period: str | None = None,
        reported_after: Annotated[datetime | None, strawberry.argument(
            deprecation_reason=_WINDOW)] = None,
        reported_before: Annotated[datetime | None, strawberry.argument(
            deprecation_reason=_WINDOW)] = None,
    ) -> IncidentStatistics:
        report = await info.context.loaders.call(
            statistics.incident_counts, info.context.access, period=period,
            reported_after=reported_after, reported_before=reported_before)
        return IncidentStatistics(
            counts=[IncidentCount(type=c.type, severity=c.severity, incidents=c.incidents,  # type: ignore[arg-type]
                                  suppressed=c.suppressed) for c in report.cells],
            total_incidents=report.total, total_suppressed=report.total is None,
            min_women_per_count=report.min_women, period=report.period)
