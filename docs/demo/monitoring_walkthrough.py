"""Monitoring for an NHRI walked through (issue 20), on a fresh embedded deployment with a
controlled clock. Everything goes through the API as each person would call it.

1. At intake, women registered by the fund choose "count me, anonymously, in the statistics of
   the NHRI" (`intakeConsent.countedBy`); a second focal point confirms what staff recorded.
   One woman does not choose it: she is never counted.
2. Their incidents are reported from January to March 2035 with a coarse region code; the NHRI
   releases January's table in February.
3. April: the NHRI releases `incidents_by_region` for 2035-03: counts of women (not incidents),
   cells of 1-4 suppressed, complementary suppression, counts rounded to base 5, percentages
   from rounded values, "no data" where a region has no reporting mechanism.
4. Two more women reported in January; the quarter 2035-Q1 would let the published March
   figures be subtracted from it: refused (CONFLICT, differencing), nothing recorded.
5. The recorded release as CSV, and the printable report (HTML; PDF with charts).

    .venv/bin/python docs/demo/monitoring_walkthrough.py
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from response_walkthrough import Walk, running

AGG = "aggregate_reporting"
ORGS = """{ organisations(first: 100) { edges { node { id slug } } } }"""
CREATE = """mutation($input: CreatePeacebuilderInput!) { createPeacebuilder(input: $input) {
  peacebuilder { id } intakeConsent { id } countingConsents { id purposes }
  userErrors { field message code } } }"""
CONFIRMATIONS = """{ confirmations(first: 100) { edges { node { id targetId status } } } }"""
CONFIRM = """mutation($id: ID!) { confirmTwoPerson(input: {id: $id}) {
  confirmation { status } userErrors { message } } }"""
OPEN_CASE = """mutation($input: OpenCaseInput!) { openCase(input: $input) {
  case { id } userErrors { field message code } } }"""
REPORT = """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
  incident { id } userErrors { field message code } } }"""
RELEASE = """mutation($i: ReleaseMonitoringTableInput!) { releaseMonitoringTable(input: $i) {
  release { table period rows columns minWomenPerCount roundingBase
            cells { row column women suppressed noData percentOfRow } }
  userErrors { field message code } } }"""
EVIDENCE = {"kind": "SIGNED_FORM", "reference": "intake form, fund office"}
TOTAL = "*"  # the row and column totals (app/monitoring/disclosure.TOTAL)


async def post(w: Walk, query: str, variables: dict[str, Any], as_: tuple[str, str],
               purpose: str = "protection") -> dict[str, Any]:
    headers = {"authorization": f"Bearer {await w.token(*as_)}", "safety-net-purpose": purpose}
    body = (await w.client.post("/graphql", json={"query": query, "variables": variables},
                                headers=headers)).json()
    if body.get("errors"):
        raise SystemExit(f"unexpected errors: {body['errors']}")
    return dict(body["data"])


async def confirm(w: Walk, target: str) -> None:
    """The fund's second focal point confirms what its case worker recorded (two-person rule)."""
    from app.ids import decode_any

    wanted = decode_any(target)[1]
    for edge in (await post(w, CONFIRMATIONS, {}, ("fund", "focal")))["confirmations"]["edges"]:
        node = edge["node"]
        if decode_any(node["targetId"])[1] == wanted and node["status"] == "PENDING":
            done = (await post(w, CONFIRM, {"id": node["id"]}, ("fund", "focal")))
            assert done["confirmTwoPerson"]["confirmation"]["status"] == "CONFIRMED", done
            return
    raise SystemExit(f"no pending confirmation for {target}")


async def woman(w: Walk, n: int, nhri: str, *, counted: bool, region: str, type_: str) -> None:
    created = (await post(w, CREATE, {"input": {
        "pseudonym": f"walk-{n}", "intakeConsent": {
            "obtainedVia": "IN_PERSON", "evidence": EVIDENCE,
            "categories": ["INCIDENT_DETAILS", "LOCATION_COARSE", "LEGAL"],
            "countedBy": [nhri] if counted else []}}}, ("fund", "caseworker")))
    payload = created["createPeacebuilder"]
    if payload["userErrors"]:
        raise SystemExit(payload["userErrors"])
    for grant in (payload["intakeConsent"], *payload["countingConsents"]):
        await confirm(w, grant["id"])
    case = (await post(w, OPEN_CASE, {"input": {"peacebuilderId": payload["peacebuilder"]["id"]}},
                       ("fund", "caseworker")))["openCase"]["case"]["id"]
    reported = await post(w, REPORT, {"i": {
        "caseId": case, "type": type_, "severity": "HIGH", "reportedBy": "herself",
        "reportedVia": "in_person", "description": "Reported at the fund's office.",
        "regionCode": region}}, ("fund", "caseworker"))
    if reported["reportIncident"]["userErrors"]:
        raise SystemExit(reported["reportIncident"]["userErrors"])


def table(release: dict[str, Any]) -> list[str]:
    cells = {(c["row"], c["column"]): c for c in release["cells"]}
    cols = [*release["columns"], TOTAL]
    width = max(len(c) for c in cols) + 2
    lines = ["".ljust(14) + "".join(("total" if c == TOTAL else c).rjust(width) for c in cols)]
    for row in [*release["rows"], TOTAL]:
        out = []
        for col in cols:
            c = cells[(row, col)]
            out.append("no data" if c["noData"] else "supp." if c["suppressed"]
                       else f"{c['women']}" + (f" ({c['percentOfRow']}%)" if c["percentOfRow"]
                                               is not None and col != TOTAL else ""))
        lines.append(("total" if row == TOTAL else row).ljust(14) + "".join(v.rjust(width) for v in out))
    return lines


