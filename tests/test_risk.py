"""Issue 19, joint risk assessments, their gates and her protection plan — through GraphQL on
both databases, with the controlled clock:

- the state machine: draft → shared with her → agreed / contested → superseded; the case's
  `riskLevel` is the current assessment's (no longer set by hand);
- agreement by her (her own login) and by her network's focal point for her (recorded as such);
  contest keeps her view beside the organisation's; without account or network, the two-person
  rule with how she was consulted;
- the gates: a referral, a public act and a grant to a working group need a current assessment
  younger than the organisation's maximum age; break-glass is never gated, and that is logged;
- the review falls due on the lead organisation's chain and escalates once across two app
  instances; a new critical incident starts a reassessment;
- consent: every new field is withheld from an organisation her consent does not release
  `risk_assessment` to; her view (`me`) shows her assessments and plan in plain language.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Text, select

from app.clock import FrozenClock
from app.models import Base
from app.runtime import Runtime
from app.tables.audit import AccessLogEntry
from app.tables.categories import RISK_FIELDS
from app.tables.incidents import CaseEvent
from schema import ids
from schema.server import create_app
from tests.conftest import BACKENDS, build_env
from tests.factories import confirm_by_second_person, networked_case
from tests.test_consent import (
    INTAKE_CATEGORIES,
    grant,
    new_peacebuilder,
    org_id,
    wg_id,
)
from tests.test_incidents import REPORT, inbox_of, incident_input

pytestmark = pytest.mark.anyio

WITH_RISK = [*INTAKE_CATEGORIES, "RISK_ASSESSMENT"]
ASSESSMENT = """id status overallLevel reviewAt answeredBy consultedHow supersededById isCurrent
  vulnerabilities capacities reasoning contextNotes herAnalysis herView startedByIncidentId
  threats { id likelihood impact facts pattern objective sourceAsReported feasibility }"""
DRAFT = ("mutation($i: DraftRiskAssessmentInput!) { draftRiskAssessment(input: $i) { assessment { "
         + ASSESSMENT + " } userErrors { field message code } } }")
SHARE = ("mutation($id: ID!) { shareRiskAssessment(input: {id: $id}) { assessment { id status } "
         "userErrors { field message code } } }")
ANSWER = ("mutation($i: AnswerRiskAssessmentInput!) { answerRiskAssessment(input: $i) { "
          "assessment { " + ASSESSMENT + " } userErrors { field message code } } }")
WITHOUT_HER = ("mutation($i: ConfirmRiskAssessmentInput!) { confirmRiskAssessmentWithoutHer("
               "input: $i) { assessment { id status } confirmationId "
               "userErrors { field message code } } }")
CASE = ("query($id: ID!) { case(id: $id) { riskLevel currentRiskAssessment { id overallLevel "
        "herView } riskAssessments { " + ASSESSMENT + " withheld { field } } "
        "measures { id threatId planKind costAmount costCurrency fundingSource coveredFamily "
        "withheld { field category reason } } } }")
UPDATE = """mutation($i: UpdateCaseInput!) { updateCase(input: $i) {
  case { riskLevel } userErrors { field message code } } }"""
ADD_MEASURE = """mutation($i: AddMeasureInput!) { addMeasure(input: $i) {
  measure { id } userErrors { field message code } } }"""
PLAN = """mutation($i: SetMeasurePlanInput!) { setMeasurePlan(input: $i) {
  measure { id threatId planKind costAmount costCurrency fundingSource coveredFamily }
  userErrors { field message code } } }"""
REFER = """mutation($i: ReferCaseInput!) { referCase(input: $i) {
  referral { id } userErrors { field message code } } }"""
GRANT = """mutation($input: GrantConsentInput!) { grantConsent(input: $input) {
  grant { id status } userErrors { field message code } } }"""


@pytest.fixture(scope="module", params=BACKENDS)
async def risk_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2036, 3, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("risk"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


def threat(**extra) -> dict:
    return {"likelihood": "HIGH", "impact": "CRITICAL", "facts": "Messages after the forum.",
            "pattern": "Weekly, rising.", "objective": "Silence her advocacy.",
            "sourceAsReported": "A local militia, she says.", "feasibility": "They know her "
            "office.", **extra}


def draft_input(env, case: str, level: str = "HIGH", days: int = 30, **extra) -> dict:
    return {"i": {"caseId": case, "level": level,
                  "reviewAt": (env.runtime.clock.now() + timedelta(days=days)).isoformat(),
                  "threats": [threat(), threat(likelihood="MEDIUM", impact="HIGH",
                                               facts="Her car was followed.")],
                  "vulnerabilities": "Travels alone.", "capacities": "A strong network.",
                  "reasoning": "Credible and rising.", "contextNotes": "Elections in May.",
                  "herAnalysis": "The militia wants the land report stopped.", **extra}}


async def drafted(env, pb: dict, as_=("fund", "caseworker"), **extra) -> dict:
    body = await env.gql(DRAFT, draft_input(env, pb["case"], **extra), as_=as_)
    assert body["data"]["draftRiskAssessment"]["userErrors"] == [], body
    return body["data"]["draftRiskAssessment"]["assessment"]


async def shared(env, pb: dict, as_=("fund", "caseworker"), **extra) -> dict:
    a = await drafted(env, pb, as_=as_, **extra)
    body = await env.gql(SHARE, {"id": a["id"]}, as_=as_)
    assert body["data"]["shareRiskAssessment"]["userErrors"] == [], body
    assert body["data"]["shareRiskAssessment"]["assessment"]["status"] == "SHARED_WITH_HER"
    return a


async def answer(env, pb: dict, assessment: str, *, agree: bool = True, **extra) -> dict:
    her = await env.peacebuilder_token(pb["login"])
    return await env.gql(ANSWER, {"i": {"id": assessment, "agree": agree, **extra}}, token=her,
                         purpose=None)


async def assessed(env, pb: dict, level: str = "HIGH", **extra) -> dict:
    """A current assessment of her case at `level`, agreed by her with her own login."""
    a = await shared(env, pb, level=level, **extra)
    body = await answer(env, pb, a["id"])
    assert body["data"]["answerRiskAssessment"]["userErrors"] == [], body
    return body["data"]["answerRiskAssessment"]["assessment"]


async def case_of(env, pb: dict, as_=("fund", "caseworker")) -> dict:
    body = await env.gql(CASE, {"id": pb["case"]}, as_=as_)
    assert "errors" not in body, body
    return body["data"]["case"]


async def at_risk(env, lead: str = "fund") -> dict:
    return await new_peacebuilder(env, lead, categories=WITH_RISK)


def raw(global_id: str, type_name: str) -> uuid.UUID:
    return ids.decode(global_id, type_name)


async def log_actions(env, action: str) -> list[AccessLogEntry]:
    async with env.runtime.db.transaction() as s:
        return list(await s.scalars(select(AccessLogEntry).where(AccessLogEntry.action == action)))


# --- the state machine ----------------------------------------------------------------------

async def test_agreed_by_her_then_contested_supersedes_and_sets_the_level(risk_env):
    env = risk_env
    pb = await at_risk(env)
    a = await drafted(env, pb)
    assert a["status"] == "DRAFT" and a["overallLevel"] == "HIGH" and not a["isCurrent"]
    assert [t["likelihood"] for t in a["threats"]] == ["HIGH", "MEDIUM"]
    assert a["threats"][0]["sourceAsReported"] == "A local militia, she says."
    assert a["herAnalysis"] == "The militia wants the land report stopped."
    # Not hers to answer yet, and nobody's but hers (or her network's) afterwards.
    early = await answer(env, pb, a["id"])
    assert early["data"]["answerRiskAssessment"]["userErrors"][0]["code"] == "CONFLICT"
    assert (await case_of(env, pb))["riskLevel"] == "MEDIUM"
    await env.gql(SHARE, {"id": a["id"]}, as_=("fund", "caseworker"))
    staff = await env.gql(ANSWER, {"i": {"id": a["id"], "agree": True}}, as_=("fund", "focal"))
    assert staff["data"] is None or staff["data"]["answerRiskAssessment"]["assessment"] is None
    # She agrees with her own login: current, the case's level follows.
    agreed = await answer(env, pb, a["id"], herAnalysis="They want the report stopped.")
    got = agreed["data"]["answerRiskAssessment"]["assessment"]
    assert (got["status"], got["answeredBy"], got["isCurrent"]) == ("AGREED", "HERSELF", True)
    assert got["herAnalysis"] == "They want the report stopped."
    case = await case_of(env, pb)
    assert case["riskLevel"] == "HIGH" and case["currentRiskAssessment"]["id"] == a["id"]
    # A reassessment she contests: current too, her view kept beside theirs; the first is
    # superseded by it.
    b = await shared(env, pb, level="CRITICAL")
    missing_view = await answer(env, pb, b["id"], agree=False)
    assert missing_view["data"]["answerRiskAssessment"]["userErrors"][0]["field"] == [
        "input", "herView"]
    contested = await answer(env, pb, b["id"], agree=False,
                             herView="It is high, not critical: I have moved office.")
    got = contested["data"]["answerRiskAssessment"]["assessment"]
    assert got["status"] == "CONTESTED" and got["reasoning"] == "Credible and rising."
    assert got["herView"] == "It is high, not critical: I have moved office."
    case = await case_of(env, pb)
    assert case["riskLevel"] == "CRITICAL"
    assert case["currentRiskAssessment"]["id"] == b["id"]
    statuses = {x["id"]: (x["status"], x["supersededById"]) for x in case["riskAssessments"]}
    assert statuses == {a["id"]: ("SUPERSEDED", b["id"]), b["id"]: ("CONTESTED", None)}
    her = await env.peacebuilder_token(pb["login"])
    notices = await env.gql("{ me { notices { kind } } }", token=her, purpose=None)
    kinds = [n["kind"] for n in notices["data"]["me"]["notices"]]
    assert kinds.count("risk_assessment_shared") == 2 and kinds.count("risk_assessment_current") == 2
    assert await log_actions(env, "risk_assessment.contested")


async def test_risk_level_is_no_longer_set_by_hand(risk_env):
    env = risk_env
    pb = await at_risk(env)
    body = await env.gql(UPDATE, {"i": {"id": pb["case"], "riskLevel": "LOW"}},
                         as_=("fund", "focal"))
    errors = body["data"]["updateCase"]["userErrors"]
    assert errors and errors[0]["field"] == ["input", "riskLevel"]
    assert (await case_of(env, pb))["riskLevel"] == "MEDIUM"
    # The review date is mandatory and in the future.
    past = draft_input(env, pb["case"], days=-1)
    refused = await env.gql(DRAFT, past, as_=("fund", "caseworker"))
    assert refused["data"]["draftRiskAssessment"]["userErrors"][0]["field"] == ["input",
                                                                                 "reviewAt"]


async def test_her_networks_focal_point_answers_for_her_recorded_as_such(risk_env):
    env = risk_env
    pb = await networked_case(env, WITH_RISK)  # unpc leads, wpn is her confirmed network
    a = await shared(env, pb, as_=("unpc", "caseworker"))
    # Without account or network the two-person path would apply; she has a network.
    refused = await env.gql(WITHOUT_HER, {"i": {"id": a["id"], "consultedHow": "IN_PERSON"}},
                            as_=("unpc", "focal"))
    assert refused["data"]["confirmRiskAssessmentWithoutHer"]["userErrors"]
    body = await env.gql(ANSWER, {"i": {"id": a["id"], "agree": False,
                                        "herView": "She sees the militia as the main threat."}},
                         as_=("wpn", "focal"))
    got = body["data"]["answerRiskAssessment"]["assessment"]
    assert (got["status"], got["answeredBy"]) == ("CONTESTED", "NETWORK_FOCAL_POINT"), body
    assert (await case_of(env, pb, as_=("unpc", "caseworker")))["riskLevel"] == "HIGH"


async def test_without_account_or_network_two_people_confirm_with_how_she_was_consulted(
        risk_env):
    env = risk_env
    pb = await new_peacebuilder(env, "fund", account=False,
                                categories=[c for c in WITH_RISK if c != "IDENTITY"])
    a = await shared(env, pb)
    body = await env.gql(WITHOUT_HER, {"i": {"id": a["id"], "consultedHow": "IN_PERSON"}},
                         as_=("fund", "focal"))
    payload = body["data"]["confirmRiskAssessmentWithoutHer"]
    assert payload["userErrors"] == [] and payload["confirmationId"], body
    assert payload["assessment"]["status"] == "SHARED_WITH_HER"  # not current until confirmed
    await confirm_by_second_person(env, "fund", a["id"], first="focal")
    case = await case_of(env, pb)
    got = case["currentRiskAssessment"]
    assert got["id"] == a["id"] and case["riskLevel"] == "HIGH"
    listed = next(x for x in case["riskAssessments"] if x["id"] == a["id"])
    assert (listed["answeredBy"], listed["consultedHow"]) == ("TWO_PERSON", "IN_PERSON")


# --- gates ------------------------------------------------------------------------------------

async def test_gates_need_a_current_recent_assessment_and_break_glass_is_never_gated(risk_env):
    env = risk_env
    pb = await at_risk(env)
    her = await env.peacebuilder_token(pb["login"])
    granted = await env.gql(GRANT, {"input": {
        "peacebuilderId": pb["id"], "recipientOrganisationId": await org_id(env, "unpc"),
        "categories": ["INCIDENT_DETAILS"], "purposes": ["PROTECTION"]}}, token=her,
        purpose=None)
    assert granted["data"]["grantConsent"]["userErrors"] == [], granted
    refer = {"i": {"caseId": pb["case"], "toOrganisationId": await org_id(env, "unpc"),
                   "purpose": "PROTECTION"}}
    body = await env.gql(REFER, refer, as_=("fund", "caseworker"))
    assert body["data"]["referCase"]["userErrors"][0]["code"] == "RISK_ASSESSMENT_REQUIRED", body
    approved = await env.gql("""mutation($o: ID!) { recordApproval(act: "public_statement",
        organisationId: $o, description: "A statement of solidarity.") { approval { id } } }""",
                             {"o": await org_id(env, "fund")}, token=her, purpose=None)
    approval = approved["data"]["recordApproval"]["approval"]["id"]
    public = await env.gql(ADD_MEASURE, {"i": {"caseId": pb["case"], "kind": "PUBLIC_STATEMENT",
                                               "approvalId": approval}},
                           as_=("fund", "caseworker"))
    assert public["data"]["addMeasure"]["userErrors"][0]["code"] == "RISK_ASSESSMENT_REQUIRED"
    assert await log_actions(env, "risk_gate.referral")
    await assessed(env, pb)
    body = await env.gql(REFER, refer, as_=("fund", "caseworker"))
    assert body["data"]["referCase"]["userErrors"] == [], body
    # Older than the organisation's maximum age (default 90 days): gated again.
    env.clock.advance(days=91)
    try:
        again = await env.gql(REFER, refer, as_=("fund", "caseworker"))
        assert again["data"]["referCase"]["userErrors"][0]["code"] == "RISK_ASSESSMENT_REQUIRED"
        # Break-glass (emergency response) is never gated; its passing is logged.
        opened = await env.gql("""mutation($id: ID!) { openBreakGlass(input: {peacebuilderId:
            $id, reason: "Abducted this morning; her family asks for help now.", hours: 1}) {
            breakGlass { id } userErrors { code message } } }""", {"id": pb["id"]},
                               as_=("fund", "focal"), purpose="emergency_response")
        assert opened["data"]["openBreakGlass"]["userErrors"] == [], opened
        urgent = await env.gql(REFER, refer, as_=("fund", "focal"), purpose="emergency_response")
        assert urgent["data"]["referCase"]["userErrors"] == [], urgent
        assert await log_actions(env, "risk_gate.break_glass")
    finally:
        env.clock.advance(days=-91)


async def test_a_grant_to_a_working_group_by_her_network_is_gated_hers_is_not(risk_env):
    env = risk_env
    pb = await at_risk(env)
    group = await wg_id(env)
    # She herself is never stopped from sharing.
    await grant(env, pb, as_=("fund", "focal"), to_wg=group)
    # Staff and networks widening who knows: the gate (staff cannot grant to a group at all,
    # so the refusal is the consent rules' or the gate's — never a grant).
    body = await env.gql(GRANT, {"input": {
        "peacebuilderId": pb["id"], "recipientWorkingGroupId": group,
        "categories": ["INCIDENT_DETAILS"], "purposes": ["ADVOCACY"]}}, as_=("fund", "focal"))
    assert body["data"]["grantConsent"]["grant"] is None


# --- review and reassessment --------------------------------------------------------------------

async def test_review_due_escalates_once_across_two_app_instances(risk_env):
    env = risk_env
    pb = await at_risk(env)
    a = await assessed(env, pb, days=10)
    review_at = datetime.fromisoformat(a["reviewAt"])
    key = str(raw(a["id"], "RiskAssessment"))
    other_runtime = Runtime.create(env.settings, clock=env.clock)
    other_app = create_app(other_runtime)
    lifespan = other_app.router.lifespan_context(other_app)
    await lifespan.__aenter__()
    start = env.clock.now()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app),
                                     base_url="http://other") as other:
            assert (await other.get("/readyz")).status_code == 200
        schedulers = [env.runtime.extras["scheduler"], other_runtime.extras["scheduler"]]
        env.clock.set(review_at - timedelta(minutes=1))
        await asyncio.gather(*(s.tick() for s in schedulers))
        await asyncio.gather(*(s.tick() for s in schedulers))
        mine = [i for i in await inbox_of(env, "fund", "focal")
                if i.payload.get("risk_assessment") == key]
        # The review is the lead's task a week ahead (once, whichever instance claimed it); it
        # escalates only once its date has passed.
        assert [i.kind for i in mine] == ["risk_review_due"]
        env.clock.set(review_at + timedelta(minutes=1))
        await asyncio.gather(*(s.tick() for s in schedulers))
        await asyncio.gather(*(s.tick() for s in schedulers))
        due = [i for i in await inbox_of(env, "fund", "focal")
               if i.kind == "escalation" and i.payload.get("risk_assessment") == key]
        assert [i.payload["level"] for i in due] == [1]
        env.clock.advance(minutes=61)
        await asyncio.gather(*(s.tick() for s in schedulers))
        async with env.runtime.db.transaction() as s:
            events = list(await s.scalars(select(CaseEvent).where(
                CaseEvent.subject_id == uuid.UUID(key),
                CaseEvent.kind == "risk_review.escalated")))
        assert sorted(e.details["step"] for e in events) == [1, 2]
        # A newer assessment becomes current: the old review is no longer owed.
        await assessed(env, pb, days=30)
        env.clock.advance(hours=5)
        await asyncio.gather(*(s.tick() for s in schedulers))
        async with env.runtime.db.transaction() as s:
            after = list(await s.scalars(select(CaseEvent).where(
                CaseEvent.subject_id == uuid.UUID(key),
                CaseEvent.kind == "risk_review.escalated")))
        assert len(after) == 2
    finally:
        await lifespan.__aexit__(None, None, None)
        await other_runtime.close()
        env.clock.set(start)


async def test_a_critical_incident_starts_a_reassessment(risk_env):
    env = risk_env
    pb = await at_risk(env)
    await assessed(env, pb, level="MEDIUM")
    body = await env.gql(REPORT, incident_input(pb["case"], "CRITICAL"),
                         as_=("fund", "caseworker"))
    incident = body["data"]["reportIncident"]["incident"]["id"]
    case = await case_of(env, pb)
    drafts = [x for x in case["riskAssessments"] if x["status"] == "DRAFT"]
    assert len(drafts) == 1 and drafts[0]["startedByIncidentId"] == incident
    told = [i for i in await inbox_of(env, "fund", "focal") if i.kind == "risk_reassessment_due"]
    assert str(raw(drafts[0]["id"], "RiskAssessment")) in {i.payload["risk_assessment"] for i in told}
    # Filling that draft is the reassessment (no second draft).
    filled = await drafted(env, pb, level="CRITICAL")
    assert filled["id"] == drafts[0]["id"] and len(filled["threats"]) == 2


# --- the plan and consent on every new field ------------------------------------------------------

async def test_plan_fields_are_withheld_without_risk_assessment_consent(risk_env):
    env = risk_env
    pb = await at_risk(env)
    a = await assessed(env, pb)
    her = await env.peacebuilder_token(pb["login"])
    # unpc: incident details only — it sees the measure, not her plan or assessments.
    granted = await env.gql(GRANT, {"input": {
        "peacebuilderId": pb["id"], "recipientOrganisationId": await org_id(env, "unpc"),
        "categories": ["INCIDENT_DETAILS"], "purposes": ["PROTECTION"]}}, token=her,
        purpose=None)
    assert granted["data"]["grantConsent"]["userErrors"] == []
    added = await env.gql(ADD_MEASURE, {"i": {"caseId": pb["case"], "kind": "SECURE_TRANSPORT",
                                              "dueAt": (env.clock.now() + timedelta(days=3))
                                              .isoformat()}}, as_=("fund", "caseworker"))
    measure = added["data"]["addMeasure"]["measure"]["id"]
    planned = await env.gql(PLAN, {"i": {
        "measureId": measure, "threatId": a["threats"][0]["id"], "planKind": "PREVENTIVE_PROTOCOL",
        "costAmount": "1200.50", "costCurrency": "KES", "fundingSource": "Fund emergency line",
        "coveredFamily": ["her daughter", "her mother"]}}, as_=("fund", "caseworker"))
    got = planned["data"]["setMeasurePlan"]["measure"]
    assert got == {"id": measure, "threatId": a["threats"][0]["id"],
                   "planKind": "PREVENTIVE_PROTOCOL", "costAmount": "1200.50",
                   "costCurrency": "KES", "fundingSource": "Fund emergency line",
                   "coveredFamily": ["her daughter", "her mother"]}, planned
    bad = await env.gql(PLAN, {"i": {"measureId": measure, "costAmount": "12.345",
                                     "costCurrency": "KES"}}, as_=("fund", "caseworker"))
    assert bad["data"]["setMeasurePlan"]["userErrors"][0]["field"] == ["input", "costAmount"]
    lead = await case_of(env, pb)
    assert lead["currentRiskAssessment"]["id"] == a["id"]
    assert next(m for m in lead["measures"] if m["id"] == measure)["withheld"] == []
    other = await env.post(CASE, {"id": pb["case"]}, as_=("unpc", "focal"))
    body = other.json()
    case = body["data"]["case"]
    assert case["riskAssessments"] == [] and case["currentRiskAssessment"] is None
    m = next(x for x in case["measures"] if x["id"] == measure)
    new_fields = {"threatId", "planKind", "costAmount", "costCurrency", "fundingSource",
                  "coveredFamily"}
    assert all(m[f] is None for f in new_fields)
    assert {(w["field"], w["category"], w["reason"]) for w in m["withheld"]} == {
        (f, "RISK_ASSESSMENT", "CONSENT_DOES_NOT_COVER") for f in new_fields}
    redacted = {tuple(r["path"][-1:]) for r in body["extensions"]["redacted"]}
    assert {(f,) for f in new_fields} <= redacted
    # An organisation whose consent does not cover risk assessments cannot write one either.
    plain_pb = await new_peacebuilder(
        env, "fund", categories=[c for c in INTAKE_CATEGORIES if c != "RISK_ASSESSMENT"])
    refused = await env.gql(DRAFT, draft_input(env, plain_pb["case"]), as_=("fund", "caseworker"))
    assert refused["data"]["draftRiskAssessment"]["userErrors"][0]["field"] == ["input",
                                                                                 "caseId"]


async def test_her_view_shows_her_assessments_and_plan_in_plain_language(risk_env):
    env = risk_env
    pb = await at_risk(env)
    a = await assessed(env, pb)
    added = await env.gql(ADD_MEASURE, {"i": {"caseId": pb["case"], "kind": "ACCOMPANIMENT"}},
                          as_=("fund", "caseworker"))
    measure = added["data"]["addMeasure"]["measure"]["id"]
    await env.gql(PLAN, {"i": {"measureId": measure, "threatId": a["threats"][1]["id"],
                               "planKind": "DAY_TO_DAY"}}, as_=("fund", "caseworker"))
    await shared(env, pb, level="CRITICAL")
    her = await env.peacebuilder_token(pb["login"])
    body = await env.gql("""query($l: String) { me { riskOverview(language: $l) { caseId
        language lines } cases { riskAssessments { status herAnalysis threats { facts } } } } }""",
                         {"l": "fr"}, token=her, purpose=None)
    assert "errors" not in body, body
    mine = next(c for c in body["data"]["me"]["riskOverview"] if c["caseId"] == pb["case"])
    assert mine["language"] == "fr"
    text = " ".join(mine["lines"])
    assert "risque élevé" in text and "attend votre réponse" in text
    assert "contre la menace 2" in text and "au quotidien" in text
    assessments = [x for c in body["data"]["me"]["cases"] for x in c["riskAssessments"]]
    assert {x["status"] for x in assessments} >= {"AGREED", "SHARED_WITH_HER"}
    assert all(x["herAnalysis"] for x in assessments)
    assert await log_actions(env, "me.risk_overview")


def test_every_free_text_risk_column_has_a_category():
    for table, fields in RISK_FIELDS.items():
        if table == "measures":
            assert set(fields) <= {c.name for c in Base.metadata.tables[table].columns}
            continue
        text_columns = {c.name for c in Base.metadata.tables[table].columns
                        if isinstance(c.type, Text)}
        assert text_columns == set(fields), table


async def test_her_own_critical_report_starts_a_reassessment(risk_env):
    env = risk_env
    pb = await at_risk(env)
    her = await env.peacebuilder_token(pb["login"])
    body = await env.gql(REPORT, incident_input(pb["case"], "HIGH"), token=her, purpose=None)
    assert body["data"]["reportIncident"]["incident"], body
    drafts = [x for x in (await case_of(env, pb))["riskAssessments"] if x["status"] == "DRAFT"]
    assert [d["startedByIncidentId"] for d in drafts] == [
        body["data"]["reportIncident"]["incident"]["id"]]
    # A low one does not.
    other = await at_risk(env)
    await env.gql(REPORT, incident_input(other["case"], "LOW"), token=await
                  env.peacebuilder_token(other["login"]), purpose=None)
    assert (await case_of(env, other))["riskAssessments"] == []


async def test_an_organisations_own_maximum_age(risk_env, tmp_path):
    from app.access.principal import SYSTEM
    from app.runtime import context_for
    from app.tenants import schema as tenant_schema
    from app.tenants import service as tenant_service

    env = risk_env
    slug = f"risk{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{slug}.yaml").write_text(f"""slug: {slug}
