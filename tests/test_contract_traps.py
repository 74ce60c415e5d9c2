"""Clear answers instead of silence (issue 16): PURPOSE_REQUIRED, `withheld` in-band, and
`grantConsent` refusing a duplicate live grant — through GraphQL on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.tables.audit import AccessLogEntry
from tests.factories import register
from tests.test_consent import GRANT, REVOKE, org_id

pytestmark = pytest.mark.anyio

CASES = """
query { cases(first: 5) { totalCount edges { node { id summary } } } }"""
CASES_WITHHELD = """
query { cases(first: 20) { edges { node { id summary withheld { field category reason } } } } }"""
NODE_CASE = """
query($id: ID!) { node(id: $id) { ... on Case { status } } }"""
PROFILE = """
query($id: ID!) { peacebuilder(id: $id) {
  profile { legalName phone coordinates withheld { field category reason } } } }"""


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


# --- PURPOSE_REQUIRED ----------------------------------------------------------------------------

async def test_records_without_a_purpose_are_refused_with_purpose_required(env):
    body = await env.gql(CASES, as_=("mofa", "caseworker"), purpose=None)
    assert body.get("data") is None
    assert codes(body) == ["PURPOSE_REQUIRED"]
    assert "Safety-Net-Purpose" in body["errors"][0]["message"]
    # Per the GraphQL-over-HTTP spec a request error is a 400 for graphql-response+json.
    strict = await env.post(CASES, as_=("mofa", "caseworker"), purpose=None,
                            headers={"accept": "application/graphql-response+json"})
    assert strict.status_code == 400
    assert codes(strict.json()) == ["PURPOSE_REQUIRED"]
    # A record reached through a fragment on `node`, the same.
    listed = await env.gql(CASES, as_=("mofa", "caseworker"))
    case_id = listed["data"]["cases"]["edges"][0]["node"]["id"]
    node = await env.gql(NODE_CASE, {"id": case_id}, as_=("mofa", "caseworker"), purpose=None)
    assert codes(node) == ["PURPOSE_REQUIRED"]


async def test_machine_clients_need_a_purpose_too(env):
    token = await env.token("mofa", client="mofa-system")
    body = await env.gql(CASES, token=token, purpose=None)
    assert codes(body) == ["PURPOSE_REQUIRED"]
    assert (await env.gql(CASES, token=token))["data"]["cases"]["totalCount"] >= 1


async def test_no_purpose_is_fine_where_no_record_is_read(env):
    body = await env.gql("{ viewer { __typename } }", as_=("mofa", "caseworker"), purpose=None)
    assert "errors" not in body, body
    # Only the selected operation counts, not another one in the same document.
    doc = "query Mine { viewer { __typename } } query Theirs { cases(first: 1) { totalCount } }"
    response = await env.client.post("/graphql", json={"query": doc, "operationName": "Mine"},
                                     headers={"authorization": "Bearer "
                                              + await env.token("mofa", "caseworker")})
    assert "errors" not in response.json(), response.text


async def test_she_reads_her_own_record_without_a_purpose(env):
    her = await env.peacebuilder_token("mariam")
    body = await env.gql("{ me { peacebuilder { pseudonym profile { legalName } } } }",
                         token=her, purpose=None)
    assert "errors" not in body, body
    assert body["data"]["me"]["peacebuilder"]["pseudonym"] == "mariam"


async def test_the_refusal_is_in_the_access_log(env):
    token = await env.token("embassy", "caseworker")
    await env.gql(CASES, token=token, purpose=None)
    async with env.runtime.db.transaction() as s:
        rows = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "request.purpose",
            AccessLogEntry.reason == "no purpose declared"))).all()
    assert rows and all(r.decision == "deny" for r in rows)


# --- withheld, in-band -------------------------------------------------------------------------

def _redacted_by_object(body: dict) -> dict[tuple, set[tuple[str, str]]]:
    """extensions.redacted grouped by the object's path: {(path...): {(field, reason)}}."""
    out: dict[tuple, set[tuple[str, str]]] = {}
    for entry in (body.get("extensions") or {}).get("redacted", []):
        *parent, name = entry["path"]
        out.setdefault(tuple(parent), set()).add((name, entry["reason"]))
    return out


async def test_withheld_lists_what_extensions_redacted_says(env):
    her = await register(env, "mofa", "caseworker", login=True, profile={
        "legalName": "Her Legal Name", "phone": "+1 555 0100", "coordinates": "1.0,2.0"},
        categories=["IDENTITY", "FAMILY", "INCIDENT_DETAILS"])
    body = await env.gql(PROFILE, {"id": her["id"]}, as_=("mofa", "focal"))
    profile = body["data"]["peacebuilder"]["profile"]
    # The intake consent does not cover contact or location: null, said in-band and out.
    assert profile["phone"] is None and profile["coordinates"] is None
    withheld = {(w["field"], w["reason"]) for w in profile["withheld"]}
    assert ("phone", "CONSENT_DOES_NOT_COVER") in withheld
    assert ("coordinates", "CONSENT_DOES_NOT_COVER") in withheld
    # Every field of the object, selected or not: `email` was not selected.
    assert {"field": "email", "category": "CONTACT",
            "reason": "CONSENT_DOES_NOT_COVER"} in profile["withheld"]
    assert profile["legalName"] == "Her Legal Name"
    assert "legalName" not in {f for f, _ in withheld}
    redacted = _redacted_by_object(body)[("peacebuilder", "profile")]
    assert redacted == {("phone", "CONSENT_DOES_NOT_COVER"),
                        ("coordinates", "CONSENT_DOES_NOT_COVER")}
    assert redacted <= withheld


