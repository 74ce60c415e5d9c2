"""Her risk and her safety walked through (issue 19), on a fresh embedded deployment with a
controlled clock:

1. a joint risk assessment of mariam's case is drafted by mofa (her lead organisation), shared
   with her and agreed by her; the case's risk level becomes the assessment's;
2. a protection measure is planned against one of its threats (setMeasurePlan);
3. a check-in schedule is agreed with her; she misses a check-in (the clock is moved past it and
   the scheduler's tick is run, as a replica does); the alert reaches mofa's focal point live, on a
   websocket subscription (`subscription { alerts }`) to this same app, served in-process on a
   local port; she is told;
4. a consultation with her is logged; its follow-up is mofa's task, named to its focal point;
   left undone past its date, it escalates to her (inbox) until marked done;
5. her view: her plan in plain words in Swahili, and her data copy holding her risk and safety
   records.

Everything goes through the GraphQL API as each person would call it; her requests carry her own
token (a peacebuilder principal, as in response_walkthrough.py).

    .venv/bin/python docs/demo/risk_walkthrough.py
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from response_walkthrough import ME, Walk, demo_woman, running

from schema.server import create_app

DRAFT = """mutation($i: DraftRiskAssessmentInput!) { draftRiskAssessment(input: $i) {
  assessment { id status overallLevel threats { id facts } } userErrors { field message code } } }"""
SHARE = """mutation($id: ID!) { shareRiskAssessment(input: {id: $id}) {
  assessment { status } userErrors { field message code } } }"""
ANSWER = """mutation($id: ID!) { answerRiskAssessment(input: {id: $id, agree: true}) {
  assessment { status isCurrent } userErrors { field message code } } }"""
ADD_MEASURE = """mutation($i: AddMeasureInput!) { addMeasure(input: $i) {
  measure { id } userErrors { field message code } } }"""
PLAN = """mutation($i: SetMeasurePlanInput!) { setMeasurePlan(input: $i) {
  measure { id threatId planKind } userErrors { field message code } } }"""
AGREE = """mutation($i: AgreeCheckInScheduleInput!) { agreeCheckInSchedule(input: $i) {
  schedule { id intervalMinutes channel missedAction status } userErrors { field message code } } }"""
CASE = """query($id: ID!) { case(id: $id) { riskLevel checkIns { id status dueAt } } }"""
CONSULT = """mutation($i: RecordConsultationInput!) { recordConsultation(input: $i) {
  consultation { id followUps { action dueAt taskId } } userErrors { field message code } } }"""
TASKS = """query($id: ID!) { case(id: $id) { consultationFollowUps { id status dueAt
  ownerPersonId } } }"""
COMPLETE = """mutation($id: ID!) { completeConsultationFollowUp(input: {followUpId: $id}) {
  followUp { status doneAt } userErrors { field message code } } }"""
OVERVIEW = """{ me { riskOverview(language: "sw") { lines } } }"""
FOCAL = ("mofa", "focal")


def ok(payload: dict[str, Any], what: str) -> dict[str, Any]:
    if payload.get("userErrors"):
        raise SystemExit(f"{what} refused: {payload['userErrors']}")
    return payload


class Subscriber:
    """A focal point's live alert subscription over graphql-transport-ws."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.received: list[dict[str, Any]] = []
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{self.port}/graphql",
                                      subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": {
                "authorization": f"Bearer {self.token}", "purpose": "protection"}}))
            if json.loads(await ws.recv())["type"] != "connection_ack":
                raise SystemExit("subscription refused")
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription { alerts { kind payload cursor } }"}}))
            self.ready.set()
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "next":
                    self.received.append(message["payload"]["data"]["alerts"])

    async def wait_for(self, kind: str, seconds: float = 10) -> dict[str, Any] | None:
        for _ in range(int(seconds / 0.05)):
            for item in self.received:
                if item["kind"] == kind:
                    return item
            await asyncio.sleep(0.05)
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def assessment_walk(w: Walk, case_id: str, her: str) -> list[dict[str, Any]]:
    w.say("== 1. A joint risk assessment, drafted by mofa, agreed by her ==")
    w.say(f"case riskLevel before: {(await w.gql(CASE, {'id': case_id}, as_=FOCAL))['case']['riskLevel']}")
    review = (w.clock.now() + timedelta(days=60)).isoformat()
    drafted = ok((await w.gql(DRAFT, {"i": {
        "caseId": case_id, "level": "CRITICAL", "reviewAt": review,
        "herAnalysis": "They want the land report stopped.",
        "reasoning": "Credible and rising since the forum.",
        "threats": [{"likelihood": "HIGH", "impact": "CRITICAL",
                     "facts": "Threatening messages after the forum."},
                    {"likelihood": "MEDIUM", "impact": "HIGH",
                     "facts": "Her car was followed twice."}]}},
        as_=("mofa", "caseworker")))["draftRiskAssessment"], "draftRiskAssessment")["assessment"]
    w.say(f"mofa/caseworker: draftRiskAssessment(CRITICAL, {len(drafted['threats'])} threats) -> "
          f"{drafted['status']}")
    shared = ok((await w.gql(SHARE, {"id": drafted["id"]}, as_=("mofa", "caseworker")))
                ["shareRiskAssessment"], "shareRiskAssessment")["assessment"]
    w.say(f"mofa/caseworker: shareRiskAssessment -> {shared['status']}")
    agreed = ok((await w.gql(ANSWER, {"id": drafted["id"]}, token=her))["answerRiskAssessment"],
                "answerRiskAssessment")["assessment"]
    w.say(f"she: answerRiskAssessment(agree) -> {agreed['status']}, current {agreed['isCurrent']}")
    level = (await w.gql(CASE, {"id": case_id}, as_=FOCAL))["case"]["riskLevel"]
    w.say(f"case riskLevel now: {level} (the agreed assessment's level)")
    return list(drafted["threats"])


