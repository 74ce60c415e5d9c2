"""Insider review of issues 17 and 18 — through GraphQL on both databases, with the controlled
clock.

- Justice alerts follow her consent (docs/decisions/0024, amendment): once she withdraws `legal`
  from an organisation, hearing reminders to it stop, and escalations of a detention check or
  an unrecorded hearing outcome either go to the organisation that recorded the item and still
  holds `legal`, or tell the uncovered chain only that an item on the case needs attention —
  in the stored alert, the inbox query and the subscription alike.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import websockets
from sqlalchemy import select

from app.clock import FrozenClock
from app.notify import inbox as inbox_mod
from app.runtime import Runtime
from app.scheduler import run_due
from app.tables.orgs import Client as OAuthClient
from schema import ids
from tests.conftest import BACKENDS, build_env
from tests.factories import current_assessment
from tests.test_consent import NARROW, grant, new_peacebuilder
from tests.test_incidents import inbox_of, inbox_since
from tests.test_justice import DETAIN, SCHEDULE, case_of, proceeding, raw
from tests.test_realtime import serve

pytestmark = pytest.mark.anyio

# What would tell an organisation she is detained, or when she is in court.
JUSTICE_KEYS = {"hearing", "detention", "detention_check", "check", "scheduled_at", "proceeding",
                "due_at", "hours_before"}
INBOX = "query($a: String) { inbox(after: $a) { kind payload } }"


@pytest.fixture(scope="module", params=BACKENDS)
async def env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2037, 3, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("insider17"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def narrow_legal(env, pb: dict) -> None:
    her = await env.peacebuilder_token(pb["login"])
    body = await env.gql(NARROW, {"input": {"grantId": pb["grant"], "categories": ["LEGAL"]}},
                         token=her, purpose=None)
    assert body["data"]["narrowConsent"]["userErrors"] == [], body
    assert "LEGAL" not in body["data"]["narrowConsent"]["grant"]["categories"]


async def detain(env, pb: dict, as_: tuple[str, str]) -> str:
    body = await env.gql(DETAIN, {"i": {"caseId": pb["case"],
                                        "detainedAt": env.clock.now().isoformat()}}, as_=as_)
    assert body["data"]["recordDetention"]["userErrors"] == [], body
    return body["data"]["recordDetention"]["detention"]["id"]


async def subscribed(env, after: str) -> list[dict]:
    """What fund's focal point receives over the real subscription, replaying from `after`."""
    runtime = Runtime.create(replace(env.settings, scheduler=False, log_worker=False),
                             clock=env.clock)
    token = await env.token("fund", "focal")
    got: list[dict] = []
    try:
        async with serve(runtime) as port, websockets.connect(
                f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {
                "authorization": f"Bearer {token}", "purpose": "protection"}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription($a: String) { alerts(after: $a) { kind payload } }",
                "variables": {"a": after}}}))
            while True:
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 3))
                except TimeoutError:
                    break
                if message["type"] == "next":
                    got.append(message["payload"]["data"]["alerts"])
    finally:
        await runtime.close()
    return got


