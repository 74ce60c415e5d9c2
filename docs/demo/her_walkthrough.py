"""Her own account walked through (issue 18), on a fresh embedded deployment with a controlled clock:

a new woman is registered by unpc with her network wpn; wpn's focal point enrols her with a
one-time code (shown once); she redeems it at POST /auth/redeem-code choosing her password, signs
in at POST /auth/login, confirms her intake consent, reports an incident on her own case, unpc
acknowledges it, and she reads the acknowledgement in her notices.

Everything goes through the HTTP API as each person would call it (staff tokens are minted as in
the other walkthroughs; her token comes from her own sign-in). The code is printed once, when it
is issued — as her focal point would see it — and masked afterwards.

    .venv/bin/python docs/demo/her_walkthrough.py
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from response_walkthrough import ACK, REPORT, Walk, running

from schema import ids

CREATE = """mutation($i: CreatePeacebuilderInput!) { createPeacebuilder(input: $i) {
  peacebuilder { id } intakeConsent { id status } userErrors { field message code } } }"""
ORGS = "{ organisations(first: 50) { edges { node { id slug } } } }"
CONFIRM_NETWORK = """mutation($pb: ID, $n: ID!) { confirmNetwork(input: {peacebuilderId: $pb,
  networkId: $n}) { link { id } confirmationId userErrors { field message code } } }"""
CONFIRM = """mutation($id: ID!) { confirmTwoPerson(input: {id: $id}) {
  confirmation { status } userErrors { field message code } } }"""
ISSUE = """mutation($i: IssueHerCodeInput!) { issueHerCode(input: $i) {
  code expiresAt purpose userErrors { field message code } } }"""
CONFIRMATIONS = """{ confirmations(first: 100) { edges { node { id targetId status } } } }"""
OPEN = """mutation($i: OpenCaseInput!) { openCase(input: $i) {
  case { id status } userErrors { field message code } } }"""
NOTICES = "{ me { peacebuilder { pseudonym } cases { id } notices { kind } } }"
PASSWORD = secrets.token_urlsafe(18)  # generated per run, never printed
LOGIN = "amina-demo"


def masked(code: str) -> str:
    return code[:4] + "-****-****-****"


def ok(payload: dict[str, Any], what: str) -> dict[str, Any]:
    if payload.get("userErrors"):
        raise SystemExit(f"{what} refused: {payload['userErrors']}")
    return payload


async def walk(w: Walk) -> None:
    orgs = {e["node"]["slug"]: e["node"]["id"]
            for e in (await w.gql(ORGS, as_=("unpc", "focal")))["organisations"]["edges"]}
    w.say("== 1. She is registered by unpc, with her network wpn ==")
    created = ok((await w.gql(CREATE, {"i": {
        "pseudonym": "amina", "networkIds": [orgs["wpn"]],
        "intakeConsent": {"obtainedVia": "IN_PERSON", "categories": ["INCIDENT_DETAILS"],
                          "evidence": {"kind": "SIGNED_FORM", "reference": "intake form 7"}}}},
        as_=("unpc", "caseworker")))["createPeacebuilder"], "createPeacebuilder")
    pb, grant = created["peacebuilder"]["id"], created["intakeConsent"]
    w.say(f"unpc/caseworker: createPeacebuilder(amina, network wpn) -> intake consent "
          f"{grant['status']}")
    # Without a login yet, a second person confirms her intake consent against the evidence.
    pending = (await w.gql(CONFIRMATIONS, as_=("unpc", "focal")))["confirmations"]["edges"]
    target = ids.decode_any(grant["id"])[1]
    confirmation = next(e["node"]["id"] for e in pending if e["node"]["status"] == "PENDING"
                        and ids.decode_any(e["node"]["targetId"])[1] == target)
    done = ok((await w.gql(CONFIRM, {"id": confirmation}, as_=("unpc", "focal")))
              ["confirmTwoPerson"], "confirmTwoPerson")
    w.say(f"unpc/focal: confirmTwoPerson(her intake consent, against the signed form) -> "
          f"{done['confirmation']['status']}")
    asked = ok((await w.gql(CONFIRM_NETWORK, {"pb": pb, "n": orgs["wpn"]},
                            as_=("unpc", "focal")))["confirmNetwork"], "confirmNetwork")
    done = ok((await w.gql(CONFIRM, {"id": asked["confirmationId"]},
                           as_=("unpc", "focal2")))["confirmTwoPerson"], "confirmTwoPerson")
    w.say(f"unpc/focal: confirmNetwork(wpn); unpc/focal2: confirmTwoPerson -> "
          f"{done['confirmation']['status']}")

    w.say()
    w.say("== 2. Her network's focal point enrols her with a one-time code ==")
    issued = ok((await w.gql(ISSUE, {"i": {"peacebuilderId": pb}},
                             as_=("wpn", "focal")))["issueHerCode"], "issueHerCode")
    code = issued["code"]
    w.say(f"wpn/focal: issueHerCode -> {issued['purpose']} code {code} (shown this once), "
          f"expires {issued['expiresAt']}")
    redeemed = await w.client.post("/auth/redeem-code",
                                   json={"code": code, "login": LOGIN, "password": PASSWORD})
    w.say(f"she: POST /auth/redeem-code({masked(code)}, login {LOGIN}, her password) -> "
          f"{redeemed.status_code} {redeemed.json().get('purpose')}")
    if redeemed.status_code != 200:
        raise SystemExit(f"redeem refused: {redeemed.text}")
    again = await w.client.post("/auth/redeem-code", json={
        "code": code, "login": LOGIN, "password": secrets.token_urlsafe(18)})
    w.say(f"anyone: POST /auth/redeem-code({masked(code)}) again -> {again.status_code} "
          f"{again.json().get('error')} (single use)")
    signed = await w.client.post("/auth/login", json={"login": LOGIN, "password": PASSWORD})
    if signed.status_code != 200:
        raise SystemExit(f"sign-in refused: {signed.text}")
    her = str(signed.json()["access_token"])
    w.say(f"she: POST /auth/login({LOGIN}) -> {signed.status_code}, a session of her own")
    me = (await w.gql(NOTICES, token=her))["me"]
    w.say(f"she: me -> {me['peacebuilder']['pseudonym']}, notices "
          f"{[n['kind'] for n in me['notices']]}")
    w.say()
    w.say("== 3. She reports an incident herself; unpc acknowledges; she is told ==")
    case = ok((await w.gql(OPEN, {"i": {"peacebuilderId": pb,
                                        "summary": "Threats after the land forum."}},
                           as_=("unpc", "caseworker")))["openCase"], "openCase")["case"]
    w.say(f"unpc/caseworker: openCase(amina) -> {case['status']}")
    reported = ok((await w.gql(REPORT, {"i": {
        "caseId": case["id"], "type": "THREATS", "severity": "HIGH", "reportedBy": "herself",
        "reportedVia": "secure_messenger", "description": "A man followed me home from the forum."}},
        token=her))["reportIncident"], "reportIncident")["incident"]
    w.say(f"[{w.clock.now():%H:%M}] she: reportIncident(her case, HIGH) -> {reported['status']}, "
          f"acknowledge by {reported['acknowledgementDeadline']}")
    w.clock.advance(minutes=20)
    acked = await w.gql(ACK, {"id": reported["id"]}, as_=("unpc", "focal"))
    w.say(f"[{w.clock.now():%H:%M}] unpc/focal: acknowledgeIncident -> "
          f"{acked['acknowledgeIncident']['incident']['status']}")
    kinds = [n["kind"] for n in (await w.gql(NOTICES, token=her))["me"]["notices"]]
    w.say(f"she: me.notices -> {kinds}")
    if "incident_acknowledged" not in kinds:
        raise SystemExit("she was not told of the acknowledgement")


async def main() -> None:
    async with running(datetime(2035, 4, 6, 10, 0, tzinfo=UTC)) as w:
        await walk(w)


if __name__ == "__main__":
    asyncio.run(main())