async def plan_walk(w: Walk, case_id: str, threats: list[dict[str, Any]]) -> None:
    w.say()
    w.say("== 2. A protection measure planned against one of its threats ==")
    added = ok((await w.gql(ADD_MEASURE, {"i": {
        "caseId": case_id, "kind": "SECURE_TRANSPORT",
        "dueAt": (w.clock.now() + timedelta(days=3)).isoformat()}},
        as_=("mofa", "caseworker")))["addMeasure"], "addMeasure")["measure"]
    planned = ok((await w.gql(PLAN, {"i": {
        "measureId": added["id"], "threatId": threats[1]["id"], "planKind": "PREVENTIVE_PROTOCOL"}},
        as_=("mofa", "caseworker")))["setMeasurePlan"], "setMeasurePlan")["measure"]
    which = next(i for i, t in enumerate(threats, 1) if t["id"] == planned["threatId"])
    w.say(f"mofa/caseworker: addMeasure(SECURE_TRANSPORT); setMeasurePlan -> "
          f"{planned['planKind']} against threat {which} ('{threats[which - 1]['facts']}')")


async def checkin_walk(w: Walk, case_id: str, her: str) -> None:
    w.say()
    w.say("== 3. A check-in schedule agreed with her; a missed check-in alerts mofa live ==")
    schedule = ok((await w.gql(AGREE, {"i": {
        "caseId": case_id, "intervalMinutes": 60, "channel": "SECURE_MESSENGER",
        "agreedVia": "IN_PERSON", "missedAction": "CALL_HER"}}, as_=("mofa", "caseworker")))
        ["agreeCheckInSchedule"], "agreeCheckInSchedule")["schedule"]
    w.say(f"mofa/caseworker: agreeCheckInSchedule(every {schedule['intervalMinutes']} min, "
          f"{schedule['channel']}, if missed {schedule['missedAction']}) -> {schedule['status']}")
    period = (await w.gql(CASE, {"id": case_id}, as_=FOCAL))["case"]["checkIns"][0]
    w.say(f"next check-in {period['status']}, due {period['dueAt']}")

    # mofa/focal listens live: this same app served on a local port, a websocket subscription.
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(w.runtime), host="127.0.0.1", port=port,
                                           log_level="warning", ws="websockets-sansio",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    sub = Subscriber(port, await w.token(*FOCAL))
    listening = asyncio.create_task(sub.run())
    try:
        await asyncio.wait_for(sub.ready.wait(), 10)
        await asyncio.sleep(0.3)
        w.say("mofa/focal: subscription { alerts } open on a websocket")
        w.clock.set(datetime.fromisoformat(period["dueAt"]) + timedelta(seconds=30))
        await w.runtime.extras["scheduler"].tick()
        alert = await sub.wait_for("check_in_missed")
        if alert is None:
            raise SystemExit(f"no live alert; got {[i['kind'] for i in sub.received]}")
        payload = json.loads(alert["payload"])
        w.say(f"[{w.clock.now():%H:%M}] scheduler tick; mofa/focal live alert: {alert['kind']} "
              f"(payload keys {sorted(payload)}, action {payload['action']})")
    finally:
        listening.cancel()
        server.should_exit = True
        await serving
    period = (await w.gql(CASE, {"id": case_id}, as_=FOCAL))["case"]["checkIns"][0]
    w.say(f"the check-in is now {period['status']}")
    told = [n["kind"] for n in (await w.gql(ME, token=her))["me"]["notices"]]
    w.say(f"she is told: {'check_in_missed' in told} ({told.count('check_in_missed')} "
          f"check_in_missed notice)")


