"""Issue 20: monitoring tables for NHRIs that never expose a person (invariant 7).

Counts of women (not incidents) from every lead organisation whose women granted the asking
organisation `aggregate_reporting`; fixed periods; suppression, complementary suppression and
rounding; every release recorded and a release refused when, with earlier ones, a suppressed
count could be worked out (decision 0033). Incidents are reported now and then dated into a
past period directly in the database (the release rules only accept periods that have ended);
each test uses its own year so the shared deployment's other data never reaches its tables.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from app import ids
from app.monitoring import disclosure
from app.monitoring.disclosure import TOTAL, Release, parse_period
from app.tables.audit import AccessLogEntry
from app.tables.incidents import Incident
from tests.test_consent import grant, new_peacebuilder
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio

AGG = "aggregate_reporting"
RELEASE = """mutation($i: ReleaseMonitoringTableInput!) { releaseMonitoringTable(input: $i) {
  release { id table period rows columns minWomenPerCount roundingBase
            cells { row column women suppressed noData percentOfRow } }
  userErrors { field message code } } }"""
RELEASES = """{ monitoringReleases { table period } }"""
COVERAGE = """{ monitoringCoverage { regions { code reportingMechanism }
  organisations { code reportingMechanism } } }"""
TABLES = """{ monitoringTables { tables { name rows columns } absent { name reason } } }"""


async def _women(env, n: int, *, year: int, month: int, region: str | None, type_: str,
                 lead: str = "fund", aggregate: bool = True, source: str | None = None) -> None:
    """`n` women led by `lead`, each with one incident of `type_` in `region`, dated in the
    given month; with `aggregate`, each grants the NHRI aggregate reporting."""
    for _ in range(n):
        pb = await new_peacebuilder(env, lead, categories=["INCIDENT_DETAILS", "LOCATION_COARSE"])
        if aggregate:
            await grant(env, pb, as_=(lead, "caseworker"), to_org="nhri",
                        categories=("INCIDENT_DETAILS", "LOCATION_COARSE"),
                        purposes=("AGGREGATE_REPORTING",))
        extra = {k: v for k, v in (("regionCode", region), ("sourceCategory", source)) if v}
        body = await env.gql(REPORT, incident_input(pb["case"], "HIGH", type=type_, **extra),
                             as_=(lead, "caseworker"))
        assert body["data"]["reportIncident"]["userErrors"] == [], body
        incident = ids.decode(body["data"]["reportIncident"]["incident"]["id"], "Incident")
        async with env.runtime.db.transaction() as s:
            await s.execute(update(Incident).where(Incident.id == incident).values(
                reported_at=datetime(year, month, 10, tzinfo=UTC)))


async def _release(env, table: str, period: str, as_=("nhri", "analyst"), purpose=AGG) -> dict:
    body = await env.gql(RELEASE, {"i": {"table": table, "period": period}}, as_=as_,
                         purpose=purpose)
    assert "errors" not in body, body
    return body["data"]["releaseMonitoringTable"]


def _cells(release: dict) -> dict[tuple[str, str], dict]:
    return {(c["row"], c["column"]): c for c in release["cells"]}


async def test_a_release_counts_women_from_every_lead_suppresses_and_rounds(env):
    # Nairobi threats: 5 women of the fund's cases and 2 of the embassy's (one table: 7 women).
    await _women(env, 5, year=2019, month=3, region="KE-NBI", type_="THREATS")
    await _women(env, 2, year=2019, month=3, region="KE-NBI", type_="THREATS", lead="embassy")
    await _women(env, 5, year=2019, month=3, region="KE-MSA", type_="THREATS")
    await _women(env, 2, year=2019, month=3, region="KE-MSA", type_="ONLINE_HARASSMENT")
    # Kisumu: 5 women, nothing small around them.
    await _women(env, 5, year=2019, month=3, region="KE-KSM", type_="DETENTION")
    # She did not grant the NHRI aggregate reporting: never counted.
    await _women(env, 1, year=2019, month=3, region="KE-KSM", type_="DETENTION", aggregate=False)

    release = await _release(env, "incidents_by_region", "2019-03")
    assert release["userErrors"] == [], release
    got = release["release"]
    assert got["minWomenPerCount"] == 5 and got["roundingBase"] == 5
    cells = _cells(got)
    # 5 women in Kisumu (the sixth did not consent): published, rounded, 100% of its row.
    assert cells[("KE-KSM", "detention")] == {
        "row": "KE-KSM", "column": "detention", "women": 5, "suppressed": False,
        "noData": False, "percentOfRow": 100}
    # 2 women: suppressed; so is enough around them that no total gives them away.
    assert cells[("KE-MSA", "online_harassment")]["suppressed"] is True
    assert cells[("KE-MSA", "online_harassment")]["women"] is None
    msa_row = [cells[("KE-MSA", c)] for c in (*got["columns"], TOTAL)]
    online_col = [cells[(r, "online_harassment")] for r in (*got["rows"], TOTAL)]
    for line in (msa_row, online_col):
        assert sum(c["suppressed"] for c in line) != 1, line
    # Every published count is a multiple of 5 and never between 1 and 4.
    for c in got["cells"]:
        if c["women"] is not None:
            assert c["women"] % 5 == 0, c
    # Counted once each, from two lead organisations: 7 women in Nairobi round to 5.
    assert cells[("KE-NBI", "threats")]["women"] == 5
    assert cells[(TOTAL, TOTAL)]["women"] == 20  # 19 women
    # Turkana has no reporting mechanism: no data, never zero.
    assert cells[("KE-TUR", "threats")] == {"row": "KE-TUR", "column": "threats", "women": None,
                                            "suppressed": False, "noData": True,
                                            "percentOfRow": None}
    # The definition holds for what was published: every suppressed cell's range is >= K.
    figures = {(c["row"], c["column"]): c["women"] if not c["noData"] else 0
               for c in got["cells"]}
    rel = Release("incidents_by_region", parse_period("2019-03"), tuple(got["rows"]),
                  tuple(got["columns"]), figures)
    assert disclosure.narrow_cells([rel]) == []

    # Recorded once: asking again returns the same release, and it is in the list.
    again = await _release(env, "incidents_by_region", "2019-03", as_=("nhri", "focal"))
    assert again["release"]["id"] == got["id"] and again["release"]["cells"] == got["cells"]
    listed = await env.gql(RELEASES, as_=("nhri", "analyst"), purpose=AGG)
    assert {"table": "incidents_by_region", "period": "2019-03"} in (
        listed["data"]["monitoringReleases"])
    # The access log holds the release as counts: no woman's ID among its references.
    async with env.runtime.db.transaction() as s:
        entry = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "monitoring.release").order_by(AccessLogEntry.at.desc()))).first()
    assert entry is not None and entry.decision == "allow" and not entry.refs
    # The fund, to which no woman granted aggregate reporting, has nothing to count.
    fund = await _release(env, "incidents_by_region", "2019-03", as_=("fund", "analyst"))
    assert all(c["women"] in (0, None) for c in fund["release"]["cells"])


async def test_a_release_that_would_allow_differencing_is_refused(env):
    # January: 5 women, Nairobi threats, published as 5 (so between 5 and 7).
    await _women(env, 5, year=2018, month=1, region="KE-NBI", type_="THREATS")
    january = await _release(env, "incidents_by_region", "2018-01")
    assert _cells(january["release"])[("KE-NBI", "threats")]["women"] == 5
    # February: 2 more women, Nairobi online harassment.
    await _women(env, 2, year=2018, month=2, region="KE-NBI", type_="ONLINE_HARASSMENT")
    # The quarter alone would be safe (its Nairobi threats are suppressed with the 2)...
    alone = Release("t", parse_period("2018-Q1"), ("KE-NBI",), ("threats", "online_harassment"),
                    disclosure.protect({("KE-NBI", "threats"): 5, ("KE-NBI", "online_harassment"): 2,
                                        ("KE-NBI", TOTAL): 7, (TOTAL, "threats"): 5,
                                        (TOTAL, "online_harassment"): 2, (TOTAL, TOTAL): 7},
                                       ("KE-NBI",), ("threats", "online_harassment")))
    assert disclosure.narrow_cells([alone]) == []
    # ...but January's published 5 pins its suppressed Nairobi threats: refused, nothing kept.
    quarter = await _release(env, "incidents_by_region", "2018-Q1")
    assert quarter["release"] is None
    assert quarter["userErrors"][0]["code"] == "CONFLICT"
    assert "differencing" in quarter["userErrors"][0]["message"]
    listed = await env.gql(RELEASES, as_=("nhri", "analyst"), purpose=AGG)
    periods = {(r["table"], r["period"]) for r in listed["data"]["monitoringReleases"]}
    assert ("incidents_by_region", "2018-01") in periods
    assert ("incidents_by_region", "2018-Q1") not in periods
    async with env.runtime.db.transaction() as s:
        denied = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "monitoring.release", AccessLogEntry.decision == "deny")
            .order_by(AccessLogEntry.at.desc()))).first()
    assert denied is not None and denied.reason == "differencing"
    # Another table of the same quarter has no such history: released.
    other = await _release(env, "incidents_by_outcome", "2018-Q1")
    assert other["userErrors"] == [] and other["release"]["period"] == "2018-Q1"


async def test_a_table_that_would_give_away_another_tables_suppressed_cell_is_refused(env):
    """Tables are checked against each other: the region table withholds its threats column
    total (recoverable from nothing it publishes), but the type table of the same month and
    women would publish that very figure as its threats row total: refused."""
    for n, region, type_ in ((4, "KE-KSM", "PHYSICAL_ATTACK"), (5, "KE-MSA", "THREATS"),
                             (4, "KE-NBI", "ONLINE_HARASSMENT"), (1, "KE-NBI", "PHYSICAL_ATTACK"),
                             (1, "KE-NBI", "THREATS")):
        await _women(env, n, year=2012, month=5, region=region, type_=type_)
    by_region = await _release(env, "incidents_by_region", "2012-05")
    assert by_region["userErrors"] == [], by_region
    assert _cells(by_region["release"])[(TOTAL, "threats")]["suppressed"] is True
    by_type = await _release(env, "incidents_by_type", "2012-05")
    assert by_type["release"] is None and by_type["userErrors"][0]["code"] == "CONFLICT"
    # A table sharing no withheld figure with it (the outcome table: its totals are by
    # severity, all of these are HIGH and published) is released.
    by_outcome = await _release(env, "incidents_by_outcome", "2012-05")
    assert by_outcome["userErrors"] == [], by_outcome


async def test_periods_are_fixed_and_only_ended_ones_are_released(env):
    for bad in ("2019-03-05", "2019-13", "19", "2019-Q5", "last week"):
        body = await _release(env, "incidents_by_region", bad)
        assert body["userErrors"][0]["field"] == ["input", "period"], bad
    now = datetime.now(UTC)
    running = await _release(env, "incidents_by_region", f"{now.year}-{now.month:02d}")
    assert running["userErrors"][0]["field"] == ["input", "period"]
    assert "ended" in running["userErrors"][0]["message"]
    unknown = await _release(env, "incidents_by_favourite_colour", "2019")
    assert unknown["userErrors"][0]["field"] == ["input", "table"]


async def test_monitoring_needs_its_purpose_and_role(env):
    wrong = await env.gql(RELEASE, {"i": {"table": "incidents_by_region", "period": "2017"}},
                          as_=("nhri", "analyst"), purpose="protection")
    assert wrong["data"]["releaseMonitoringTable"]["userErrors"][0]["field"] == ["input", "purpose"]
    caseworker = await env.gql(RELEASE, {"i": {"table": "incidents_by_region", "period": "2017"}},
                               as_=("nhri", "caseworker"), purpose=AGG)
    assert caseworker["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    listed = await env.gql(RELEASES, as_=("nhri", "caseworker"), purpose=AGG)
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_tables_coverage_and_absent_sources(env):
    body = await env.gql(TABLES, as_=("nhri", "analyst"), purpose=AGG)
    catalogue = body["data"]["monitoringTables"]
    names = {t["name"] for t in catalogue["tables"]}
    assert {"incidents_by_region", "incidents_by_source", "incidents_by_outcome",
            "response_acknowledgement", "response_first_measure", "response_escalation",
            "response_overdue_tasks", "response_referrals", "justice_proceedings"} <= names
    # Sources that do not exist yet are absent, with a reason; never a table of zeros.
    absent = {a["name"] for a in catalogue["absent"]}
    assert "relocations_and_returns" in absent and not absent & names
    coverage = (await env.gql(COVERAGE, as_=("nhri", "analyst"), purpose=AGG))["data"]
    regions = {r["code"]: r["reportingMechanism"] for r in coverage["monitoringCoverage"]["regions"]}
    assert regions["KE-TUR"] is False and regions["KE-NBI"] is True
    orgs = {o["code"]: o["reportingMechanism"]
            for o in coverage["monitoringCoverage"]["organisations"]}
    assert orgs["nhri"] is True and orgs["fund"] is True


async def test_region_and_source_are_declared_codes_under_her_consent(env):
    pb = await new_peacebuilder(env, "fund", categories=["INCIDENT_DETAILS", "LOCATION_COARSE"])
    unknown = await env.gql(REPORT, incident_input(pb["case"], regionCode="Nairobi, 3rd street"),
                            as_=("fund", "caseworker"))
    assert unknown["data"]["reportIncident"]["userErrors"][0]["field"] == ["input", "regionCode"]
    inferred = await env.gql(REPORT, incident_input(pb["case"], sourceCategory="the_police"),
                             as_=("fund", "caseworker"))
    assert inferred.get("data") is None  # a closed set: not one of its values, refused
    assert inferred["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT",
                                                           "GRAPHQL_VALIDATION_FAILED")
    fine = await env.gql(REPORT, incident_input(pb["case"], regionCode="ke-nbi",
                                                sourceCategory="state_actor"),
                         as_=("fund", "caseworker"))
    assert fine["data"]["reportIncident"]["userErrors"] == []
    stored = ids.decode(fine["data"]["reportIncident"]["incident"]["id"], "Incident")
    async with env.runtime.db.transaction() as s:
        row = await s.get(Incident, stored)
    assert row is not None and (row.region_code, row.source_category) == ("KE-NBI", "state_actor")
    # Without location_coarse in her consent, no region is recorded.
    no_location = await new_peacebuilder(env, "fund", categories=["INCIDENT_DETAILS"])
    refused = await env.gql(REPORT, incident_input(no_location["case"], regionCode="KE-NBI"),
                            as_=("fund", "caseworker"))
    assert refused["data"]["reportIncident"]["userErrors"][0]["field"] == ["input", "regionCode"]


async def test_her_erasure_removes_the_codes_counted_about_her(env):
    pb = await new_peacebuilder(env, "fund", categories=["INCIDENT_DETAILS", "LOCATION_COARSE"])
    body = await env.gql(REPORT, incident_input(pb["case"], regionCode="KE-MSA",
                                                sourceCategory="private_actor"),
                         as_=("fund", "caseworker"))
    incident = ids.decode(body["data"]["reportIncident"]["incident"]["id"], "Incident")
    her = await env.peacebuilder_token(pb["login"])
    erased = await env.gql("mutation { eraseMyData { erased } }", token=her, purpose=None)
    assert erased["data"]["eraseMyData"]["erased"] is True
    async with env.runtime.db.transaction() as s:
        row = await s.get(Incident, incident)
    assert row is not None and (row.region_code, row.source_category) == (None, None)


async def test_csv_and_html_serve_the_recorded_release(env):
    await _women(env, 5, year=2016, month=6, region="KE-KSM", type_="SURVEILLANCE",
                 source="state_actor")
    await _women(env, 1, year=2016, month=6, region="KE-KSM", type_="SURVEILLANCE",
                 source="private_actor")
    assert (await _release(env, "incidents_by_source", "2016-06"))["userErrors"] == []
    assert (await _release(env, "incidents_by_region", "2016-06"))["userErrors"] == []
    h = {"authorization": f"Bearer {await env.token('nhri', 'analyst')}",
         "safety-net-purpose": AGG}
    got = await env.client.get("/monitoring/report", params={"period": "2016-06",
                                                             "format": "csv"}, headers=h)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    lines = got.text.splitlines()
    assert lines[0] == "table,period,row,column,women,percent_of_row,k,base"
    assert "incidents_by_source,2016-06,private_actor,surveillance,suppressed,,5,5" in lines
    assert "incidents_by_region,2016-06,KE-TUR,threats,no data,,5,5" in lines
    page = await env.client.get("/monitoring/report", params={"period": "2016-06"}, headers=h)
    assert page.status_code == 200 and "no data" in page.text and "suppressed" in page.text
    # Without the purpose, or for a foreign period format: refused, nothing served.
    bad = await env.client.get("/monitoring/report", params={"period": "2016-06-01"}, headers=h)
    assert bad.status_code == 400
    none = await env.client.get("/monitoring/report", params={"period": "2016-06"},
                                headers={"authorization": h["authorization"]})
    assert none.status_code == 400


@pytest.mark.heavy
async def test_the_pdf_report_renders_pages_with_charts(env, tmp_path):
    if shutil.which("pdftoppm") is None:
        if os.environ.get("SAFETY_NET_REQUIRE_SERVICES") == "1":
            pytest.fail("pdftoppm (Debian poppler-utils) is required")
        pytest.skip("pdftoppm (Debian poppler-utils) is not installed")
    from PIL import Image

    await _women(env, 6, year=2015, month=9, region="KE-GRS", type_="SMEAR_CAMPAIGN")
    await _women(env, 2, year=2015, month=9, region="KE-GRS", type_="THREATS")
    assert (await _release(env, "incidents_by_region", "2015-09"))["userErrors"] == []
    assert (await _release(env, "incidents_by_outcome", "2015-09"))["userErrors"] == []
    h = {"authorization": f"Bearer {await env.token('nhri', 'focal')}", "safety-net-purpose": AGG}
    got = await env.client.get("/monitoring/report", params={"period": "2015-09", "format": "pdf"},
                               headers=h)
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(got.content)
    await asyncio.to_thread(subprocess.run, ["pdftoppm", "-png", "-r", "50", str(pdf),
                                             str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 2  # one page per released table
    for page in pages:
        image = Image.open(io.BytesIO(page.read_bytes())).convert("RGB")
        assert image.width > image.height  # landscape
        colours = {image.getpixel((x, y)) for x in range(0, image.width, 4)
                   for y in range(0, image.height, 4)}
        # Text and table lines (dark) and the chart's bars (blue) are drawn.
        assert any(sum(c) < 200 for c in colours)
        assert any(b > 150 and r < 100 for r, g, b in colours)


# --- the definition, checked on random data across releases (hypothesis, `ci` profile) ------

ROWS = ("r1", "r2")
COLS = ("c1", "c2", "c3")
MONTHS = ("2014-01", "2014-02", "2014-03")
women_strategy = st.lists(st.tuples(st.sampled_from(range(3)), st.sampled_from(ROWS),
                                    st.sampled_from(COLS), st.integers(0, 11)),
                          min_size=0, max_size=40)


def _true(entries: list[tuple[int, str, str, int]], months: set[int]) -> dict:
    sets: dict = {}
    for month, r, c, woman in entries:
        if month in months:
            for key in ((r, c), (r, TOTAL), (TOTAL, c), (TOTAL, TOTAL)):
                sets.setdefault(key, set()).add(woman)
    return {k: len(v) for k, v in sets.items()}


@given(women_strategy, st.permutations(["2014-01", "2014-02", "2014-03", "2014-Q1"]))
def test_no_suppressed_cell_can_be_narrowed_below_k_across_releases(entries, order):
    """Whatever the data and the order of the month and quarter releases: every release the
    check accepts leaves each suppressed cell of every accepted release with a range of at
    least K, and the true counts always lie in their ranges (the constraints are sound)."""
    accepted: list[Release] = []
    truths: list[dict] = []
    for label in order:
        months = {0, 1, 2} if label.endswith("Q1") else {MONTHS.index(label)}
        true = _true(entries, months)
        figures = disclosure.protect(true, ROWS, COLS)
        candidate = Release("t", parse_period(label), ROWS, COLS, figures)
        # Published figures: rounded, never 1..K-1.
        assert all(v is None or v % disclosure.BASE == 0 for v in figures.values())
        assert all(figures[k] is None for k, v in true.items() if 1 <= v < disclosure.K)
        if not disclosure.narrow_cells([*accepted, candidate]):
            accepted.append(candidate)
            truths.append(true)
    found = disclosure.ranges(accepted)
    for (i, key), (low, high) in found.items():
        assert high - low >= disclosure.K - 1e-6, (accepted[i].period, key, low, high)
        assert low - 1e-6 <= truths[i].get(key, 0) <= high + 1e-6


def test_periods_nest_month_quarter_year():
    year, q2, may = parse_period("2026"), parse_period("2026-q2"), parse_period("2026-05")
    assert year.contains(q2) and q2.contains(may) and year.contains(may)
    assert not may.contains(q2) and not q2.contains(q2)
    assert [p.label for p in disclosure.parts_of(q2, {parse_period(f"2026-0{m}") for m in (4, 5, 6)})[0]
            ] == ["2026-04", "2026-05", "2026-06"]
    assert disclosure.round_to(7) == 5 and disclosure.round_to(8) == 10
    assert disclosure.interval(5) == (5.0, 7.0) and disclosure.interval(0) == (0.0, 0.0)


# --- across organisations and tables (hypothesis, `ci` profile) -------------------------------

TYPES2 = ("t1", "t2")
SEVS2 = ("s1", "s2")
SHARED2 = {
    "by_region": {(TOTAL, TOTAL): "all", **{(TOTAL, t): f"type:{t}" for t in TYPES2}},
    "by_type": {(TOTAL, TOTAL): "all", **{(t, TOTAL): f"type:{t}" for t in TYPES2},
                **{(TOTAL, s): f"sev:{s}" for s in SEVS2}},
    "by_outcome": {(TOTAL, TOTAL): "all", **{(TOTAL, s): f"sev:{s}" for s in SEVS2}},
}
incident_strategy = st.lists(st.tuples(st.sampled_from(range(3)), st.sampled_from(ROWS),
                                       st.sampled_from(TYPES2), st.sampled_from(SEVS2),
                                       st.sampled_from(("open", "closed")), st.integers(0, 13)),
                             min_size=0, max_size=45)
candidates = [(org, table, period) for org in ("a", "b")
              for table in ("by_region", "by_type", "by_outcome")
              for period in ("2014-01", "2014-02", "2014-03", "2014-Q1")]


def _table(entries, table: str, months: set[int], women: set[int]):
    """True counts of one table (each woman once per entry) and the women it counts."""
    sets: dict = {}
    counted = set()
    for month, region, type_, sev, status, woman in entries:
        if month not in months or woman not in women:
            continue
        r, c = {"by_region": (region, type_), "by_type": (type_, sev),
                "by_outcome": (status, sev)}[table]
        counted.add(str(woman))
        for key in ((r, c), (r, TOTAL), (TOTAL, c), (TOTAL, TOTAL)):
            sets.setdefault(key, set()).add(woman)
    rows, cols = {"by_region": (ROWS, TYPES2), "by_type": (TYPES2, SEVS2),
                  "by_outcome": (("open", "closed"), SEVS2)}[table]
    return {k: len(v) for k, v in sets.items()}, rows, cols, frozenset(counted)


@given(incident_strategy, st.sets(st.integers(0, 13)), st.sets(st.integers(0, 13)),
       st.lists(st.sampled_from(candidates), min_size=2, max_size=8, unique=True))
def test_no_cell_is_narrowed_by_other_organisations_or_tables(entries, pop_a, pop_b, order):
    """Two organisations counting overlapping women, three tables sharing totals (type and
    severity totals, women with any incident), months and the quarter, released in any order:
    every release the check accepts leaves each suppressed cell of every accepted release at
    least K wide, with the true count inside its range (the cross-organisation and cross-table
    relations, with their slack for women one release counts and the other does not, are
    sound)."""
    populations = {"a": pop_a, "b": pop_b}
    accepted: list[Release] = []
    truths: list[dict] = []
    for org, table, label in order:
        months = {0, 1, 2} if label.endswith("Q1") else {MONTHS.index(label)}
        true, rows, cols, counted = _table(entries, table, months, populations[org])
        figures = disclosure.protect(true, rows, cols)
        candidate = Release(table, parse_period(label), rows, cols, figures, series=org,
                            population=counted)
        pool = [*accepted, candidate]
        linked = [pool[i] for i in disclosure.connected(pool, len(pool) - 1, SHARED2)]
        if not disclosure.narrow_cells(linked, shared=SHARED2):
            accepted.append(candidate)
            truths.append(true)
    found = disclosure.ranges(accepted, shared=SHARED2)
    for (i, key), (low, high) in found.items():
        assert high - low >= disclosure.K - 1e-6, (accepted[i].table, accepted[i].period, key,
                                                   low, high)
        assert low - 1e-6 <= truths[i].get(key, 0) <= high + 1e-6


def test_two_organisations_one_woman_apart_are_combined_and_strangers_are_not():
    """The same month and table released to two organisations whose counted women differ by
    one (she gave aggregate reporting to one of them only): her suppressed cell in the larger
    release is pinned by the smaller one's published zero, so the second release is refused.
    An organisation counting none of the same women is never combined with them."""
    rows, cols = ("r1",), ("c1", "c2")
    fives = {("r1", "c1"): 6, ("r1", TOTAL): 6, (TOTAL, "c1"): 6, (TOTAL, TOTAL): 6}
    with_her = {**fives, ("r1", "c2"): 1, ("r1", TOTAL): 7, (TOTAL, "c2"): 1, (TOTAL, TOTAL): 7}
    women = frozenset(str(i) for i in range(6))
    month = parse_period("2014-05")
    first = Release("t", month, rows, cols, disclosure.protect(fives, rows, cols), series="a",
                    population=women)
    second_figures = disclosure.protect(with_her, rows, cols)
    assert second_figures[("r1", "c2")] is None and first.figures[("r1", "c2")] == 0
    second = Release("t", month, rows, cols, second_figures, series="b",
                     population=women | {"her"})
    assert disclosure.narrow_cells([second]) == []
    assert disclosure.narrow_cells([first, second])  # refused: together they show her
    stranger = Release("t", month, rows, cols, second_figures, series="c",
                       population=frozenset({"x", "y", "z", "w", "v", "u", "her2"}))
    assert disclosure.connected([first, stranger], 1) == [1]
    assert disclosure.narrow_cells([first, stranger]) == []