async def test_justice_alerts_tell_nothing_to_an_organisation_she_withdrew_legal_from(env):
    t0 = env.clock.now()
    since = inbox_mod.cursor_before(t0)
    # A: led by fund; wpn (her legal-aid network) holds legal too and records her detention.
    a = await new_peacebuilder(env, "fund")
    await grant(env, a, as_=("fund", "focal"), to_org="wpn",
                categories=("INCIDENT_DETAILS", "LEGAL"), purposes=("PROTECTION",))
    # B: led by fund, which records the detention itself; nobody else holds legal.
    b = await new_peacebuilder(env, "fund")
    at = t0 + timedelta(days=3, hours=2)
    hearing = raw((await schedule_for(env, a, at))["id"], "Hearing")
    detained_a = raw(await detain(env, a, ("wpn", "focal")), "Detention")
    detained_b = raw(await detain(env, b, ("fund", "caseworker")), "Detention")
    cases = {raw(a["case"], "Case"), raw(b["case"], "Case")}

    # The 72 h reminder reaches fund while her consent covers it…
    env.clock.set(at - timedelta(hours=72, minutes=-1))
    await run_due(env.runtime.db, env.clock)
    assert [i.payload["hearing"] for i in await inbox_of(env, "fund", "focal")
            if i.kind == "hearing_due"] == [hearing]

    # …then she withdraws legal from fund for both cases.
    await narrow_legal(env, a)
    await narrow_legal(env, b)
    withdrawn = env.clock.now()
    shown = await env.gql(INBOX, {"a": since}, as_=("fund", "focal"))
    assert [x for x in shown["data"]["inbox"] if x["kind"] == "hearing_due"] == [], \
        "an earlier reminder is no longer delivered"

    # The lawyer-access checks fall due (24 h), and later the 24 h reminder and the outcome.
    env.clock.set(t0 + timedelta(hours=24, minutes=1))
    await run_due(env.runtime.db, env.clock)
    env.clock.set(at - timedelta(hours=24, minutes=-1))
    await run_due(env.runtime.db, env.clock)
    env.clock.set(at + timedelta(hours=48, minutes=1))
    await run_due(env.runtime.db, env.clock)

    stored = [i for i in await inbox_of(env, "fund", "focal")
              if i.created_at > withdrawn and str(i.case_id) in cases]
    assert stored, "the uncovered chain is still told that something needs attention"
    assert {i.kind for i in stored} == {"escalation"}, "no more hearing reminders"
    for item in stored:
        assert not JUSTICE_KEYS & set(item.payload), item.payload
        assert item.payload["attention"] == "needed"
    assert {str(i.case_id) for i in stored} == cases
    # A's checks went to wpn, which recorded the detention and still holds legal: it can act.
    to_wpn = [i for i in await inbox_of(env, "wpn", "focal")
              if i.kind == "escalation" and i.payload.get("detention") == detained_a]
    assert {i.payload["check"] for i in to_wpn} >= {"lawyer_access"}
    assert not [i for i in stored if str(i.case_id) == raw(a["case"], "Case")
                and i.subject_id is not None and i.payload.get("level") is None]

    # Through the API: the inbox query and the subscription carry nothing of the justice items.
    shown = await env.gql(INBOX, {"a": since}, as_=("fund", "focal"))
    mine = [x for x in shown["data"]["inbox"] if json.loads(x["payload"]).get("case")
            in {a["case"], b["case"]}]
    live = [x for x in await subscribed(env, since)
            if json.loads(x["payload"]).get("case") in {a["case"], b["case"]}]
    for seen in (mine, live):
        assert seen and {x["kind"] for x in seen} <= {"escalation", "incident_reported"}, seen
        for x in seen:
            assert not JUSTICE_KEYS & set(json.loads(x["payload"])), x
            for secret in (hearing, detained_a, detained_b, "lawyer_access", at.isoformat()[:10]):
                assert secret not in x["payload"]
    # Nor does fund see the justice items on the case any more; its timeline says the
    # reminders stopped (for those who may read legal).
    seen_b = await case_of(env, b, as_=("fund", "focal"))
    assert seen_b["detentions"] == [] and seen_b["detentionChecks"] == []


async def schedule_for(env, pb: dict, at: datetime) -> dict:
    pid = await proceeding(env, pb)
    body = await env.gql(SCHEDULE, {"i": {"proceedingId": pid, "scheduledAt": at.isoformat()}},
                         as_=("fund", "caseworker"))
    assert body["data"]["scheduleHearing"]["userErrors"] == [], body
    return body["data"]["scheduleHearing"]["hearing"]


