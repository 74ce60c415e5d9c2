"""Invariant 7: aggregate reports never reveal an individual — small counts are suppressed.

Counts come only from women whose consent releases incident details to the organisation for
aggregate reporting, and a count stands for at least MIN_WOMEN different women or is null.
Since issue 20 `incidentStatistics` is the declared monitoring table `incidents_by_type` for a
calendar period, released through the monitoring ledger (decision 0033): no free windows.
Incidents are reported now and dated into a past month in the database; each test its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from app import ids
from app.monitoring.statistics import MIN_WOMEN
from app.tables.audit import AccessLogEntry
from app.tables.incidents import Incident
from tests.test_consent import new_peacebuilder
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio

STATS = """query($p: String) { incidentStatistics(period: $p) {
  counts { type severity incidents suppressed } totalIncidents totalSuppressed minWomenPerCount
  period } }"""


async def _women_with_incidents(env, n: int, *, type_: str, severity: str, purposes: list[str],
                                incidents_each: int = 1, when: datetime | None = None) -> None:
    """`n` women led by the fund, each with incidents of one type and severity, reported at
    `when` (a past month's instant: periods are released once they have ended)."""
    for _ in range(n):
        pb = await new_peacebuilder(env, "fund", categories=["INCIDENT_DETAILS"],
                                    purposes=purposes, account=False)
        for _ in range(incidents_each):
            body = await env.gql(REPORT, incident_input(pb["case"], severity, type=type_),
                                 as_=("fund", "caseworker"))
            assert body["data"]["reportIncident"]["userErrors"] == [], body
            if when is not None:
                incident = ids.decode(body["data"]["reportIncident"]["incident"]["id"],
                                      "Incident")
                async with env.runtime.db.transaction() as s:
                    await s.execute(update(Incident).where(Incident.id == incident).values(
                        reported_at=when))


def _counts(body: dict) -> dict[tuple[str, str], dict]:
    return {(c["type"], c["severity"]): c for c in body["data"]["incidentStatistics"]["counts"]}


async def test_small_counts_are_suppressed_and_only_consented_women_counted(env):
    when = datetime(2013, 3, 12, tzinfo=UTC)
    with_consent = ["PROTECTION", "AGGREGATE_REPORTING"]
    await _women_with_incidents(env, MIN_WOMEN, type_="THREATS", severity="HIGH",
                                purposes=with_consent, when=when)
    # Two women, many incidents each: the count of incidents is large, of women small.
    await _women_with_incidents(env, 2, type_="SEXUAL_VIOLENCE", severity="CRITICAL",
                                purposes=with_consent, incidents_each=3, when=when)
    # Women who did not consent to aggregate reporting are not counted at all.
    await _women_with_incidents(env, 3, type_="DETENTION", severity="LOW", purposes=["PROTECTION"],
                                when=when)

    body = await env.gql(STATS, {"p": "2013-03"}, as_=("fund", "analyst"),
                         purpose="aggregate_reporting")
    assert "errors" not in body, body
    counts = _counts(body)
    assert counts[("THREATS", "HIGH")] == {"type": "THREATS", "severity": "HIGH",
                                           "incidents": MIN_WOMEN, "suppressed": False}
    assert counts[("SEXUAL_VIOLENCE", "CRITICAL")]["incidents"] is None
    assert counts[("SEXUAL_VIOLENCE", "CRITICAL")]["suppressed"] is True
    assert ("DETENTION", "LOW") not in counts
    report = body["data"]["incidentStatistics"]
    # One suppressed count: the total would give it away (total - others), so it is withheld.
    assert report["totalIncidents"] is None and report["totalSuppressed"] is True
    assert report["minWomenPerCount"] == MIN_WOMEN and report["period"] == "2013-03"
    # The report is in the access log, as counts only: no woman's ID among its references;
    # and it is a release of the declared table, recorded in the ledger.
    async with env.runtime.db.transaction() as s:
        entry = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "statistics.read").order_by(AccessLogEntry.at.desc()))).first()
    assert entry is not None and entry.decision == "allow" and not entry.refs
    released = await env.gql("""{ monitoringReleases(table: "incidents_by_type") { period } }""",
                             as_=("fund", "analyst"), purpose="aggregate_reporting")
    assert {"period": "2013-03"} in released["data"]["monitoringReleases"]

    # A focal point sees the same aggregate; another organisation, with no consent, nothing.
    focal = await env.gql(STATS, {"p": "2013-03"}, as_=("fund", "focal"),
                          purpose="aggregate_reporting")
    assert _counts(focal) == counts
    other = await env.gql(STATS, {"p": "2013-03"}, as_=("embassy", "analyst"),
                          purpose="aggregate_reporting")
    assert other["data"]["incidentStatistics"]["counts"] == []
    assert other["data"]["incidentStatistics"]["totalIncidents"] == 0


