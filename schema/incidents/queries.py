"""Queries: referrals, the inbox."""

from __future__ import annotations

import json
from datetime import datetime

import strawberry

from app import ids as app_ids
from app.incidents import response, statistics
from app.notify import inbox
from schema import ids, permissions
from schema.context import Info
from schema.incidents.types import InboxAlert, IncidentCount, IncidentStatistics, Referral


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
        "Aggregate report: incidents by type and severity among women whose consent releases "
        "incident details to your organisation for aggregate reporting (declare the "
        "aggregate_reporting purpose). A count stands for at least `minWomenPerCount` different "
        "women or is suppressed (null); so is the total when it would reveal a suppressed count.",
        requires=[("statistics", "read")],
        args={
            "reported_after": "Count only incidents reported at or after this instant (ISO 8601, UTC).",
            "reported_before": "Count only incidents reported before this instant (ISO 8601, UTC).",
        })
    async def incident_statistics(self, info: Info, reported_after: datetime | None = None,
                                  reported_before: datetime | None = None) -> IncidentStatistics:
        report = await info.context.loaders.call(
            statistics.incident_counts, info.context.access, reported_after=reported_after,
            reported_before=reported_before)
        return IncidentStatistics(
            counts=[IncidentCount(type=c.type, severity=c.severity, incidents=c.incidents,  # type: ignore[arg-type]
                                  suppressed=c.suppressed) for c in report.cells],
            total_incidents=report.total, total_suppressed=report.total is None,
            min_women_per_count=report.min_women)