name: Risk test organisation
kind: peacebuilders_network
country: "KE"
users:
  - {{username: admin, name: Administrator, roles: [org_admin]}}
  - {{username: focal, name: Focal point, roles: [focal_point]}}
  - {{username: focal2, name: Second focal point, roles: [focal_point]}}
  - {{username: caseworker, name: Case worker, roles: [caseworker]}}
risk_assessment_max_age_days: 10
""")
    async with env.runtime.db.transaction() as session:
        ctx = context_for(env.runtime, session, SYSTEM, request_id="test-tenants")
        applied = await tenant_service.apply(ctx, tenant_schema.load_dir(tmp_path))
    assert f"organisation {slug}: maximum age of a risk assessment set" in applied.changes
    pb = await at_risk(env, slug)
    her = await env.peacebuilder_token(pb["login"])
    await env.gql(GRANT, {"input": {
        "peacebuilderId": pb["id"], "recipientOrganisationId": await org_id(env, "unpc"),
        "categories": ["INCIDENT_DETAILS"], "purposes": ["PROTECTION"]}}, token=her,
        purpose=None)
    await assessed(env, pb, as_=(slug, "caseworker"))
    refer = {"i": {"caseId": pb["case"], "toOrganisationId": await org_id(env, "unpc"),
                   "purpose": "PROTECTION"}}
    start = env.clock.now()
    env.clock.advance(days=11)
    try:
        late = await env.gql(REFER, refer, as_=(slug, "caseworker"))
        assert late["data"]["referCase"]["userErrors"][0]["code"] == "RISK_ASSESSMENT_REQUIRED"
    finally:
        env.clock.set(start)
    ok = await env.gql(REFER, refer, as_=(slug, "caseworker"))
    assert ok["data"]["referCase"]["userErrors"] == [], ok