async def test_withheld_for_need_to_know_and_nothing_when_released(env):
    analyst = await env.gql(CASES_WITHHELD, as_=("mofa", "analyst"))
    nodes = [e["node"] for e in analyst["data"]["cases"]["edges"]]
    assert nodes, analyst
    for node in nodes:
        assert node["summary"] is None
        assert node["withheld"] == [{"field": "summary", "category": "INCIDENT_DETAILS",
                                     "reason": "NEED_TO_KNOW"}]
    focal = await env.gql(CASES_WITHHELD, as_=("mofa", "focal"))
    released = [e["node"] for e in focal["data"]["cases"]["edges"] if e["node"]["summary"]]
    assert released and all(n["withheld"] == [] for n in released)
    # A client that drops `extensions` still tells withheld from empty.
    by_path = _redacted_by_object(focal)
    for i, edge in enumerate(focal["data"]["cases"]["edges"]):
        said = by_path.get(("cases", "edges", i, "node"), set())
        assert said <= {(w["field"], w["reason"]) for w in edge["node"]["withheld"]}


# --- grantConsent: one live grant per terms, userErrors for every input problem -----------------

async def test_a_duplicate_live_grant_is_refused_as_a_user_error(env):
    her = await register(env, "mofa", "caseworker", login=True)
    token = await env.peacebuilder_token(her["login"])
    unpc = await org_id(env, "unpc")
    terms = {"recipientOrganisationId": unpc, "categories": ["INCIDENT_DETAILS"],
             "purposes": ["PROTECTION"]}
    first = await env.gql(GRANT, {"input": terms}, token=token, purpose=None)
    assert first["data"]["grantConsent"]["grant"]["status"] == "LIVE", first
    again = await env.gql(GRANT, {"input": terms}, token=token, purpose=None)
    assert "errors" not in again, again
    payload = again["data"]["grantConsent"]
    assert payload["grant"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["CONFLICT"]
    assert "already in force" in payload["userErrors"][0]["message"]
    # Other terms are another grant; once revoked, the same terms may be granted again.
    other = await env.gql(GRANT, {"input": {**terms, "purposes": ["LEGAL_SUPPORT"]}},
                          token=token, purpose=None)
    assert other["data"]["grantConsent"]["userErrors"] == [], other
    gid = first["data"]["grantConsent"]["grant"]["id"]
    revoked = await env.gql(REVOKE, {"id": gid}, token=token, purpose=None)
    assert revoked["data"]["revokeConsent"]["userErrors"] == []
    renewed = await env.gql(GRANT, {"input": terms}, token=token, purpose=None)
    assert renewed["data"]["grantConsent"]["grant"]["status"] == "LIVE", renewed


async def test_two_recipients_and_no_category_are_both_user_errors(env):
    her = await register(env, "mofa", "caseworker", login=True)
    token = await env.peacebuilder_token(her["login"])
    wgs = await env.gql("{ workingGroups(first: 10) { edges { node { id slug } } } }",
                        as_=("unpc", "admin"))
    jag = wgs["data"]["workingGroups"]["edges"][0]["node"]["id"]
    both = await env.gql(GRANT, {"input": {
        "recipientOrganisationId": await org_id(env, "unpc"), "recipientWorkingGroupId": jag,
        "categories": ["INCIDENT_DETAILS"], "purposes": ["PROTECTION"]}}, token=token,
        purpose=None)
    empty = await env.gql(GRANT, {"input": {
        "recipientOrganisationId": await org_id(env, "unpc"), "categories": [],
        "purposes": ["PROTECTION"]}}, token=token, purpose=None)
    for body, field in ((both, "recipient"), (empty, "categories")):
        assert "errors" not in body, body
        payload = body["data"]["grantConsent"]
        assert payload["grant"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            (["input", field], "BAD_USER_INPUT")]


async def test_a_mutation_on_her_records_needs_a_purpose_too(env):
    # Without one it could not even find her record: NOT_FOUND would hide the reason.
    her = await register(env, "mofa", "caseworker", login=True)
    body = await env.gql("""mutation($i: OpenCaseInput!) { openCase(input: $i) {
        case { id summary } userErrors { message } } }""",
                         {"i": {"peacebuilderId": her["id"], "summary": "Threats."}},
                         as_=("mofa", "caseworker"), purpose=None)
    assert codes(body) == ["PURPOSE_REQUIRED"]
    listed = await env.gql("query($pb: ID!) { cases(first: 5, filter: {peacebuilderId: $pb}) "
                           "{ totalCount } }", {"pb": her["id"]}, as_=("mofa", "caseworker"))
    assert listed["data"]["cases"]["totalCount"] == 0  # nothing was opened
