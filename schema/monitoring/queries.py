"""Queries: the declared tables, what was released, coverage."""

from __future__ import annotations

import strawberry

from app.monitoring import service
from app.monitoring.tables import ABSENT, SPECS
from app.tables import declared
from schema import permissions
from schema.context import Info
from schema.monitoring.types import (
    AbsentMonitoringTable,
    CoverageEntry,
    MonitoringCatalogue,
    MonitoringCoverage,
    MonitoringRelease,
    MonitoringTable,
)


@strawberry.type
class MonitoringQueries:
    @permissions.query("The declared coarse regions an incident's `regionCode` is chosen from "
                       "(deployment settings, no personal data).")
    def monitoring_regions(self) -> list[CoverageEntry]:
        return [CoverageEntry(code=r.code, name=r.name, reporting_mechanism=r.mechanism)
                for r in declared.regions()]

    @permissions.query("The declared monitoring tables, and those asked for whose source does "
                       "not exist yet (absent, not zero).")
    def monitoring_tables(self) -> MonitoringCatalogue:
        return MonitoringCatalogue(
            tables=[MonitoringTable(name=s.name, title=s.title, rows=list(s.rows()),
                                    columns=list(s.cols)) for s in SPECS.values()],
            absent=[AbsentMonitoringTable(name=n, reason=r) for n, r in ABSENT.items()])

    @permissions.query(
        "Monitoring tables your organisation released, with their published figures (declare "
        "the aggregate_reporting purpose). Logged.",
        requires=[("monitoring", "read")],
        args={"table": "Only releases of this table (a name from `monitoringTables`; all when "
                       "omitted)."})
    async def monitoring_releases(self, info: Info, table: str | None = None) -> list[MonitoringRelease]:
        rows = await info.context.loaders.call(service.releases, info.context.access, table=table)
        return [MonitoringRelease.from_published(p) for p in rows]

    @permissions.query(
        "Regions and organisations with and without a reporting mechanism: where there is none, "
        "reports show no data, never zero (declare the aggregate_reporting purpose).",
        requires=[("monitoring", "read")])
    async def monitoring_coverage(self, info: Info) -> MonitoringCoverage:
        regions, orgs = await info.context.loaders.call(service.coverage, info.context.access)
        return MonitoringCoverage(regions=[CoverageEntry.of(c) for c in regions],
                                  organisations=[CoverageEntry.of(c) for c in orgs])
