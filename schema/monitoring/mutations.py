"""Mutations: release a monitoring table for a period."""

from __future__ import annotations

import strawberry

from app.monitoring import service
from schema import permissions
from schema.common import UserError, guarded
from schema.context import Info
from schema.monitoring.types import MonitoringRelease


@strawberry.input(description="A declared table and a calendar period that has ended.")
class ReleaseMonitoringTableInput:
    table: str = strawberry.field(description="A name from `monitoringTables`.")
    period: str = strawberry.field(description="A year (2026), quarter (2026-Q2) or month (2026-04).")


@strawberry.type(description="The release, or why it was refused (nothing published).")
class ReleaseMonitoringTablePayload:
    release: MonitoringRelease | None = strawberry.field(description="The published figures.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was released.")


@strawberry.type
class MonitoringMutations:
    @permissions.mutation(
        "Release a declared table for a period to your organisation: counts of women whose "
        "consent releases the table's categories to you for aggregate reporting, from every "
        "lead organisation; counts under K suppressed with what would reveal them, rounded, "
        "recorded. Refused (CONFLICT) when, with your earlier releases, a suppressed count "
        "could be worked out. Once per period: asking again returns the recorded figures. "
        "Declare the aggregate_reporting purpose. Decision 0033.",
        requires=[("monitoring", "release")])
    async def release_monitoring_table(self, info: Info, input: ReleaseMonitoringTableInput,
                                       ) -> ReleaseMonitoringTablePayload:
        published, errors = await guarded(info, lambda: info.context.loaders.call(
            service.release, info.context.access, table=input.table, period=input.period))
        return ReleaseMonitoringTablePayload(
            release=MonitoringRelease.from_published(published) if published else None,
            user_errors=errors)