async def test_a_hearing_of_an_organisation_she_cut_off_is_flagged_to_the_lead(env):
    pb = await new_peacebuilder(env, "fund")
    given = await grant(env, pb, as_=("fund", "focal"), to_org="wpn",
                        categories=("INCIDENT_DETAILS", "LEGAL"), purposes=("PROTECTION",))
    made = await env.gql("""mutation($c: ID!) { recordProceeding(input: {caseId: $c,
      kind: investigation, data: {stage: "charged"}}) { proceeding { id } } }""",
                         {"c": pb["case"]}, as_=("wpn", "focal"))
    pid = made["data"]["recordProceeding"]["proceeding"]["id"]
    at = env.clock.now() + timedelta(days=5)
    body = await env.gql(SCHEDULE, {"i": {"proceedingId": pid, "scheduledAt": at.isoformat()}},
                         as_=("wpn", "focal"))
    hearing = raw(body["data"]["scheduleHearing"]["hearing"]["id"], "Hearing")
    her = await env.peacebuilder_token(pb["login"])
    narrowed = await env.gql(NARROW, {"input": {"grantId": given["id"], "categories": ["LEGAL"]}},
                             token=her, purpose=None)
    assert narrowed["data"]["narrowConsent"]["userErrors"] == []
    flagged = [i for i in await inbox_of(env, "fund", "focal")
               if i.kind == "task_owner_uncovered" and i.payload.get("hearing") == hearing]
    assert len(flagged) == 1 and set(flagged[0].payload) == {"hearing", "case", "owner"}
    env.clock.set(at - timedelta(hours=24, minutes=-1))
    await run_due(env.runtime.db, env.clock)
    assert [i for i in await inbox_of(env, "wpn", "focal")
            if i.kind == "hearing_due" and i.payload.get("hearing") == hearing] == []
    assert len([i for i in await inbox_of(env, "fund", "focal")
                if i.kind == "task_owner_uncovered"
                and i.payload.get("hearing") == hearing]) == 1, "once"


# --- accountable closure: no way around the two-person rule, no machine deciding ------------

CLOSE = """mutation($i: CloseCaseInput!) { closeCase(input: $i) {
  case { status } confirmationId userErrors { field message code } } }"""
REOPEN = """mutation($i: ReopenCaseInput!) { reopenCase(input: $i) {
  case { status } userErrors { field message code } } }"""
UPDATE = """mutation($i: UpdateCaseInput!) { updateCase(input: $i) {
  case { status riskLevel } userErrors { field message code } } }"""
HOLD = """mutation($i: SetRetentionHoldInput!) { setRetentionHold(input: $i) {
  case { retentionHold } userErrors { field message code } } }"""


def plan(env) -> list[dict]:
    return [{"kind": "ACCOMPANIMENT", "dueAt": (env.clock.now() + timedelta(days=7)).isoformat()}]


async def test_lowering_the_risk_first_does_not_let_one_person_close_a_high_risk_case(env):
    pb = await new_peacebuilder(env, "fund")
    # The level is her joint assessment's (issue 19): critical, then reassessed low.
    await current_assessment(env, pb["case"], "fund", login=pb["login"], level="CRITICAL")
    await current_assessment(env, pb["case"], "fund", login=pb["login"], level="LOW")
    lowered = await env.gql("query($id: ID!) { case(id: $id) { riskLevel } }",
                            {"id": pb["case"]}, as_=("fund", "caseworker"))
    assert lowered["data"]["case"]["riskLevel"] == "LOW"
    asked = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RISK_RESOLVED",
                                        "followUp": plan(env)}}, as_=("fund", "focal"))
    payload = asked["data"]["closeCase"]
    assert payload["userErrors"] == [] and payload["confirmationId"], payload
    assert payload["case"]["status"] == "OPEN", "a second focal point must confirm"
    timeline = await env.gql("query($id: ID!) { case(id: $id) { timeline { kind details } } }",
                             {"id": pb["case"]}, as_=("fund", "focal"))
    changes = [e for e in timeline["data"]["case"]["timeline"] if e["kind"] == "case.risk_changed"]
    assert {"from": "critical", "to": "low"} in [
        json.loads(e["details"]) if isinstance(e["details"], str) else e["details"]
        for e in changes]


