"""Monitoring page (/monitoring) for the roles that release and read monitoring tables (focal
points and analysts, e.g. of an NHRI): the tables released to the organisation, with suppressed
and "no data" cells, charts (vendored uPlot, drawn by static/monitoring.js from each chart's
data-chart attribute), reporting coverage, the CSV and printable report, and the release of a
table for a period (refused when the differencing check says so).

Everything goes through the API under the aggregate_reporting purpose: `monitoringTables`,
`monitoringReleases`, `monitoringCoverage`, `releaseMonitoringTable`, and the report endpoint
`GET /monitoring/report` called in process with the person's own token."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from schema.web import core, i18n
from schema.web.audit import ask_purpose, internal_get, viewer_with
from schema.web.core import N_, Visit, redirect, render
from schema.web.pages import form_of, not_found

MONITORING_ROLES = frozenset({"FOCAL_POINT", "ANALYST"})
core.NAV.append(("/monitoring", N_("Monitoring")))
core.NAV_ROLES["/monitoring"] = MONITORING_ROLES
AGGREGATE = "aggregate_reporting"
TOTAL = "*"
PERIOD = re.compile(r"\d{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?")
REPORT_TYPES = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8",
                "pdf": "application/pdf"}
# The API's printable page has its own inline style and no script: it gets a policy of its own.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

DATA = """query Monitoring {
  monitoringTables { tables { name title rows columns } absent { name reason } }
  monitoringRegions { code name reportingMechanism }
  monitoringReleases { id table title period rows columns minWomenPerCount roundingBase
    releasedAt cells { row column women suppressed noData percentOfRow } }
  monitoringCoverage { regions { code name reportingMechanism }
    organisations { code name reportingMechanism } }
}"""
RELEASE = """mutation Release($i: ReleaseMonitoringTableInput!) {
  releaseMonitoringTable(input: $i) { release { id table period }
    userErrors { field message code } } }"""

# What the declared tables count, and their row and column codes, in words.
TITLES = {
    "incidents_by_region": N_("Women reporting incidents, by region and type"),
    "incidents_by_source": N_("Women reporting incidents, by alleged source and type"),
    "incidents_by_type": N_("Women reporting incidents, by type and severity"),
    "incidents_by_outcome": N_("Women reporting incidents, by outcome and severity"),
    "response_acknowledgement": N_("Acknowledgement against the deadline, by severity"),
    "response_first_measure": N_("Time to the first protection measure, by severity"),
    "response_escalation": N_("How far escalation went, by severity"),
    "response_overdue_tasks": N_("Women with an overdue task, by severity"),
    "response_referrals": N_("Referrals made in the period, by status"),
    "justice_proceedings": N_("Investigations opened, detentions and releases"),
    "justice_charges_and_convictions": N_("Charges and convictions"),
    "emergency_grants_within_72_hours": N_("Emergency grants within 72 hours"),
    "relocations_and_returns": N_("Relocations and returns"),
}
CODES = {
    TOTAL: N_("Total"),
    "physical_attack": N_("Physical attack"), "online_harassment": N_("Online harassment"),
    "threats": N_("Threats"),
    "legal_administrative_harassment": N_("Legal or administrative harassment"),
    "criminalisation": N_("Criminalisation"), "surveillance": N_("Surveillance"),
    "threats_to_family_or_colleagues": N_("Threats to family or colleagues"),
    "detention": N_("Detention"), "sexual_violence": N_("Sexual violence"),
    "smear_campaign": N_("Smear campaign"), "other": N_("Other"),
    "low": N_("Low"), "medium": N_("Medium"), "high": N_("High"), "critical": N_("Critical"),
    "not_recorded": N_("Region not recorded"),
    "state_actor": N_("State actor"), "non_state_armed_group": N_("Non-state armed group"),
    "private_actor": N_("Private actor"), "community_or_family": N_("Community or family"),
    "online_unknown": N_("Online, unknown"), "unknown": N_("Unknown"),
    "not_reported": N_("Source not reported"),
    "reported": N_("Reported"), "acknowledged": N_("Acknowledged"),
    "responding": N_("Responding"), "resolved": N_("Resolved"),
    "within_deadline": N_("Within the deadline"), "after_deadline": N_("After the deadline"),
    "not_acknowledged": N_("Not acknowledged"),
    "within_72_hours": N_("Within 72 hours"), "within_14_days": N_("Within 14 days"),
    "later": N_("Later"), "none_yet": N_("None yet"),
    "not_escalated": N_("Not escalated"), "level_1": N_("Level 1"), "level_2": N_("Level 2"),
    "level_3_or_more": N_("Level 3 or more"),
    "with_overdue_task": N_("With an overdue task"), "no_overdue_task": N_("No overdue task"),
    "pending": N_("Pending"), "accepted": N_("Accepted"), "completed": N_("Completed"),
    "declined": N_("Declined"), "revoked": N_("Revoked"), "women": N_("Women"),
    "investigation_opened": N_("Investigation opened"), "detained": N_("Detained"),
    "released_from_detention": N_("Released from detention"),
}
REFUSALS = {
    "CONFLICT": N_("Refused: combined with figures already published for the same women and "
                   "periods, this release would let a suppressed count be worked out "
                   "(differencing). Nothing was published."),
    "period": N_("A period is a calendar year (2026), quarter (2026-Q2) or month (2026-04) "
                 "that has ended."),
    "table": N_("Choose one of the declared tables."),
}


def _label(code: str, regions: dict[str, str]) -> str:
    """A row or column's words: a region's declared name, else the code's translation key."""
    return regions.get(code) or CODES.get(code) or code.replace("_", " ")


