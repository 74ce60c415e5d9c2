"""The read path (decision 0014): a page and its nested levels cost a fixed number of SQL
statements, whatever its size; gated fields read the decision made with the rows."""

from __future__ import annotations

import pytest

from tests.conftest import Env
from tests.factories import register
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio

OPEN_CASE = """mutation($input: OpenCaseInput!) {
  openCase(input: $input) { case { id } userErrors { message } } }"""
# The page of the issue: cases with their summary, her pseudonym and their incidents.
PAGE = """query($first: Int!, $pb: ID!) { cases(first: $first, filter: {peacebuilderId: $pb}) {
  edges { node { id status riskLevel summary peacebuilder { pseudonym }
                 incidents { id status severity description } } } } }"""
# Every nested level the read path batches.
DEEP = """query($first: Int!) { cases(first: $first, filter: {peacebuilderId: $pb}) { edges { node {
  id status riskLevel summary
  peacebuilder { pseudonym profile { country legalName } }
  incidents { id status severity description locationCoarse }
  measures { kind description }
  timeline { kind }
} } } }""".replace("query($first: Int!)", "query($first: Int!, $pb: ID!)")



@pytest.fixture(scope="module")
async def hundred(env: Env) -> dict[str, str]:
    """A woman with 100 cases led by fund, five of them with an incident."""
    her = await register(env, "fund", "caseworker",
                         profile={"country": "KE", "legalName": "Statement Count"})
    cases: list[str] = []
    for _ in range(100):
        body = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": her["id"],
                                                   "summary": "Followed home twice."}},
                             as_=("fund", "focal"))
        cases.append(body["data"]["openCase"]["case"]["id"])
    for case in cases[-5:]:  # nested rows on some of the newest cases (on every page)
        await env.gql(REPORT, incident_input(case), as_=("fund", "focal"))
    return her


async def statements(env: Env, document: str, her: dict[str, str],
                     sizes: tuple[int, ...] = (5, 10, 20)) -> dict[int, int]:
    token = await env.token("fund", "focal")
    counts = {}
    for size in sizes:
        variables = {"first": size, "pb": her["id"]}
        await env.gql(document, variables, token=token)  # warm the caches (policy, parser)
        # Only this request's statements: in the whole suite other tasks in the same event loop
        # (servers and workers of earlier tests on the shared runtime) send statements meanwhile.
        counter = env.runtime.db.statements
        start = counter.measured
        with counter.measuring():
            body = await env.gql(document, variables, token=token)
        counts[size] = counter.measured - start
        assert counts[size] > 0, "the request's statements are counted"
        edges = body["data"]["cases"]["edges"]
        assert len(edges) == size
        assert {e["node"]["summary"] for e in edges} == {"Followed home twice."}
        assert sum(len(e["node"]["incidents"]) for e in edges) >= 1
    return counts


async def test_a_page_with_its_incidents_costs_the_same_few_statements(env, hundred) -> None:
    # Pages of 5 to 20 cases: 20 cases with every incident's description is near the cost
    # budget (each description counts as a document, decision 0018).
    counts = await statements(env, PAGE, hundred)
    assert counts[5] == counts[10] == counts[20] <= 6, counts


# Every nested level adds one statement, never one per row (SQLite | PostgreSQL).
DEEP_MOST = {"sqlite": 8, "postgresql": 9}


async def test_every_nested_level_is_one_statement(env, hundred) -> None:
    # (Pages small enough for the query's cost budget: each nested list counts its page size,
    # each long text its size class — decision 0018.)
    counts = await statements(env, DEEP, hundred, sizes=(5, 10, 15))
    assert counts[5] == counts[10] == counts[15] <= DEEP_MOST[env.backend], counts


# Every clear field of an incident; a selection naming only some of them loads only their
# columns (the others come back NULL, app/read/children.py): what it answers must not change.
INCIDENT_FIELDS = ("id type severity status occurredAt reportedAt reportedBy reportedVia "
                   "acknowledgementDeadline acknowledgedAt description")
NARROW = ("id status severity description", "id acknowledgementDeadline reportedAt",
          "type reportedBy reportedVia withheld { field } __typename",
          "... on Incident { occurredAt acknowledgedAt } id")


def _incidents_page(fields: str) -> str:
    return ("query($first: Int!, $pb: ID!) { cases(first: $first, filter: {peacebuilderId: $pb})"
            " { edges { node { id incidents { " + fields + " } } } } }")


async def test_a_narrow_selection_answers_what_the_whole_one_does(env, hundred) -> None:
    token = await env.token("fund", "focal")
    variables = {"first": 10, "pb": hundred["id"]}
    whole = await env.gql(_incidents_page(INCIDENT_FIELDS), variables, token=token)
    assert "errors" not in whole, whole
    full = [i for e in whole["data"]["cases"]["edges"] for i in e["node"]["incidents"]]
    assert full and all(i[name] is not None for i in full for name in (
        "type", "severity", "status", "reportedAt", "reportedBy", "reportedVia",
        "acknowledgementDeadline", "description"))
    for fields in NARROW:
        body = await env.gql(_incidents_page(fields), variables, token=token)
        assert "errors" not in body, (fields, body)
        narrow = [i for e in body["data"]["cases"]["edges"] for i in e["node"]["incidents"]]
        assert len(narrow) == len(full)
        for mine, theirs in zip(narrow, full, strict=True):
            assert {k: v for k, v in mine.items() if k in theirs} == {
                k: theirs[k] for k in mine if k in theirs}, fields
