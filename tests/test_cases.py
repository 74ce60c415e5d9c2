"""Cases, peacebuilders and notes through GraphQL: CRUD, isolation, pagination, N+1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.tables.audit import AccessLogEntry
from app.tables.cases import Case
from schema import ids
from tests.conftest import unique
from tests.factories import INTAKE, register

pytestmark = pytest.mark.anyio

CREATE_PB = """
mutation($input: CreatePeacebuilderInput!) {
  createPeacebuilder(input: $input) {
    peacebuilder { id pseudonym preferredLanguage networks { slug } }
    userErrors { field message code }
  }
}"""
OPEN_CASE = """
mutation($input: OpenCaseInput!) {
  openCase(input: $input) {
    case { id status riskLevel openedAt closedAt leadOrganisation { slug } peacebuilder { pseudonym } }
    userErrors { field message code }
  }
}"""
UPDATE_CASE = """
mutation($input: UpdateCaseInput!) {
  updateCase(input: $input) { case { id status closedAt riskLevel } userErrors { field message code } }
}"""
GET_CASE = "query($id: ID!) { case(id: $id) { id status leadOrganisation { slug } } }"
LIST_CASES = """
query($first: Int, $after: String, $filter: CaseFilter, $order: CaseOrder! = OPENED_AT_DESC) {
  cases(first: $first, after: $after, filter: $filter, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id status riskLevel openedAt leadOrganisation { slug }
                          peacebuilder { id pseudonym networks { slug } } } }
  }
}"""
ADD_NOTE = """
mutation($input: AddCaseNoteInput!) {
  addCaseNote(input: $input) { note { id body } userErrors { field message code } }
}"""
GRANT = """
mutation($input: GrantConsentInput!) {
  grantConsent(input: $input) { grant { id status } userErrors { field message code } }
}"""
NOTES = "query($id: ID!) { case(id: $id) { notes(first: 50) { edges { node { id body } } } } }"


async def new_case(env, org: str = "mofa", user: str = "caseworker") -> tuple[str, str]:
    """Her case at the default level (MEDIUM): the level comes from a joint risk assessment
    (tests/test_risk.py), never from opening the case."""
    her = await register(env, org, user, profile={"legalName": "Test Person", "country": "KE"})
    body = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": her["id"]}}, as_=(org, user))
    payload = body["data"]["openCase"]
    assert payload["userErrors"] == []
    return her["id"], payload["case"]["id"]


async def test_caseworker_creates_and_lists_cases(env):
    pb_id, case_id = await new_case(env)
    got = await env.gql(GET_CASE, {"id": case_id}, as_=("mofa", "caseworker"))
    assert got["data"]["case"] == {"id": case_id, "status": "OPEN",
                                   "leadOrganisation": {"slug": "mofa"}}
    listed = await env.gql(LIST_CASES, {"first": 100, "filter": {"peacebuilderId": pb_id}},
                           as_=("mofa", "caseworker"))
    conn = listed["data"]["cases"]
    assert conn["totalCount"] == 1
    assert [e["node"]["id"] for e in conn["edges"]] == [case_id]
    assert conn["edges"][0]["node"]["leadOrganisation"]["slug"] == "mofa"


async def test_other_organisation_sees_nothing_and_same_error_as_random(env):
    _, case_id = await new_case(env, "mofa")
    embassy = await env.token("embassy", "caseworker")
    listed = await env.gql(LIST_CASES, {"first": 100}, token=embassy)
    assert case_id not in [e["node"]["id"] for e in listed["data"]["cases"]["edges"]]
    random_id = ids.encode("Case", __import__("uuid").uuid4())
    foreign = await env.post(GET_CASE, {"id": case_id}, token=embassy)
    missing = await env.post(GET_CASE, {"id": random_id}, token=embassy)
    assert foreign.status_code == missing.status_code == 200
    f, m = foreign.json(), missing.json()
    assert f == m == {"data": {"case": None}, "errors": [{
        "message": "Not found.", "locations": [{"line": 1, "column": 19}], "path": ["case"],
        "extensions": {"code": "NOT_FOUND"}}]}
    # Byte-identical bodies: nothing in the response distinguishes the two.
    assert foreign.content == missing.content
    # The node entry point behaves the same.
    node_q = "query($id: ID!) { node(id: $id) { id } }"
    a = await env.post(node_q, {"id": case_id}, token=embassy)
    b = await env.post(node_q, {"id": random_id}, token=embassy)
    assert a.content == b.content
    assert a.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_foreign_case_cannot_be_updated_or_noted(env):
    _, case_id = await new_case(env, "unpc", "focal")
    for query, variables in ((UPDATE_CASE, {"input": {"id": case_id, "status": "CLOSED"}}),
                             (ADD_NOTE, {"input": {"caseId": case_id, "body": "x"}})):
        body = await env.gql(query, variables, as_=("wpn", "caseworker"))
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert body["data"] is None or list(body["data"].values()) == [None]
    got = await env.gql(GET_CASE, {"id": case_id}, as_=("unpc", "focal"))
    assert got["data"]["case"]["status"] == "OPEN"


async def test_update_close_and_reopen(env):
    # Medium: one focal point closes it. The level is no longer set by hand (the deprecated
    # argument is refused, nothing changes).
    _, case_id = await new_case(env)
    changed = await env.gql(UPDATE_CASE, {"input": {"id": case_id, "riskLevel": "LOW"}},
                            as_=("mofa", "focal"))
    assert changed["data"]["updateCase"]["userErrors"][0]["field"] == ["input", "riskLevel"]
    due = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    closed = await env.gql("""mutation($i: CloseCaseInput!) { closeCase(input: $i) {
        case { status closedAt riskLevel } userErrors { message } } }""",
                           {"i": {"caseId": case_id, "reason": "RISK_RESOLVED",
                                  "followUp": [{"kind": "PSYCHOSOCIAL_SUPPORT", "dueAt": due}]}},
                           as_=("mofa", "focal"))
    case = closed["data"]["closeCase"]["case"]
    assert case["status"] == "CLOSED" and case["closedAt"] and case["riskLevel"] == "MEDIUM"
    reopened = await env.gql("""mutation($i: ReopenCaseInput!) { reopenCase(input: $i) {
        case { status closedAt } } }""", {"i": {"caseId": case_id, "reason": "NEW_THREAT"}},
                             as_=("mofa", "focal"))
    assert reopened["data"]["reopenCase"]["case"]["closedAt"] is None


async def test_pagination_walks_every_case_once(env):
    pb_id, _ = await new_case(env, "fund", "caseworker")
    created = set()
    for _ in range(4):
        body = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": pb_id}},
                             as_=("fund", "caseworker"))
        created.add(body["data"]["openCase"]["case"]["id"])
    seen: list[str] = []
    after = None
    for _ in range(10):
        body = await env.gql(LIST_CASES, {"first": 2, "after": after,
                                          "filter": {"peacebuilderId": pb_id}},
                             as_=("fund", "caseworker"))
        assert "errors" not in body, body
        conn = body["data"]["cases"]
        assert conn["totalCount"] == 5
        seen += [e["node"]["id"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 5
    assert created <= set(seen)
    oldest_first = await env.gql(LIST_CASES, {"first": 5, "order": "OPENED_AT_ASC",
                                              "filter": {"peacebuilderId": pb_id}},
                                 as_=("fund", "caseworker"))
    assert [e["node"]["id"] for e in oldest_first["data"]["cases"]["edges"]] == seen[::-1]


async def test_filters(env):
    _, case_id = await new_case(env, "nhri", "caseworker")
    await env.gql(UPDATE_CASE, {"input": {"id": case_id, "status": "ON_HOLD"}},
                  as_=("nhri", "caseworker"))
    on_hold = await env.gql(LIST_CASES, {"first": 100, "filter": {"status": "ON_HOLD",
                                                                  "riskLevel": "MEDIUM"}},
                            as_=("nhri", "caseworker"))
    ids_ = [e["node"]["id"] for e in on_hold["data"]["cases"]["edges"]]
    assert case_id in ids_
    assert all(e["node"]["status"] == "ON_HOLD" for e in on_hold["data"]["cases"]["edges"])
    future = await env.gql(LIST_CASES, {"first": 100, "filter": {
        "openedAfter": "2999-01-01T00:00:00+00:00"}}, as_=("nhri", "caseworker"))
    assert future["data"]["cases"]["edges"] == []


async def test_bad_input_is_a_user_error_and_changes_nothing(env):
    async with env.runtime.db.transaction() as s:
        before = await s.scalar(select(func.count()).select_from(Case))
    body = await env.gql(CREATE_PB, {"input": {"pseudonym": "Not Valid!", "intakeConsent": INTAKE}},
                         as_=("mofa", "caseworker"))
    payload = body["data"]["createPeacebuilder"]
    assert payload["peacebuilder"] is None
    assert payload["userErrors"] == [{"field": ["input", "pseudonym"], "code": "BAD_USER_INPUT",
                                      "message": "Pseudonym must be 2-64 lowercase letters, "
                                                 "digits or '-'."}]
    bad_page = await env.gql(LIST_CASES, {"first": 1000}, as_=("mofa", "caseworker"))
    assert bad_page["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
    bad_cursor = await env.gql(LIST_CASES, {"first": 1, "after": "garbage"}, as_=("mofa", "caseworker"))
    assert bad_cursor["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    async with env.runtime.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Case)) == before


async def test_duplicate_pseudonym_conflict_rolls_back(env):
    name = unique("dup")
    new = {"input": {"pseudonym": name, "intakeConsent": INTAKE}}
    first = await env.gql(CREATE_PB, new, as_=("wpn", "caseworker"))
    assert first["data"]["createPeacebuilder"]["userErrors"] == []
    again = await env.gql(CREATE_PB, new, as_=("wpn", "caseworker"))
    assert again["data"]["createPeacebuilder"]["userErrors"][0]["code"] == "CONFLICT"
    # Another organisation may use the same pseudonym: uniqueness must not reveal hers.
    other = await env.gql(CREATE_PB, new, as_=("mofa", "caseworker"))
    assert other["data"]["createPeacebuilder"]["userErrors"] == []


async def test_role_without_permission_is_forbidden_and_logged(env):
    async with env.runtime.db.transaction() as s:
        before = await s.scalar(select(func.count()).select_from(Case))
    pb_id, _ = await new_case(env, "embassy")
    body = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": pb_id}}, as_=("embassy", "analyst"))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["message"] == "Not allowed."
    async with env.runtime.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Case)) == before + 1
        denial = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "case.create", AccessLogEntry.decision == "deny")
            .order_by(AccessLogEntry.at.desc()))).first()
    assert denial is not None and denial.purpose == "protection"
    assert denial.actor.startswith("user:")


async def test_internal_notes_stay_in_the_writing_organisation(env):
    from tests.test_consent import grant, new_peacebuilder

    pb = await new_peacebuilder(env, "wpn")
    case_id = pb["case"]
    secret = "internal: " + unique("note")
    added = await env.gql(ADD_NOTE, {"input": {"caseId": case_id, "body": secret}}, as_=("wpn", "caseworker"))
    assert added["data"]["addCaseNote"]["note"]["body"] == secret
    own = await env.gql(NOTES, {"id": case_id}, as_=("wpn", "focal"))
    assert [e["node"]["body"] for e in own["data"]["case"]["notes"]["edges"]] == [secret]
    # Even with her consent covering every category, another organisation never sees the notes.
    await grant(env, pb, as_=("wpn", "focal"), to_org="unpc",
                categories=["IDENTITY", "INCIDENT_DETAILS", "LEGAL", "FAMILY", "HEALTH"])
    other = await env.post(NOTES, {"id": case_id}, as_=("unpc", "focal"))
    assert other.json()["data"]["case"]["notes"]["edges"] == []
    assert secret not in other.text
    # Never in the access log either: it records that a note was written, not what.
    async with env.runtime.db.transaction() as s:
        rows = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "case_note.create"))).all()
    assert rows and all(secret not in json.dumps(r.details) for r in rows)


async def test_profile_values_never_reach_the_log(env):
    name = unique("pb")
    await env.gql(CREATE_PB, {"input": {"pseudonym": name, "intakeConsent": INTAKE, "profile": {
        "legalName": "Very Secret Name", "phone": "+1 555 0100"}}}, as_=("mofa", "caseworker"))
    async with env.runtime.db.transaction() as s:
        rows = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "peacebuilder.create"))).all()
    dumped = json.dumps([[r.details, r.reason, r.target_id] for r in rows])
    assert "Very Secret Name" not in dumped and "555 0100" not in dumped and name not in dumped
    assert any(r.details == {"categories": ["contact", "identity"]} for r in rows)


async def test_statement_count_does_not_grow_with_page_size(env):
    pb_id, _ = await new_case(env, "embassy", "caseworker")
    for _ in range(12):
        await env.gql(OPEN_CASE, {"input": {"peacebuilderId": pb_id}}, as_=("embassy", "caseworker"))
    token = await env.token("embassy", "caseworker")
    counts = {}
    for size in (2, 12):
        await env.gql(LIST_CASES, {"first": size}, token=token)  # warm caches
        start = env.runtime.db.statements.count
        body = await env.gql(LIST_CASES, {"first": size}, token=token)
        counts[size] = env.runtime.db.statements.count - start
        assert len(body["data"]["cases"]["edges"]) == size
    assert counts[2] == counts[12], counts
    # Admission reads her consent rows (each woman's MAC checked) and her networks apart.
    assert counts[12] <= 11, counts


async def test_total_count_is_counted_only_when_selected(env):
    await new_case(env, "embassy", "caseworker")
    token = await env.token("embassy", "caseworker")
    queries = {
        "without": "query { cases(first: 5) { edges { node { id } } } }",
        "with": "query { cases(first: 5) { totalCount edges { node { id } } } }",
        "fragments": "query { cases(first: 5) { n: totalCount ...C ... on CaseConnection "
                     "{ edges { node { id } } } } } fragment C on CaseConnection { totalCount }",
    }
    counts, bodies = {}, {}
    for name, query in queries.items():
        await env.gql(query, token=token)  # warm caches
        start = env.runtime.db.statements.count
        bodies[name] = await env.gql(query, token=token)
        counts[name] = env.runtime.db.statements.count - start
    assert counts["with"] == counts["fragments"] == counts["without"] + 1, counts
    total = bodies["with"]["data"]["cases"]["totalCount"]
    assert total >= 1
    assert bodies["fragments"]["data"]["cases"]["n"] == bodies["fragments"]["data"]["cases"][
        "totalCount"] == total
    assert "totalCount" not in bodies["without"]["data"]["cases"]
    assert [e["node"]["id"] for e in bodies["without"]["data"]["cases"]["edges"]] == [
        e["node"]["id"] for e in bodies["with"]["data"]["cases"]["edges"]]