async def test_a_machine_client_cannot_close_reopen_or_hold_a_case(env):
    pb = await new_peacebuilder(env, "fund")
    machine = await env.token("fund", client="fund-system")
    async with env.runtime.db.transaction() as s:
        found = await s.scalar(select(OAuthClient).where(OAuthClient.client_id == "fund-system"))
        member = ids.encode("Client", found.id)
    done = await env.gql("""mutation($i: CaseTeamInput!) { assignCaseTeamMember(input: $i) {
        userErrors { message } } }""", {"i": {"caseId": pb["case"], "memberId": member}},
                         as_=("fund", "focal"))
    assert done["data"]["assignCaseTeamMember"]["userErrors"] == [], done
    seen = await env.gql("query($id: ID!) { case(id: $id) { id } }", {"id": pb["case"]},
                         token=machine)
    assert seen["data"]["case"]["id"] == pb["case"], "the client works on the case"
    refused = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RISK_RESOLVED",
                                          "followUp": plan(env)}}, token=machine)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused
    case = await case_of(env, pb, as_=("fund", "focal"))
    assert not [e for e in case["timeline"] if e["kind"] == "case.closed"]
    closed = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RISK_RESOLVED",
                                         "followUp": plan(env)}}, as_=("fund", "focal"))
    assert closed["data"]["closeCase"]["case"]["status"] == "CLOSED", closed
    for query, variables in (
            (REOPEN, {"i": {"caseId": pb["case"], "reason": "NEW_THREAT"}}),
            (HOLD, {"i": {"caseId": pb["case"], "hold": True, "reason": "LEGAL_PROCEEDINGS"}})):
        body = await env.gql(query, variables, token=machine)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        assert "Case" not in body["errors"][0]["message"]
    after = await env.gql("query($id: ID!) { case(id: $id) { status retentionHold } }",
                          {"id": pb["case"]}, as_=("fund", "focal"))
    assert after["data"]["case"] == {"status": "CLOSED", "retentionHold": None}


# --- issue 17, "tests that must exist": the convener's own case reaches the NHRI -------------

async def test_a_case_led_by_the_convener_reaches_the_nhri(env):
    from tests.test_consent import wg_id
    from tests.test_escalation import report, timeline

    pb = await new_peacebuilder(env, "unpc")
    # She grants the Joint Action Group that unpc itself convenes; unpc is overseen by the NHRI.
    await grant(env, pb, as_=("unpc", "focal"), to_wg=await wg_id(env))
    await report(env, pb, "unpc")
    before = await inbox_of(env, "nhri", "focal")
    for _ in range(4):  # past every level of unpc's chain
        env.clock.advance(minutes=61)
        await run_due(env.runtime.db, env.clock)
    events = await timeline(env, pb["case"], "unpc")
    told = [e for e in events if e["kind"] == "incident.oversight_notified"]
    assert len(told) == 1 and told[0]["organisations"], "never to no organisation"
    escalated = [e for e in events if e["kind"] == "incident.escalated"]
    assert escalated and all(e["recipients"] > 0 for e in escalated)
    notices = [i for i in await inbox_since(env, "nhri", "focal", before)
               if i.kind == "escalation_notice"]
    assert len(notices) == 1 and notices[0].payload["what"] == "incident"
    assert notices[0].case_id is None and "case" not in notices[0].payload


# --- another tenant learns nothing: the same bytes for its objects as for missing ones --------

