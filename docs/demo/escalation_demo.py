"""An incident left unacknowledged past a (shortened) deadline is escalated, and focal points of
two organisations receive the alerts over a websocket.

Run against a demo server whose scheduler runs often:
    SAFETY_NET_SCHEDULER_INTERVAL=2 python3 dev.py run --port 8000
    .venv/bin/python docs/demo/escalation_demo.py [--base http://127.0.0.1:8000]

mofa leads mariam's case; mofa belongs to the working group `jag`, convened by `unpc`. With a
1-minute deadline, mofa's focal point is alerted after 1 minute, unpc's after 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time

import httpx
import websockets


def token(*args: str) -> str:
    return subprocess.run([".venv/bin/safety-net", "token", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


async def gql(http: httpx.AsyncClient, tok: str, query: str, variables: dict | None = None,
              purpose: str | None = "protection") -> dict:
    headers = {"authorization": f"Bearer {tok}"}
    if purpose:
        headers["safety-net-purpose"] = purpose
    response = await http.post("/graphql", json={"query": query, "variables": variables or {}},
                               headers=headers)
    return response.json()


async def listen(ws_url: str, tok: str, who: str, seen: list[str], stop: asyncio.Event) -> None:
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {
            "authorization": f"Bearer {tok}", "purpose": "protection"}}))
        print(f"[{who}] {json.loads(await ws.recv())['type']}")
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { alerts { kind createdAt payload } }"}}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 1)
            except TimeoutError:
                continue
            message = json.loads(raw)
            if message["type"] == "next":
                alert = message["payload"]["data"]["alerts"]
                print(f"[{who}] {time.strftime('%H:%M:%S')} alert {alert['kind']} {alert['payload']}")
                seen.append(f"{who}:{alert['kind']}:{json.loads(alert['payload']).get('level', '')}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    ws_url = args.base.replace("http", "ws", 1) + "/graphql"
    async with httpx.AsyncClient(base_url=args.base, timeout=30) as http:
        admin, caseworker = token("--org", "mofa", "--user", "admin"), token("--org", "mofa", "--user", "caseworker")
        print(await gql(http, admin, "mutation { setAcknowledgementDeadline(input: {severity: CRITICAL, minutes: 1}) { minutes userErrors { message } } }"))
        cases = await gql(http, caseworker, "{ cases(first: 5) { edges { node { id peacebuilder { pseudonym } } } } }")
        case_id = next(e["node"]["id"] for e in cases["data"]["cases"]["edges"]
                       if e["node"]["peacebuilder"]["pseudonym"] == "mariam")
        seen: list[str] = []
        stop = asyncio.Event()
        listeners = [asyncio.create_task(listen(ws_url, token("--org", org, "--user", "focal"),
                                                f"{org} focal", seen, stop)) for org in ("mofa", "unpc")]
        await asyncio.sleep(1)
        reported = await gql(http, caseworker, """mutation($i: ReportIncidentInput!) {
            reportIncident(input: $i) { incident { id status acknowledgementDeadline } userErrors { message } } }""",
                             {"i": {"caseId": case_id, "type": "THREATS", "severity": "CRITICAL",
                                    "reportedBy": "herself", "reportedVia": "phone"}})
        print(f"{time.strftime('%H:%M:%S')} reported: {reported['data']['reportIncident']['incident']}")
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and "unpc focal:escalation:2" not in seen:
            await asyncio.sleep(1)
        stop.set()
        await asyncio.gather(*listeners)
        print("received:", seen)
        assert "mofa focal:escalation:1" in seen and "unpc focal:escalation:2" in seen


if __name__ == "__main__":
    asyncio.run(main())
