"""Issue 18, "She is told": a notice in her inbox for every change that concerns her — through
GraphQL, on both databases, with the controlled clock.

- each wired kind of change, driven through the API, is read back from `me.notices` with her
  token, in her language, with kind, date and case reference only: the raw JSON carries neither
  her pseudonym nor any free text written along the way;
- `tell_her` refuses any detail that is not an allowed key with an ID, a date or a code;
- a grant about to end is announced once, with two app instances running the scheduler;
- a woman without a login is told through her network's focal points (IDs and codes only);
- her subscription `myNotices` delivers new notices as they are raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from app.clock import FrozenClock
from app.her.notices import NoticeKind, UnsafeNotice, details_of
from app.peacebuilders.notice_text import TITLES
from app.runtime import Runtime
from app.scheduler import run_due
from app.tables.consent import Notice
from app.tables.peacebuilders import Peacebuilder
from schema import ids
from tests.conftest import BACKENDS, build_env
from tests.factories import current_assessment
from tests.test_consent import grant, org_id, wg_id
from tests.test_consent_integrity import (
    CLOSE_GLASS,
    GLASS_REASON,
    INBOX,
    OPEN_GLASS,
    SECRETS,
    build,
    gql_ok,
    her_token,
    token,
)
from tests.test_incidents import REPORT, inbox_of, inbox_since, incident_input

pytestmark = pytest.mark.anyio

NOTICES = """query($after: String, $first: Int, $lang: String) {
  me { notices(after: $after, first: $first, language: $lang) {
    id kind createdAt details cursor language title text caseId caseReference reason } } }"""
ACK = "mutation($id: ID!) { acknowledgeIncident(id: $id) { incident { status } } }"
STATUS = """mutation($id: ID!, $s: IncidentStatus!) { setIncidentStatus(id: $id, status: $s) {
  incident { status } userErrors { message } } }"""
MEASURE = """mutation($c: ID!, $k: MeasureKind!, $a: ID, $d: String) { addMeasure(input: {
  caseId: $c, kind: $k, approvalId: $a, description: $d}) {
  measure { id } userErrors { field message } } }"""
MEASURE_STATUS = """mutation($id: ID!, $s: String!, $r: String) { setMeasureStatus(id: $id,
  status: $s, reason: $r) { measure { status } userErrors { field message } } }"""
REFER = """mutation($c: ID!, $o: ID!) { referCase(input: {caseId: $c, toOrganisationId: $o,
  purpose: LEGAL_SUPPORT, request: "Qx-request: find her a lawyer before Friday."}) {
  referral { id } userErrors { field message } } }"""
MOVE = """mutation($id: ID!, $a: String!, $o: String) { moveReferral(id: $id, action: $a,
  outcome: $o) { referral { status } userErrors { message } } }"""
APPROVE = """mutation($o: ID!) { recordApproval(act: "public_statement", organisationId: $o,
  description: "Qx-approval: a statement of solidarity, without my name.") { approval { id } } }"""
GRANT = """mutation($input: GrantConsentInput!) { grantConsent(input: $input) {
  grant { id status } userErrors { field message code } } }"""
CONFIRM = """mutation($id: ID!) { confirmConsent(input: {grantId: $id}) {
  grant { id status } userErrors { field message code } } }"""
MEMBER = """mutation($w: ID!, $o: ID!) { %s(input: {workingGroupId: $w, organisationId: $o})
  { workingGroup { id } userErrors { message } } }"""
CLOSE = """mutation($i: CloseCaseInput!) { closeCase(input: $i) {
  case { status } userErrors { field message code } } }"""
REOPEN = """mutation($i: ReopenCaseInput!) { reopenCase(input: $i) {
  case { status } userErrors { field message code } } }"""
FREE_TEXT = ["Qx-request", "Qx-outcome", "Qx-approval", "Qx-measure", "Threatening",
             "Call her in a month"]


@pytest.fixture(scope="module", params=BACKENDS)
async def clock_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2033, 3, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("notices"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def speaks(env, pb: str, language: str) -> None:
    """Her preferred language (set at registration in practice; here directly)."""
    async with env.runtime.db.transaction() as s:
        await s.execute(update(Peacebuilder).where(Peacebuilder.id == ids.decode(
            pb, "Peacebuilder")).values(preferred_language=language))


async def her_notices(env, her: str, **variables) -> tuple[list[dict], str]:
    response = await env.post(NOTICES, variables, token=her, purpose=None)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["me"]["notices"], response.text


def later(env, **delta) -> str:
    return (env.clock.now() + timedelta(**delta)).isoformat()


async def test_every_change_that_concerns_her_is_a_notice_in_her_language(clock_env):
    env = clock_env
    w = await build(env, lead="fund", login=True, network=True, case=True, group=True)
    await speaks(env, w.pb, "fr")
    her = await her_token(env, w)
    pb = {"id": w.pb, "login": w.login}
    focal, caseworker = ("fund", "focal"), ("fund", "caseworker")

    # Incidents: acknowledged, status changed; another left unacknowledged escalates.
    first = await env.gql(REPORT, incident_input(w.case), as_=caseworker)
    incident = first["data"]["reportIncident"]["incident"]["id"]
    assert (await env.gql(ACK, {"id": incident}, as_=focal))["data"]["acknowledgeIncident"][
        "incident"]["status"] == "ACKNOWLEDGED"
    moved = await env.gql(STATUS, {"id": incident, "s": "RESPONDING"}, as_=focal)
    assert moved["data"]["setIncidentStatus"]["userErrors"] == []
    await env.gql(REPORT, incident_input(w.case), as_=caseworker)
    # Break-glass by another organisation, left to end on its own.
    await gql_ok(env, OPEN_GLASS, {"id": w.pb, "h": 1, "r": GLASS_REASON},
                 token=await token(env, "embassy", "focal"), purpose="emergency_response")
    env.clock.advance(minutes=61)
    await run_due(env.runtime.db, env.clock)

    # Measures: done; not done, with a reason code.
    done = await env.gql(MEASURE, {"c": w.case, "k": "ACCOMPANIMENT",
                                   "d": "Qx-measure: meet her at the station."}, as_=focal)
    measure = done["data"]["addMeasure"]["measure"]["id"]
    ok = await env.gql(MEASURE_STATUS, {"id": measure, "s": "done"}, as_=focal)
    assert ok["data"]["setMeasureStatus"]["userErrors"] == []
    dropped = await env.gql(MEASURE, {"c": w.case, "k": "SECURE_TRANSPORT"}, as_=focal)
    dropped_id = dropped["data"]["addMeasure"]["measure"]["id"]
    free = await env.gql(MEASURE_STATUS, {"id": dropped_id, "s": "cancelled",
                                          "r": "because her brother said so"}, as_=focal)
    assert free["data"]["setMeasureStatus"]["userErrors"][0]["field"] == ["input", "reason"]
    ok = await env.gql(MEASURE_STATUS, {"id": dropped_id, "s": "cancelled", "r": "she_declined"},
                       as_=focal)
    assert ok["data"]["setMeasureStatus"]["userErrors"] == []

    # Referrals: one accepted, one declined.
    await grant(env, pb, as_=focal, to_org="nhri", categories=["INCIDENT_DETAILS"],
                purposes=["LEGAL_SUPPORT"])
    nhri = await org_id(env, "nhri")
    await current_assessment(env, w.case, "fund", login=w.login)
    for action in ("accept", "decline"):
        made = await env.gql(REFER, {"c": w.case, "o": nhri}, as_=caseworker)
        referral = made["data"]["referCase"]["referral"]["id"]
        moved = await env.gql(MOVE, {"id": referral, "a": action,
                                     "o": "Qx-outcome: a lawyer called her."},
                              as_=("nhri", "focal"), purpose="legal_support")
        assert moved["data"]["moveReferral"]["userErrors"] == [], moved

    # Her approval, used by a public statement.
    approved = await env.gql(APPROVE, {"o": await org_id(env, "fund")}, token=her, purpose=None)
    approval = approved["data"]["recordApproval"]["approval"]["id"]
    used = await env.gql(MEASURE, {"c": w.case, "k": "PUBLIC_STATEMENT", "a": approval}, as_=focal)
    assert used["data"]["addMeasure"]["userErrors"] == []
    # Bound when planned; used — and she is told — when the statement is made.
    made = await env.gql(MEASURE_STATUS, {"id": used["data"]["addMeasure"]["measure"]["id"],
                                          "s": "done"}, as_=focal)
    assert made["data"]["setMeasureStatus"]["userErrors"] == []

    # Break-glass opened and closed.
    glass = await gql_ok(env, OPEN_GLASS, {"id": w.pb, "h": 1, "r": GLASS_REASON},
                         token=await token(env, "mofa", "focal"), purpose="emergency_response")
    await gql_ok(env, CLOSE_GLASS, {"id": glass["data"]["openBreakGlass"]["breakGlass"]["id"]},
                 token=await token(env, "mofa", "focal"), purpose="emergency_response")

    # Consent recorded, and confirmed, by her network for her (not by her).
    wpn = await token(env, "wpn", "focal")
    await gql_ok(env, GRANT, {"input": {"peacebuilderId": w.pb, "categories": ["TRAVEL"],
                                        "recipientOrganisationId": await org_id(env, "mofa"),
                                        "purposes": ["PROTECTION"]}}, token=wpn)
    pending = await gql_ok(env, GRANT, {"input": {
        "peacebuilderId": w.pb, "categories": ["LEGAL"], "obtainedVia": "WRITTEN",
        "recipientOrganisationId": await org_id(env, "fund"), "purposes": ["LEGAL_SUPPORT"]}},
        token=await token(env, "fund", "focal"))
    await gql_ok(env, CONFIRM, {"id": pending["data"]["grantConsent"]["grant"]["id"]}, token=wpn)

    # A new member organisation in the working group she granted.
    jag, unpc = await wg_id(env), ("unpc", "admin")
    embassy = await org_id(env, "embassy")
    await gql_ok(env, MEMBER % "removeWorkingGroupMember", {"w": jag, "o": embassy},
                 token=await token(env, *unpc))
    await gql_ok(env, MEMBER % "addWorkingGroupMember", {"w": jag, "o": embassy},
                 token=await token(env, *unpc))

    # Her case closed (with a reason), then reopened.
    closed = await env.gql(CLOSE, {"i": {"caseId": w.case, "reason": "RISK_RESOLVED", "followUp": [
        {"kind": "PSYCHOSOCIAL_SUPPORT", "dueAt": later(env, days=30),
         "description": "Call her in a month."}]}}, as_=focal)
    assert closed["data"]["closeCase"]["userErrors"] == [], closed
    reopened = await env.gql(REOPEN, {"i": {"caseId": w.case, "reason": "NEW_THREAT"}}, as_=focal)
    assert reopened["data"]["reopenCase"]["userErrors"] == []

    notices, raw = await her_notices(env, her)
    kinds = [n["kind"] for n in notices]
    wired = {"incident_acknowledged", "incident_status_changed", "incident_escalated",
             "measure_done", "measure_not_done", "referral_accepted", "referral_declined",
             "approval_used", "break_glass_opened", "break_glass_ended",
             "consent_granted_by_others", "consent_confirmed_by_others",
             "working_group_new_member", "case_closed", "case_reopened"}
    assert wired <= set(kinds), wired - set(kinds)
    assert kinds.count("break_glass_ended") == 2  # one closed by hand, one that ran out
    # Nothing but kind, date, case reference, codes and IDs: no name, no free text.
    assert w.pseudonym not in raw and w.login not in raw
    for secret in [*SECRETS, *FREE_TEXT]:
        assert secret not in raw, secret
    by_kind = {n["kind"]: n for n in notices}
    for n in notices:
        assert n["language"] == "fr"
        assert n["title"] == TITLES["fr"][n["kind"]] and n["text"].startswith(n["title"])
        assert set(json.loads(n["details"])) <= {
            "case", "incident", "measure", "referral", "grant", "approval", "break_glass",
            "network", "organisation", "working_group", "by", "acting_for_her", "awaiting",
            "status", "reason", "level", "hours", "steps", "act", "expires_at",
            "risk_assessment"}
    case_ref = by_kind["incident_acknowledged"]["caseReference"]
    assert by_kind["incident_acknowledged"]["caseId"] == w.case and case_ref.startswith("C-")
    assert f"Dossier: {case_ref}" in by_kind["case_closed"]["text"]
    assert by_kind["measure_not_done"]["reason"] == "she_declined"
    assert "vous l'avez refusée" in by_kind["measure_not_done"]["text"]
    assert by_kind["case_closed"]["reason"] == "risk_resolved"
    assert by_kind["case_reopened"]["reason"] == "new_threat"
    assert by_kind["incident_status_changed"]["details"].count("responding") == 1
    assert json.loads(by_kind["incident_escalated"]["details"])["level"] == 1
    # Another language on request; pages by cursor, oldest first.
    english, _ = await her_notices(env, her, first=2, lang="en")
    assert [n["title"] for n in english] == [TITLES["en"][n["kind"]] for n in notices[:2]]
    rest, _ = await her_notices(env, her, after=english[-1]["cursor"])
    assert [n["id"] for n in rest] == [n["id"] for n in notices[2:]]
    # Staff read no one's notices.
    staff = await env.gql("{ me { notices { kind } } }", as_=focal)
    assert staff["data"]["me"] is None


def test_tell_her_refuses_anything_but_ids_dates_and_codes():
    safe = details_of(NoticeKind.CASE_CLOSED, case_id=None, subject_id=None,
                      codes={"reason": "risk_resolved", "steps": 1})
    assert safe == {"reason": "risk_resolved", "steps": 1}
    for kind, codes in (
            (NoticeKind.CASE_CLOSED, {"note": "anything"}),  # not an allowed key
            (NoticeKind.CASE_CLOSED, {"reason": "Call her in a month."}),  # free text
            (NoticeKind.CASE_CLOSED, {"reason": "lost_her_phone"}),  # not a closure reason
            (NoticeKind.MEASURE_DONE, {"reason": "other"}),  # this kind takes no reason
            (NoticeKind.CASE_REOPENED, {"organisation": "Zelda"}),  # not an ID
            (NoticeKind.GRANT_EXPIRING, {"valid_until": "next Friday"}),  # not a date
            (NoticeKind.APPROVAL_USED, {"act": "interview with Zelda"}),
            (NoticeKind.BREAK_GLASS_OPENED, {"by": "Zelda Qx-Legalname"})):
        with pytest.raises(UnsafeNotice):
            details_of(kind, case_id=None, subject_id=None, codes=codes)
    with pytest.raises(ValueError):
        details_of("her_birthday", case_id=None, subject_id=None, codes=None)  # type: ignore[arg-type]


async def test_a_grant_about_to_end_is_announced_once_across_two_instances(clock_env):
    env = clock_env
    w = await build(env, lead="fund", login=True, network=False, case=False, group=False)
    await speaks(env, w.pb, "es")
    given = await grant(env, {"id": w.pb, "login": w.login}, as_=("fund", "focal"),
                        to_org="mofa", categories=["TRAVEL"],
                        validUntil=later(env, days=10))
    settings = replace(env.settings, scheduler=False, log_worker=False)
    a = Runtime.create(settings, clock=env.clock)
    b = Runtime.create(settings, clock=env.clock)
    uuid_ = ids.decode(w.pb, "Peacebuilder")

    async def warned() -> int:
        async with env.runtime.db.transaction() as s:
            return int(await s.scalar(select(func.count()).select_from(Notice).where(
                Notice.peacebuilder_id == uuid_, Notice.kind == "grant_expiring")))

    try:
        env.clock.advance(days=2)
        await asyncio.gather(run_due(a.db, env.clock), run_due(b.db, env.clock))
        assert await warned() == 0, "not yet: more than seven days left"
        env.clock.advance(days=1, minutes=1)
        await asyncio.gather(run_due(a.db, env.clock), run_due(b.db, env.clock))
        await asyncio.gather(run_due(a.db, env.clock), run_due(b.db, env.clock))
        env.clock.advance(days=1)
        await asyncio.gather(run_due(a.db, env.clock), run_due(b.db, env.clock))
        assert await warned() == 1
    finally:
        await a.close()
        await b.close()
    notices, raw = await her_notices(env, await her_token(env, w))
    expiring = [n for n in notices if n["kind"] == "grant_expiring"]
    assert len(expiring) == 1 and expiring[0]["language"] == "es"
    assert expiring[0]["title"] == TITLES["es"]["grant_expiring"]
    assert json.loads(expiring[0]["details"])["grant"] == given["id"]
    assert w.pseudonym not in raw


async def test_without_a_login_she_is_told_through_her_networks_focal_points(clock_env):
    env = clock_env
    w = await build(env, lead="fund", login=False, network=True, case=True, group=False)
    before = await inbox_of(env, "wpn", "focal")
    reported = await env.gql(REPORT, incident_input(w.case), as_=("fund", "caseworker"))
    incident = reported["data"]["reportIncident"]["incident"]["id"]
    await env.gql(ACK, {"id": incident}, as_=("fund", "focal"))
    items = await inbox_since(env, "wpn", "focal", before)
    told = [i for i in items if i.kind == "notice_for_her"]
    assert len(told) == 1
    assert set(told[0].payload) == {"notice", "kind", "peacebuilder", "case"}
    assert told[0].payload["kind"] == "incident_acknowledged"
    # Through the API: the alert names her by ID only, nothing of what was reported.
    response = await env.post(INBOX, {}, token=await token(env, "wpn", "focal"))
    alerts = [a for a in response.json()["data"]["inbox"] if a["kind"] == "notice_for_her"]
    assert alerts and json.loads(alerts[-1]["payload"])["peacebuilder"] == w.pb
    assert w.pseudonym not in response.text and "Threatening" not in response.text
    # Not her lead organisation's focal points: it acted, her network speaks to her.
    assert "notice_for_her" not in [i.kind for i in await inbox_of(env, "fund", "focal")]


SUBSCRIBE = ("subscription($after: String) { myNotices(after: $after) { id kind cursor language "
             "title caseReference } }")


async def _listen(port: int, her: str, received: list[dict], ready: asyncio.Event,
                  after: str | None = None, errors: list | None = None) -> None:
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{port}/graphql",
                                  subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"authorization": f"Bearer {her}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": SUBSCRIBE, "variables": {"after": after}}}))
        ready.set()
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "next" and message["payload"].get("errors"):
                if errors is not None:
                    errors.extend(message["payload"]["errors"])
                return
            if message["type"] == "next":
                received.append(message["payload"]["data"]["myNotices"])
            elif message["type"] == "error":
                if errors is not None:
                    errors.append(message["payload"])
                return
            elif message["type"] == "complete":
                return


async def _until(received: list[dict], kind: str, seconds: float = 10) -> dict:
    for _ in range(int(seconds / 0.05)):
        for item in received:
            if item["kind"] == kind:
                return item
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind}; got {[i['kind'] for i in received]}")


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_her_subscription_delivers_new_notices(tmp_path, backend_name):
    from tests.conftest import require_pg
    from tests.test_realtime import REDIS_URL, require_redis, serve

    if backend_name == "postgresql":
        require_pg()
    await require_redis()
    env, close = await build_env(backend_name, tmp_path, redis_url=REDIS_URL)
    other = Runtime.create(replace(env.settings, scheduler=False, log_worker=False))
    tasks: list[asyncio.Task] = []
    try:
        w = await build(env, lead="fund", login=True, network=False, case=True, group=False)
        await speaks(env, w.pb, "sw")
        her = await her_token(env, w)
        async with serve(other) as port:
            received: list[dict] = []
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(_listen(port, her, received, ready)))
            await asyncio.wait_for(ready.wait(), 10)
            await asyncio.sleep(0.3)
            assert received == [], "from now on: nothing older is replayed without `after`"
            reported = await env.gql(REPORT, incident_input(w.case), as_=("fund", "caseworker"))
            incident = reported["data"]["reportIncident"]["incident"]["id"]
            await env.gql(ACK, {"id": incident}, as_=("fund", "focal"))
            acked = await _until(received, "incident_acknowledged")
            assert acked["language"] == "sw" and acked["caseReference"].startswith("C-")
            assert acked["title"] == TITLES["sw"]["incident_acknowledged"]
            assert w.pseudonym not in json.dumps(received)
            # Reconnecting with the cursor of an earlier notice replays what came after it.
            before, _ = await her_notices(env, her)
            start = before[-2]["cursor"]
            replayed: list[dict] = []
            ready2 = asyncio.Event()
            tasks.append(asyncio.create_task(_listen(port, her, replayed, ready2, after=start)))
            got = await _until(replayed, "incident_acknowledged")
            assert got["id"] == acked["id"] and [n["id"] for n in replayed] == [before[-1]["id"]]
            # Staff have no notices to subscribe to.
            errors: list = []
            staff = asyncio.create_task(_listen(port, await env.token("fund", "focal"), [],
                                                asyncio.Event(), errors=errors))
            await asyncio.wait_for(staff, 10)
            assert errors and errors[0]["extensions"]["code"] == "FORBIDDEN", errors
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await other.close()
        await close()
