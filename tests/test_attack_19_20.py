"""Attacks as insiders on check-ins, consultations and monitoring (issues 19 and 20), through
the real app on both databases. Each test is a regression test for a finding fixed on this
branch, or pins a defence that held."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.scheduler import run_due
from app.tables.incidents import CaseEvent
from schema import ids
from tests import test_checkins
from tests.test_checkins import (
    AGREE,
    AMEND,
    CASE,
    CASEWORKER,
    CHECK_IN,
    CONSULT,
    DSA,
    END,
    FOCAL,
    FOLLOW_UP,
    RESOLVE,
    RISK,
    agree,
    case_of,
    raw,
)
from tests.test_consent import grant, new_peacebuilder

pytestmark = pytest.mark.anyio
checkin_env = test_checkins.checkin_env  # the module fixture (clock, Redis)
OTHER = ("mofa", "focal")


async def _shared_with_mofa(env) -> dict:
    """A woman led by fund, who also releases risk_assessment to mofa for protection."""
    pb = await new_peacebuilder(env, "fund", categories=RISK)
    await grant(env, pb, as_=CASEWORKER, to_org="mofa",
                categories=("INCIDENT_DETAILS", "RISK_ASSESSMENT"), purposes=("PROTECTION",))
    seen = await env.gql(CASE, {"id": pb["case"]}, as_=OTHER)
    assert seen["data"]["case"] is not None, seen
    return pb


async def test_another_organisation_cannot_silence_the_leads_missed_check_in(checkin_env):
    """A missed check-in alerts the lead's focal points and escalates along its chain. Another
    organisation her consent also covers (it sees the schedule) must not resolve the missed
    period or end the schedule: that would stop the lead's escalation without the lead ever
    acting."""
    env = checkin_env
    pb = await _shared_with_mofa(env)
    schedule = await agree(env, pb, intervalMinutes=60)
    env.clock.advance(minutes=61)
    await run_due(env.runtime.db, env.clock)
    case = await case_of(env, pb, as_=FOCAL)
    missed = case["checkIns"][-1]
    assert missed["status"] == "MISSED"

    resolved = await env.gql(RESOLVE, {"i": {"checkInId": missed["id"],
                                            "resolution": "REACHED_SAFE"}}, as_=OTHER)
    assert resolved.get("errors") or resolved["data"]["resolveMissedCheckIn"]["userErrors"], \
        resolved
    ended = await env.gql(END, {"i": {"scheduleId": schedule["id"]}}, as_=OTHER)
    assert ended.get("errors") or ended["data"]["endCheckInSchedule"]["userErrors"], ended
    after = await case_of(env, pb, as_=FOCAL)
    assert after["checkInSchedules"][0]["status"] == "ACTIVE"
    assert after["checkIns"][-1]["status"] == "MISSED"
    async with env.runtime.db.transaction() as s:
        kinds = list(await s.scalars(select(CaseEvent.kind).where(
            CaseEvent.case_id == raw(pb["case"], "Case"))))
    assert "check_in.resolved" not in kinds and "check_in_schedule.ended" not in kinds

    # The lead's own focal point still acts on it.
    ok = await env.gql(RESOLVE, {"i": {"checkInId": missed["id"],
                                      "resolution": "REACHED_SAFE"}}, as_=FOCAL)
    assert ok["data"]["resolveMissedCheckIn"]["checkIn"]["status"] == "RESOLVED", ok
    await env.gql(END, {"i": {"scheduleId": schedule["id"]}}, as_=FOCAL)


NODE = """query($id: ID!) { node(id: $id) { id } }"""


async def test_cut_off_organisation_sees_nothing_and_errors_match_a_missing_id(checkin_env):
    """Once she narrows mofa's grant to drop risk_assessment, mofa finds the schedule, its
    periods and her consultations nowhere, with the same error bytes as for a missing ID."""
    env = checkin_env
    pb = await _shared_with_mofa(env)
    schedule = await agree(env, pb, intervalMinutes=60)
    consult = await env.gql(CONSULT, {"i": {"caseId": pb["case"], "consulted": "HER",
                                            "heldAt": env.clock.now().isoformat(),
                                            "topics": "Qz-topic"}}, as_=OTHER)
    consultation = consult["data"]["recordConsultation"]["consultation"]
    assert consultation is not None, consult
    dsa = await env.gql(DSA, {"i": {"caseId": pb["case"], "subject": "HER",
                                    "followUpAt": "2099-01-01T00:00:00+00:00"}}, as_=OTHER)
    assessment = dsa["data"]["recordSecurityAssessment"]["assessment"]
    assert assessment is not None, dsa
    case = await case_of(env, pb)
    period = case["checkIns"][0]
    before = await env.gql(NODE, {"id": schedule["id"]}, as_=OTHER)
    assert before["data"]["node"] == {"id": schedule["id"]}, before
    # She takes risk_assessment back from mofa (incident details stay released).
    her = await env.peacebuilder_token(pb["login"])
    grants = await env.gql("""query($id: ID!) { consentGrants(peacebuilderId: $id) {
        id recipientOrganisation { slug } } }""", {"id": pb["id"]}, token=her, purpose=None)
    mofa = next(g["id"] for g in grants["data"]["consentGrants"]
                if (g.get("recipientOrganisation") or {}).get("slug") == "mofa")
    narrowed = await env.gql("""mutation($i: NarrowConsentInput!) { narrowConsent(input: $i) {
        grant { id } userErrors { message } } }""", {"i": {"grantId": mofa,
                                                           "categories": ["RISK_ASSESSMENT"]}},
                             token=her, purpose=None)
    assert narrowed["data"]["narrowConsent"]["userErrors"] == [], narrowed
    seen = await env.gql(CASE, {"id": pb["case"]}, as_=OTHER)
    assert seen["data"]["case"]["checkInSchedules"] == [] and seen["data"]["case"]["checkIns"] == []
    assert not [e for e in seen["data"]["case"]["timeline"]
                if e["kind"].split(".")[0] in ("check_in", "check_in_schedule")], seen

    def errors(body: dict) -> object:
        return [(e.get("message"), e.get("extensions")) for e in body.get("errors") or []] or \
            body["data"]

    for type_name, real in (("CheckInSchedule", schedule["id"]), ("CheckIn", period["id"]),
                            ("Consultation", consultation["id"]),
                            ("SecurityAssessment", assessment["id"])):
        fake = ids.encode(type_name, uuid.uuid4())
        got = await env.gql(NODE, {"id": real}, as_=OTHER)
        miss = await env.gql(NODE, {"id": fake}, as_=OTHER)
        assert errors(got) == errors(miss), (type_name, got, miss)
    for query, var, real, type_name in (
            (CHECK_IN, "scheduleId", schedule["id"], "CheckInSchedule"),
            (RESOLVE, "checkInId", period["id"], "CheckIn"),
            (END, "scheduleId", schedule["id"], "CheckInSchedule"),
            (AMEND, "consultationId", consultation["id"], "Consultation"),
            (FOLLOW_UP, "assessmentId", assessment["id"], "SecurityAssessment")):
        fake = ids.encode(type_name, uuid.uuid4())
        extra = {"resolution": "REACHED_SAFE"} if var == "checkInId" else {}
        got = await env.gql(query, {"i": {var: real, **extra}}, as_=OTHER)
        miss = await env.gql(query, {"i": {var: fake, **extra}}, as_=OTHER)
        assert errors(got) == errors(miss), (query, got, miss)
        assert got["errors"][0]["extensions"]["code"] == "NOT_FOUND", got
    await env.gql(END, {"i": {"scheduleId": schedule["id"]}}, as_=FOCAL)


# --- monitoring ---------------------------------------------------------------------------

async def _counted_by_two(env, n: int, *, month: int, type_: str) -> None:
    """`n` women, each with one Nairobi incident in 2011-`month`, counted (aggregate
    reporting) by the NHRI and by the embassy alike."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    from app import ids as app_ids
    from app.tables.incidents import Incident
    from tests.test_incidents import REPORT, incident_input

    for _ in range(n):
        pb = await new_peacebuilder(env, "fund", categories=["INCIDENT_DETAILS", "LOCATION_COARSE"])
        for org in ("nhri", "embassy"):
            await grant(env, pb, as_=CASEWORKER, to_org=org,
                        categories=("INCIDENT_DETAILS", "LOCATION_COARSE"),
                        purposes=("AGGREGATE_REPORTING",))
        body = await env.gql(REPORT, incident_input(pb["case"], "HIGH", type=type_,
                                                    regionCode="KE-NBI"), as_=CASEWORKER)
        assert body["data"]["reportIncident"]["userErrors"] == [], body
        incident = app_ids.decode(body["data"]["reportIncident"]["incident"]["id"], "Incident")
        async with env.runtime.db.transaction() as s:
            await s.execute(update(Incident).where(Incident.id == incident).values(
                reported_at=datetime(2011, month, 10, tzinfo=UTC)))