async def follow_up_walk(w: Walk, case_id: str) -> None:
    from app.auth import principals
    from schema import ids

    w.say()
    w.say("== 4. A consultation's follow-up is mofa's task; overdue, it escalates ==")
    async with w.runtime.db.transaction() as s:
        focal = await principals.find_user(s, "mofa", "focal")
        mofa = ids.encode("Organisation", focal.org_id)
        focal_id = ids.encode("User", focal.id)
    await w.new_alerts(*FOCAL)  # from now on
    due = w.clock.now() + timedelta(days=2)
    consulted = ok((await w.gql(CONSULT, {"i": {
        "caseId": case_id, "heldAt": w.clock.now().isoformat(), "consulted": "HER",
        "risksRaised": "The checkpoint on her way to the office.",
        "followUps": [{"action": "Find another route with her driver.",
                       "ownerOrganisationId": mofa, "ownerUserId": focal_id,
                       "dueAt": due.isoformat()}]}}, as_=FOCAL))["recordConsultation"],
        "recordConsultation")["consultation"]
    w.say(f"mofa/focal: recordConsultation(1 follow-up, due {due:%Y-%m-%d}, owned by mofa/focal)")
    task = (await w.gql(TASKS, {"id": case_id}, as_=FOCAL))["case"]["consultationFollowUps"][0]
    assert task["id"] == consulted["followUps"][0]["taskId"]
    w.say(f"its task: {task['status']}, named owner shown to mofa: {task['ownerPersonId'] is not None}")
    w.clock.set(due + timedelta(minutes=1))
    await w.tick(0)
    alerts = [a for a in await w.new_alerts(*FOCAL)
              if a["kind"] == "escalation" and "follow_up" in json.loads(a["payload"])]
    payload = json.loads(alerts[0]["payload"]) if alerts else {}
    w.say(f"[{w.clock.now():%Y-%m-%d %H:%M}] scheduler: mofa/focal escalation alerts "
          f"{len(alerts)} (level {payload.get('level')}, to {payload.get('to')}, keys "
          f"{sorted(payload)})")
    done = ok((await w.gql(COMPLETE, {"id": task["id"]}, as_=FOCAL))
              ["completeConsultationFollowUp"], "completeConsultationFollowUp")["followUp"]
    await w.tick(24 * 60)
    again = [a for a in await w.new_alerts(*FOCAL)
             if a["kind"] == "escalation" and "follow_up" in json.loads(a["payload"])]
    w.say(f"mofa/focal: completeConsultationFollowUp -> {done['status']}; a day later, "
          f"{len(again)} more escalation alerts")


async def her_view_walk(w: Walk, her: str) -> None:
    w.say()
    w.say("== 5. Her view: her plan in Swahili, and her own data copy ==")
    for lines in (await w.gql(OVERVIEW, token=her))["me"]["riskOverview"]:
        for line in lines["lines"]:
            w.say(f"  {line}")
    got = await w.client.get("/me/data-copy", headers={"authorization": f"Bearer {her}"})
    copy = got.json()
    kept = {key: sum(len(c["riskAndSafety"][key]) for c in copy["cases"])
            for key in copy["cases"][0]["riskAndSafety"]}
    w.say(f"GET /me/data-copy -> {got.status_code}; riskAndSafety: {kept}")


async def main() -> None:
    async with running(datetime(2035, 5, 4, 9, 0, tzinfo=UTC)) as w:
        her = await w.her_token(await demo_woman(w, "mariam"))
        case_id = (await w.gql(ME, token=her))["me"]["cases"][0]["id"]
        threats = await assessment_walk(w, case_id, her)
        await plan_walk(w, case_id, threats)
        await checkin_walk(w, case_id, her)
        await follow_up_walk(w, case_id)
        await her_view_walk(w, her)


if __name__ == "__main__":
    asyncio.run(main())