async def test_another_tenant_gets_the_same_answer_as_for_a_missing_object(env):
    import uuid

    users = await env.gql("{ users(first: 20) { edges { node { id username } } } }",
                          as_=("fund", "admin"))
    fund_focal = next(e["node"]["id"] for e in users["data"]["users"]["edges"]
                      if e["node"]["username"] == "focal")
    start = env.clock.now() + timedelta(hours=1)
    shift_vars = {"startsAt": start.isoformat(), "endsAt": (start + timedelta(hours=8)).isoformat()}
    added = await env.gql("""mutation($i: AddDutyShiftInput!) { addDutyShift(input: $i) {
      shift { id } userErrors { field message code } } }""", {"i": {"userId": fund_focal,
                                                                   **shift_vars}},
                          as_=("fund", "admin"))
    shift = added["data"]["addDutyShift"]["shift"]["id"]
    pb = await new_peacebuilder(env, "fund")
    closed = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RISK_RESOLVED",
                                         "followUp": plan(env)}}, as_=("fund", "focal"))
    assert closed["data"]["closeCase"]["case"]["status"] == "CLOSED"

    def missing(kind: str) -> str:
        return ids.encode(kind, uuid.uuid4())

    add_shift = """mutation($i: AddDutyShiftInput!) { addDutyShift(input: $i) {
      shift { id } userErrors { field message code } } }"""
    remove_shift = """mutation($i: DutyShiftIdInput!) { removeDutyShift(input: $i) {
      shift { id } userErrors { field message code } } }"""
    for query, real, fake in [
            (add_shift, {"userId": fund_focal, **shift_vars},
             {"userId": missing("User"), **shift_vars}),
            (remove_shift, {"id": shift}, {"id": missing("DutyShift")}),
            (REOPEN, {"caseId": pb["case"], "reason": "NEW_THREAT"},
             {"caseId": missing("Case"), "reason": "NEW_THREAT"}),
            (HOLD, {"caseId": pb["case"], "hold": True, "reason": "INVESTIGATION"},
             {"caseId": missing("Case"), "hold": True, "reason": "INVESTIGATION"})]:
        who = ("mofa", "admin") if "DutyShift" in query else ("mofa", "focal")
        a = await env.gql(query, {"i": real}, as_=who)
        b = await env.gql(query, {"i": fake}, as_=who)
        assert a == b, (query, a, b)
        assert a.get("errors") or any(v.get("userErrors") for v in a["data"].values()), a
    # Nothing changed at fund.
    still = await env.gql("query($id: ID!) { case(id: $id) { status retentionHold } }",
                          {"id": pb["case"]}, as_=("fund", "focal"))
    assert still["data"]["case"] == {"status": "CLOSED", "retentionHold": None}


async def test_a_recorder_whose_chain_reaches_nobody_does_not_silence_the_check(env, tmp_path):
    """She withdrew legal from the lead; the organisation that recorded the detention still holds
    it but no longer has anyone active: the lead's chain is told, content-free, rather than
    nobody."""
    import uuid

    from app.access.principal import SYSTEM
    from app.runtime import context_for
    from app.tenants import schema as tenant_schema
    from app.tenants import service as tenant_service
    from tests.test_auth import DEACTIVATE_USER

    slug = f"law{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{slug}.yaml").write_text(f"""slug: {slug}
name: Legal aid test organisation
kind: peacebuilders_network
country: "KE"
users:
  - {{username: admin, name: Administrator, roles: [org_admin]}}
  - {{username: focal, name: Focal point, roles: [focal_point]}}
""")
    async with env.runtime.db.transaction() as session:
        ctx = context_for(env.runtime, session, SYSTEM, request_id="test-tenants")
        await tenant_service.apply(ctx, tenant_schema.load_dir(tmp_path))
    from tests import factories

    factories._org_ids.pop(id(env), None)  # a new organisation: list them again
    pb = await new_peacebuilder(env, "fund")
    await grant(env, pb, as_=("fund", "focal"), to_org=slug,
                categories=("INCIDENT_DETAILS", "LEGAL"), purposes=("PROTECTION",))
    t0 = env.clock.now()
    await detain(env, pb, (slug, "focal"))
    await narrow_legal(env, pb)
    users = await env.gql("{ users(first: 20) { edges { node { id username } } } }",
                          as_=(slug, "admin"))
    focal = next(e["node"]["id"] for e in users["data"]["users"]["edges"]
                 if e["node"]["username"] == "focal")
    off = await env.gql(DEACTIVATE_USER, {"id": focal}, as_=(slug, "admin"))
    assert off["data"]["deactivateUser"]["user"]["active"] is False

    env.clock.set(t0 + timedelta(hours=24, minutes=1))
    await run_due(env.runtime.db, env.clock)
    told = [i for i in await inbox_of(env, "fund", "focal")
            if i.kind == "escalation" and str(i.case_id) == raw(pb["case"], "Case")]
    assert told, "someone who can act is told"
    assert all(not JUSTICE_KEYS & set(i.payload) for i in told), [i.payload for i in told]