async def test_two_organisations_cannot_split_a_refused_pair_of_releases(env):
    """Two organisations counting the same women (both granted aggregate reporting) must not
    each release one half of a pair the check refuses to one organisation — month by one,
    quarter by the other: their published reports together would pin a suppressed count. The
    ledger is checked over every organisation's releases of overlapping women; the refusal
    says nothing of who released what."""
    from app.monitoring.service import DisclosureRisk
    from tests.test_monitoring import _release

    await _counted_by_two(env, 5, month=1, type_="THREATS")
    january = await _release(env, "incidents_by_region", "2011-01", as_=("nhri", "analyst"))
    assert january["userErrors"] == [], january
    await _counted_by_two(env, 2, month=2, type_="ONLINE_HARASSMENT")
    # The NHRI itself is refused the quarter (its January pins the quarter's suppressed cell).
    refused = await _release(env, "incidents_by_region", "2011-Q1", as_=("nhri", "analyst"))
    assert refused["userErrors"][0]["code"] == "CONFLICT"
    # The embassy counts exactly the same women: its quarter, beside the NHRI's January, is
    # the very pair that was refused.
    quarter = await _release(env, "incidents_by_region", "2011-Q1", as_=("embassy", "analyst"))
    assert quarter["release"] is None and quarter["userErrors"][0]["code"] == "CONFLICT"
    # The same generic words as the NHRI's own refusal: no organisation, table or figure.
    assert quarter["userErrors"][0]["message"] == refused["userErrors"][0]["message"] \
        == DisclosureRisk.message
    # Women the NHRI never counted are not held back by its releases: the embassy's own
    # February (two women the NHRI also counts, suppressed alike) is its own business.
    assert "nhri" not in repr(quarter).lower()


