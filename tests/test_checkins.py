"""Issue 19 (her part of it here): safety check-ins, digital security assessments and the
consultations log — through GraphQL on both databases, with the controlled clock:

- a schedule agreed with her; she checks in herself; nobody else but her network can;
- a missed check-in alerts the lead organisation's focal points at once, reaching a live
  subscription on another app instance, content-free; she is told; the chain escalates exactly
  once across two instances; her late check-in stops it;
- security assessments and consultations are recorded, read and amended under `risk_assessment`;
  an organisation her consent does not cover for it finds nothing, as if nothing existed; the
  safety contact needs `contact`;
- her view (`me`) shows her schedule, assessments and consultations in plain language.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Text, select

from app.clock import FrozenClock
from app.models import Base
from app.runtime import Runtime
from app.scheduler import run_due
from app.tables.audit import AccessLogEntry
from app.tables.categories import CHECKIN_FIELDS
from app.tables.consent import Notice
from app.tables.incidents import CaseEvent
from schema import ids
from tests.conftest import BACKENDS, build_env
from tests.test_consent import INTAKE_CATEGORIES, grant, new_peacebuilder, org_id
from tests.test_incidents import inbox_of
from tests.test_realtime import REDIS_URL, Subscriber, require_redis, serve

pytestmark = pytest.mark.anyio
RISK = [*INTAKE_CATEGORIES, "RISK_ASSESSMENT"]

AGREE = """mutation($i: AgreeCheckInScheduleInput!) { agreeCheckInSchedule(input: $i) {
  schedule { id intervalMinutes channel missedAction status missedActionNotes safetyContact
             withheld { field category reason } }
  userErrors { field message code } } }"""
CHECK_IN = """mutation($i: CheckInInput!) { checkIn(input: $i) {
  checkIn { id status checkedInBy checkedInAt dueAt } userErrors { field message code } } }"""
RESOLVE = """mutation($i: ResolveMissedCheckInInput!) { resolveMissedCheckIn(input: $i) {
  checkIn { id status resolution } userErrors { field message code } } }"""
END = """mutation($i: EndCheckInScheduleInput!) { endCheckInSchedule(input: $i) {
  schedule { id status } userErrors { field message code } } }"""
DSA = """mutation($i: RecordSecurityAssessmentInput!) { recordSecurityAssessment(input: $i) {
  assessment { id subject status followUpAt assets vulnerabilities
               recommendations { text difficulty resources } }
  userErrors { field message code } } }"""
FOLLOW_UP = """mutation($i: RecordSecurityFollowUpInput!) { recordSecurityFollowUp(input: $i) {
  assessment { id status followedUpAt vulnerabilities recommendations { text difficulty } }
  userErrors { field message code } } }"""
CONSULT = """mutation($i: RecordConsultationInput!) { recordConsultation(input: $i) {
  consultation { id consulted organisationIds topics risksRaised
                 followUps { action ownerOrganisationId dueAt } }
  userErrors { field message code } } }"""
AMEND = """mutation($i: AmendConsultationInput!) { amendConsultation(input: $i) {
  consultation { id topics risksRaised followUps { action } }
  userErrors { field message code } } }"""
CASE = """query($id: ID!) { case(id: $id) {
  checkInSchedules { id status channel missedAction missedActionNotes safetyContact
                     withheld { field category reason } }
  checkIns { id status dueAt checkedInBy resolution }
  securityAssessments { id status assets vulnerabilities recommendations { text difficulty } }
  consultations { id topics risksRaised followUps { action } organisationIds }
  timeline { kind } } }"""
FOCAL, CASEWORKER = ("fund", "focal"), ("fund", "caseworker")


@pytest.fixture(scope="module", params=BACKENDS)
async def checkin_env(request, tmp_path_factory, anyio_backend):
    await require_redis()
    clock = FrozenClock(datetime(2037, 3, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("checkins"), clock=clock,
                                 redis_url=REDIS_URL)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


def raw(global_id: str, type_name: str) -> uuid.UUID:
    return ids.decode(global_id, type_name)


async def case_of(env, pb: dict, as_=CASEWORKER) -> dict:
    body = await env.gql(CASE, {"id": pb["case"]}, as_=as_)
    assert "errors" not in body, body
    return body["data"]["case"]


async def agree(env, pb: dict, **extra) -> dict:
    body = await env.gql(AGREE, {"i": {
        "caseId": pb["case"], "intervalMinutes": 12 * 60, "channel": "SECURE_MESSENGER",
        "agreedVia": "IN_PERSON", "missedAction": "CALL_SAFETY_CONTACT",
        "missedActionNotes": "Qx-action: call her sister, then the network.",
        "safetyContact": "Qx-contact: her sister, +000 555 0101", **extra}}, as_=CASEWORKER)
    assert body["data"]["agreeCheckInSchedule"]["userErrors"] == [], body
    return body["data"]["agreeCheckInSchedule"]["schedule"]


async def check_in(env, schedule: dict, token: str, by: str = "HER") -> dict:
    return await env.gql(CHECK_IN, {"i": {"scheduleId": schedule["id"], "by": by}}, token=token,
                         purpose=None)


async def test_a_schedule_agreed_with_her_she_checks_in_and_sees_it_in_plain_words(checkin_env):
    env = checkin_env
    pb = await new_peacebuilder(env, "fund", categories=RISK)
    schedule = await agree(env, pb)
    assert (schedule["intervalMinutes"], schedule["channel"], schedule["status"]) == (
        720, "SECURE_MESSENGER", "ACTIVE")
    assert schedule["missedActionNotes"] == "Qx-action: call her sister, then the network."
    # The safety contact is contact data: her intake consent does not release it to the lead.
    assert schedule["safetyContact"] is None
    assert {"field": "safetyContact", "category": "CONTACT",
            "reason": "CONSENT_DOES_NOT_COVER"} in schedule["withheld"]
    again = await env.gql(AGREE, {"i": {"caseId": pb["case"], "intervalMinutes": 60,
                                        "channel": "APP", "agreedVia": "PHONE",
                                        "missedAction": "CALL_HER"}}, as_=CASEWORKER)
    assert again["data"]["agreeCheckInSchedule"]["userErrors"][0]["code"] == "CONFLICT"
    bad = await env.gql(AGREE, {"i": {"caseId": pb["case"], "intervalMinutes": 5,
                                      "channel": "APP", "agreedVia": "PHONE",
                                      "missedAction": "CALL_HER"}}, as_=CASEWORKER)
    assert bad["data"]["agreeCheckInSchedule"]["userErrors"][0]["field"] == [
        "input", "intervalMinutes"]

    her = await env.peacebuilder_token(pb["login"])
    env.clock.advance(hours=2)
    done = await check_in(env, schedule, her)
    assert done["data"]["checkIn"]["userErrors"] == [], done
    assert (done["data"]["checkIn"]["checkIn"]["status"],
            done["data"]["checkIn"]["checkIn"]["checkedInBy"]) == ("DONE", "HER")
    as_contact = await check_in(env, schedule, her, by="SAFETY_CONTACT")
    assert as_contact["data"]["checkIn"]["userErrors"][0]["field"] == ["input", "by"]
    # Staff of the lead organisation cannot check in for her (only she or her network).
    staff = await env.gql(CHECK_IN, {"i": {"scheduleId": schedule["id"]}}, as_=FOCAL)
    assert staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    case = await case_of(env, pb)
    periods = case["checkIns"]
    assert [p["status"] for p in periods] == ["DONE", "PENDING"]
    assert datetime.fromisoformat(periods[1]["dueAt"]) == env.clock.now() + timedelta(hours=12)
    assert {"check_in_schedule.agreed", "check_in.done"} <= {e["kind"] for e in case["timeline"]}

    # Her own view: every field (the safety contact too), and plain words in her language.
    mine = await env.gql("""{ me { cases { checkInSchedules { safetyContact missedAction }
        checkIns { status } }
        safetyOverview(language: "fr") { language lines } } }""", token=her, purpose=None)
    assert "errors" not in mine, mine
    assert mine["data"]["me"]["cases"][0]["checkInSchedules"] == [
        {"safetyContact": "Qx-contact: her sister, +000 555 0101",
         "missedAction": "CALL_SAFETY_CONTACT"}]
    overview = mine["data"]["me"]["safetyOverview"][0]
    assert overview["language"] == "fr"
    text = " ".join(overview["lines"])
    assert "toutes les 12 heures" in text and "messagerie sécurisée" in text
    assert "Votre prochain point de contrôle" in text and "Qx-" not in text

    async with env.runtime.db.transaction() as s:
        actions = set(await s.scalars(select(AccessLogEntry.action).where(
            AccessLogEntry.refs.contains(str(raw(pb["id"], "Peacebuilder"))))))
    assert {"check_in_schedule.agree", "check_in.record", "me.safety_overview"} <= actions

    ended = await env.gql(END, {"i": {"scheduleId": schedule["id"]}}, token=her, purpose=None)
    assert ended["data"]["endCheckInSchedule"]["schedule"]["status"] == "ENDED"
    case = await case_of(env, pb)
    assert [p["status"] for p in case["checkIns"]] == ["DONE", "ENDED"]


async def test_a_missed_check_in_alerts_a_subscriber_at_once_and_escalates_once_across_two_instances(
        checkin_env):
    env = checkin_env
    pb = await new_peacebuilder(env, "fund", categories=RISK)
    schedule = await agree(env, pb, intervalMinutes=60)
    case = await case_of(env, pb)
    period = case["checkIns"][0]
    due = datetime.fromisoformat(period["dueAt"])
    check = str(raw(period["id"], "CheckIn"))

    other = Runtime.create(replace(env.settings, scheduler=False, log_worker=False),
                           clock=env.clock)
    try:
        async with serve(other) as port:
            sub = Subscriber(port, await env.token(*FOCAL))
            sub.start()
            await asyncio.wait_for(sub.ready.wait(), 10)
            await asyncio.sleep(0.3)
            schedulers = [env.runtime.extras["scheduler"], other.extras["scheduler"]]
            env.clock.set(due - timedelta(minutes=1))
            await asyncio.gather(*(s.tick() for s in schedulers))
            assert [i for i in await inbox_of(env, *FOCAL) if i.kind == "check_in_missed"
                    and i.payload["check_in"] == check] == []

            env.clock.set(due + timedelta(seconds=30))
            await asyncio.gather(*(s.tick() for s in schedulers))
            await asyncio.gather(*(s.tick() for s in schedulers))  # nothing more is due
            alert = await sub.wait_for("check_in_missed")
            payload = json.loads(alert["payload"])
            # IDs and codes: the agreed action's code; nothing of hers.
            assert set(payload) == {"check_in", "schedule", "case", "due_at", "action"}
            assert payload["action"] == "call_safety_contact"
            assert "Qx-" not in json.dumps(sub.received) and pb["login"] not in json.dumps(
                sub.received)
            missed = [i for i in await inbox_of(env, *FOCAL)
                      if i.kind == "check_in_missed" and i.payload["check_in"] == check]
            assert len(missed) == 1, "once, whichever instance claimed it"
            # The agreed action is shown inside the app to the focal point, under her consent.
            seen = await case_of(env, pb, as_=FOCAL)
            assert seen["checkInSchedules"][0]["missedActionNotes"].startswith("Qx-action")
            assert [p["status"] for p in seen["checkIns"]] == ["MISSED"]
            async with env.runtime.db.transaction() as s:
                told = list(await s.scalars(select(Notice).where(
                    Notice.peacebuilder_id == raw(pb["id"], "Peacebuilder"),
                    Notice.kind == "check_in_missed")))
            assert len(told) == 1 and told[0].details["check_in"] == check

            # Nobody acts for the chain's first level's time: the chain starts, once.
            env.clock.advance(minutes=61)
            await asyncio.gather(*(s.tick() for s in schedulers))
            await asyncio.gather(*(s.tick() for s in schedulers))
            escalated = await sub.wait_for("escalation")
            assert json.loads(escalated["payload"])["check_in"] == period["id"], "a global ID out"
            async with env.runtime.db.transaction() as s:
                events = list(await s.scalars(select(CaseEvent).where(
                    CaseEvent.subject_id == uuid.UUID(check),
                    CaseEvent.kind == "check_in.escalated")))
            assert [e.details["level"] for e in events] == [1]
            await asyncio.sleep(0.3)
            assert [i["kind"] for i in sub.received].count("escalation") == 1
            assert [i["kind"] for i in sub.received].count("check_in_missed") == 1

            # She checks in late: the period is LATE, the chain stops, the next one opens.
            her = await env.peacebuilder_token(pb["login"])
            late = await check_in(env, schedule, her)
            assert late["data"]["checkIn"]["checkIn"]["status"] == "LATE", late
            env.clock.advance(minutes=45)
            await asyncio.gather(*(s.tick() for s in schedulers))
            async with env.runtime.db.transaction() as s:
                after = list(await s.scalars(select(CaseEvent).where(
                    CaseEvent.subject_id == uuid.UUID(check),
                    CaseEvent.kind == "check_in.escalated")))
            assert len(after) == 1
        sub.task.cancel()
    finally:
        await other.close()

    # The next period missed in turn; a focal point acts on it: resolved, next period opens.
    env.clock.advance(minutes=20)
    await run_due(env.runtime.db, env.clock)
    case = await case_of(env, pb, as_=FOCAL)
    assert [p["status"] for p in case["checkIns"]] == ["LATE", "MISSED"]
    resolved = await env.gql(RESOLVE, {"i": {"checkInId": case["checkIns"][1]["id"],
                                            "resolution": "REACHED_SAFE"}}, as_=FOCAL)
    assert resolved["data"]["resolveMissedCheckIn"]["checkIn"] == {
        "id": case["checkIns"][1]["id"], "status": "RESOLVED", "resolution": "REACHED_SAFE"}
    case = await case_of(env, pb, as_=FOCAL)
    assert [p["status"] for p in case["checkIns"]] == ["LATE", "RESOLVED", "PENDING"]
    await env.gql(END, {"i": {"scheduleId": schedule["id"]}}, as_=FOCAL)


async def test_security_assessments_and_consultations_under_her_consent(checkin_env):
    env = checkin_env
    pb = await new_peacebuilder(env, "fund", categories=RISK)
    # mofa may see the case (incident details) but not her risk picture.
    await grant(env, pb, as_=FOCAL, to_org="mofa", categories=("INCIDENT_DETAILS",))
    follow_up = env.clock.now() + timedelta(days=30)
    body = await env.gql(DSA, {"i": {
        "caseId": pb["case"], "subject": "HER_ORGANISATION", "followUpAt": follow_up.isoformat(),
        "assets": "Qx-assets: laptops, shared drive", "vulnerabilities": "Qx-vuln: no 2FA",
        "recommendations": [{"text": "Turn on 2FA", "difficulty": "LOW"},
                            {"text": "Encrypt laptops", "difficulty": "MEDIUM",
                             "resources": "a day of training"}]}}, as_=CASEWORKER)
    assert body["data"]["recordSecurityAssessment"]["userErrors"] == [], body
    dsa = body["data"]["recordSecurityAssessment"]["assessment"]
    assert (dsa["subject"], dsa["status"], dsa["assets"]) == (
        "HER_ORGANISATION", "OPEN", "Qx-assets: laptops, shared drive")
    assert dsa["recommendations"][1] == {"text": "Encrypt laptops", "difficulty": "MEDIUM",
                                         "resources": "a day of training"}
    past = await env.gql(DSA, {"i": {"caseId": pb["case"], "subject": "HER",
                                     "followUpAt": env.clock.now().isoformat()}}, as_=CASEWORKER)
    assert past["data"]["recordSecurityAssessment"]["userErrors"][0]["field"] == [
        "input", "followUpAt"]

    mofa = await org_id(env, "mofa")
    fund = await org_id(env, "fund")
    consulted = await env.gql(CONSULT, {"i": {
        "caseId": pb["case"], "heldAt": env.clock.now().isoformat(), "consulted": "HER_AND_NETWORK",
        "organisationIds": [mofa], "topics": "Qx-topics: travel to the summit",
        "risksRaised": "Qx-risks: followed after the last meeting",
        "followUps": [{"action": "Qx-follow: arrange transport", "ownerOrganisationId": mofa,
                       "dueAt": (env.clock.now() + timedelta(days=7)).isoformat()}]}},
        as_=CASEWORKER)
    assert consulted["data"]["recordConsultation"]["userErrors"] == [], consulted
    consultation = consulted["data"]["recordConsultation"]["consultation"]
    assert consultation["organisationIds"] == [fund, mofa]
    assert consultation["followUps"][0]["ownerOrganisationId"] == mofa
    amended = await env.gql(AMEND, {"i": {"consultationId": consultation["id"],
                                          "risksRaised": "Qx-risks: also online threats"}},
                            as_=FOCAL)
    assert amended["data"]["amendConsultation"]["consultation"]["risksRaised"] == (
        "Qx-risks: also online threats")
    assert amended["data"]["amendConsultation"]["consultation"]["topics"].startswith("Qx-topics")

    # An organisation her consent does not cover for risk_assessment: nothing exists.
    seen = await case_of(env, pb, as_=("mofa", "focal"))
    assert (seen["checkInSchedules"], seen["checkIns"], seen["securityAssessments"],
            seen["consultations"]) == ([], [], [], [])
    assert not [e for e in seen["timeline"] if e["kind"].startswith(
        ("security_assessment", "consultation", "check_in"))]

    def answer(body: dict) -> tuple:
        return (body["data"], [(e["message"], e["extensions"]["code"]) for e in body["errors"]])

    for query, real, fake in [
        (FOLLOW_UP, {"assessmentId": dsa["id"]},
         {"assessmentId": ids.encode("SecurityAssessment", uuid.uuid4())}),
        (AMEND, {"consultationId": consultation["id"], "topics": "x"},
         {"consultationId": ids.encode("Consultation", uuid.uuid4()), "topics": "x"}),
        (DSA, {"caseId": pb["case"], "subject": "HER", "followUpAt": follow_up.isoformat()},
         {"caseId": ids.encode("Case", uuid.uuid4()), "subject": "HER",
          "followUpAt": follow_up.isoformat()}),
        (CONSULT, {"caseId": pb["case"], "heldAt": env.clock.now().isoformat(),
                   "consulted": "HER"},
         {"caseId": ids.encode("Case", uuid.uuid4()), "heldAt": env.clock.now().isoformat(),
          "consulted": "HER"}),
    ]:
        a = await env.gql(query, {"i": real}, as_=("mofa", "focal"))
        b = await env.gql(query, {"i": fake}, as_=("mofa", "focal"))
        assert answer(a) == answer(b), query
        assert answer(a)[1][0][1] == "NOT_FOUND"
    # node(id:) answers them as the case's lists do: to fund, and to mofa as if missing.
    node = "query($id: ID!) { node(id: $id) { __typename id } }"
    for type_name, global_id in (("SecurityAssessment", dsa["id"]),
                                 ("Consultation", consultation["id"])):
        seen = await env.gql(node, {"id": global_id}, as_=FOCAL)
        assert seen["data"]["node"] == {"__typename": type_name, "id": global_id}, seen
        hidden = await env.gql(node, {"id": global_id}, as_=("mofa", "focal"))
        assert hidden["data"] == {"node": None}
        assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Once she releases risk_assessment to mofa, it reads them (withheld nothing of that kind).
    await grant(env, pb, as_=FOCAL, to_org="mofa", categories=("RISK_ASSESSMENT",))
    seen = await case_of(env, pb, as_=("mofa", "focal"))
    assert seen["consultations"][0]["risksRaised"] == "Qx-risks: also online threats"
    assert seen["securityAssessments"][0]["recommendations"][0]["text"] == "Turn on 2FA"

    # The follow-up date passes without a follow-up: it escalates along fund's chain.
    env.clock.set(follow_up + timedelta(minutes=1))
    await run_due(env.runtime.db, env.clock)
    assessment = str(raw(dsa["id"], "SecurityAssessment"))
    escalations = [i for i in await inbox_of(env, *FOCAL)
                   if i.kind == "escalation" and i.payload.get("security_assessment") == assessment]
    assert [i.payload["level"] for i in escalations] == [1]
    followed = await env.gql(FOLLOW_UP, {"i": {"assessmentId": dsa["id"],
                                               "vulnerabilities": "Qx-vuln: 2FA on"}},
                             as_=CASEWORKER)
    assert followed["data"]["recordSecurityFollowUp"]["assessment"]["status"] == "FOLLOWED_UP"
    env.clock.advance(hours=3)
    await run_due(env.runtime.db, env.clock)
    assert len([i for i in await inbox_of(env, *FOCAL) if i.kind == "escalation"
                and i.payload.get("security_assessment") == assessment]) == 1

    # Her view: the assessment and the consultation in plain words (names, dates, codes).
    her = await env.peacebuilder_token(pb["login"])
    mine = await env.gql('{ me { safetyOverview(language: "en") { lines } } }', token=her,
                         purpose=None)
    text = " ".join(mine["data"]["me"]["safetyOverview"][0]["lines"])
    assert "assessed the digital security of your organisation" in text
    assert "met you and your network" in text and "Qx-" not in text


def test_every_free_text_column_has_a_category():
    for table, fields in CHECKIN_FIELDS.items():
        text_columns = {c.name for c in Base.metadata.tables[table].columns
                        if isinstance(c.type, Text)}
        assert text_columns == set(fields), table
    assert not [c for c in Base.metadata.tables["check_ins"].columns if isinstance(c.type, Text)]


async def test_her_networks_focal_point_checks_in_for_her_and_nobody_else_can(checkin_env):
    from tests.test_consent_integrity import build

    env = checkin_env
    w = await build(env, lead="fund", login=True, network=True, group=False)
    pb = {"id": w.pb, "case": w.case, "login": w.login}
    released = await env.gql("""query($id: ID!) { case(id: $id) { id } }""", {"id": w.case},
                             as_=CASEWORKER)
    assert released["data"]["case"]["id"] == w.case
    schedule = await agree(env, pb, channel="NETWORK")
    wpn = await env.token("wpn", "focal")
    by_contact = await check_in(env, schedule, wpn, by="SAFETY_CONTACT")
    assert by_contact["data"]["checkIn"]["userErrors"] == [], by_contact
    assert by_contact["data"]["checkIn"]["checkIn"]["checkedInBy"] == "SAFETY_CONTACT"
    # Another organisation, with no standing towards her: as if the schedule did not exist.
    other = await env.gql(CHECK_IN, {"i": {"scheduleId": schedule["id"]}}, as_=("mofa", "focal"))
    fake = await env.gql(CHECK_IN, {"i": {"scheduleId": ids.encode("CheckInSchedule",
                                                                   uuid.uuid4())}},
                         as_=("mofa", "focal"))
    assert other["errors"][0]["extensions"]["code"] == fake["errors"][0]["extensions"]["code"] \
        == "NOT_FOUND"
    async with env.runtime.db.transaction() as s:
        events = list(await s.scalars(select(CaseEvent).where(
            CaseEvent.case_id == raw(w.case, "Case"), CaseEvent.kind == "check_in.done")))
    assert [e.details["acting_for_her"] for e in events] == [True]
    await env.gql(END, {"i": {"scheduleId": schedule["id"]}}, as_=FOCAL)


async def test_once_she_withdraws_risk_assessment_a_missed_check_in_says_only_attention(
        checkin_env):
    env = checkin_env
    pb = await new_peacebuilder(env, "fund", categories=RISK)
    await agree(env, pb, intervalMinutes=60)
    case = await case_of(env, pb)
    check = str(raw(case["checkIns"][0]["id"], "CheckIn"))
    her = await env.peacebuilder_token(pb["login"])
    narrowed = await env.gql("""mutation($i: NarrowConsentInput!) { narrowConsent(input: $i) {
        grant { id } userErrors { message } } }""", {"i": {"grantId": pb["grant"],
                                                           "categories": ["RISK_ASSESSMENT"]}},
                             token=her, purpose=None)
    assert narrowed["data"]["narrowConsent"]["userErrors"] == [], narrowed
    assert (await case_of(env, pb, as_=FOCAL))["checkInSchedules"] == [], "no longer released"
    env.clock.advance(minutes=61)
    await run_due(env.runtime.db, env.clock)
    case_uuid = str(raw(pb["case"], "Case"))
    missed = [i for i in await inbox_of(env, *FOCAL)
              if i.kind == "check_in_missed" and i.case_id == uuid.UUID(case_uuid)]
    assert [i.payload for i in missed] == [{"case": case_uuid, "attention": "needed"}]
    env.clock.advance(minutes=61)
    await run_due(env.runtime.db, env.clock)
    escalated = [i for i in await inbox_of(env, *FOCAL)
                 if i.kind == "escalation" and i.case_id == uuid.UUID(case_uuid)]
    assert escalated and all("check_in" not in i.payload and i.payload["attention"] == "needed"
                             for i in escalated)
    async with env.runtime.db.transaction() as s:
        events = list(await s.scalars(select(CaseEvent.kind).where(
            CaseEvent.subject_id == uuid.UUID(check))))
    assert "check_in.missed" in events and "check_in.escalated" in events
