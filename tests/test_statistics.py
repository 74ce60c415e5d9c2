"""Invariant 7: aggregate reports never reveal an individual — small counts are suppressed.

Counts come only from women whose consent releases incident details to the organisation for
aggregate reporting, and a count stands for at least MIN_WOMEN different women or is null.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.audit.models import AccessLogEntry
from app.incidents.statistics import MIN_WOMEN
from tests.test_consent import new_peacebuilder
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio

STATS = """query($after: DateTime) { incidentStatistics(reportedAfter: $after) {
  counts { type severity incidents suppressed } totalIncidents totalSuppressed minWomenPerCount } }"""


async def _women_with_incidents(env, n: int, *, type_: str, severity: str, purposes: list[str],
                                incidents_each: int = 1) -> None:
    for _ in range(n):
        pb = await new_peacebuilder(env, "fund", categories=["INCIDENT_DETAILS"],
                                    purposes=purposes, account=False)
        for _ in range(incidents_each):
            body = await env.gql(REPORT, incident_input(pb["case"], severity, type=type_),
                                 as_=("fund", "caseworker"))
            assert body["data"]["reportIncident"]["userErrors"] == [], body


def _counts(body: dict) -> dict[tuple[str, str], dict]:
    return {(c["type"], c["severity"]): c for c in body["data"]["incidentStatistics"]["counts"]}


async def test_small_counts_are_suppressed_and_only_consented_women_counted(env):
    since = datetime.now(UTC).isoformat()
    with_consent = ["PROTECTION", "AGGREGATE_REPORTING"]
    await _women_with_incidents(env, MIN_WOMEN, type_="THREATS", severity="HIGH",
                                purposes=with_consent)
    # Two women, many incidents each: the count of incidents is large, of women small.
    await _women_with_incidents(env, 2, type_="SEXUAL_VIOLENCE", severity="CRITICAL",
                                purposes=with_consent, incidents_each=3)
    # Women who did not consent to aggregate reporting are not counted at all.
    await _women_with_incidents(env, 3, type_="DETENTION", severity="LOW", purposes=["PROTECTION"])

    body = await env.gql(STATS, {"after": since}, as_=("fund", "analyst"),
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
    assert report["minWomenPerCount"] == MIN_WOMEN
    # The report is in the access log, as counts only: no woman's ID among its references.
    async with env.runtime.db.transaction() as s:
        entry = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "statistics.read").order_by(AccessLogEntry.at.desc()))).first()
    assert entry is not None and entry.decision == "allow" and not entry.refs

    # A focal point sees the same aggregate; another organisation, with no consent, nothing.
    focal = await env.gql(STATS, {"after": since}, as_=("fund", "focal"),
                          purpose="aggregate_reporting")
    assert _counts(focal) == counts
    other = await env.gql(STATS, {"after": since}, as_=("embassy", "analyst"),
                          purpose="aggregate_reporting")
    assert other["data"]["incidentStatistics"]["counts"] == []
    assert other["data"]["incidentStatistics"]["totalIncidents"] is None


async def test_aggregate_reports_need_their_purpose_and_role(env):
    wrong = await env.gql(STATS, {"after": None}, as_=("fund", "analyst"), purpose="protection")
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert wrong["errors"][0]["extensions"]["field"] == "purpose"
    caseworker = await env.gql(STATS, {"after": None}, as_=("fund", "caseworker"),
                               purpose="aggregate_reporting")
    assert caseworker["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_total_is_published_when_it_reveals_nothing(env):
    since = datetime.now(UTC).isoformat()
    await _women_with_incidents(env, MIN_WOMEN, type_="ONLINE_HARASSMENT", severity="LOW",
                                purposes=["PROTECTION", "AGGREGATE_REPORTING"])
    body = await env.gql(STATS, {"after": since}, as_=("fund", "analyst"),
                         purpose="aggregate_reporting")
    report = body["data"]["incidentStatistics"]
    assert report["counts"] == [{"type": "ONLINE_HARASSMENT", "severity": "LOW",
                                 "incidents": MIN_WOMEN, "suppressed": False}]
    assert report["totalIncidents"] == MIN_WOMEN and report["totalSuppressed"] is False