def _release_view(release: dict[str, Any], regions: dict[str, str], gettext: Any
                  ) -> dict[str, Any]:
    cells = {(c["row"], c["column"]): c for c in release["cells"]}
    rows, cols = [*release["rows"], TOTAL], [*release["columns"], TOTAL]
    no_data = {r for r in release["rows"] if any(cells.get((r, c), {}).get("noData")
                                                  for c in cols)}
    chart_rows = list(release["rows"])
    chart = {
        "labels": [gettext(_label(r, regions)) for r in chart_rows],
        "values": [None if r in no_data else (cells.get((r, TOTAL)) or {}).get("women")
                   for r in chart_rows],
        "series": gettext("Women"),
    }
    return {"release": release, "rows": rows, "cols": cols, "cells": cells,
            "chart": json.dumps(chart, ensure_ascii=False), "no_data": no_data,
            "title": TITLES.get(release["table"], release["title"])}


async def monitoring(visit: Visit) -> Response:
    viewer = await viewer_with(visit, MONITORING_ROLES)
    if viewer is None:
        return not_found(visit.request, visit)
    if visit.purpose is None:
        return ask_purpose(visit, viewer)
    if visit.purpose != AGGREGATE:
        return render(visit.request, "monitoring.html", language=visit.language, visit=visit,
                      viewer=viewer, wrong_purpose=True)
    if visit.request.method == "POST":
        return await _release(visit, viewer)
    return await _page(visit, viewer)


async def _page(visit: Visit, viewer: dict[str, Any], *, error: str | None = None,
                asked: dict[str, str] | None = None, status: int = 200) -> Response:
    answer = await visit.query(DATA)
    if "FORBIDDEN" in answer.codes:
        return not_found(visit.request, visit)
    data = answer.data or {}
    gettext = i18n.translations(visit.language).gettext
    regions = {r["code"]: r["name"] for r in data.get("monitoringRegions") or []}
    releases = data.get("monitoringReleases") or []
    periods = sorted({r["period"] for r in releases}, reverse=True)
    wanted = visit.request.query_params.get("period")
    period = wanted if wanted in periods else (periods[0] if periods else None)
    shown = [_release_view(r, regions, gettext) for r in releases if r["period"] == period]
    catalogue = data.get("monitoringTables") or {}
    return render(visit.request, "monitoring.html", language=visit.language, visit=visit,
                  viewer=viewer, answer=answer, wrong_purpose=False, periods=periods,
                  ledger=sorted(releases, key=lambda r: r["releasedAt"], reverse=True),
                  period=period, shown=shown, tables=catalogue.get("tables") or [],
                  absent=catalogue.get("absent") or [], titles=TITLES,
                  coverage=data.get("monitoringCoverage") or {}, error=error,
                  asked=asked or {}, released=visit.request.query_params.get("released"),
                  label=lambda code: _label(code, regions), status=status)


async def _release(visit: Visit, viewer: dict[str, Any]) -> Response:
    form = form_of(visit)
    table = str(form.get("table", "")).strip()
    period = str(form.get("period", "")).strip()
    asked = {"table": table, "period": period}
    if not PERIOD.fullmatch(period):
        return await _page(visit, viewer, error=REFUSALS["period"], asked=asked, status=400)
    answer = await visit.query(RELEASE, {"i": {"table": table, "period": period}})
    if "FORBIDDEN" in answer.codes:
        return not_found(visit.request, visit)
    result = (answer.data or {}).get("releaseMonitoringTable") or {}
    errors = result.get("userErrors") or []
    if result.get("release") and not errors:
        done = result["release"]
        return redirect("/monitoring?" + urlencode({"period": done["period"],
                                                    "released": done["table"]}))
    first = errors[0] if errors else {}
    field = (first.get("field") or [""])[-1]
    if first.get("code") == "CONFLICT":
        message, status = REFUSALS["CONFLICT"], 409
    else:
        message, status = REFUSALS.get(field, REFUSALS["period"]), 400
    return await _page(visit, viewer, error=message, asked=asked, status=status)


async def report(visit: Visit) -> Response:
    """The API's report for one period (CSV, printable HTML or PDF), fetched in process as the
    person, so the download is exactly what the API would give her system."""
    viewer = await viewer_with(visit, MONITORING_ROLES)
    if viewer is None:
        return not_found(visit.request, visit)
    params = visit.request.query_params
    period, fmt = str(params.get("period", "")), str(params.get("format", "csv"))
    if visit.purpose != AGGREGATE or not PERIOD.fullmatch(period) or fmt not in REPORT_TYPES:
        return not_found(visit.request, visit)
    from app.monitoring.http import report_endpoint

    status, body, _headers = await internal_get(visit, report_endpoint, "/monitoring/report",
                                                {"period": period, "format": fmt})
    if status != 200:
        return not_found(visit.request, visit)
    disposition = "inline" if fmt == "html" else "attachment"
    headers = {"Content-Disposition": f'{disposition}; filename="monitoring-{period}.{fmt}"',
               "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
               "Content-Security-Policy": REPORT_CSP if fmt == "html"
               else "default-src 'none'; sandbox"}
    return Response(body, media_type=REPORT_TYPES[fmt], headers=headers)
