"""Issue 16, typed values and the mutation shape — through GraphQL, on both databases.

- closed sets are enums: a value outside the set is refused with a clear error (a code, no
  stack), and the app refuses an alert kind outside AlertKind;
- every mutation takes one `input` argument (old loose arguments only as deprecated, optional
  ones) and answers a payload with `userErrors` — read from the schema itself by introspection;
- `node(id:)` answers every kind of object to a caller who may see it, and to another
  organisation exactly what it answers for an object that does not exist.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest

from app import ids as app_ids
from app.notify.service import notify
from app.tenancy import as_system
from tests.factories import current_assessment
from tests.test_consent import grant, new_peacebuilder
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio

MUTATIONS = """{ __schema { mutationType { fields {
  name
  args(includeDeprecated: true) { name isDeprecated type { kind name ofType { name } } }
  type { kind name ofType { kind name fields { name type { kind ofType { kind ofType {
    kind ofType { name } } } } } } } } } } }"""
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"


async def test_every_mutation_takes_one_input_and_answers_user_errors(env):
    body = await env.gql(MUTATIONS, as_=("fund", "admin"))
    fields = body["data"]["__schema"]["mutationType"]["fields"]
    assert len(fields) > 70
    loose, bare = [], []
    for f in fields:
        live = [a["name"] for a in f["args"] if not a["isDeprecated"]]
        if live != ["input"]:
            loose.append((f["name"], live))
        # A deprecated argument must be optional (the spec forbids deprecating a required one).
        assert all(a["type"]["kind"] != "NON_NULL" for a in f["args"] if a["isDeprecated"]), f
        payload = f["type"]["ofType"] if f["type"]["kind"] == "NON_NULL" else f["type"]
        errors = {x["name"]: x["type"] for x in payload.get("fields") or []}.get("userErrors")
        # [UserError!]!
        if errors is None or errors["ofType"]["ofType"]["ofType"]["name"] != "UserError":
            bare.append(f["name"])
    assert loose == [] and bare == [], (loose, bare)


async def test_a_value_outside_a_closed_set_is_refused_with_a_code(env):
    pb = await new_peacebuilder(env, "fund")
    variables = incident_input(pb["case"], reportedBy="a_passer_by")
    body = await env.gql(REPORT, variables, as_=("fund", "caseworker"))
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED")
    assert "Reporter" in error["message"] and "a_passer_by" in error["message"], error
    assert error["extensions"].get("field", "reportedBy").endswith("reportedBy"), error
    assert "Traceback" not in json.dumps(body) and "stacktrace" not in error["extensions"]
    # As a literal in the document: refused before anything runs.
    literal = await env.gql("""mutation { setMeasureStatus(input: {measureId: "x",
        status: finished}) { userErrors { code } } }""", as_=("fund", "focal"))
    [error] = literal["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "MeasureStatus" in error["message"]
    # Inside the set, the same variables pass, and the answer is the enum value.
    ok = await env.gql("""mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
        incident { reportedBy reportedVia } userErrors { code } } }""",
                       incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert ok["data"]["reportIncident"] == {
        "incident": {"reportedBy": "herself", "reportedVia": "secure_messenger"},
        "userErrors": []}


async def test_notify_refuses_an_alert_kind_outside_the_set(env):
    @as_system
    async def raise_alert(kind: str) -> None:
        async with env.runtime.db.transaction() as session:
            await notify(session, [(f"user:{uuid.uuid4()}", uuid.uuid4())], kind=kind,
                         subject_id=None, case_id=None, payload={}, at=env.runtime.clock.now())

    with pytest.raises(ValueError, match="unknown alert kind"):
        await raise_alert("something_happened")


async def test_loose_arguments_still_work_and_input_answers_the_same(env):
    pb = await new_peacebuilder(env, "fund")
    reported = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    incident = reported["data"]["reportIncident"]["incident"]["id"]
    old = await env.gql("""mutation($id: ID!) { acknowledgeIncident(id: $id) {
        incident { status } userErrors { code } } }""", {"id": incident}, as_=("fund", "focal"))
    assert old["data"]["acknowledgeIncident"] == {"incident": {"status": "ACKNOWLEDGED"},
                                                  "userErrors": []}
    new = await env.gql("""mutation($id: ID!) { setIncidentStatus(input: {incidentId: $id,
        status: RESPONDING}) { incident { status } userErrors { code } } }""", {"id": incident},
                        as_=("fund", "focal"))
    assert new["data"]["setIncidentStatus"] == {"incident": {"status": "RESPONDING"},
                                                "userErrors": []}
    neither = await env.gql("mutation { acknowledgeIncident { userErrors { field code } } }",
                            as_=("fund", "focal"))
    assert neither["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    deadline = await env.gql("""mutation { setAcknowledgementDeadline(input: {severity: LOW,
        minutes: 0}) { minutes userErrors { field code } } }""", as_=("fund", "admin"))
    assert deadline["data"]["setAcknowledgementDeadline"] == {
        "minutes": None, "userErrors": [{"field": ["input", "minutes"], "code": "BAD_USER_INPUT"}]}


async def _created(env) -> dict[str, str]:
    """One object of (nearly) every Node type, made by `fund` on a fresh case of hers."""
    pb = await new_peacebuilder(env, "fund")
    made = {"Case": pb["case"], "ConsentGrant": pb["grant"], "Peacebuilder": pb["id"]}
    as_cw, as_focal = ("fund", "caseworker"), ("fund", "focal")

    async def run(doc: str, variables: dict, key: str, as_=as_cw) -> dict:
        body = await env.gql(doc, variables, as_=as_)
        assert "errors" not in body and body["data"][key].get("userErrors", []) == [], body
        return body["data"][key]

    made["Incident"] = (await run(REPORT, incident_input(pb["case"]),
                                  "reportIncident"))["incident"]["id"]
    made["Measure"] = (await run("""mutation($c: ID!) { addMeasure(input: {caseId: $c,
        kind: ACCOMPANIMENT}) { measure { id } userErrors { message } } }""",
                                 {"c": pb["case"]}, "addMeasure", as_focal))["measure"]["id"]
    made["Proceeding"] = (await run("""mutation($c: ID!) { recordProceeding(input: {caseId: $c,
        kind: investigation, data: {authority: "Prosecutor"}}) { proceeding { id }
        userErrors { message } } }""", {"c": pb["case"]}, "recordProceeding"))["proceeding"]["id"]
    when = (env.runtime.clock.now() + timedelta(days=10)).isoformat()
    made["Hearing"] = (await run("""mutation($p: ID!, $at: DateTime!) { scheduleHearing(input:
        {proceedingId: $p, scheduledAt: $at}) { hearing { id } userErrors { message } } }""",
                                 {"p": made["Proceeding"], "at": when},
                                 "scheduleHearing"))["hearing"]["id"]
    detained = (env.runtime.clock.now() - timedelta(hours=1)).isoformat()
    made["Detention"] = (await run("""mutation($c: ID!, $at: DateTime!) { recordDetention(input:
        {caseId: $c, detainedAt: $at}) { detention { id } userErrors { message } } }""",
                                   {"c": pb["case"], "at": detained},
                                   "recordDetention"))["detention"]["id"]
    made["DetentionVisit"] = (await run("""mutation($d: ID!, $at: DateTime!) {
        recordDetentionVisit(input: {detentionId: $d, visitor: LAWYER, visitedAt: $at,
        satisfies: LAWYER_ACCESS}) { visit { id } userErrors { message } } }""",
                                        {"d": made["Detention"],
                                         "at": env.runtime.clock.now().isoformat()},
                                        "recordDetentionVisit"))["visit"]["id"]
    case = await env.gql("query($id: ID!) { case(id: $id) { detentionChecks { id } } }",
                         {"id": pb["case"]}, as_=as_cw)
    made["DetentionCheck"] = case["data"]["case"]["detentionChecks"][0]["id"]
    made["Attachment"] = (await run("""mutation($i: ID!, $b: String!) { uploadAttachment(input:
        {incidentId: $i, contentType: "text/plain", contentBase64: $b}) { attachment { id }
        userErrors { message } } }""", {"i": made["Incident"],
                                        "b": base64.b64encode(b"a threat, written down").decode()},
                                    "uploadAttachment"))["attachment"]["id"]
    made["CaseNote"] = (await run("""mutation($c: ID!) { addCaseNote(input: {caseId: $c,
        body: "internal"}) { note { id } userErrors { message } } }""", {"c": pb["case"]},
                                  "addCaseNote"))["note"]["id"]
    await grant(env, pb, as_=as_focal, to_org="nhri", categories=["INCIDENT_DETAILS"],
                purposes=["LEGAL_SUPPORT"])
    nhri = (await env.gql('{ organisations(first: 50) { edges { node { id slug } } } }',
                          as_=as_focal))["data"]["organisations"]["edges"]
    to = next(e["node"]["id"] for e in nhri if e["node"]["slug"] == "nhri")
    await current_assessment(env, pb["case"], "fund", login=pb["login"])  # the referral gate
    made["Referral"] = (await run("""mutation($c: ID!, $o: ID!) { referCase(input: {caseId: $c,
        toOrganisationId: $o, purpose: LEGAL_SUPPORT}) { referral { id }
        userErrors { message } } }""", {"c": pb["case"], "o": to}, "referCase",
                                  as_focal))["referral"]["id"]
    made["Channel"] = (await run("""mutation { addMyChannel(input: {url:
        "http://127.0.0.1:9/hook", minLevel: 0}) { channel { id } userErrors { message } } }""",
                                 {}, "addMyChannel", as_focal))["channel"]["id"]
    made["Organisation"] = to
    return made


async def test_node_answers_every_type_to_its_reader_and_not_found_to_another_org(env):
    made = await _created(env)
    owner, outsider = ("fund", "focal"), ("wpn", "focal")
    for type_name, global_id in made.items():
        seen = await env.gql(NODE, {"id": global_id}, as_=owner)
        assert seen["data"]["node"] == {"__typename": type_name, "id": global_id}, (type_name,
                                                                                     seen)
        if type_name == "Organisation":
            continue  # organisations are public to every organisation
        foreign = await env.gql(NODE, {"id": global_id}, as_=outsider)
        missing = await env.gql(NODE, {"id": app_ids.encode(type_name, uuid.uuid4())},
                                as_=outsider)
        assert foreign["data"] == {"node": None} and foreign["errors"][0]["extensions"][
            "code"] == "NOT_FOUND", (type_name, foreign)
        # Byte for byte what a missing one gets (apart from the request's own ID).
        strip = [{k: v for k, v in e.items() if k != "extensions"} | {
            "extensions": {k: v for k, v in e["extensions"].items() if k != "requestId"}}
                 for e in foreign["errors"]]
        strip_missing = [{k: v for k, v in e.items() if k != "extensions"} | {
            "extensions": {k: v for k, v in e["extensions"].items() if k != "requestId"}}
                         for e in missing["errors"]]
        assert strip == strip_missing, type_name


async def test_node_covers_every_type_that_implements_node(env):
    body = await env.gql('{ __type(name: "Node") { possibleTypes { name } } }',
                         as_=("fund", "admin"))
    types = {t["name"] for t in body["data"]["__type"]["possibleTypes"]}
    from schema.schema import _NODE_RESOLVERS

    assert types <= set(_NODE_RESOLVERS), types - set(_NODE_RESOLVERS)
    assert len(types) >= 27


async def test_her_own_objects_are_hers_alone_through_node(env):
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    orgs = (await env.gql('{ organisations(first: 50) { edges { node { id slug } } } }',
                          as_=("fund", "focal")))["data"]["organisations"]["edges"]
    fund = next(e["node"]["id"] for e in orgs if e["node"]["slug"] == "fund")
    approved = await env.gql("""mutation($o: ID!) { recordApproval(input: {act: public_statement,
        description: "A statement of solidarity.", organisationId: $o}) { approval { id act }
        userErrors { message } } }""", {"o": fund}, token=her, purpose=None)
    approval = approved["data"]["recordApproval"]["approval"]
    assert approval["act"] == "public_statement"
    mine = await env.gql(NODE, {"id": approval["id"]}, token=her, purpose=None)
    assert mine["data"]["node"] == {"__typename": "Approval", "id": approval["id"]}
    staff = await env.gql(NODE, {"id": approval["id"]}, as_=("fund", "focal"))
    assert staff["data"] == {"node": None}
    assert staff["errors"][0]["extensions"]["code"] == "NOT_FOUND"


LISTED = [
    # (reader, list query, path to its items, outsider)
    (("fund", "admin"), "{ users(first: 5) { edges { node { id } } } }", ("users", "edges"),
     ("wpn", "admin")),
    (("fund", "admin"), "{ clients(first: 5) { edges { node { id } } } }", ("clients", "edges"),
     ("wpn", "admin")),
    (("nhri", "auditor"), "{ accessLog(first: 5) { edges { node { id } } } }",
     ("accessLog", "edges"), None),
]


@pytest.mark.parametrize("reader,query,path,outsider", LISTED)
async def test_what_a_list_shows_node_shows_too(env, reader, query, path, outsider):
    body = await env.gql(query, as_=reader)
    items = body["data"][path[0]][path[1]]
    assert items, body
    global_id = items[0]["node"]["id"]
    type_name, _ = app_ids.decode_any(global_id)
    seen = await env.gql(NODE, {"id": global_id}, as_=reader)
    assert seen["data"]["node"] == {"__typename": type_name, "id": global_id}
    if outsider is not None:
        foreign = await env.gql(NODE, {"id": global_id}, as_=outsider)
        assert foreign["data"] == {"node": None}
        assert foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"
