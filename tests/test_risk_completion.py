"""Issue 19, what its first build left open — through GraphQL on both databases, with the
controlled clock:

- resolving a missed check-in and ending a schedule silence the lead's alerts: staff (and her
  network's focal point) need a recent second factor, she herself does not;
- a measure not done says why (a reason code, kept on the measure);
- her plain-language risk and safety texts in all five languages;
- consultation follow-ups are tasks of their owners: an overdue one escalates;
- her data copy holds her risk and safety records.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.clock import FrozenClock
from app.scheduler import run_due
from app.tables.audit import AccessLogEntry
from schema import ids
from tests.conftest import BACKENDS, build_env
from tests.test_checkins import AGREE, END, RESOLVE
from tests.test_consent import INTAKE_CATEGORIES, new_peacebuilder, org_id
from tests.test_mfa import configured, token_as

pytestmark = pytest.mark.anyio
FOCAL, CASEWORKER = ("fund", "focal"), ("fund", "caseworker")
CHECK_INS = """query($id: ID!) { case(id: $id) { checkIns { id status } } }"""


@pytest.fixture(scope="module", params=BACKENDS)
async def done_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2038, 3, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("risk_done"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def stale(env, org: str, user: str) -> str:
    """A token of a person whose second factor is two minutes old (the step-up window is set to
    one minute around its use)."""
    return await token_as(env, org, user, acr="mfa", age=120)


def codes(body: dict, name: str) -> list[str]:
    """A refusal's code (a top-level error) or the userErrors' codes."""
    if "errors" in body:
        return [e["extensions"]["code"] for e in body["errors"]]
    return [e["code"] for e in body["data"][name]["userErrors"]]


async def denials(env, action: str) -> list[AccessLogEntry]:
    async with env.runtime.db.transaction() as s:
        return list(await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == action, AccessLogEntry.decision == "deny")))


async def schedule_for(env, pb: dict, minutes: int = 60) -> dict:
    body = await env.gql(AGREE, {"i": {
        "caseId": pb["case"], "intervalMinutes": minutes, "channel": "PHONE_CALL",
        "agreedVia": "IN_PERSON", "missedAction": "CALL_HER"}}, as_=CASEWORKER)
    assert body["data"]["agreeCheckInSchedule"]["userErrors"] == [], body
    return body["data"]["agreeCheckInSchedule"]["schedule"]


# --- step-up on what silences her alerts ------------------------------------------------------

async def test_resolving_a_missed_check_in_needs_a_recent_second_factor(done_env):
    env = done_env
    pb = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    await schedule_for(env, pb)
    env.clock.advance(minutes=61)
    await run_due(env.runtime.db, env.clock)
    case = (await env.gql(CHECK_INS, {"id": pb["case"]}, as_=FOCAL))["data"]["case"]
    missed = next(p for p in case["checkIns"] if p["status"] == "MISSED")
    variables = {"i": {"checkInId": missed["id"], "resolution": "REACHED_SAFE"}}

    with configured(env, step_up_seconds=60):
        weak = await env.gql(RESOLVE, variables, token=await stale(env, *FOCAL))
    assert codes(weak, "resolveMissedCheckIn") == ["STEP_UP_REQUIRED"]
    assert any(d.target_id == str(ids.decode(pb["case"], "Case"))
               for d in await denials(env, "check_in.resolve"))
    still = (await env.gql(CHECK_INS, {"id": pb["case"]}, as_=FOCAL))["data"]["case"]
    assert [p["status"] for p in still["checkIns"]] == ["MISSED"], "nothing silenced"

    strong = await env.gql(RESOLVE, variables, as_=FOCAL)
    assert codes(strong, "resolveMissedCheckIn") == []
    assert strong["data"]["resolveMissedCheckIn"]["checkIn"]["status"] == "RESOLVED"


async def test_ending_a_schedule_needs_a_second_factor_from_staff_not_from_her(done_env):
    env = done_env
    pb = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    schedule = await schedule_for(env, pb)
    variables = {"i": {"scheduleId": schedule["id"]}}
    with configured(env, step_up_seconds=60):
        weak = await env.gql(END, variables, token=await stale(env, *CASEWORKER))
    assert codes(weak, "endCheckInSchedule") == ["STEP_UP_REQUIRED"]
    assert await denials(env, "check_in_schedule.end")

    # She herself ends it: her own sign-in is enough.
    her = await env.peacebuilder_token(pb["login"])
    ended = await env.gql(END, variables, token=her, purpose=None)
    assert codes(ended, "endCheckInSchedule") == []
    assert ended["data"]["endCheckInSchedule"]["schedule"]["status"] == "ENDED"


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def _json(value: str) -> dict:
    return json.loads(value)


def _soon(env, days: int) -> str:
    return (env.clock.now() + timedelta(days=days)).isoformat()


# --- a measure not done says why ----------------------------------------------------------------

ADD = """mutation($i: AddMeasureInput!) { addMeasure(input: $i) {
  measure { id } userErrors { field message code } } }"""
STATUS = """mutation($i: SetMeasureStatusInput!) { setMeasureStatus(input: $i) {
  measure { id status notDoneReason } userErrors { field message code } } }"""


async def test_a_measure_not_done_keeps_its_reason_and_done_or_not_done_is_final(done_env):
    env = done_env
    pb = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    added = await env.gql(ADD, {"i": {"caseId": pb["case"], "kind": "SECURE_TRANSPORT"}},
                          as_=FOCAL)
    measure = added["data"]["addMeasure"]["measure"]["id"]
    moving = await env.gql(STATUS, {"i": {"measureId": measure, "status": "in_progress"}},
                           as_=FOCAL)
    assert "errors" not in moving, moving
    assert moving["data"]["setMeasureStatus"]["measure"] == {
        "id": measure, "status": "in_progress", "notDoneReason": None}
    # Not done without a reason: refused, nothing changes.
    bare = await env.gql(STATUS, {"i": {"measureId": measure, "status": "cancelled"}}, as_=FOCAL)
    [error] = bare["data"]["setMeasureStatus"]["userErrors"]
    assert error["field"] == ["input", "reason"] and bare["data"]["setMeasureStatus"][
        "measure"] is None
    dropped = await env.gql(STATUS, {"i": {"measureId": measure, "status": "cancelled",
                                           "reason": "she_declined"}}, as_=FOCAL)
    assert dropped["data"]["setMeasureStatus"]["measure"] == {
        "id": measure, "status": "cancelled", "notDoneReason": "she_declined"}
    # Final: it is not quietly re-planned (a new measure is added instead).
    back = await env.gql(STATUS, {"i": {"measureId": measure, "status": "planned"}}, as_=FOCAL)
    assert [e["code"] for e in back["data"]["setMeasureStatus"]["userErrors"]] == ["CONFLICT"]


# --- her view in her language --------------------------------------------------------------------

LANGUAGES = ("en", "fr", "es", "ar", "sw")
OVERVIEWS = """query($l: String) { me {
  riskOverview(language: $l) { caseId language lines }
  safetyOverview(language: $l) { caseId language lines } } }"""


def test_every_plain_text_exists_in_the_five_languages():
    from app.checkins import plain as safety_plain
    from app.peacebuilders import plain as her_plain
    from app.peacebuilders.notice_text import TITLES
    from app.risk import plain as risk_plain

    for table in (risk_plain.T, safety_plain.T, safety_plain.WORDS, her_plain.WORDS, TITLES):
        for lang in LANGUAGES:
            assert set(table[lang]) == set(table["en"]), (lang, set(table["en"]) ^ set(
                table[lang]))


async def test_her_risk_and_safety_overviews_speak_each_of_her_five_languages(done_env):
    from tests.test_risk import ADD_MEASURE, PLAN, assessed, shared

    env = done_env
    pb = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    a = await assessed(env, pb)
    added = await env.gql(ADD_MEASURE, {"i": {"caseId": pb["case"], "kind": "ACCOMPANIMENT"}},
                          as_=CASEWORKER)
    measure = added["data"]["addMeasure"]["measure"]["id"]
    await env.gql(PLAN, {"i": {"measureId": measure, "threatId": a["threats"][0]["id"],
                               "planKind": "PREVENTIVE_PROTOCOL"}}, as_=CASEWORKER)
    await shared(env, pb, level="CRITICAL")
    await schedule_for(env, pb, minutes=24 * 60)
    recorded = await env.gql(CONSULT, {"i": {
        "caseId": pb["case"], "heldAt": env.clock.now().isoformat(), "consulted": "HER",
        "followUps": [{"action": "Qx-follow: a new route", "ownerOrganisationId":
                       await org_id(env, "fund"),
                       "dueAt": (env.clock.now() + timedelta(days=5)).isoformat()}]}},
        as_=CASEWORKER)
    assert recorded["data"]["recordConsultation"]["userErrors"] == [], recorded
    env.clock.advance(minutes=24 * 60 + 1)
    await run_due(env.runtime.db, env.clock)  # one missed: its line says what they will do
    her = await env.peacebuilder_token(pb["login"])
    seen: dict[str, tuple[list[str], list[str]]] = {}
    for lang in LANGUAGES:
        body = await env.gql(OVERVIEWS, {"l": lang}, token=her, purpose=None)
        assert "errors" not in body, body
        risk = next(c for c in body["data"]["me"]["riskOverview"] if c["caseId"] == pb["case"])
        safety = next(c for c in body["data"]["me"]["safetyOverview"]
                      if c["caseId"] == pb["case"])
        assert risk["language"] == safety["language"] == lang
        seen[lang] = (risk["lines"], safety["lines"])
    english = seen["en"]
    # Risk: in force, waiting for her, the plan; safety: schedule, missed, consultation and its
    # follow-up (who, by when — never its text).
    assert len(english[0]) == 3 and len(english[1]) == 4, english
    assert english[1][3].startswith("Follow-up agreed with you") and "Qx" not in english[1][3]
    for lang in LANGUAGES[1:]:
        for mine, theirs in zip(seen[lang], english, strict=True):
            assert len(mine) == len(theirs)
            # Every sentence in her language, none left in English.
            assert not set(mine) & set(theirs), (lang, mine)
    assert "مرتفع" in " ".join(seen["ar"][0]) and "ya juu" in " ".join(seen["sw"][0])
    # The plan's measure is named in her language too (accompaniment).
    assert "المرافقة" in seen["ar"][0][-1] and "Kusindikizwa" in seen["sw"][0][-1]


# --- consultation follow-ups are their owners' tasks ---------------------------------------------

CONSULT = """mutation($i: RecordConsultationInput!) { recordConsultation(input: $i) {
  consultation { id followUps { action ownerOrganisationId dueAt taskId } }
  userErrors { field message code } } }"""
TASKS = """query($id: ID!) { case(id: $id) { consultationFollowUps { id consultationId position
  ownerOrganisationId ownerPersonId dueAt status doneAt } } }"""
COMPLETE = """mutation($i: CompleteConsultationFollowUpInput!) {
  completeConsultationFollowUp(input: $i) { followUp { id status doneAt }
  userErrors { field message code } } }"""


async def test_an_overdue_consultation_follow_up_escalates_to_its_named_owner_until_done(done_env):
    from app.tables.incidents import CaseEvent
    from tests.test_consent import grant
    from tests.test_descriptions import user_id
    from tests.test_incidents import inbox_of

    env = done_env
    pb = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    fund, focal = await org_id(env, "fund"), await user_id(env, "fund", "focal")
    due = env.clock.now() + timedelta(days=2)
    body = await env.gql(CONSULT, {"i": {
        "caseId": pb["case"], "heldAt": env.clock.now().isoformat(), "consulted": "HER",
        "topics": "Qx-topics", "followUps": [
            {"action": "Qx-follow: find a safe house.", "ownerOrganisationId": fund,
             "ownerUserId": focal, "dueAt": due.isoformat()},
            {"action": "Qx-follow: no date.", "ownerOrganisationId": fund}]}}, as_=CASEWORKER)
    assert "errors" not in body, body
    assert body["data"]["recordConsultation"]["userErrors"] == [], body
    items = body["data"]["recordConsultation"]["consultation"]["followUps"]
    assert all(i["taskId"] for i in items)
    case = (await env.gql(TASKS, {"id": pb["case"]}, as_=FOCAL))["data"]["case"]
    tasks = case["consultationFollowUps"]
    assert [t["id"] for t in tasks] == [i["taskId"] for i in items]
    first = tasks[0]
    assert (first["position"], first["ownerOrganisationId"], first["ownerPersonId"],
            first["status"]) == (0, fund, focal, "OPEN")
    assert datetime.fromisoformat(first["dueAt"]) == due

    # Another organisation her consent does not release risk_assessment to: nothing listed.
    await grant(env, pb, as_=FOCAL, to_org="mofa", categories=("INCIDENT_DETAILS",))
    other = await env.gql(TASKS, {"id": pb["case"]}, as_=("mofa", "focal"))
    assert "errors" not in other, other
    assert other["data"]["case"]["consultationFollowUps"] == []

    # Past its due date and still open: the owner's chain, her named person first, once.
    env.clock.set(due + timedelta(minutes=1))
    await run_due(env.runtime.db, env.clock)
    await run_due(env.runtime.db, env.clock)
    task = ids.decode(first["id"], "ConsultationFollowUpTask")
    async with env.runtime.db.transaction() as s:
        escalated = list(await s.scalars(select(CaseEvent).where(
            CaseEvent.subject_id == task, CaseEvent.kind == "follow_up.escalated")))
    assert len(escalated) == 1
    alerts = [i for i in await inbox_of(env, *FOCAL)
              if (i.payload or {}).get("follow_up") == str(task)]
    assert len(alerts) == 1 and "Qx-" not in json.dumps(alerts[0].payload)

    # Done: the escalation stops; another organisation cannot mark it done.
    refused = await env.gql(COMPLETE, {"i": {"followUpId": first["id"]}},
                            as_=("mofa", "focal"))
    assert codes(refused, "completeConsultationFollowUp") == ["NOT_FOUND"]
    done = await env.gql(COMPLETE, {"i": {"followUpId": first["id"]}}, as_=FOCAL)
    assert done["data"]["completeConsultationFollowUp"]["followUp"]["status"] == "DONE", done
    env.clock.advance(days=3)
    await run_due(env.runtime.db, env.clock)
    async with env.runtime.db.transaction() as s:
        after = list(await s.scalars(select(CaseEvent).where(
            CaseEvent.subject_id == task, CaseEvent.kind == "follow_up.escalated")))
        logged = list(await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "consultation_follow_up.done")))
    assert len(after) == 1 and logged


NODE_TASK = """query($id: ID!) { node(id: $id) { __typename id
  ... on ConsultationFollowUpTask { ownerOrganisationId ownerPersonId status } } }"""


async def test_a_follow_up_through_node_shows_its_named_person_as_through_the_case(done_env):
    from tests.test_consent import grant
    from tests.test_descriptions import user_id

    env = done_env
    pb = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    fund, focal = await org_id(env, "fund"), await user_id(env, "fund", "focal")
    body = await env.gql(CONSULT, {"i": {
        "caseId": pb["case"], "heldAt": env.clock.now().isoformat(), "consulted": "HER",
        "followUps": [{"action": "Qx-follow: find a safe house.", "ownerOrganisationId": fund,
                       "ownerUserId": focal}]}}, as_=CASEWORKER)
    assert body["data"]["recordConsultation"]["userErrors"] == [], body
    task = body["data"]["recordConsultation"]["consultation"]["followUps"][0]["taskId"]

    def through_case(body: dict) -> list[dict]:
        assert "errors" not in body, body
        return [{"__typename": "ConsultationFollowUpTask", "id": t["id"],
                 "ownerOrganisationId": t["ownerOrganisationId"],
                 "ownerPersonId": t["ownerPersonId"], "status": t["status"]}
                for t in body["data"]["case"]["consultationFollowUps"]]

    # Her lead organisation owns it: its named person, by either path.
    owner = await env.gql(NODE_TASK, {"id": task}, as_=FOCAL)
    assert owner["data"]["node"] == {"__typename": "ConsultationFollowUpTask", "id": task,
                                     "ownerOrganisationId": fund, "ownerPersonId": focal,
                                     "status": "OPEN"}, owner
    assert through_case(await env.gql(TASKS, {"id": pb["case"]}, as_=CASEWORKER)) == [
        owner["data"]["node"]]
    # Another organisation her consent does not release risk_assessment to: not found, as for
    # a missing task (and nothing listed through the case).
    await grant(env, pb, as_=FOCAL, to_org="mofa", categories=("INCIDENT_DETAILS",))
    hidden = await env.gql(NODE_TASK, {"id": task}, as_=("mofa", "focal"))
    missing = await env.gql(NODE_TASK, {"id": ids.encode("ConsultationFollowUpTask",
                                                         uuid.uuid4())}, as_=("mofa", "focal"))
    assert hidden["data"] == missing["data"] == {"node": None}
    assert [e["extensions"]["code"] for e in hidden["errors"]] == ["NOT_FOUND"]
    assert through_case(await env.gql(TASKS, {"id": pb["case"]}, as_=("mofa", "focal"))) == []
    # Once she releases risk_assessment to it, it sees the task by either path — the named
    # person of another organisation by neither.
    await grant(env, pb, as_=FOCAL, to_org="mofa", categories=("RISK_ASSESSMENT",))
    other = await env.gql(NODE_TASK, {"id": task}, as_=("mofa", "focal"))
    assert other["data"]["node"] == {**owner["data"]["node"], "ownerPersonId": None}, other
    assert through_case(await env.gql(TASKS, {"id": pb["case"]}, as_=("mofa", "focal"))) == [
        other["data"]["node"]]


# --- her data copy holds her risk and safety records ---------------------------------------------

async def test_her_data_copy_holds_her_assessments_plan_check_ins_and_consultations(done_env):
    from tests.test_risk import ADD_MEASURE, PLAN, assessed

    env = done_env
    pb = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    a = await assessed(env, pb)
    added = await env.gql(ADD_MEASURE, {"i": {"caseId": pb["case"], "kind": "ACCOMPANIMENT"}},
                          as_=CASEWORKER)
    measure = added["data"]["addMeasure"]["measure"]["id"]
    planned = await env.gql(PLAN, {"i": {
        "measureId": measure, "threatId": a["threats"][0]["id"], "planKind": "DAY_TO_DAY",
        "costAmount": "120.50", "costCurrency": "KES", "coveredFamily": ["her daughter"]}},
        as_=CASEWORKER)
    assert planned["data"]["setMeasurePlan"]["userErrors"] == [], planned
    await env.gql(AGREE, {"i": {
        "caseId": pb["case"], "intervalMinutes": 24 * 60, "channel": "SMS",
        "agreedVia": "IN_PERSON", "missedAction": "CALL_SAFETY_CONTACT",
        "safetyContact": "Qx-contact: her sister"}}, as_=CASEWORKER)
    await env.gql(CONSULT, {"i": {
        "caseId": pb["case"], "heldAt": env.clock.now().isoformat(), "consulted": "HER",
        "risksRaised": "Qx-risks: the checkpoint", "followUps": [
            {"action": "Qx-follow: call the lawyer", "ownerOrganisationId":
             await org_id(env, "fund")}]}}, as_=CASEWORKER)

    her = await env.peacebuilder_token(pb["login"])
    got = await env.client.get("/me/data-copy", headers={"authorization": f"Bearer {her}"})
    assert got.status_code == 200
    copy = got.json()
    [case] = [c for c in copy["cases"] if c["id"] == str(ids.decode(pb["case"], "Case"))]
    mine = case["riskAndSafety"]
    [assessment] = mine["riskAssessments"]
    assert (assessment["status"], assessment["level"], assessment["answeredBy"]) == (
        "agreed", "high", "herself")
    assert assessment["herAnalysis"] == "The militia wants the land report stopped."
    threat = str(ids.decode(a["threats"][0]["id"], "RiskThreat"))
    assert {t["id"] for t in mine["riskThreats"]} >= {threat}
    assert mine["riskThreats"][0]["sourceAsReported"] == "A local militia, she says."
    [step] = mine["protectionPlan"]
    assert (step["threat"], step["planKind"], step["costAmount"], step["costCurrency"],
            step["coveredFamily"]) == (threat, "day_to_day", "120.50", "KES", ["her daughter"])
    [schedule] = mine["checkInSchedules"]
    assert schedule["safetyContact"] == "Qx-contact: her sister"
    assert [p["status"] for p in mine["checkIns"]] == ["pending"]
    [meeting] = mine["consultations"]
    assert meeting["risksRaised"] == "Qx-risks: the checkpoint"
    assert meeting["followUps"][0]["action"] == "Qx-follow: call the lawyer"
    assert [f["status"] for f in mine["consultationFollowUps"]] == ["open"]
    # The GraphQL copy is the same document.
    same = await env.gql("{ me { dataCopy } }", token=her, purpose=None)
    assert json.loads(same["data"]["me"]["dataCopy"]) == copy


async def test_her_networks_focal_point_answers_for_her_only_after_step_up(done_env):
    from tests.factories import networked_case
    from tests.test_risk import ANSWER, WITH_RISK, shared

    env = done_env
    pb = await networked_case(env, WITH_RISK)  # unpc leads, wpn is her confirmed network
    a = await shared(env, pb, as_=("unpc", "caseworker"))
    variables = {"i": {"id": a["id"], "agree": True}}
    with configured(env, step_up_seconds=60):
        weak = await env.gql(ANSWER, variables, token=await stale(env, "wpn", "focal"))
    assert codes(weak, "answerRiskAssessment") == ["STEP_UP_REQUIRED"]
    assert await denials(env, "risk_assessment.answer")
    strong = await env.gql(ANSWER, variables, as_=("wpn", "focal"))
    got = strong["data"]["answerRiskAssessment"]["assessment"]
    assert (got["status"], got["answeredBy"]) == ("AGREED", "NETWORK_FOCAL_POINT"), strong


# --- a review falling due is the lead's task; a missed one escalates ------------------------------

async def test_a_review_falling_due_is_a_task_for_the_lead_then_escalates_if_missed(done_env):
    from tests.test_incidents import inbox_of
    from tests.test_risk import assessed

    env = done_env
    pb = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    kept = await assessed(env, pb, days=30)
    key = str(ids.decode(kept["id"], "RiskAssessment"))
    other = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    replaced = await assessed(env, other, days=30)
    await assessed(env, other, days=60)  # current before its review falls due
    gone = str(ids.decode(replaced["id"], "RiskAssessment"))

    def about(items, which):
        return [i.kind for i in items if (i.payload or {}).get("risk_assessment") == which]

    env.clock.advance(days=22)
    await run_due(env.runtime.db, env.clock)
    assert about(await inbox_of(env, *FOCAL), key) == []
    env.clock.advance(days=1, minutes=1)  # a week before its review date
    await run_due(env.runtime.db, env.clock)
    await run_due(env.runtime.db, env.clock)
    assert about(await inbox_of(env, *FOCAL), key) == ["risk_review_due"]
    assert about(await inbox_of(env, *FOCAL), gone) == [], "superseded: nothing owed"
    env.clock.advance(days=7)  # its date passed without a newer assessment: the chain
    await run_due(env.runtime.db, env.clock)
    assert about(await inbox_of(env, *FOCAL), key) == ["risk_review_due", "escalation"]


# --- the family members a measure covers: hers to name ------------------------------------------

FAMILY = """mutation($i: DesignateCoveredFamilyInput!) { designateCoveredFamily(input: $i) {
  measure { id coveredFamily } userErrors { field message code } } }"""
FAMILY_SEEN = """query($id: ID!) { case(id: $id) { measures { id coveredFamily
  withheld { field } } } }"""


async def test_she_names_the_family_members_a_measure_covers(done_env):
    from tests.test_consent import grant

    env = done_env
    pb = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    added = await env.gql(ADD, {"i": {"caseId": pb["case"], "kind": "RELOCATION"}}, as_=FOCAL)
    measure = added["data"]["addMeasure"]["measure"]["id"]
    her = await env.peacebuilder_token(pb["login"])
    named = await env.gql(FAMILY, {"i": {"measureId": measure,
                                         "family": ["my mother", " my two sons "]}},
                          token=her, purpose=None)
    assert named["data"]["designateCoveredFamily"]["measure"] == {
        "id": measure, "coveredFamily": ["my mother", "my two sons"]}, named
    # The lead reads them under her consent; an organisation without risk_assessment does not.
    seen = (await env.gql(FAMILY_SEEN, {"id": pb["case"]}, as_=FOCAL))["data"]["case"]
    assert seen["measures"][0]["coveredFamily"] == ["my mother", "my two sons"]
    await grant(env, pb, as_=FOCAL, to_org="mofa", categories=("INCIDENT_DETAILS",))
    other = (await env.gql(FAMILY_SEEN, {"id": pb["case"]}, as_=("mofa", "focal")))["data"]
    for m in other["case"]["measures"]:
        assert m["coveredFamily"] is None and {"field": "coveredFamily"} in m["withheld"]
    # Staff cannot name them for her; another woman's measure does not exist for her.
    staff = await env.gql(FAMILY, {"i": {"measureId": measure, "family": []}}, as_=FOCAL)
    assert codes(staff, "designateCoveredFamily") == ["NOT_FOUND"]
    stranger = await new_peacebuilder(env, "fund", categories=INTAKE_CATEGORIES)
    theirs = await env.gql(FAMILY, {"i": {"measureId": measure, "family": []}},
                           token=await env.peacebuilder_token(stranger["login"]), purpose=None)
    assert codes(theirs, "designateCoveredFamily") == ["NOT_FOUND"]
    async with env.runtime.db.transaction() as s:
        logged = list(await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "measure.family")))
    assert logged and "sons" not in json.dumps([e.details for e in logged])
