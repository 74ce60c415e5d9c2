"""Her own channel, through GraphQL over HTTP on both databases: she reports on her own cases,
files her own evidence (sealed with her key, unreadable after erasure), lists and withdraws her
approvals (a withdrawn approval blocks the measure), and her correction requests are answered by
a deadline that escalates."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import crypto, tenancy
from app.access.context import AccessContext
from app.access.principal import SYSTEM
from app.her import keys as pb_keys
from app.her import sealing
from app.scheduler import run_due
from app.tables.consent import DataRequest, Notice
from app.tables.incidents import Attachment, Incident, ScheduledStep
from app.tenancy import SYSTEM as SYSTEM_SCOPE
from schema import ids
from tests.conftest import BACKENDS, build_env
from tests.factories import current_assessment
from tests.test_consent import new_peacebuilder, org_id
from tests.test_incidents import inbox_of, inbox_since

pytestmark = pytest.mark.anyio

REPORT = """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
  incident { id status reportedBy acknowledgementDeadline description }
  userErrors { field message code } } }"""
MY_INCIDENTS = """{ me { cases { id incidents { id status reportedBy
  attachments { id contentType size sha256 category addedAt addedByHerself addedBy { slug } } } } } }"""
CASE_ATTACHMENTS = """query($id: ID!) { case(id: $id) { incidents { id
  attachments { id sha256 size contentType addedByHerself addedBy { slug } } } } }"""
PNG = b"\x89PNG\r\n\x1a\n" + b"her photo of the threat" + b"\x00" * 32


def report_input(case_id: str, **extra) -> dict:
    return {"i": {"caseId": case_id, "type": "THREATS", "severity": "CRITICAL",
                  "reportedBy": "staff", "reportedVia": "online_form",
                  "description": "Men waited outside my office.", **extra}}


@pytest.fixture(scope="module", params=BACKENDS)
async def clock_env(request, tmp_path_factory, anyio_backend):
    from app.clock import FrozenClock

    clock = FrozenClock(datetime(2033, 3, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("her"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


# --- she reports ------------------------------------------------------------------------------

async def test_she_reports_on_her_own_case_and_the_deadline_escalates(clock_env):
    env = clock_env
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    before = await inbox_of(env, "fund", "focal")
    body = await env.gql(REPORT, report_input(pb["case"]), token=her, purpose=None)
    assert body["data"]["reportIncident"]["userErrors"] == [], body
    incident = body["data"]["reportIncident"]["incident"]
    # Recorded as reported by herself, whatever she sent; the lead's CRITICAL deadline (1 h).
    assert incident["reportedBy"] == "herself" and incident["status"] == "REPORTED"
    assert incident["description"] == "Men waited outside my office."
    deadline = datetime.fromisoformat(incident["acknowledgementDeadline"])
    assert deadline == env.clock.now() + timedelta(minutes=60)
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            row = await s.get(Incident, ids.decode(incident["id"], "Incident"))
    assert row is not None and row.reporting_org_id is None
    assert row.recorded_by.startswith("peacebuilder:")
    # The lead is alerted; her critical report also starts a reassessment of her risk.
    items = await inbox_since(env, "fund", "focal", before)
    assert [i.kind for i in items] == ["incident_reported", "risk_reassessment_due"]
    assert items[0].payload["reported_by"] == "herself"
    assert "Men waited" not in json.dumps(items[0].payload)
    # The lead's focal points see it on the case, like any incident.
    seen = await env.gql("query($id: ID!) { case(id: $id) { incidents { id reportedBy } } }",
                         {"id": pb["case"]}, as_=("fund", "focal"))
    assert {"id": incident["id"], "reportedBy": "herself"} in seen["data"]["case"]["incidents"]
    # Unacknowledged past its deadline: the lead organisation's chain is alerted.
    env.clock.advance(minutes=61)
    await run_due(env.runtime.db, env.clock)
    escalated = [i for i in await inbox_of(env, "fund", "focal") if i.kind == "escalation"
                 and i.payload.get("incident") == str(ids.decode(incident["id"], "Incident"))]
    assert escalated and escalated[0].payload["level"] == 1


async def test_she_cannot_report_on_another_womans_case(env):
    pb = await new_peacebuilder(env, "fund")
    other = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    foreign = await env.gql(REPORT, report_input(other["case"]), token=her, purpose=None)
    missing = await env.gql(REPORT, report_input(ids.encode("Case", uuid.uuid4())), token=her,
                            purpose=None)
    # Indistinguishable from a case that does not exist.
    assert foreign["data"] == missing["data"]
    assert [e["extensions"]["code"] for e in foreign["errors"]] == \
        [e["extensions"]["code"] for e in missing["errors"]] == ["NOT_FOUND"]
    assert foreign["errors"][0]["message"] == missing["errors"][0]["message"]
    seen = await env.gql("query($id: ID!) { case(id: $id) { incidents { id } } }",
                         {"id": other["case"]}, as_=("fund", "focal"))
    assert seen["data"]["case"]["incidents"] == []


# --- her evidence ----------------------------------------------------------------------------

async def _her_key(env, pb_id: uuid.UUID) -> bytes | None:
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            ctx = AccessContext(principal=SYSTEM, session=s, db=env.runtime.db,
                                policy=None,  # type: ignore[arg-type]
                                clock=env.runtime.clock, request_id="test-her-key")
            return (await pb_keys.of(ctx, [pb_id]))[pb_id]


async def _attachment_row(env, attachment_id: str) -> tuple[Attachment, Incident]:
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            row = await s.get(Attachment, ids.decode(attachment_id, "Attachment"))
            assert row is not None
            incident = await s.get(Incident, row.incident_id)
            assert incident is not None
            s.expunge_all()
    return row, incident


async def test_her_upload_is_sealed_with_her_key_listed_and_unreadable_after_erasure(env):
    pb = await new_peacebuilder(env, "fund")
    pb_id = ids.decode(pb["id"], "Peacebuilder")
    her = await env.peacebuilder_token(pb["login"])
    reported = await env.gql(REPORT, report_input(pb["case"]), token=her, purpose=None)
    incident = reported["data"]["reportIncident"]["incident"]["id"]
    mine = {"authorization": f"Bearer {her}"}
    up = await env.client.post(f"/incidents/{incident}/attachments", content=PNG,
                               headers={**mine, "content-type": "image/png"})
    assert up.status_code == 201, up.text
    attachment = up.json()["id"]
    # Same scanning as staff uploads: a lying type and an oversized file are refused.
    liar = await env.client.post(f"/incidents/{incident}/attachments", content=b"MZ\x90\x00",
                                 headers={**mine, "content-type": "image/png"})
    assert liar.status_code == 400
    big = await env.client.post(f"/incidents/{incident}/attachments",
                                content=PNG[:8] + b"0" * (5 * 1024 * 1024 + 1),
                                headers={**mine, "content-type": "image/png"})
    assert big.status_code == 413
    # Staff add a file under her consent.
    staff = {"authorization": f"Bearer {await env.token('fund', 'caseworker')}",
             "safety-net-purpose": "protection"}
    note = await env.client.post(f"/incidents/{incident}/attachments", content=b"call log",
                                 headers={**staff, "content-type": "text/plain"})
    assert note.status_code == 201
    # Stored: ciphertext only, sealed with HER data key, and the plaintext's SHA-256.
    row, incident_row = await _attachment_row(env, attachment)
    assert b"her photo" not in row.ciphertext and PNG not in row.ciphertext
    assert row.sha256 == hashlib.sha256(PNG).hexdigest() and row.org_id is None
    key = await _her_key(env, pb_id)
    assert key is not None
    aad = sealing.attachment_ref(pb_id, incident_row, row.id).aad
    assert crypto.open_bytes(key, aad, row.ciphertext) == PNG
    # She lists the attachments of her incidents (metadata only, staff's included).
    body = await env.gql(MY_INCIDENTS, token=her, purpose=None)
    [case] = [c for c in body["data"]["me"]["cases"] if c["id"] == pb["case"]]
    [listed] = [i for i in case["incidents"] if i["id"] == incident]
    by_id = {a["id"]: a for a in listed["attachments"]}
    assert by_id[attachment]["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert by_id[attachment]["addedByHerself"] is True and by_id[attachment]["addedBy"] is None
    assert by_id[attachment]["size"] == len(PNG) and by_id[attachment]["contentType"] == "image/png"
    assert by_id[note.json()["id"]]["addedBy"] == {"slug": "fund"}
    assert by_id[note.json()["id"]]["sha256"] == hashlib.sha256(b"call log").hexdigest()
    # Staff of the lead see the same list under her consent; the lead was told (IDs only).
    seen = await env.gql(CASE_ATTACHMENTS, {"id": pb["case"]}, as_=("fund", "focal"))
    [staff_view] = [i for i in seen["data"]["case"]["incidents"] if i["id"] == incident]
    assert {a["id"] for a in staff_view["attachments"]} == set(by_id)
    told = [i for i in await inbox_of(env, "fund", "focal") if i.kind == "evidence_added"]
    assert told and told[-1].payload["attachment"] == str(row.id)
    # An organisation without her consent: the case is not found, nothing listed.
    hidden = await env.gql(CASE_ATTACHMENTS, {"id": pb["case"]}, as_=("embassy", "focal"))
    assert hidden["data"]["case"] is None
    # She cannot file evidence on another woman's incident: not found, like a missing one.
    other = await new_peacebuilder(env, "fund")
    theirs = await env.gql(REPORT, report_input(other["case"]), as_=("fund", "caseworker"))
    foreign = await env.client.post(
        f"/incidents/{theirs['data']['reportIncident']['incident']['id']}/attachments",
        content=PNG, headers={**mine, "content-type": "image/png"})
    missing = await env.client.post(f"/incidents/{ids.encode('Incident', uuid.uuid4())}"
                                    "/attachments", content=PNG,
                                    headers={**mine, "content-type": "image/png"})
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    # The same through GraphQL (small files): checked, sealed, hashed; another woman's incident
    # is not found.
    upload = """mutation($i: UploadAttachmentInput!) { uploadAttachment(input: $i) {
      attachment { id sha256 addedByHerself } userErrors { field code } } }"""
    text = b"screenshot transcript"
    via_gql = await env.gql(upload, {"i": {"incidentId": incident, "contentType": "text/plain",
                                           "contentBase64": base64.b64encode(text).decode()}},
                            token=her, purpose=None)
    assert via_gql["data"]["uploadAttachment"]["attachment"]["sha256"] == \
        hashlib.sha256(text).hexdigest()
    assert via_gql["data"]["uploadAttachment"]["attachment"]["addedByHerself"] is True
    lying = await env.gql(upload, {"i": {"incidentId": incident, "contentType": "image/png",
                                         "contentBase64": base64.b64encode(text).decode()}},
                          token=her, purpose=None)
    assert lying["data"]["uploadAttachment"]["userErrors"][0]["field"] == ["input", "file"]
    not_hers = await env.gql(upload, {"i": {
        "incidentId": theirs["data"]["reportIncident"]["incident"]["id"],
        "contentType": "text/plain", "contentBase64": base64.b64encode(text).decode()}},
        token=her, purpose=None)
    assert not_hers["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Erasure destroys her key: the ciphertext stays, nothing opens it any more.
    got = await env.client.get(f"/attachments/{attachment}", headers=mine)
    assert got.status_code == 200 and got.content == PNG
    erased = await env.gql("mutation { eraseMyData { erased } }", token=her, purpose=None)
    assert erased["data"]["eraseMyData"]["erased"] is True
    assert await _her_key(env, pb_id) is None
    after, _ = await _attachment_row(env, attachment)
    assert after.ciphertext == row.ciphertext
    with pytest.raises(crypto.Unreadable):
        crypto.open_bytes(b"\x00" * 32, aad, after.ciphertext)
    assert (await env.client.get(f"/attachments/{attachment}", headers=staff)).status_code == 410
    assert (await env.client.get(f"/attachments/{attachment}", headers=mine)).status_code == 410


# --- her approvals ---------------------------------------------------------------------------

APPROVE = """mutation($act: String!, $o: ID!, $d: String!) { recordApproval(act: $act,
  organisationId: $o, description: $d) { approval { id act status } userErrors { message } } }"""
MY_APPROVALS = """{ me { approvals { id act description status usedAt withdrawnAt measureId
  organisation { slug } } } }"""
WITHDRAW = """mutation($a: ID!) { withdrawApproval(input: {approvalId: $a}) {
  approval { id status withdrawnAt } userErrors { field message code } } }"""
ADD = """mutation($c: ID!, $k: MeasureKind!, $a: ID) { addMeasure(input: {caseId: $c, kind: $k,
  approvalId: $a}) { measure { id kind status } userErrors { field message } } }"""
DONE = """mutation($id: ID!) { setMeasureStatus(id: $id, status: "done") {
  measure { status } userErrors { field message } } }"""


async def test_withdrawing_an_approval_blocks_the_measure(env):
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    fund = await org_id(env, "fund")
    media = await env.gql(APPROVE, {"act": "media_contact", "o": fund,
                                    "d": "One radio interview on the community station."},
                          token=her, purpose=None)
    media_id = media["data"]["recordApproval"]["approval"]["id"]
    recognition = await env.gql(APPROVE, {"act": "recognition", "o": fund,
                                          "d": "The annual award, first name only."},
                                token=her, purpose=None)
    recognition_id = recognition["data"]["recordApproval"]["approval"]["id"]
    # A media contact or recognition needs her approval of that act, like a public statement.
    for kind, approval in (("MEDIA_CONTACT", None), ("RECOGNITION", media_id),
                           ("MEDIA_CONTACT", recognition_id)):
        refused = await env.gql(ADD, {"c": pb["case"], "k": kind, "a": approval},
                                as_=("fund", "focal"))
        assert refused["data"]["addMeasure"]["userErrors"][0]["field"] == ["input", "approvalId"]
    await current_assessment(env, pb["case"], "fund", login=pb["login"])
    planned = await env.gql(ADD, {"c": pb["case"], "k": "MEDIA_CONTACT", "a": media_id},
                            as_=("fund", "focal"))
    measure = planned["data"]["addMeasure"]["measure"]
    assert measure["kind"] == "MEDIA_CONTACT" and measure["status"] == "planned"
    # She sees every approval she gave, with what it covers.
    listed = {a["id"]: a for a in (await env.gql(MY_APPROVALS, token=her, purpose=None)
                                   )["data"]["me"]["approvals"]}
    assert listed[media_id] == {
        "id": media_id, "act": "media_contact", "status": "BOUND", "usedAt": None,
        "description": "One radio interview on the community station.", "withdrawnAt": None,
        "measureId": measure["id"], "organisation": {"slug": "fund"}}
    assert listed[recognition_id]["status"] == "LIVE"
    # Another woman cannot withdraw it (not found, like a missing one).
    other = await new_peacebuilder(env, "fund")
    theirs = await env.gql(WITHDRAW, {"a": media_id},
                           token=await env.peacebuilder_token(other["login"]), purpose=None)
    assert theirs["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # She withdraws it: the organisation is told, and the measure can no longer be done.
    before = await inbox_of(env, "fund", "focal")
    withdrawn = await env.gql(WITHDRAW, {"a": media_id}, token=her, purpose=None)
    assert withdrawn["data"]["withdrawApproval"]["userErrors"] == []
    assert withdrawn["data"]["withdrawApproval"]["approval"]["status"] == "WITHDRAWN"
    items = await inbox_since(env, "fund", "focal", before)
    assert [i.kind for i in items] == ["approval_withdrawn"]
    assert "radio" not in json.dumps(items[0].payload)
    blocked = await env.gql(DONE, {"id": measure["id"]}, as_=("fund", "focal"))
    assert blocked["data"]["setMeasureStatus"]["measure"] is None
    assert blocked["data"]["setMeasureStatus"]["userErrors"][0]["field"] == ["input", "status"]
    still = await env.gql("query($id: ID!) { case(id: $id) { measures { id status } } }",
                          {"id": pb["case"]}, as_=("fund", "focal"))
    assert {"id": measure["id"], "status": "planned"} in still["data"]["case"]["measures"]
    # With a live approval the act is carried out; a used approval cannot be withdrawn.
    done_measure = await env.gql(ADD, {"c": pb["case"], "k": "RECOGNITION", "a": recognition_id},
                                 as_=("fund", "focal"))
    done_id = done_measure["data"]["addMeasure"]["measure"]["id"]
    done = await env.gql(DONE, {"id": done_id}, as_=("fund", "focal"))
    assert done["data"]["setMeasureStatus"]["measure"]["status"] == "done"
    late = await env.gql(WITHDRAW, {"a": recognition_id}, token=her, purpose=None)
    assert late["data"]["withdrawApproval"]["approval"] is None
    assert late["data"]["withdrawApproval"]["userErrors"][0]["code"] == "CONFLICT"
    listed = {a["id"]: a for a in (await env.gql(MY_APPROVALS, token=her, purpose=None)
                                   )["data"]["me"]["approvals"]}
    assert listed[recognition_id]["status"] == "USED" and listed[recognition_id]["usedAt"]


# --- corrections answered --------------------------------------------------------------------

ASK = """mutation($f: String!, $m: String!) { requestCorrection(input: {field: $f, message: $m}) {
  request { id status dueAt } userErrors { field message } } }"""
MY_REQUESTS = "{ me { dataRequests { id field status dueAt answeredAt reason } } }"
OPEN_REQUESTS = """{ correctionRequests { id field message status dueAt peacebuilderId } }"""
ANSWER = """mutation($i: AnswerCorrectionInput!) { answerCorrectionRequest(input: $i) {
  request { id status } userErrors { field message code } } }"""


async def test_correction_request_has_a_deadline_escalates_and_is_answered(clock_env):
    env = clock_env
    days = await env.gql("mutation { setCorrectionDeadline(input: {days: 10}) { days "
                         "userErrors { message } } }", as_=("fund", "admin"))
    assert days["data"]["setCorrectionDeadline"]["days"] == 10
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    asked = await env.gql(ASK, {"f": "legal_name", "m": "My name is spelled wrongly."},
                          token=her, purpose=None)
    request = asked["data"]["requestCorrection"]["request"]
    assert request["status"] == "open"
    assert datetime.fromisoformat(request["dueAt"]) == env.clock.now() + timedelta(days=10)
    told = [i for i in await inbox_of(env, "fund", "focal") if i.kind == "correction_requested"]
    assert told and "spelled" not in json.dumps(told[-1].payload)
    # The lead's focal points list it, with her message; another organisation does not.
    listed = await env.gql(OPEN_REQUESTS, as_=("fund", "focal"))
    [mine] = [r for r in listed["data"]["correctionRequests"] if r["id"] == request["id"]]
    assert mine["message"] == "My name is spelled wrongly." and mine["peacebuilderId"] == pb["id"]
    others = await env.gql(OPEN_REQUESTS, as_=("embassy", "focal"))
    assert request["id"] not in [r["id"] for r in others["data"]["correctionRequests"]]
    # Unanswered at its deadline: it escalates along the organisation's chain.
    env.clock.advance(days=9)
    await run_due(env.runtime.db, env.clock)
    request_uuid = str(ids.decode(request["id"], "DataRequest"))

    def escalations(items):
        return [i for i in items if i.kind == "escalation" and i.payload.get("request") ==
                request_uuid]

    assert escalations(await inbox_of(env, "fund", "focal")) == []
    env.clock.advance(days=1, minutes=1)
    await run_due(env.runtime.db, env.clock)
    first = escalations(await inbox_of(env, "fund", "focal"))
    assert len(first) == 1 and first[0].payload["level"] == 1
    timeline = await env.gql("query($id: ID!) { case(id: $id) { timeline { kind } } }",
                             {"id": pb["case"]}, as_=("fund", "focal"))
    kinds = [e["kind"] for e in timeline["data"]["case"]["timeline"]]
    assert "correction.requested" in kinds and "correction.escalated" in kinds
    # Another organisation cannot answer it; a declined answer needs a reason.
    foreign = await env.gql(ANSWER, {"i": {"requestId": request["id"], "outcome": "DECLINED",
                                           "reason": "no"}}, as_=("embassy", "focal"))
    assert foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    no_reason = await env.gql(ANSWER, {"i": {"requestId": request["id"], "outcome": "DECLINED"}},
                              as_=("fund", "focal"))
    assert no_reason["data"]["answerCorrectionRequest"]["userErrors"][0]["field"] == [
        "input", "reason"]
    # Corrected: the value is written (and logged) like any update of her record.
    fixed = await env.gql(ANSWER, {"i": {"requestId": request["id"], "outcome": "CORRECTED",
                                         "correctedValue": "Corrected Legal Name",
                                         "reason": "Fixed from your passport copy."}},
                          as_=("fund", "focal"))
    assert fixed["data"]["answerCorrectionRequest"] == {
        "request": {"id": request["id"], "status": "corrected"}, "userErrors": []}
    profile = await env.gql("query($id: ID!) { peacebuilder(id: $id) { profile { legalName } } }",
                            {"id": pb["id"]}, as_=("fund", "focal"))
    assert profile["data"]["peacebuilder"]["profile"]["legalName"] == "Corrected Legal Name"
    again = await env.gql(ANSWER, {"i": {"requestId": request["id"], "outcome": "DECLINED",
                                         "reason": "x"}}, as_=("fund", "focal"))
    assert again["data"]["answerCorrectionRequest"]["userErrors"][0]["code"] == "CONFLICT"
    # She is told (IDs and codes only) and reads the answer in her view.
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            notices = list(await s.scalars(select(Notice).where(
                Notice.peacebuilder_id == ids.decode(pb["id"], "Peacebuilder"),
                Notice.kind == "correction_answered")))
            stored = await s.get(DataRequest, ids.decode(request["id"], "DataRequest"))
            assert stored is not None
            reason_token = stored.answer_reason
    # Through tell_her: the request by its ID and the outcome as a code, nothing else.
    assert len(notices) == 1 and notices[0].details["reason"] == "corrected"
    assert notices[0].details["data_request"] == request_uuid  # a global ID on the way out
    assert "passport" not in json.dumps(notices[0].details)
    assert reason_token and "passport" not in reason_token  # sealed with her key
    seen = await env.gql(MY_REQUESTS, token=her, purpose=None)
    [answered] = [r for r in seen["data"]["me"]["dataRequests"] if r["id"] == request["id"]]
    assert answered["status"] == "corrected" and answered["reason"] == \
        "Fixed from your passport copy." and answered["answeredAt"]
    her_notices = await env.gql("{ me { notices { kind details } } }", token=her, purpose=None)
    assert "correction_answered" in [n["kind"] for n in her_notices["data"]["me"]["notices"]]
    # Answered: the chain stops.
    env.clock.advance(days=1)
    await run_due(env.runtime.db, env.clock)
    assert len(escalations(await inbox_of(env, "fund", "focal"))) == 1
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            steps = list(await s.scalars(select(ScheduledStep).where(
                ScheduledStep.subject_id == ids.decode(request["id"], "DataRequest"))
                .order_by(ScheduledStep.step)))
    assert steps[-1].outcome == "not_needed"
    # Declined, with a reason she reads.
    second = await env.gql(ASK, {"f": "other", "m": "The incident date is wrong."}, token=her,
                           purpose=None)
    second_id = second["data"]["requestCorrection"]["request"]["id"]
    declined = await env.gql(ANSWER, {"i": {"requestId": second_id, "outcome": "DECLINED",
                                            "reason": "The date is from the police report."}},
                             as_=("fund", "focal"))
    assert declined["data"]["answerCorrectionRequest"]["request"]["status"] == "declined"
    seen = await env.gql(MY_REQUESTS, token=her, purpose=None)
    [answer] = [r for r in seen["data"]["me"]["dataRequests"] if r["id"] == second_id]
    assert answer["reason"] == "The date is from the police report."