async def test_aggregate_reports_need_their_purpose_and_role(env):
    wrong = await env.gql(STATS, {"p": None}, as_=("fund", "analyst"), purpose="protection")
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert wrong["errors"][0]["extensions"]["field"] == "purpose"
    caseworker = await env.gql(STATS, {"p": None}, as_=("fund", "caseworker"),
                               purpose="aggregate_reporting")
    assert caseworker["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_total_is_published_when_it_reveals_nothing(env):
    await _women_with_incidents(env, MIN_WOMEN, type_="ONLINE_HARASSMENT", severity="LOW",
                                purposes=["PROTECTION", "AGGREGATE_REPORTING"],
                                when=datetime(2013, 5, 3, tzinfo=UTC))
    body = await env.gql(STATS, {"p": "2013-05"}, as_=("fund", "analyst"),
                         purpose="aggregate_reporting")
    report = body["data"]["incidentStatistics"]
    assert report["counts"] == [{"type": "ONLINE_HARASSMENT", "severity": "LOW",
                                 "incidents": MIN_WOMEN, "suppressed": False}]
    assert report["totalIncidents"] == MIN_WOMEN and report["totalSuppressed"] is False


WINDOW = """query($a: DateTime, $b: DateTime, $p: String) { incidentStatistics(reportedAfter: $a,
  reportedBefore: $b, period: $p) { period totalIncidents } }"""


async def test_free_windows_are_retired(env):
    """reportedAfter/reportedBefore (deprecated) are only a calendar period's exact bounds;
    anything else, or half a window, is refused before anything is counted."""
    analyst = ("fund", "analyst")
    for a, b in (("2013-05-01T00:00:00+00:00", "2013-05-20T00:00:00+00:00"),
                 ("2013-05-01T00:00:01+00:00", "2013-06-01T00:00:00+00:00"),
                 ("2013-05-01T00:00:00+00:00", None), (None, "2013-06-01T00:00:00+00:00"),
                 ("2013-02-01T00:00:00+00:00", "2013-05-01T00:00:00+00:00")):
        body = await env.gql(WINDOW, {"a": a, "b": b}, as_=analyst, purpose="aggregate_reporting")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (a, b, body)
    # The exact bounds of a month, a quarter, a year (any offset naming the same instants).
    for a, b, label in (("2013-05-01T00:00:00Z", "2013-06-01T00:00:00Z", "2013-05"),
                        ("2013-04-01T02:00:00+02:00", "2013-07-01T00:00:00Z", "2013-Q2"),
                        ("2013-01-01T00:00:00Z", "2014-01-01T00:00:00Z", "2013")):
        body = await env.gql(WINDOW, {"a": a, "b": b}, as_=analyst, purpose="aggregate_reporting")
        assert body["data"]["incidentStatistics"]["period"] == label, body
    clash = await env.gql(WINDOW, {"a": "2013-05-01T00:00:00Z", "b": "2013-06-01T00:00:00Z",
                                   "p": "2013-04"}, as_=analyst, purpose="aggregate_reporting")
    assert clash["errors"][0]["extensions"]["field"] == "period"
    running = await env.gql(WINDOW, {"p": "2999"}, as_=analyst, purpose="aggregate_reporting")
    assert running["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
