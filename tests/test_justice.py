"""Issue 17, justice follow-up that reminds — through GraphQL on both databases, with the
controlled clock:

- hearings on a proceeding remind their owners 72 h and 24 h before; an outcome not recorded
  48 h after escalates along the responsible organisation's chain, and stops once recorded;
  rescheduling and cancelling move `nextHearingAt` and silence the old date;
- detention watch: three due checks from the detention date; one overdue escalates; a visit of
  the right kind satisfies its check; release ends them all; the place and notes are sealed,
  read under `legal` and logged;
- a caller whose consent does not release `legal` gets nothing, indistinguishable from missing;
- a detention check overdue escalates once across two app instances.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Text, select

from app.access.principal import SYSTEM
from app.clock import FrozenClock
from app.models import Base
from app.runtime import Runtime, context_for
from app.scheduler import run_due
from app.tables.audit import AccessLogEntry
from app.tables.categories import JUSTICE_FIELDS
from app.tenants import schema as tenant_schema
from app.tenants import service as tenant_service
from schema import ids
from schema.server import create_app
from tests.conftest import BACKENDS, build_env
from tests.test_consent import grant, new_peacebuilder
from tests.test_incidents import inbox_of

pytestmark = pytest.mark.anyio

PROCEEDING = """mutation($c: ID!, $n: DateTime) { recordProceeding(input: {caseId: $c,
  kind: investigation, data: {authority: "Prosecutor", stage: "charged"}, nextHearingAt: $n}) {
  proceeding { id nextHearingAt } userErrors { message } } }"""
SCHEDULE = """mutation($i: ScheduleHearingInput!) { scheduleHearing(input: $i) {
  hearing { id status scheduledAt proceedingId } userErrors { field message code } } }"""
RESCHEDULE = """mutation($i: RescheduleHearingInput!) { rescheduleHearing(input: $i) {
  hearing { id status scheduledAt rescheduledFromId } userErrors { field message code } } }"""
CANCEL = """mutation($i: HearingIdInput!) { cancelHearing(input: $i) {
  hearing { id status } userErrors { field message code } } }"""
OUTCOME = """mutation($i: RecordHearingOutcomeInput!) { recordHearingOutcome(input: $i) {
  hearing { id status outcome outcomeRecordedAt } userErrors { field message code } } }"""
DETAIN = """mutation($i: RecordDetentionInput!) { recordDetention(input: $i) {
  detention { id status detainedAt place } userErrors { field message code } } }"""
VISIT = """mutation($i: RecordDetentionVisitInput!) { recordDetentionVisit(input: $i) {
  visit { id visitor satisfies notes } userErrors { field message code } } }"""
RELEASE = """mutation($i: ReleaseDetentionInput!) { releaseDetention(input: $i) {
  detention { id status releasedAt } userErrors { field message code } } }"""
CASE = """query($id: ID!) { case(id: $id) {
  proceedings { id nextHearingAt }
  hearings { id status scheduledAt outcome }
  detentions { id status place }
  detentionChecks { id kind status dueAt visitId }
  detentionVisits { id visitor satisfies notes }
  timeline { kind details } } }"""


@pytest.fixture(scope="module", params=BACKENDS)
async def justice_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2036, 1, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("justice"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def case_of(env, pb: dict, as_=("fund", "caseworker")) -> dict:
    body = await env.gql(CASE, {"id": pb["case"]}, as_=as_)
    assert "errors" not in body, body
    return body["data"]["case"]


async def proceeding(env, pb: dict, next_hearing: datetime | None = None) -> str:
    body = await env.gql(PROCEEDING, {"c": pb["case"], "n": next_hearing.isoformat()
                                      if next_hearing else None}, as_=("fund", "caseworker"))
    assert body["data"]["recordProceeding"]["userErrors"] == [], body
    return body["data"]["recordProceeding"]["proceeding"]["id"]


async def schedule(env, proceeding_id: str, at: datetime, **extra) -> dict:
    body = await env.gql(SCHEDULE, {"i": {"proceedingId": proceeding_id,
                                          "scheduledAt": at.isoformat(), **extra}},
                         as_=("fund", "caseworker"))
    assert body["data"]["scheduleHearing"]["userErrors"] == [], body
    return body["data"]["scheduleHearing"]["hearing"]


def raw(global_id: str, type_name: str) -> str:
    return str(ids.decode(global_id, type_name))


async def alerts_about(env, key: str, value: str, kind: str, who=("fund", "focal")) -> list:
    return [i for i in await inbox_of(env, *who) if i.kind == kind and i.payload.get(key) == value]


def same_instant(a: str | None, b: datetime) -> bool:
    return a is not None and datetime.fromisoformat(a) == b


async def test_hearing_reminds_before_and_an_unrecorded_outcome_escalates(justice_env):
    env = justice_env
    pb = await new_peacebuilder(env, "fund")
    pid = await proceeding(env, pb)
    at = env.clock.now() + timedelta(days=5)
    hearing = await schedule(env, pid, at)
    assert hearing["status"] == "SCHEDULED" and hearing["proceedingId"] == pid
    case = await case_of(env, pb)
    assert same_instant(case["proceedings"][0]["nextHearingAt"], at), "derived from the hearing"
    h = raw(hearing["id"], "Hearing")

    env.clock.set(at - timedelta(hours=72, minutes=-1))
    await run_due(env.runtime.db, env.clock)
    reminders = await alerts_about(env, "hearing", h, "hearing_due")
    assert [r.payload["hours_before"] for r in reminders] == [71]
    env.clock.set(at - timedelta(hours=24, minutes=-1))
    await run_due(env.runtime.db, env.clock)
    reminders = await alerts_about(env, "hearing", h, "hearing_due")
    assert [r.payload["hours_before"] for r in reminders] == [71, 23]
    assert set(reminders[0].payload) == {"hearing", "case", "proceeding", "scheduled_at",
                                         "hours_before"}, "IDs and codes only"

    # Too early for an outcome; then 48 h pass with none recorded: the chain starts.
    early = await env.gql(OUTCOME, {"i": {"hearingId": hearing["id"], "outcome": "HELD"}},
                          as_=("fund", "caseworker"))
    assert early["data"]["recordHearingOutcome"]["userErrors"][0]["field"] == ["input", "outcome"]
    env.clock.set(at + timedelta(hours=47))
    await run_due(env.runtime.db, env.clock)
    assert await alerts_about(env, "hearing", h, "escalation") == []
    env.clock.set(at + timedelta(hours=48, minutes=1))
    await run_due(env.runtime.db, env.clock)
    escalated = await alerts_about(env, "hearing", h, "escalation")
    assert [(e.payload["level"], e.payload["to"]) for e in escalated] == [(1, "focal_points")]

    recorded = await env.gql(OUTCOME, {"i": {"hearingId": hearing["id"], "outcome": "ADJOURNED",
                                             "notes": "Adjourned: the judge asked for the file."}},
                             as_=("fund", "caseworker"))
    out = recorded["data"]["recordHearingOutcome"]
    assert out["userErrors"] == [] and out["hearing"]["status"] == "ADJOURNED"
    assert out["hearing"]["outcome"] == "Adjourned: the judge asked for the file."
    env.clock.advance(hours=6)
    await run_due(env.runtime.db, env.clock)
    assert len(await alerts_about(env, "hearing", h, "escalation")) == 1, "recorded: it stops"

    case = await case_of(env, pb)
    kinds = [e["kind"] for e in case["timeline"]]
    for kind in ("hearing.scheduled", "hearing.reminded", "hearing.escalated",
                 "hearing.outcome_recorded"):
        assert kind in kinds, kind
    assert case["proceedings"][0]["nextHearingAt"] is None, "no hearing ahead any more"
    assert "judge" not in json.dumps([e["details"] for e in case["timeline"]])


async def test_rescheduling_and_cancelling_move_the_next_hearing_and_silence_the_old_date(
        justice_env):
    env = justice_env
    pb = await new_peacebuilder(env, "fund")
    first_at = env.clock.now() + timedelta(days=5)
    # recordProceeding's nextHearingAt schedules a hearing that reminds like any other.
    pid = await proceeding(env, pb, next_hearing=first_at)
    case = await case_of(env, pb)
    assert [h["status"] for h in case["hearings"]] == ["SCHEDULED"]
    first = case["hearings"][0]
    later = first_at + timedelta(days=7)
    moved = await env.gql(RESCHEDULE, {"i": {"hearingId": first["id"],
                                             "scheduledAt": later.isoformat()}},
                          as_=("fund", "caseworker"))
    new = moved["data"]["rescheduleHearing"]["hearing"]
    assert new["status"] == "SCHEDULED" and new["rescheduledFromId"] == first["id"]
    case = await case_of(env, pb)
    assert [h["status"] for h in case["hearings"]] == ["RESCHEDULED", "SCHEDULED"]
    assert same_instant(case["proceedings"][0]["nextHearingAt"], later)
    again = await env.gql(CANCEL, {"i": {"hearingId": first["id"]}}, as_=("fund", "caseworker"))
    assert again["data"]["cancelHearing"]["userErrors"][0]["code"] == "CONFLICT"

    env.clock.set(first_at - timedelta(hours=23))  # the old date's reminders would be due
    await run_due(env.runtime.db, env.clock)
    assert await alerts_about(env, "hearing", raw(first["id"], "Hearing"), "hearing_due") == []
    cancelled = await env.gql(CANCEL, {"i": {"hearingId": new["id"]}}, as_=("fund", "caseworker"))
    assert cancelled["data"]["cancelHearing"]["hearing"]["status"] == "CANCELLED"
    case = await case_of(env, pb)
    assert case["proceedings"][0]["nextHearingAt"] is None
    env.clock.set(later + timedelta(days=3))
    await run_due(env.runtime.db, env.clock)
    for h in (first["id"], new["id"]):
        assert await alerts_about(env, "hearing", raw(h, "Hearing"), "escalation") == []
        assert await alerts_about(env, "hearing", raw(h, "Hearing"), "hearing_due") == []
    assert pid


async def test_detention_checks_escalate_a_visit_satisfies_and_release_ends_them(justice_env):
    env = justice_env
    pb = await new_peacebuilder(env, "fund")
    detained_at = env.clock.now() - timedelta(hours=1)
    body = await env.gql(DETAIN, {"i": {"caseId": pb["case"], "detainedAt": detained_at.isoformat(),
                                        "place": "Central prison, block C"}},
                         as_=("fund", "caseworker"))
    detention = body["data"]["recordDetention"]["detention"]
    assert detention["status"] == "detained" and detention["place"] == "Central prison, block C"
    twice = await env.gql(DETAIN, {"i": {"caseId": pb["case"],
                                         "detainedAt": detained_at.isoformat()}},
                          as_=("fund", "caseworker"))
    assert twice["data"]["recordDetention"]["userErrors"][0]["code"] == "CONFLICT"
    case = await case_of(env, pb)
    checks = {c["kind"]: c for c in case["detentionChecks"]}
    assert {k: (datetime.fromisoformat(c["dueAt"]) - detained_at, c["status"])
            for k, c in checks.items()} == {
        "LAWYER_ACCESS": (timedelta(hours=24), "pending"),
        "MEDICAL_ACCESS": (timedelta(hours=48), "pending"),
        "FAMILY_VISIT": (timedelta(hours=72), "pending")}

    wrong = await env.gql(VISIT, {"i": {"detentionId": detention["id"], "visitor": "CONSULAR",
                                        "visitedAt": env.clock.now().isoformat(),
                                        "satisfies": "LAWYER_ACCESS"}},
                          as_=("fund", "caseworker"))
    assert wrong["data"]["recordDetentionVisit"]["userErrors"][0]["field"] == ["input",
                                                                               "satisfies"]
    visit = await env.gql(VISIT, {"i": {"detentionId": detention["id"], "visitor": "LAWYER",
                                        "visitedAt": env.clock.now().isoformat(),
                                        "notes": "Access granted for 20 minutes."}},
                          as_=("fund", "caseworker"))
    v = visit["data"]["recordDetentionVisit"]["visit"]
    assert v["satisfies"] == "LAWYER_ACCESS" and v["notes"] == "Access granted for 20 minutes."

    env.clock.set(detained_at + timedelta(hours=24, minutes=1))
    await run_due(env.runtime.db, env.clock)
    lawyer = raw(checks["LAWYER_ACCESS"]["id"], "DetentionCheck")
    medical = raw(checks["MEDICAL_ACCESS"]["id"], "DetentionCheck")
    family = raw(checks["FAMILY_VISIT"]["id"], "DetentionCheck")
    assert await alerts_about(env, "detention_check", lawyer, "escalation") == [], "satisfied"
    env.clock.set(detained_at + timedelta(hours=48, minutes=1))
    await run_due(env.runtime.db, env.clock)
    escalated = await alerts_about(env, "detention_check", medical, "escalation")
    assert [(e.payload["level"], e.payload["check"]) for e in escalated] == [
        (1, "medical_access")]
    assert "Central" not in json.dumps(escalated[0].payload)

    released = await env.gql(RELEASE, {"i": {"detentionId": detention["id"]}},
                             as_=("fund", "caseworker"))
    assert released["data"]["releaseDetention"]["detention"]["status"] == "released"
    env.clock.set(detained_at + timedelta(hours=96))
    await run_due(env.runtime.db, env.clock)
    assert len(await alerts_about(env, "detention_check", medical, "escalation")) == 1
    assert await alerts_about(env, "detention_check", family, "escalation") == []
    after = await env.gql(VISIT, {"i": {"detentionId": detention["id"], "visitor": "FAMILY",
                                        "visitedAt": env.clock.now().isoformat()}},
                          as_=("fund", "caseworker"))
    assert after["data"]["recordDetentionVisit"]["userErrors"][0]["code"] == "CONFLICT"

    case = await case_of(env, pb)
    assert {c["kind"]: c["status"] for c in case["detentionChecks"]} == {
        "LAWYER_ACCESS": "satisfied", "MEDICAL_ACCESS": "ended", "FAMILY_VISIT": "ended"}
    kinds = [e["kind"] for e in case["timeline"]]
    for kind in ("detention_watch.started", "detention_visit.recorded",
                 "detention_check.satisfied", "detention_check.escalated",
                 "detention_watch.released"):
        assert kind in kinds, kind
    assert "Central" not in json.dumps([e["details"] for e in case["timeline"]])
    # The sealed place and notes were read under `legal`, and the access log says so.
    pb_uuid = raw(pb["id"], "Peacebuilder")
    async with env.runtime.db.transaction() as s:
        rows = list(await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "data.read", AccessLogEntry.decision == "allow")))
    assert any("legal" in (r.details or {}).get("records", {}).get(pb_uuid, []) for r in rows)
    # She sees her detention watch herself.
    her = await env.peacebuilder_token(pb["login"])
    mine = await env.gql("{ me { cases { detentions { status place } detentionChecks { kind } } } }",
                         token=her, purpose=None)
    assert mine["data"]["me"]["cases"][0]["detentions"] == [
        {"status": "released", "place": "Central prison, block C"}]
    history = await env.gql("{ accessHistory(first: 100) { edges { node { description } } } }",
                            token=her, purpose=None)
    said = {e["node"]["description"] for e in history["data"]["accessHistory"]["edges"]}
    assert {"recorded that you are detained, to watch over your detention",
            "recorded a visit to you in detention", "recorded your release"} <= said


async def test_without_legal_consent_there_is_nothing(justice_env):
    env = justice_env
    pb = await new_peacebuilder(env, "fund")
    # mofa may see the case (incident details) but not its legal data.
    await grant(env, pb, as_=("fund", "focal"), to_org="mofa", categories=("INCIDENT_DETAILS",))
    pid = await proceeding(env, pb)
    hearing = await schedule(env, pid, env.clock.now() + timedelta(days=3))
    detained = await env.gql(DETAIN, {"i": {"caseId": pb["case"],
                                            "detainedAt": env.clock.now().isoformat(),
                                            "place": "Police station 4"}},
                             as_=("fund", "caseworker"))
    detention = detained["data"]["recordDetention"]["detention"]

    seen = await case_of(env, pb, as_=("mofa", "focal"))
    assert (seen["hearings"], seen["detentions"], seen["detentionChecks"],
            seen["detentionVisits"]) == ([], [], [], [])
    assert not [e for e in seen["timeline"] if e["kind"].startswith(("hearing", "detention"))]

    def answer(body: dict) -> tuple:
        return (body["data"], [(e["message"], e["extensions"]["code"]) for e in body["errors"]])

    missing_h = ids.encode("Hearing", uuid.uuid4())
    missing_d = ids.encode("Detention", uuid.uuid4())
    missing_p = ids.encode("Proceeding", uuid.uuid4())
    for query, real, fake in [
        (OUTCOME, {"hearingId": hearing["id"], "outcome": "HELD"},
         {"hearingId": missing_h, "outcome": "HELD"}),
        (CANCEL, {"hearingId": hearing["id"]}, {"hearingId": missing_h}),
        (SCHEDULE, {"proceedingId": pid, "scheduledAt": "2040-01-01T00:00:00+00:00"},
         {"proceedingId": missing_p, "scheduledAt": "2040-01-01T00:00:00+00:00"}),
        (VISIT, {"detentionId": detention["id"], "visitor": "LAWYER",
                 "visitedAt": env.clock.now().isoformat()},
         {"detentionId": missing_d, "visitor": "LAWYER",
          "visitedAt": env.clock.now().isoformat()}),
        (RELEASE, {"detentionId": detention["id"]}, {"detentionId": missing_d}),
    ]:
        a = await env.gql(query, {"i": real}, as_=("mofa", "focal"))
        b = await env.gql(query, {"i": fake}, as_=("mofa", "focal"))
        assert answer(a) == answer(b), query
        assert answer(a)[1][0][1] == "NOT_FOUND"
    also = await env.gql(DETAIN, {"i": {"caseId": pb["case"],
                                        "detainedAt": env.clock.now().isoformat()}},
                         as_=("mofa", "focal"))
    assert also["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    case = await case_of(env, pb)  # nothing changed for the lead either
    assert [h["status"] for h in case["hearings"]] == ["SCHEDULED"]
    assert [d["status"] for d in case["detentions"]] == ["detained"]


def test_every_free_text_justice_column_has_a_category():
    for table, fields in JUSTICE_FIELDS.items():
        text_columns = {c.name for c in Base.metadata.tables[table].columns
                        if isinstance(c.type, Text)}
        assert text_columns == set(fields), table
    assert {t for t in ("detention_checks",)
            if any(isinstance(c.type, Text) for c in Base.metadata.tables[t].columns)} == set()


async def test_detention_check_overdue_escalates_once_across_two_app_instances(justice_env):
    env = justice_env
    pb = await new_peacebuilder(env, "fund")
    detained_at = env.clock.now()
    body = await env.gql(DETAIN, {"i": {"caseId": pb["case"],
                                        "detainedAt": detained_at.isoformat()}},
                         as_=("fund", "caseworker"))
    assert body["data"]["recordDetention"]["userErrors"] == [], body
    case = await case_of(env, pb)
    lawyer = next(c for c in case["detentionChecks"] if c["kind"] == "LAWYER_ACCESS")
    check = raw(lawyer["id"], "DetentionCheck")

    # A second instance of the app: its own runtime, pool and scheduler, on the same database.
    other_runtime = Runtime.create(env.settings, clock=env.clock)
    other_app = create_app(other_runtime)
    lifespan = other_app.router.lifespan_context(other_app)
    await lifespan.__aenter__()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app),
                                     base_url="http://other") as other:
            ready = await other.get("/readyz")
            assert ready.status_code == 200, ready.text
        schedulers = [env.runtime.extras["scheduler"], other_runtime.extras["scheduler"]]
        env.clock.set(detained_at + timedelta(hours=24, minutes=1))
        await asyncio.gather(*(s.tick() for s in schedulers))
        await asyncio.gather(*(s.tick() for s in schedulers))  # and again: nothing more due
        items = await alerts_about(env, "detention_check", check, "escalation")
        assert [i.payload["level"] for i in items] == [1]
        # The level's time (60 min) passes: level 2 fires once too, whoever claims it.
        env.clock.advance(minutes=61)
        await asyncio.gather(*(s.tick() for s in schedulers))
        async with env.runtime.db.transaction() as s:
            from app.tables.incidents import CaseEvent

            events = list(await s.scalars(select(CaseEvent).where(
                CaseEvent.subject_id == uuid.UUID(check),
                CaseEvent.kind.in_(("detention_check.escalated",
                                    "detention_check.escalation_skipped")))))
        steps = sorted((e.kind, e.details.get("step"), e.details.get("level")) for e in events)
        escalated = [s for s in steps if s[0] == "detention_check.escalated"]
        assert len(escalated) == len({s[1] for s in escalated}) == 2, steps
        assert len(await alerts_about(env, "detention_check", check, "escalation")) == 2
    finally:
        await lifespan.__aexit__(None, None, None)
        await other_runtime.close()


async def test_an_organisations_own_check_deadlines_and_a_named_hearing_owner(justice_env,
                                                                              tmp_path):
    env = justice_env
    slug = f"jus{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{slug}.yaml").write_text(f"""slug: {slug}