async def test_the_report_route_serves_only_the_callers_own_releases_to_its_readers(env):
    """The NHRI released 2011-01 (above); a caseworker of the NHRI, and another organisation's
    analyst, get nothing of it from GET /monitoring/report."""
    from tests.test_monitoring import _release

    if not (await _release(env, "incidents_by_outcome", "2011-01"))["release"]:
        pytest.fail("the NHRI's release")

    async def get(who: tuple[str, str], fmt: str = "csv"):
        h = {"authorization": f"Bearer {await env.token(*who)}",
             "safety-net-purpose": "aggregate_reporting"}
        return await env.client.get("/monitoring/report", params={"period": "2011-01",
                                                                  "format": fmt}, headers=h)

    own = await get(("nhri", "analyst"))
    assert own.status_code == 200 and "incidents_by_outcome,2011-01" in own.text
    for fmt in ("csv", "html", "pdf"):
        refused = await get(("nhri", "caseworker"), fmt)
        assert refused.status_code == 403, (fmt, refused.text)
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = await get(("unpc", "focal"))
    assert other.status_code == 200 and "incidents_by_outcome" not in other.text
    assert other.text.splitlines()[1:] == []


async def test_a_missed_check_in_with_nobody_at_the_lead_reaches_someone_at_once(checkin_env):
    """The lead has no active focal point when she misses a check-in mofa agreed with her: the
    immediate alert reaches nobody, so the chain (which routes to mofa, still covered) must
    start at once, not an hour later."""
    from sqlalchemy import update

    from app.tables.orgs import Organisation, RoleAssignment, User
    from tests.test_incidents import inbox_of

    env = checkin_env
    pb = await _shared_with_mofa(env)
    body = await env.gql(AGREE, {"i": {
        "caseId": pb["case"], "intervalMinutes": 60, "channel": "SECURE_MESSENGER",
        "agreedVia": "IN_PERSON", "missedAction": "CALL_HER"}}, as_=OTHER)
    assert body["data"]["agreeCheckInSchedule"]["userErrors"] == [], body
    schedule = body["data"]["agreeCheckInSchedule"]["schedule"]
    check = str(raw((await case_of(env, pb, as_=OTHER))["checkIns"][0]["id"], "CheckIn"))
    async with env.runtime.db.transaction() as s:
        fund = await s.scalar(select(Organisation.id).where(Organisation.slug == "fund"))
        subjects = list(await s.scalars(select(RoleAssignment.subject).where(
            RoleAssignment.org_id == fund, RoleAssignment.role == "focal_point")))
        focal = [uuid.UUID(x.split(":", 1)[1]) for x in subjects if x.startswith("user:")]
        off = list(await s.scalars(select(User.id).where(User.id.in_(focal),
                                                         User.active.is_(True))))
        await s.execute(update(User).where(User.id.in_(off)).values(active=False))
    try:
        env.clock.advance(minutes=61)
        await run_due(env.runtime.db, env.clock)
        await run_due(env.runtime.db, env.clock)
        heard = [i for i in await inbox_of(env, *OTHER)
                 if i.payload.get("check_in") == check or (
                     i.case_id == raw(pb["case"], "Case") and i.kind == "escalation")]
        assert heard, "nobody was told she missed her check-in"
    finally:
        async with env.runtime.db.transaction() as s:
            await s.execute(update(User).where(User.id.in_(off)).values(active=True))
    await env.gql(END, {"i": {"scheduleId": schedule["id"]}}, as_=FOCAL)


