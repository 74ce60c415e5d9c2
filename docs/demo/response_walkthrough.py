"""The response walked through (issue 17), on a fresh embedded deployment with a controlled clock:

1. a critical incident on mariam's case (led by mofa) goes unacknowledged: its chain runs level by
   level — focal points, the person on duty, the head of protection — empty levels are skipped
   and said so, the last level that reaches someone repeats, and mofa's overseer (the NHRI)
   receives a content-free notice; an acknowledgement stops it;
2. her case is closed accountably: a reason and a dated follow-up plan are required, the case is
   high risk so a second focal point must confirm, she is told; it can be reopened with a reason.

Everything goes through the GraphQL API as each person would call it; the only thing done by
hand is time: the clock is moved and the scheduler's tick is run, as a replica does every
`SAFETY_NET_SCHEDULER_INTERVAL` seconds.

    .venv/bin/python docs/demo/response_walkthrough.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app import demo, ids  # noqa: E402
from app.access.principal import SYSTEM  # noqa: E402
from app.auth import principals  # noqa: E402
from app.clock import FrozenClock  # noqa: E402
from app.config import REPO_ROOT, Settings  # noqa: E402
from app.runtime import Runtime, context_for  # noqa: E402
from app.scheduler import run_due  # noqa: E402
from app.storage import upgrade  # noqa: E402
from app.tenancy import SYSTEM as SETUP  # noqa: E402
from app.tenants import schema as tenant_schema  # noqa: E402
from app.tenants import service as tenant_service  # noqa: E402
from schema.server import create_app  # noqa: E402

ME = "{ me { peacebuilder { id } cases { id status } notices { kind createdAt } } }"
ADD_SHIFT = """mutation($i: AddDutyShiftInput!) { addDutyShift(input: $i) {
  shift { id startsAt endsAt } userErrors { field message code } } }"""
REPORT = """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
  incident { id severity status acknowledgementDeadline } userErrors { field message code } } }"""
INBOX = "query($a: String) { inbox(after: $a) { kind createdAt cursor payload } }"
TIMELINE = "query($id: ID!) { case(id: $id) { status closureReason timeline { kind details } } }"
OPEN = """mutation($i: OpenCaseInput!) { openCase(input: $i) {
  case { id status riskLevel } userErrors { field message code } } }"""
ACK = """mutation($id: ID!) { acknowledgeIncident(id: $id) { incident { status acknowledgedAt } } }"""
CLOSE = """mutation($i: CloseCaseInput!) { closeCase(input: $i) {
  case { id status } confirmationId userErrors { field message code } } }"""
DRAFT = """mutation($i: DraftRiskAssessmentInput!) { draftRiskAssessment(input: $i) {
  assessment { id } userErrors { field message code } } }"""
SHARE = """mutation($id: ID!) { shareRiskAssessment(input: {id: $id}) { userErrors { code } } }"""
ANSWER = """mutation($id: ID!) { answerRiskAssessment(input: {id: $id, agree: true}) {
  assessment { status } userErrors { code } } }"""
LEVEL = "query($id: ID!) { case(id: $id) { riskLevel } }"
CONFIRM = """mutation($i: ConfirmationIdInput!) { confirmTwoPerson(input: $i) {
  userErrors { field message code } } }"""
REOPEN = """mutation($i: ReopenCaseInput!) { reopenCase(input: $i) {
  case { id status } userErrors { field message code } } }"""


class Walk:
    def __init__(self, runtime: Runtime, client: httpx.AsyncClient, clock: FrozenClock) -> None:
        self.runtime, self.client, self.clock = runtime, client, clock
        self.cursors: dict[tuple[str, str], str | None] = {}

    async def token(self, org: str, user: str) -> str:
        async with self.runtime.db.transaction() as s:
            found = await principals.find_user(s, org, user)
            return str(self.runtime.issuer.issue(subject=found.subject, org_id=str(found.org_id),
                                                 acr="mfa")[0])

    async def her_token(self, pb_id: str) -> str:
        return str(self.runtime.issuer.issue(subject=f"peacebuilder:{pb_id}", org_id=None)[0])

    async def gql(self, query: str, variables: dict[str, Any] | None = None, *,
                  as_: tuple[str, str] | None = None, token: str | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token or await self.token(*as_)}"}  # type: ignore[misc]
        if as_:
            headers["safety-net-purpose"] = "protection"
        body = (await self.client.post("/graphql", json={"query": query, "variables": variables or {}},
                                       headers=headers)).json()
        if body.get("errors"):
            raise SystemExit(f"unexpected errors: {body['errors']}")
        return dict(body["data"])

    async def new_alerts(self, org: str, user: str) -> list[dict[str, Any]]:
        key = (org, user)
        if key not in self.cursors:  # first look: start from now
            items = (await self.gql(INBOX, as_=key))["inbox"]
            self.cursors[key] = items[-1]["cursor"] if items else None
            return []
        items = (await self.gql(INBOX, {"a": self.cursors[key]}, as_=key))["inbox"]
        if items:
            self.cursors[key] = items[-1]["cursor"]
        return list(items)

    async def tick(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)
        await run_due(self.runtime.db, self.clock)

    def say(self, line: str = "") -> None:
        print(line, flush=True)


def _payload(alert: dict[str, Any]) -> dict[str, Any]:
    p = alert["payload"]
    return dict(json.loads(p) if isinstance(p, str) else p)


def _details(event: dict[str, Any]) -> dict[str, Any]:
    d = event["details"]
    return dict(json.loads(d) if isinstance(d, str) else (d or {}))


async def incident_walk(w: Walk, case_id: str) -> list[str]:
    """Report, let it run to the last level and the overseers, acknowledge. Returns the levels."""
    watchers = [("mofa", "focal"), ("mofa", "focal2"), ("mofa", "admin"), ("nhri", "focal")]
    for who in watchers:
        await w.new_alerts(*who)
    w.say("== 1. A critical incident, from report to the last level of mofa's chain ==")
    w.say("mofa's chain (the default: no chain declared in tenants/mofa.yaml): focal points at "
          "the deadline, 60 min later the person on duty, 30 min later its head of protection")
    async with w.runtime.db.transaction() as s:
        focal2 = await principals.find_user(s, "mofa", "focal2")
    shift = (await w.gql(ADD_SHIFT, {"i": {
        "userId": ids.encode("User", focal2.id), "startsAt": w.clock.now().isoformat(),
        "endsAt": (w.clock.now() + timedelta(hours=12)).isoformat()}}, as_=("mofa", "admin")))
    if shift["addDutyShift"]["userErrors"]:
        raise SystemExit(f"addDutyShift refused: {shift['addDutyShift']['userErrors']}")
    w.say("mofa/admin: addDutyShift(focal2, 09:00-21:00); no head of protection declared")
    reported = (await w.gql(REPORT, {"i": {
        "caseId": case_id, "type": "THREATS", "severity": "CRITICAL", "reportedBy": "herself",
        "reportedVia": "secure_messenger",
        "description": "Threatening messages after the forum."}}, as_=("mofa", "caseworker")))
    incident = reported["reportIncident"]["incident"]
    w.say(f"[{w.clock.now():%H:%M}] mofa/caseworker: reportIncident -> {incident['status']}, "
          f"acknowledge by {incident['acknowledgementDeadline']}")
    for who in watchers:
        for a in await w.new_alerts(*who):
            w.say(f"        {who[0]}/{who[1]} inbox: {a['kind']}")
    seen: list[str] = []
    done_events = 0
    for _ in range(10):
        await w.tick(30)
        events = (await w.gql(TIMELINE, {"id": case_id}, as_=("mofa", "focal")))["case"]["timeline"]
        for e in events[done_events:]:
            if e["kind"].startswith("incident.escalat"):
                d = _details(e)
                line = f"level {d.get('level')} {d.get('to')}: {e['kind'].split('.', 1)[1]}"
                if "recipients" in d:
                    line += f" to {d['recipients']} active person(s)"
                seen.append(line)
                w.say(f"[{w.clock.now():%H:%M}] timeline: {line}")
        done_events = len(events)
        for who in watchers:
            for a in await w.new_alerts(*who):
                p = _payload(a)
                w.say(f"        {who[0]}/{who[1]} inbox: {a['kind']} "
                      f"{ {k: p[k] for k in ('level', 'to', 'missed') if k in p} }")
    acked = await w.gql(ACK, {"id": incident["id"]}, as_=("mofa", "focal"))
    w.say(f"[{w.clock.now():%H:%M}] mofa/focal: acknowledgeIncident -> "
          f"{acked['acknowledgeIncident']['incident']['status']}")
    await w.tick(180)
    after = 0
    for who in watchers:
        after += len(await w.new_alerts(*who))
    w.say(f"[{w.clock.now():%H:%M}] three hours later: {after} new alerts (the chain stopped)")
    return seen


async def closure_walk(w: Walk, pb_id: str, her: str) -> None:
    w.say()
    w.say("== 2. A case, from opening to accountable closure ==")
    opened = (await w.gql(OPEN, {"i": {"peacebuilderId": pb_id,
                                       "summary": "Summons after the radio interview."}},
                          as_=("mofa", "caseworker")))["openCase"]
    if opened["userErrors"]:
        raise SystemExit(f"openCase refused: {opened['userErrors']}")
    case_id = opened["case"]["id"]
    w.say(f"mofa/caseworker: openCase(mariam) -> {opened['case']['status']}")
    # Its risk level is her joint risk assessment's (issue 19): drafted, shared, agreed by her.
    review = (w.clock.now() + timedelta(days=60)).isoformat()
    drafted = (await w.gql(DRAFT, {"i": {"caseId": case_id, "level": "HIGH", "reviewAt": review,
                                         "herAnalysis": "The summons is meant to silence me.",
                                         "threats": [{"likelihood": "HIGH", "impact": "HIGH",
                                                      "facts": "A summons after the interview."}]}},
                           as_=("mofa", "caseworker")))["draftRiskAssessment"]
    if drafted["userErrors"]:
        raise SystemExit(f"draftRiskAssessment refused: {drafted['userErrors']}")
    assessment = drafted["assessment"]["id"]
    await w.gql(SHARE, {"id": assessment}, as_=("mofa", "caseworker"))
    agreed = (await w.gql(ANSWER, {"id": assessment}, token=her))["answerRiskAssessment"]
    w.say(f"mofa/caseworker: draftRiskAssessment(HIGH), shared; she answers -> "
          f"{agreed['assessment']['status']}, case riskLevel "
          f"{(await w.gql(LEVEL, {'id': case_id}, as_=('mofa', 'focal')))['case']['riskLevel']}")
    refused = await w.gql(CLOSE, {"i": {"caseId": case_id, "reason": "RISK_RESOLVED",
                                        "followUp": []}}, as_=("mofa", "focal"))
    w.say(f"closeCase without a follow-up plan -> userErrors "
          f"{[e['code'] for e in refused['closeCase']['userErrors']]}")
    due = (w.clock.now() + timedelta(days=30)).isoformat()
    asked = (await w.gql(CLOSE, {"i": {"caseId": case_id, "reason": "RISK_RESOLVED", "followUp": [
        {"kind": "PSYCHOSOCIAL_SUPPORT", "dueAt": due, "description": "Call her a month after closure."}]}},
        as_=("mofa", "focal")))["closeCase"]
    if asked["userErrors"]:
        raise SystemExit(f"closeCase refused: {asked['userErrors']}")
    state = (await w.gql(TIMELINE, {"id": case_id}, as_=("mofa", "focal")))["case"]["status"]
    w.say(f"mofa/focal: closeCase(RISK_RESOLVED, follow-up call on {due[:10]}) -> high risk: awaits a "
          f"second focal point (confirmation {asked['confirmationId'][:12]}…); case still {state}")
    confirmed = await w.gql(CONFIRM, {"i": {"id": asked["confirmationId"]}}, as_=("mofa", "focal2"))
    w.say(f"mofa/focal2: confirmTwoPerson -> userErrors "
          f"{confirmed['confirmTwoPerson']['userErrors']}")
    case = (await w.gql(TIMELINE, {"id": case_id}, as_=("mofa", "focal")))["case"]
    w.say(f"case now {case['status']} ({case['closureReason']}); timeline ends with "
          f"{[e['kind'] for e in case['timeline'][-3:]]}")
    notices = (await w.gql(ME, token=her))["me"]["notices"]
    # (her assessment's notices carry the same instant on the walkthrough's frozen clock)
    told = [n["kind"] for n in notices if not str(n["kind"]).startswith("risk_")]
    w.say(f"she sees in her notices: {told[-2:]}")
    reopened = await w.gql(REOPEN, {"i": {"caseId": case_id, "reason": "NEW_THREAT"}},
                           as_=("mofa", "focal"))
    w.say(f"mofa/focal: reopenCase(NEW_THREAT) -> {reopened['reopenCase']['case']['status']}")


@asynccontextmanager
async def running(start: datetime) -> AsyncIterator[Walk]:
    """A fresh embedded deployment (SQLite in a temporary directory, the tenants and the demo
    data loaded), its app served in-process, the clock frozen at `start`. Shared by the other
    walkthroughs of docs/demo."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'walk.db'}"
        await asyncio.to_thread(upgrade, url)
        clock = FrozenClock(start)
        settings = replace(Settings(), database_url=url, data_dir=Path(tmp) / "data",
                           policy_dir=REPO_ROOT / "policies", tenants_dir=REPO_ROOT / "tenants",
                           log_worker=False, scheduler=False)
        runtime = Runtime.create(settings, clock=clock, tenancy_fallback=SETUP)
        async with runtime.db.transaction() as session:
            ctx = context_for(runtime, session, SYSTEM, request_id="walk-setup")
            await tenant_service.apply(ctx, tenant_schema.load_dir(settings.tenants_dir))
        await demo.load(runtime)
        asgi = create_app(runtime)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://walk")
        lifespan = asgi.router.lifespan_context(asgi)
        await lifespan.__aenter__()
        try:
            yield Walk(runtime, client, clock)
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
            await runtime.close()


async def demo_woman(w: Walk, pseudonym: str) -> str:
    """The raw ID of a demo woman (app/demo.py's contract)."""
    from sqlalchemy import select

    from app.tables.peacebuilders import Peacebuilder
    async with w.runtime.db.transaction() as s:
        return str(await s.scalar(select(Peacebuilder.id).where(Peacebuilder.pseudonym == pseudonym)))


async def main() -> None:
    async with running(datetime(2035, 3, 2, 9, 0, tzinfo=UTC)) as w:
        her = await w.her_token(await demo_woman(w, "mariam"))
        mine = (await w.gql(ME, token=her))["me"]
        await incident_walk(w, mine["cases"][0]["id"])
        await closure_walk(w, mine["peacebuilder"]["id"], her)


if __name__ == "__main__":
    asyncio.run(main())