name: Justice test organisation
kind: peacebuilders_network
country: "KE"
users:
  - {{username: admin, name: Administrator, roles: [org_admin]}}
  - {{username: focal, name: Focal point, roles: [focal_point]}}
  - {{username: caseworker, name: Case worker, roles: [caseworker]}}
detention_checks: {{lawyer_access: 6}}
""")
    async with env.runtime.db.transaction() as session:
        ctx = context_for(env.runtime, session, SYSTEM, request_id="test-tenants")
        applied = await tenant_service.apply(ctx, tenant_schema.load_dir(tmp_path))
    assert f"organisation {slug}: detention check deadlines set" in applied.changes
    pb = await new_peacebuilder(env, slug)
    now = env.clock.now()
    body = await env.gql(DETAIN, {"i": {"caseId": pb["case"], "detainedAt": now.isoformat()}},
                         as_=(slug, "caseworker"))
    assert body["data"]["recordDetention"]["userErrors"] == [], body
    case = await case_of(env, pb, as_=(slug, "caseworker"))
    assert {c["kind"]: datetime.fromisoformat(c["dueAt"]) - now
            for c in case["detentionChecks"]} == {
        "LAWYER_ACCESS": timedelta(hours=6), "MEDICAL_ACCESS": timedelta(hours=48),
        "FAMILY_VISIT": timedelta(hours=72)}

    users = await env.gql("{ users(first: 20) { edges { node { id username } } } }",
                          as_=(slug, "admin"))
    by_name = {e["node"]["username"]: e["node"]["id"] for e in users["data"]["users"]["edges"]}
    made = await env.gql(PROCEEDING, {"c": pb["case"], "n": None}, as_=(slug, "caseworker"))
    pid = made["data"]["recordProceeding"]["proceeding"]["id"]
    at = now + timedelta(days=4)
    body = await env.gql(SCHEDULE, {"i": {"proceedingId": pid, "scheduledAt": at.isoformat(),
                                          "ownerId": by_name["caseworker"]}},
                         as_=(slug, "caseworker"))
    hearing = raw(body["data"]["scheduleHearing"]["hearing"]["id"], "Hearing")
    env.clock.set(at - timedelta(hours=24, minutes=-1))
    await run_due(env.runtime.db, env.clock)
    assert len(await alerts_about(env, "hearing", hearing, "hearing_due",
                                  who=(slug, "caseworker"))) == 2
    assert await alerts_about(env, "hearing", hearing, "hearing_due", who=(slug, "focal")) == []


@pytest.mark.parametrize("bad, message", [
    ("detention_checks: {lawyer_access: 0}", "whole hours"),
    ("detention_checks: {lawyer_access: 1.5}", "whole hours"),
    ("detention_checks: {visit: 4}", "visit"),
])
def test_detention_check_declarations_are_validated(tmp_path, bad: str, message: str):
    path = tmp_path / "x.yaml"
    path.write_text("slug: xorg\nname: X\nkind: fund\ncountry: \"KE\"\n" + bad + "\n")
    with pytest.raises(tenant_schema.TenantFileError) as err:
        tenant_schema.parse_file(path)
    assert message in str(err.value) and "x.yaml:" in str(err.value)
