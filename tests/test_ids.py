"""Issue 16: one ID scheme. Every identifier that leaves the service — alert payloads, the
case timeline, access-log entries, e-mail links — is the opaque global ID that `node(id:)` and
the HTTP routes accept; stored forms (the hash chain's) stay as they are."""

from __future__ import annotations

import json

import pytest

from app import ids as app_ids
from tests.test_consent import new_peacebuilder
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"


async def test_alerts_timeline_and_log_name_objects_by_global_id(env):
    pb = await new_peacebuilder(env, "mofa")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("mofa", "caseworker"))
    incident = body["data"]["reportIncident"]["incident"]["id"]

    inbox = await env.gql("{ inbox { kind payload } }", as_=("mofa", "focal"))
    reported = [json.loads(a["payload"]) for a in inbox["data"]["inbox"]
                if a["kind"] == "incident_reported"]
    mine = [p for p in reported if p["incident"] == incident]
    assert mine and mine[0]["case"] == pb["case"]
    found = await env.gql(NODE, {"id": mine[0]["case"]}, as_=("mofa", "focal"))
    assert found["data"]["node"] == {"__typename": "Case", "id": pb["case"]}

    case = await env.gql("query($id: ID!) { case(id: $id) { timeline { kind subjectId } } }",
                         {"id": pb["case"]}, as_=("mofa", "focal"))
    reported_event = next(e for e in case["data"]["case"]["timeline"]
                          if e["kind"] == "incident.reported")
    assert reported_event["subjectId"] == incident

    log = await env.gql("""{ accessLog(first: 100, filter: {actionPrefix: "incident.report"}) {
        edges { node { targetType targetId details } } } }""", as_=("nhri", "auditor"))
    assert "errors" not in log, log
    entries = [e["node"] for e in log["data"]["accessLog"]["edges"]]
    assert any(e["targetType"] == "Incident" and e["targetId"] == incident for e in entries)
    assert all(app_ids.decode_any(e["targetId"]) for e in entries if e["targetId"])
    details = [json.loads(e["details"]) for e in entries if e["details"]]
    assert any(d.get("case") == pb["case"] for d in details)


def test_globalize_converts_known_keys_only():
    import uuid

    raw = uuid.uuid4()
    out = app_ids.globalize({"incident": str(raw), "level": 2, "to": "focal_points",
                             "organisations": [str(raw)], "what": "measure", "subject": str(raw),
                             "severity": "high"})
    assert out == {"incident": app_ids.encode("Incident", raw), "level": 2,
                   "to": "focal_points", "organisations": [app_ids.encode("Organisation", raw)],
                   "what": "measure", "subject": app_ids.encode("Measure", raw),
                   "severity": "high"}