async def main() -> None:
    async with running(datetime(2035, 1, 20, 9, 0, tzinfo=UTC)) as w:
        orgs = {e["node"]["slug"]: e["node"]["id"] for e in (
            await post(w, ORGS, {}, ("fund", "caseworker")))["organisations"]["edges"]}
        nhri = orgs["nhri"]
        print("== 1-2. Intake: 'count me, anonymously, in the statistics of the NHRI' ==")
        n = 0
        for _ in range(5):  # January: five women of Garissa report threats
            n += 1
            await woman(w, n, nhri, counted=True, region="KE-GRS", type_="THREATS")
        w.clock.set(datetime(2035, 2, 3, 9, 0, tzinfo=UTC))
        january = (await post(w, RELEASE, {"i": {"table": "incidents_by_region",
                                                  "period": "2035-01"}},
                              ("nhri", "analyst"), AGG))["releaseMonitoringTable"]["release"]
        grs = {c["column"]: c["women"] for c in january["cells"] if c["row"] == "KE-GRS"}
        print(f"February 3: the NHRI released January: Garissa threats = {grs['threats']}")
        w.clock.set(datetime(2035, 2, 10, 9, 0, tzinfo=UTC))
        for _ in range(2):  # February: two more women of Garissa, online harassment
            n += 1
            await woman(w, n, nhri, counted=True, region="KE-GRS", type_="ONLINE_HARASSMENT")
        w.clock.set(datetime(2035, 3, 2, 9, 0, tzinfo=UTC))
        plan = [(7, "KE-NBI", "THREATS"), (5, "KE-MSA", "THREATS"),
                (2, "KE-MSA", "ONLINE_HARASSMENT"), (5, "KE-KSM", "DETENTION")]
        for count, region, type_ in plan:
            for _ in range(count):
                n += 1
                await woman(w, n, nhri, counted=True, region=region, type_=type_)
        n += 1
        await woman(w, n, nhri, counted=False, region="KE-KSM", type_="DETENTION")
        print(f"{n} women registered by the fund from January to March 2035; {n - 1} chose to be "
              "counted by the NHRI (a grant for AGGREGATE_REPORTING only, confirmed by a second "
              "focal point); 1 did not.")

        w.clock.set(datetime(2035, 4, 3, 9, 0, tzinfo=UTC))
        print("\n== 3. April 3: nhri/analyst releases incidents_by_region for 2035-03 ==")
        got = (await post(w, RELEASE, {"i": {"table": "incidents_by_region",
                                              "period": "2035-03"}},
                          ("nhri", "analyst"), AGG))["releaseMonitoringTable"]
        if got["userErrors"]:
            raise SystemExit(got["userErrors"])
        rel = got["release"]
        print(f"K = {rel['minWomenPerCount']} (cells of 1-{rel['minWomenPerCount'] - 1} women "
              f"suppressed), rounding base {rel['roundingBase']}; women, not incidents; columns "
              "and rows with no woman left out here for width:")
        kept = [c for c in rel["columns"] if any(
            x["column"] == c and (x["women"] or x["suppressed"]) for x in rel["cells"]
            if x["row"] != TOTAL)]
        for line in table({**rel, "columns": kept,
                           "rows": [r for r in rel["rows"] if r in ("KE-NBI", "KE-MSA", "KE-KSM",
                                                                     "KE-TUR")]}):
            print("  " + line)
        print("  KE-NBI: 7 women published as 5 (rounded). KE-MSA: 2 women of online harassment "
              "suppressed, and the threats beside them too, so the row total cannot give them "
              "away. KE-KSM: 6 women reported, the one who did not choose it is not counted. "
              "KE-TUR: no reporting mechanism, so 'no data', never 0.")

        w.clock.set(datetime(2035, 4, 4, 9, 0, tzinfo=UTC))
        print("\n== 4. April 4: the quarter 2035-Q1 ==")
        quarter = (await post(w, RELEASE, {"i": {"table": "incidents_by_region",
                                                  "period": "2035-Q1"}},
                              ("nhri", "analyst"), AGG))["releaseMonitoringTable"]
        print(f"releaseMonitoringTable(incidents_by_region, 2035-Q1) -> release "
              f"{'recorded' if quarter['release'] else None}, userErrors {quarter['userErrors']}")
        print("  (in the quarter Garissa's 5 + 2 women would be suppressed together, but "
              "January's published 5 pins its threats cell: 2 women could be worked out)")

        print("\n== 5. The recorded release: CSV and the printable report ==")
        headers = {"authorization": f"Bearer {await w.token('nhri', 'analyst')}",
                   "safety-net-purpose": AGG}
        csv = await w.client.get("/monitoring/report", params={"period": "2035-03",
                                                               "format": "csv"}, headers=headers)
        lines = csv.text.splitlines()
        print(f"GET /monitoring/report?period=2035-03&format=csv -> {csv.status_code}, "
              f"{len(lines) - 1} rows; e.g.:")
        for line in [lines[0], *[x for x in lines if "KE-MSA" in x and "harassment" in x][:1],
                     *[x for x in lines if "KE-TUR,threats" in x][:1]]:
            print("  " + line)
        pdf = await w.client.get("/monitoring/report", params={"period": "2035-03",
                                                               "format": "pdf"}, headers=headers)
        print(f"GET /monitoring/report?period=2035-03&format=pdf -> {pdf.status_code}, "
              f"{pdf.headers.get('content-type')}, {len(pdf.content)} bytes, "
              f"starts {pdf.content[:8]!r}")


if __name__ == "__main__":
    asyncio.run(main())