async def test_no_personal_data_in_logs_or_access_log_for_check_ins(checkin_env):
    """Her safety contact, the agreed action's notes, assessment and consultation text never
    reach the service's log or the access log — on success, on refusal, on bad input."""
    from app.tables.audit import AccessLogEntry
    from tests.logcapture import service_logs

    env = checkin_env
    pb = await _shared_with_mofa(env)
    secret = "Qz-secret-contact +000 555 0199"
    with service_logs("DEBUG") as captured:
        schedule = await agree(env, pb, intervalMinutes=60, safetyContact=secret,
                               missedActionNotes=secret)
        await env.gql(AGREE, {"i": {"caseId": pb["case"], "intervalMinutes": 60,
                                    "channel": secret, "agreedVia": "PHONE",
                                    "missedAction": "CALL_HER"}}, as_=CASEWORKER)
        await env.gql(DSA, {"i": {"caseId": pb["case"], "subject": "HER",
                                  "followUpAt": "2037-01-01T00:00:00+00:00", "assets": secret,
                                  "recommendations": [{"text": secret, "difficulty": "LOW"}]}},
                      as_=CASEWORKER)
        await env.gql(CONSULT, {"i": {"caseId": pb["case"], "heldAt": "2099-01-01T00:00:00Z",
                                      "consulted": "HER", "topics": secret,
                                      "risksRaised": secret}}, as_=CASEWORKER)
        await env.gql(CONSULT, {"i": {"caseId": pb["case"], "heldAt": "2037-01-01T00:00:00Z",
                                      "consulted": "HER", "topics": secret * 200}},
                      as_=CASEWORKER)
        env.clock.advance(minutes=61)
        await run_due(env.runtime.db, env.clock)
        case = await case_of(env, pb, as_=FOCAL)
        await env.gql(RESOLVE, {"i": {"checkInId": case["checkIns"][-1]["id"],
                                     "resolution": "REACHED_SAFE"}}, as_=OTHER)
    assert "Qz-secret" not in captured.text and "555 0199" not in captured.text
    async with env.runtime.db.transaction() as s:
        entries = list(await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.at >= env.clock.now() - __import__("datetime").timedelta(hours=3))))
    dumped = repr([(e.action, e.reason, e.details, e.refs) for e in entries])
    assert "Qz-secret" not in dumped and "555 0199" not in dumped
    await env.gql(END, {"i": {"scheduleId": schedule["id"]}}, as_=FOCAL)


async def test_a_period_has_one_label_and_the_report_file_is_named_from_it(env):
    """A period written in other digits (Arabic-Indic) parsed as 2011-01 under another label, so
    the "once per organisation, table and period" record missed it (a second, recomputed
    release of the same month), and the raw text went into the report's header (a 500). Only
    ASCII periods are accepted; spaces around one are served under the normalised label."""
    from tests.test_monitoring import _release

    first = await _release(env, "incidents_by_outcome", "2011-01")
    assert first["release"] is not None, first
    for other in ("2011-\u0660\u0661", "\u0662\u0660\u0661\u0661-01"):
        again = await _release(env, "incidents_by_outcome", other)
        assert again["release"] is None and again["userErrors"][0]["field"] == [
            "input", "period"], (other, again)
    h = {"authorization": f"Bearer {await env.token('nhri', 'analyst')}",
         "safety-net-purpose": "aggregate_reporting"}
    for fmt in ("csv", "html", "pdf"):
        got = await env.client.get("/monitoring/report",
                                   params={"period": " 2011-01 ", "format": fmt}, headers=h)
        assert got.status_code == 200, (fmt, got.status_code)
        assert got.headers["content-disposition"].endswith(f"filename=monitoring-2011-01.{fmt}")
        odd = await env.client.get("/monitoring/report",
                                   params={"period": "2011-\u0660\u0661", "format": fmt},
                                   headers=h)
        assert odd.status_code == 400, (fmt, odd.status_code)
