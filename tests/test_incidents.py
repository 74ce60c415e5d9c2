"""Incidents and the response: deadlines, escalation, alerts, referrals, approvals, timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.clock import FrozenClock
from app.scheduler import run_due
from app.tables.incidents import ScheduledStep
from app.tables.notify import InboxItem
from schema import ids
from tests.conftest import BACKENDS, build_env
from tests.factories import current_assessment
from tests.test_consent import grant, new_peacebuilder, org_id

pytestmark = pytest.mark.anyio

REPORT = """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
  incident { id status severity acknowledgementDeadline description allegedSourceAsReported }
  userErrors { field message code } } }"""
ACK = "mutation($id: ID!) { acknowledgeIncident(id: $id) { incident { status acknowledgedAt } } }"
CASE = """query($id: ID!) { case(id: $id) { incidents { id status description locationCoarse }
  timeline { kind actor } } }"""


def incident_input(case_id: str, severity: str = "CRITICAL", **extra) -> dict:
    return {"i": {"caseId": case_id, "type": "THREATS", "severity": severity,
                  "reportedBy": "herself", "reportedVia": "secure_messenger",
                  "description": "Threatening messages after the forum.", **extra}}


async def inbox_of(env, org: str, user: str) -> list[InboxItem]:
    from app.auth import principals

    async with env.runtime.db.transaction() as s:
        u = await principals.find_user(s, org, user)
        return list(await s.scalars(select(InboxItem).where(InboxItem.recipient == u.subject)
                                    .order_by(InboxItem.created_at)))


async def inbox_since(env, org: str, user: str, before: list[InboxItem]) -> list[InboxItem]:
    """Her inbox's items not in `before` (by ID: under the frozen clock items share created_at,
    and their order among equals is not stable)."""
    seen = {i.id for i in before}
    return [i for i in await inbox_of(env, org, user) if i.id not in seen]


@pytest.fixture(scope="module", params=BACKENDS)
async def clock_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2032, 1, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("incidents"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def test_report_alerts_lead_and_she_sees_status(env):
    pb = await new_peacebuilder(env, "fund")
    before = len(await inbox_of(env, "fund", "focal"))
    body = await env.gql(REPORT, incident_input(pb["case"], allegedSourceAsReported=None),
                         as_=("fund", "caseworker"))
    incident = body["data"]["reportIncident"]["incident"]
    assert incident["status"] == "REPORTED" and incident["allegedSourceAsReported"] is None
    items = await inbox_of(env, "fund", "focal")
    # A critical incident also starts a reassessment of her risk (issue 19).
    assert [i.kind for i in items[before:]] == ["incident_reported", "risk_reassessment_due"]
    her = await env.peacebuilder_token(pb["login"])
    mine = await env.gql("{ me { cases { incidents { status severity } timeline { kind } } } }",
                         token=her, purpose=None)
    case = mine["data"]["me"]["cases"][0]
    assert case["incidents"] == [{"status": "REPORTED", "severity": "CRITICAL"}]
    assert "incident.reported" in [e["kind"] for e in case["timeline"]]
    # Payloads: IDs and codes only.
    text = json.dumps(items[-1].payload)
    assert pb["login"] not in text and "Threatening" not in text and "Secret" not in text


async def test_incident_details_need_their_category(env):
    pb = await new_peacebuilder(env, "fund")
    await env.gql(REPORT, incident_input(pb["case"], locationCoarse="North"),
                  as_=("fund", "caseworker"))  # location not in her intake grant: refused
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == []
    refused = await env.gql(REPORT, incident_input(pb["case"], locationCoarse="North"),
                            as_=("fund", "caseworker"))
    assert refused["data"]["reportIncident"]["userErrors"][0]["field"] == ["input",
                                                                          "location_coarse"]
    # Only organisations holding her consent to incident details see incidents at all.
    await grant(env, pb, as_=("fund", "focal"), to_org="nhri", categories=["LEGAL"])
    seen = await env.gql(CASE, {"id": pb["case"]}, as_=("nhri", "focal"))
    assert seen["data"]["case"]["incidents"] == []
    await grant(env, pb, as_=("fund", "focal"), to_org="wpn", categories=["INCIDENT_DETAILS"])
    seen = await env.gql(CASE, {"id": pb["case"]}, as_=("wpn", "focal"))
    incident = seen["data"]["case"]["incidents"][0]
    assert incident["description"] == "Threatening messages after the forum."
    assert incident["locationCoarse"] is None and incident["status"] == "REPORTED"


async def _steps(env, incident_id):
    async with env.runtime.db.transaction() as s:
        return list(await s.scalars(select(ScheduledStep).where(
            ScheduledStep.subject_id == ids.decode(incident_id, "Incident"))
            .order_by(ScheduledStep.step)))


async def test_acknowledged_in_time_never_escalates(clock_env):
    env = clock_env
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"], severity="HIGH"),
                         as_=("fund", "caseworker"))
    incident_id = body["data"]["reportIncident"]["incident"]["id"]
    env.clock.advance(minutes=30)
    acked = await env.gql(ACK, {"id": incident_id}, as_=("fund", "focal"))
    assert acked["data"]["acknowledgeIncident"]["incident"]["status"] == "ACKNOWLEDGED"
    env.clock.advance(hours=10)
    await run_due(env.runtime.db, env.clock)
    # The chain's first level found it acknowledged: nothing sent, no next level scheduled.
    assert [s.outcome for s in await _steps(env, incident_id)] == ["not_needed"]


async def test_deadline_is_configurable_per_organisation(clock_env):
    env = clock_env
    body = await env.gql("mutation { setAcknowledgementDeadline(input: {severity: LOW, "
                         "minutes: 5}) { severity minutes userErrors { code } } }",
                         as_=("wpn", "admin"))
    assert body["data"]["setAcknowledgementDeadline"] == {"severity": "LOW", "minutes": 5,
                                                          "userErrors": []}
    pb = await new_peacebuilder(env, "wpn")
    reported = await env.gql(REPORT, incident_input(pb["case"], severity="LOW"),
                             as_=("wpn", "caseworker"))
    deadline = datetime.fromisoformat(
        reported["data"]["reportIncident"]["incident"]["acknowledgementDeadline"])
    assert deadline == env.clock.now() + timedelta(minutes=5)


async def test_referral_requires_her_consent_to_that_recipient(env):
    pb = await new_peacebuilder(env, "fund")
    refer = """mutation($c: ID!, $o: ID!) { referCase(input: {caseId: $c, toOrganisationId: $o,
        purpose: LEGAL_SUPPORT}) { referral { id status } userErrors { field message } } }"""
    refused = await env.gql(refer, {"c": pb["case"], "o": await org_id(env, "nhri")},
                            as_=("fund", "caseworker"))
    assert refused["data"]["referCase"]["referral"] is None
    assert refused["data"]["referCase"]["userErrors"][0]["field"] == ["input", "toOrganisationId"]
    await grant(env, pb, as_=("fund", "focal"), to_org="nhri", purposes=["LEGAL_SUPPORT"])
    await current_assessment(env, pb["case"], "fund", login=pb["login"])
    done = await env.gql(refer, {"c": pb["case"], "o": await org_id(env, "nhri")},
                         as_=("fund", "caseworker"))
    referral = done["data"]["referCase"]["referral"]
    assert referral["status"] == "PENDING".lower()
    assert (await inbox_of(env, "nhri", "focal"))[-1].kind == "referral_received"
    accepted = await env.gql("mutation($id: ID!) { moveReferral(id: $id, action: \"accept\") "
                             "{ referral { status } userErrors { message } } }",
                             {"id": referral["id"]}, as_=("nhri", "focal"), purpose="legal_support")
    assert accepted["data"]["moveReferral"]["referral"]["status"] == "accepted"


async def test_public_statement_needs_her_approval(env):
    pb = await new_peacebuilder(env, "fund")
    add = """mutation($c: ID!, $a: ID) { addMeasure(input: {caseId: $c, kind: PUBLIC_STATEMENT,
        approvalId: $a}) { measure { id kind } userErrors { field message } } }"""
    refused = await env.gql(add, {"c": pb["case"]}, as_=("fund", "focal"))
    assert refused["data"]["addMeasure"]["userErrors"][0]["field"] == ["input", "approvalId"]
    # Staff cannot record her approval for her.
    fund = await org_id(env, "fund")
    staff = await env.gql("mutation($p: ID, $o: ID!) { recordApproval(act: \"public_statement\", "
                          "description: \"x\", peacebuilderId: $p, organisationId: $o) "
                          "{ approval { id } } }", {"p": pb["id"], "o": fund}, as_=("fund", "focal"))
    assert staff["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND")
    her = await env.peacebuilder_token(pb["login"])
    approve = ("mutation($o: ID!) { recordApproval(act: \"public_statement\", organisationId: $o, "
               "description: \"A statement of solidarity, without my name.\") { approval { id act } } }")
    # An approval for another organisation's statement cannot be used by this one.
    elsewhere = await env.gql(approve, {"o": await org_id(env, "wpn")}, token=her, purpose=None)
    other_id = elsewhere["data"]["recordApproval"]["approval"]["id"]
    borrowed = await env.gql(add, {"c": pb["case"], "a": other_id}, as_=("fund", "focal"))
    assert borrowed["data"]["addMeasure"]["userErrors"][0]["field"] == ["input", "approvalId"]
    approved = await env.gql(approve, {"o": fund}, token=her, purpose=None)
    approval_id = approved["data"]["recordApproval"]["approval"]["id"]
    # Her approval alone is not enough: the act also needs a current risk assessment.
    gated = await env.gql(add, {"c": pb["case"], "a": approval_id}, as_=("fund", "focal"))
    assert gated["data"]["addMeasure"]["userErrors"][0]["field"] == ["input", "kind"]
    await current_assessment(env, pb["case"], "fund", login=pb["login"])
    ok = await env.gql(add, {"c": pb["case"], "a": approval_id}, as_=("fund", "focal"))
    assert ok["data"]["addMeasure"]["userErrors"] == []
    reused = await env.gql(add, {"c": pb["case"], "a": approval_id}, as_=("fund", "focal"))
    assert reused["data"]["addMeasure"]["userErrors"][0]["field"] == ["input", "approvalId"]


async def test_task_reminder_before_due_date(clock_env):
    env = clock_env
    pb = await new_peacebuilder(env, "fund")
    due = env.clock.now() + timedelta(days=3)
    body = await env.gql("""mutation($c: ID!, $d: DateTime) { addMeasure(input: {caseId: $c,
        kind: SECURE_TRANSPORT, dueAt: $d}) { measure { id } userErrors { message } } }""",
                         {"c": pb["case"], "d": due.isoformat()}, as_=("fund", "focal"))
    assert body["data"]["addMeasure"]["userErrors"] == []
    before = len(await inbox_of(env, "fund", "focal"))
    env.clock.set(due - timedelta(hours=24, minutes=1))
    await run_due(env.runtime.db, env.clock)
    assert len(await inbox_of(env, "fund", "focal")) == before
    env.clock.set(due - timedelta(hours=23))
    await run_due(env.runtime.db, env.clock)
    items = await inbox_of(env, "fund", "focal")
    assert items[-1].kind == "task_due"


async def test_proceedings_timeline_she_can_see(env):
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql("""mutation($c: ID!) { recordProceeding(input: {caseId: $c,
        kind: detention, data: {place: "Central prison", visits: "weekly"}}) {
        proceeding { id kind details } userErrors { field message } } }""", {"c": pb["case"]},
                         as_=("fund", "caseworker"))
    assert json.loads(body["data"]["recordProceeding"]["proceeding"]["details"])["visits"] == "weekly"
    her = await env.peacebuilder_token(pb["login"])
    mine = await env.gql("{ me { cases { proceedings { kind details } timeline { kind } } } }",
                         token=her, purpose=None)
    case = mine["data"]["me"]["cases"][0]
    assert case["proceedings"][0]["kind"] == "detention"
    assert "detention.updated" in [e["kind"] for e in case["timeline"]]


async def test_inbox_replay_by_cursor_skips_what_is_no_longer_hers(env):
    pb = await new_peacebuilder(env, "embassy")
    await env.gql(REPORT, incident_input(pb["case"]), as_=("embassy", "caseworker"))
    await env.gql(REPORT, incident_input(pb["case"], severity="LOW"), as_=("embassy", "caseworker"))
    q = "query($a: String) { inbox(after: $a) { id kind cursor payload } }"
    all_items = (await env.gql(q, {}, as_=("embassy", "focal")))["data"]["inbox"]
    assert len(all_items) >= 2
    rest = (await env.gql(q, {"a": all_items[-2]["cursor"]}, as_=("embassy", "focal")))["data"]["inbox"]
    assert [i["id"] for i in rest] == [all_items[-1]["id"]]
    her = await env.peacebuilder_token(pb["login"])
    await env.gql("mutation { revokeAllConsent(input: {}) { revoked { id } } }", token=her,
                  purpose=None)
    after = (await env.gql(q, {}, as_=("embassy", "focal")))["data"]["inbox"]
    case_key = pb["case"]  # alert payloads name it by its global ID, like the API
    assert not any(json.loads(i["payload"]).get("case") == case_key for i in after)


async def test_steps_are_claimed_once_even_when_replicas_race(backend, tmp_path):
    import asyncio

    clock = FrozenClock(datetime(2033, 1, 1, tzinfo=UTC))
    env, close = await build_env(backend, tmp_path, clock=clock)
    try:
        pb = await new_peacebuilder(env, "mofa")
        await env.gql(REPORT, incident_input(pb["case"]), as_=("mofa", "caseworker"))
        from app.runtime import Runtime

        other = Runtime.create(env.settings, clock=clock)
        clock.advance(hours=3)
        results = await asyncio.gather(run_due(env.runtime.db, clock), run_due(other.db, clock),
                                       run_due(env.runtime.db, clock))
        await other.close()
        assert sum(len(r) for r in results) > 0
        async with env.runtime.db.transaction() as s:
            n = await s.scalar(select(func.count()).select_from(InboxItem).where(
                InboxItem.kind == "escalation"))
        # Three hours late: the first level fired once (each pass claims it alone), and the
        # next level is scheduled, not fired in the same pass.
        mofa_focals = 2  # focal and focal2 (demo fixture)
        assert n == mofa_focals
    finally:
        await close()


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_attachments_are_checked_encrypted_and_gated(env):
    from sqlalchemy import update as sql_update

    from app.tables.incidents import Attachment

    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    incident = body["data"]["reportIncident"]["incident"]["id"]
    token = await env.token("fund", "caseworker")
    h = {"authorization": f"Bearer {token}", "safety-net-purpose": "protection"}
    ok = await env.client.post(f"/incidents/{incident}/attachments", content=PNG,
                               headers={**h, "content-type": "image/png"})
    assert ok.status_code == 201, ok.text
    second = await env.client.post(f"/incidents/{incident}/attachments", content=b"note text",
                                   headers={**h, "content-type": "text/plain"})
    assert second.status_code == 201
    liar = await env.client.post(f"/incidents/{incident}/attachments", content=b"MZ\x90\x00exe",
                                 headers={**h, "content-type": "image/png"})
    assert liar.status_code == 400
    html = await env.client.post(f"/incidents/{incident}/attachments", content=b"<script>",
                                 headers={**h, "content-type": "text/html"})
    assert html.status_code == 400
    big = await env.client.post(f"/incidents/{incident}/attachments",
                                content=b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024 + 1),
                                headers={**h, "content-type": "image/png"})
    assert big.status_code == 413
    got = await env.client.get(f"/attachments/{ok.json()['id']}", headers=h)
    assert got.status_code == 200 and got.content == PNG
    async with env.runtime.db.transaction() as s:
        rows = list(await s.scalars(select(Attachment).where(
            Attachment.incident_id == ids.decode(incident, "Incident"))))
    assert all(PNG[8:] not in r.ciphertext and b"note text" not in r.ciphertext for r in rows)
    # Another organisation without her consent: not found, exactly like a missing file.
    other = await env.token("embassy", "focal")
    hidden = await env.client.get(f"/attachments/{ok.json()['id']}", headers={
        "authorization": f"Bearer {other}", "safety-net-purpose": "protection"})
    assert hidden.status_code == 404
    # Swapping ciphertexts between records is detected, never decrypted into the wrong place.
    png_row = next(r for r in rows if r.content_type == "image/png")
    text_row = next(r for r in rows if r.content_type == "text/plain")
    async with env.runtime.db.transaction() as s:
        await s.execute(sql_update(Attachment).where(Attachment.id == text_row.id)
                        .values(ciphertext=png_row.ciphertext))
    text_id = ids.encode("Attachment", text_row.id)
    swapped = await env.client.get(f"/attachments/{text_id}", headers=h)
    assert swapped.status_code == 500 and swapped.json()["errors"][0]["extensions"]["code"] == \
        "INTEGRITY_ERROR"
