"""Monitoring tables as released: rounded counts of women, suppressed cells null."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.monitoring import report
from app.monitoring.disclosure import TOTAL
from app.monitoring.service import Coverage, Published
from schema import ids


@strawberry.type(description="One published figure of a monitoring table.")
class MonitoringCell:
    row: str = strawberry.field(description="Row code; `*` is the column's total.")
    column: str = strawberry.field(description="Column code; `*` is the row's total.")
    women: int | None = strawberry.field(description=(
        "Women, rounded to `roundingBase`; null when suppressed or when there is no data."))
    suppressed: bool = strawberry.field(description="Withheld: too small, or it would give a "
                                                    "small count away.")
    no_data: bool = strawberry.field(description=(
        "No reporting mechanism covers this row: unknown, not zero."))
    percent_of_row: int | None = strawberry.field(description=(
        "Share of the row's total, from the rounded figures (null when either is withheld)."))


@strawberry.type(description="A monitoring table released to your organisation for a period.")
class MonitoringRelease:
    id: strawberry.ID = strawberry.field(description="Global ID.")
    table: str = strawberry.field(description="Declared table name (`monitoringTables`).")
    title: str = strawberry.field(description="What the table counts.")
    period: str = strawberry.field(description="2026, 2026-Q2 or 2026-04.")
    rows: list[str] = strawberry.field(description="Row codes, in order.")
    columns: list[str] = strawberry.field(description="Column codes, in order.")
    cells: list[MonitoringCell] = strawberry.field(description="Every cell and total.")
    min_women_per_count: int = strawberry.field(description="K: smaller counts are suppressed.")
    rounding_base: int = strawberry.field(description="Counts are rounded to a multiple of this.")
    released_at: datetime = strawberry.field(description="When it was released.")

    @classmethod
    def from_published(cls, p: Published) -> MonitoringRelease:
        cells = []
        for r in (*p.rows, TOTAL):
            for c in (*p.cols, TOTAL):
                no_data = r in p.no_data_rows
                value = None if no_data else p.value(r, c)
                pct = report.percent(p, r, c)
                cells.append(MonitoringCell(
                    row=r, column=c, women=value, suppressed=not no_data and value is None,
                    no_data=no_data, percent_of_row=int(pct[:-1]) if pct else None))
        return cls(id=strawberry.ID(ids.encode("MonitoringRelease", p.id)), table=p.table.name,
                   title=p.table.title, period=p.period, rows=list(p.rows), columns=list(p.cols),
                   cells=cells, min_women_per_count=p.k, rounding_base=p.base,
                   released_at=p.released_at)


@strawberry.type(description="A declared table.")
class MonitoringTable:
    name: str = strawberry.field(description="Its name, for `releaseMonitoringTable`.")
    title: str = strawberry.field(description="What it counts (women, never incidents).")
    rows: list[str] = strawberry.field(description="Row codes.")
    columns: list[str] = strawberry.field(description="Column codes.")


@strawberry.type(description="A table the guidance asks for whose source does not exist yet: "
                             "absent, never shown as zero.")
class AbsentMonitoringTable:
    name: str = strawberry.field(description="The table.")
    reason: str = strawberry.field(description="Why it cannot be counted yet.")


@strawberry.type(description="The declared monitoring tables.")
class MonitoringCatalogue:
    tables: list[MonitoringTable] = strawberry.field(description="Tables that can be released.")
    absent: list[AbsentMonitoringTable] = strawberry.field(description="Tables with no source yet.")


@strawberry.type(description="A region or organisation, and whether anything can be reported there.")
class CoverageEntry:
    code: str = strawberry.field(description="Region code or organisation slug.")
    name: str = strawberry.field(description="Its name.")
    reporting_mechanism: bool = strawberry.field(description=(
        "False: shown as no data, never as zero incidents."))

    @classmethod
    def of(cls, c: Coverage) -> CoverageEntry:
        return cls(code=c.code, name=c.name, reporting_mechanism=c.mechanism)


@strawberry.type(description="Where incidents can be reported at all.")
class MonitoringCoverage:
    regions: list[CoverageEntry] = strawberry.field(description="Declared regions.")
    organisations: list[CoverageEntry] = strawberry.field(description=(
        "Organisations; without an active focal point, nothing reported to them is received."))
