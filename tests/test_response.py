"""Issue 17: owners who can act and referrals anyone can work with — through GraphQL, on both
databases.

- a measure's owner organisation must be covered by her consent (its category, this purpose),
  refused as a userError that names no category of hers, and the refusal is logged;
- a referral's recipient reads the request (and both sides the outcome) only while the consent
  that allowed the referral releases incident details to it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.tables.audit import AccessLogEntry
from tests.factories import current_assessment
from tests.test_consent import grant, new_peacebuilder, org_id

pytestmark = pytest.mark.anyio

MEASURE = """mutation($c: ID!, $o: ID) { addMeasure(input: {caseId: $c, kind: ACCOMPANIMENT,
  ownerOrganisationId: $o, description: "Accompany her to the hearing."}) {
  measure { id owner { slug } description } userErrors { field message code } } }"""
REFER = """mutation($c: ID!, $o: ID!) { referCase(input: {caseId: $c, toOrganisationId: $o,
  purpose: LEGAL_SUPPORT, request: "Please find her a lawyer before Friday."}) {
  referral { id request } userErrors { field message } } }"""
INCOMING = "{ referrals(incoming: true) { id request outcome status } }"
OUTGOING = "{ referrals(incoming: false) { id request outcome status } }"
MOVE = """mutation($id: ID!, $a: String!, $o: String) { moveReferral(id: $id, action: $a,
  outcome: $o) { referral { status request outcome } userErrors { message } } }"""
REVOKE = "mutation($g: ID!) { revokeConsent(input: {grantId: $g}) { grant { id } } }"


async def test_measure_owner_must_be_covered_by_her_consent(env):
    pb = await new_peacebuilder(env, "fund")
    nhri = await org_id(env, "nhri")
    refused = await env.gql(MEASURE, {"c": pb["case"], "o": nhri}, as_=("fund", "focal"))
    payload = refused["data"]["addMeasure"]
    assert payload["measure"] is None
    error = payload["userErrors"][0]
    assert error["field"] == ["input", "ownerOrganisationId"]
    # Says that it is her consent, never which categories or purposes she gave anyone.
    assert "INCIDENT" not in error["message"].upper() and "protection" not in error["message"]
    async with env.runtime.db.transaction() as s:
        denied = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "measure.owner", AccessLogEntry.decision == "deny"))).all()
    assert denied, "the refusal is in the access log"
    # Once she covers the NHRI for this purpose and category, it can own the task and read it.
    await grant(env, pb, as_=("fund", "focal"), to_org="nhri", categories=["INCIDENT_DETAILS"],
                purposes=["PROTECTION"])
    done = await env.gql(MEASURE, {"c": pb["case"], "o": nhri}, as_=("fund", "focal"))
    assert done["data"]["addMeasure"]["userErrors"] == []
    assert done["data"]["addMeasure"]["measure"]["owner"]["slug"] == "nhri"
    seen = await env.gql("query($id: ID!) { case(id: $id) { measures { id description } } }",
                         {"id": pb["case"]}, as_=("nhri", "focal"))
    assert [m["description"] for m in seen["data"]["case"]["measures"]] == [
        "Accompany her to the hearing."]
    # Her own organisation needs no grant to itself beyond the case's consent.
    own = await env.gql(MEASURE, {"c": pb["case"], "o": None}, as_=("fund", "focal"))
    assert own["data"]["addMeasure"]["userErrors"] == []


async def test_a_grant_for_another_purpose_does_not_make_an_owner(env):
    pb = await new_peacebuilder(env, "fund")
    await grant(env, pb, as_=("fund", "focal"), to_org="nhri", categories=["INCIDENT_DETAILS"],
                purposes=["LEGAL_SUPPORT"])
    refused = await env.gql(MEASURE, {"c": pb["case"], "o": await org_id(env, "nhri")},
                            as_=("fund", "focal"))
    assert refused["data"]["addMeasure"]["userErrors"][0]["field"] == [
        "input", "ownerOrganisationId"]


async def test_recipient_reads_the_request_only_while_consent_allows(env):
    pb = await new_peacebuilder(env, "fund")
    given = await grant(env, pb, as_=("fund", "focal"), to_org="nhri",
                        categories=["INCIDENT_DETAILS"], purposes=["LEGAL_SUPPORT"])
    await current_assessment(env, pb["case"], "fund", login=pb["login"])
    made = await env.gql(REFER, {"c": pb["case"], "o": await org_id(env, "nhri")},
                         as_=("fund", "caseworker"))
    referral = made["data"]["referCase"]["referral"]
    assert referral["request"] == "Please find her a lawyer before Friday."
    incoming = await env.gql(INCOMING, as_=("nhri", "focal"), purpose="legal_support")
    mine = [r for r in incoming["data"]["referrals"] if r["id"] == referral["id"]]
    assert mine and mine[0]["request"] == "Please find her a lawyer before Friday."
    done = await env.gql(MOVE, {"id": referral["id"], "a": "accept", "o": None},
                         as_=("nhri", "focal"), purpose="legal_support")
    assert done["data"]["moveReferral"]["userErrors"] == []
    done = await env.gql(MOVE, {"id": referral["id"], "a": "complete",
                                "o": "A lawyer took the case."},
                         as_=("nhri", "focal"), purpose="legal_support")
    assert done["data"]["moveReferral"]["referral"]["outcome"] == "A lawyer took the case."
    sent = await env.gql(OUTGOING, as_=("fund", "focal"))
    ours = [r for r in sent["data"]["referrals"] if r["id"] == referral["id"]]
    assert ours[0]["outcome"] == "A lawyer took the case."
    # Under a purpose her grant does not name, the recipient cannot read the text.
    other = await env.post(INCOMING, as_=("nhri", "focal"), purpose="advocacy")
    assert "lawyer" not in other.text
    # She revokes: the referral may stay on the sender's books, its text is gone for the NHRI.
    her = await env.peacebuilder_token(pb["login"])
    await env.gql(REVOKE, {"g": given["id"]}, token=her, purpose=None)
    after = await env.post(INCOMING, as_=("nhri", "focal"), purpose="legal_support")
    assert "lawyer" not in after.text
    assert all(r["id"] != referral["id"] or r["request"] is None
               for r in after.json()["data"]["referrals"])


CLOSE = """mutation($i: CloseCaseInput!) { closeCase(input: $i) {
  case { id status closedAt closureReason measures { kind dueAt owner { slug } description }
         timeline { kind } }
  confirmationId userErrors { field message code } } }"""
REOPEN = """mutation($i: ReopenCaseInput!) { reopenCase(input: $i) {
  case { status closedAt closureReason timeline { kind } } userErrors { field message code } } }"""
UPDATE = """mutation($i: UpdateCaseInput!) { updateCase(input: $i) {
  case { status } userErrors { field message code } } }"""
HER_NOTICES = "{ me { notices { kind details } } }"


def later(env, days: int) -> str:
    return (env.runtime.clock.now() + timedelta(days=days)).isoformat()


async def opened_with_risk(env, risk: str) -> dict:
    """Her case at `risk`: the level of a joint risk assessment she agreed to (issue 19)."""
    from tests.test_risk import WITH_RISK, assessed

    pb = await new_peacebuilder(env, "fund", categories=WITH_RISK)
    if risk != "MEDIUM":
        await assessed(env, pb, level=risk)
    return pb


async def test_closure_needs_a_reason_and_a_plan_and_she_is_told(env):
    pb = await opened_with_risk(env, "MEDIUM")
    # The old way round the rule is closed.
    bare = await env.gql(UPDATE, {"i": {"id": pb["case"], "status": "CLOSED"}},
                         as_=("fund", "focal"))
    assert bare["data"]["updateCase"]["userErrors"][0]["field"] == ["input", "status"]
    no_plan = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RISK_RESOLVED",
                                          "followUp": []}}, as_=("fund", "focal"))
    assert no_plan["data"]["closeCase"]["userErrors"][0]["field"] == ["input", "followUp"]
    past = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RISK_RESOLVED",
                                       "followUp": [{"kind": "PSYCHOSOCIAL_SUPPORT",
                                                     "dueAt": later(env, -1)}]}},
                         as_=("fund", "focal"))
    assert past["data"]["closeCase"]["userErrors"][0]["field"] == ["input", "followUp", "0", "dueAt"]
    outside = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RISK_RESOLVED",
                                          "followUp": [{"kind": "PSYCHOSOCIAL_SUPPORT",
                                                        "dueAt": later(env, 30),
                                                        "ownerOrganisationId":
                                                            await org_id(env, "embassy")}]}},
                            as_=("fund", "focal"))
    assert outside["data"]["closeCase"]["userErrors"][0]["field"] == [
        "input", "followUp", "0", "ownerOrganisationId"]
    still = await env.gql("query($id: ID!) { case(id: $id) { status measures { id } } }",
                          {"id": pb["case"]}, as_=("fund", "focal"))
    assert still["data"]["case"] == {"status": "OPEN", "measures": []}, "refusals change nothing"

    closed = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RISK_RESOLVED",
                                         "followUp": [{"kind": "PSYCHOSOCIAL_SUPPORT",
                                                       "dueAt": later(env, 30),
                                                       "description": "Call her in a month."}]}},
                           as_=("fund", "focal"))
    payload = closed["data"]["closeCase"]
    assert payload["userErrors"] == [] and payload["confirmationId"] is None
    case = payload["case"]
    assert case["status"] == "CLOSED" and case["closedAt"] and case["closureReason"] == "RISK_RESOLVED"
    assert [(m["kind"], m["owner"]["slug"], m["description"]) for m in case["measures"]] == [
        ("PSYCHOSOCIAL_SUPPORT", "fund", "Call her in a month.")]
    assert "case.closed" in [e["kind"] for e in case["timeline"]]
    her = await env.peacebuilder_token(pb["login"])
    told = await env.gql(HER_NOTICES, token=her, purpose=None)
    kinds = [n["kind"] for n in told["data"]["me"]["notices"]]
    assert "case_closed" in kinds
    again = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "OTHER", "followUp": [
        {"kind": "PSYCHOSOCIAL_SUPPORT", "dueAt": later(env, 3)}]}}, as_=("fund", "focal"))
    assert again["data"]["closeCase"]["userErrors"][0]["code"] == "CONFLICT"

    reopened = await env.gql(REOPEN, {"i": {"caseId": pb["case"], "reason": "NEW_THREAT"}},
                             as_=("fund", "focal"))
    case = reopened["data"]["reopenCase"]["case"]
    assert case["status"] == "OPEN" and case["closedAt"] is None and case["closureReason"] is None
    assert "case.reopened" in [e["kind"] for e in case["timeline"]]
    told = await env.gql(HER_NOTICES, token=her, purpose=None)
    assert "case_reopened" in [n["kind"] for n in told["data"]["me"]["notices"]]
    twice = await env.gql(REOPEN, {"i": {"caseId": pb["case"], "reason": "NEW_THREAT"}},
                          as_=("fund", "focal"))
    assert twice["data"]["reopenCase"]["userErrors"][0]["code"] == "CONFLICT"


async def test_high_risk_closure_needs_a_second_focal_point(env):
    from tests.factories import confirm_by_second_person

    pb = await opened_with_risk(env, "CRITICAL")
    asked = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RELOCATED_SAFELY",
                                        "followUp": [{"kind": "SECURE_COMMUNICATION",
                                                      "dueAt": later(env, 14)}]}},
                          as_=("fund", "focal"))
    payload = asked["data"]["closeCase"]
    assert payload["userErrors"] == [] and payload["confirmationId"]
    assert payload["case"]["status"] == "OPEN", "not closed by one person"
    await confirm_by_second_person(env, "fund", pb["case"], first="focal")
    after = await env.gql("query($id: ID!) { case(id: $id) { status closureReason } }",
                          {"id": pb["case"]}, as_=("fund", "focal"))
    assert after["data"]["case"] == {"status": "CLOSED", "closureReason": "RELOCATED_SAFELY"}


async def test_another_organisation_cannot_close_or_reopen(env):
    pb = await opened_with_risk(env, "LOW")
    await grant(env, pb, as_=("fund", "focal"), to_org="nhri", categories=["INCIDENT_DETAILS"],
                purposes=["PROTECTION"])
    for query, variables in (
            (CLOSE, {"i": {"caseId": pb["case"], "reason": "OTHER", "followUp": [
                {"kind": "ACCOMPANIMENT", "dueAt": later(env, 3)}]}}),
            (REOPEN, {"i": {"caseId": pb["case"], "reason": "NEW_THREAT"}})):
        body = await env.gql(query, variables, as_=("nhri", "focal"))
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_revocation_flags_open_tasks_of_an_owner_she_cut_off(env):
    pb = await new_peacebuilder(env, "fund")
    given = await grant(env, pb, as_=("fund", "focal"), to_org="nhri",
                        categories=["INCIDENT_DETAILS"], purposes=["PROTECTION"])
    done = await env.gql(MEASURE, {"c": pb["case"], "o": await org_id(env, "nhri")},
                         as_=("fund", "focal"))
    measure = done["data"]["addMeasure"]["measure"]["id"]
    her = await env.peacebuilder_token(pb["login"])
    await env.gql(REVOKE, {"g": given["id"]}, token=her, purpose=None)
    case = await env.gql("query($id: ID!) { case(id: $id) { timeline { kind subjectId } } }",
                         {"id": pb["case"]}, as_=("fund", "focal"))
    flagged = [e for e in case["data"]["case"]["timeline"] if e["kind"] == "measure.owner_uncovered"]
    assert len(flagged) == 1
    # The lead's focal points are alerted (read from the store: the shared fixture's inbox
    # holds more than one page of older alerts); IDs only.
    from app.ids import decode
    from tests.test_incidents import inbox_of

    alerts = [i for i in await inbox_of(env, "fund", "focal") if i.kind == "task_owner_uncovered"
              and i.payload.get("measure") == str(decode(measure, "Measure"))]
    assert len(alerts) == 1
    assert set(alerts[0].payload) == {"measure", "case", "owner"}
    # The NHRI no longer sees the case or its task at all.
    gone = await env.post("query($id: ID!) { case(id: $id) { id } }", {"id": pb["case"]},
                          as_=("nhri", "focal"))
    assert gone.json()["data"]["case"] is None
