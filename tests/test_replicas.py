"""Two replicas for real: two `safety-net serve` processes on one PostgreSQL database and one
Redis, sharing nothing in memory, each connecting as the service role (row-level security on, as
in production) with its escalation scheduler running. Requests split across them are rate-limited
together; a role change and a consent revocation made through one bite on the very next request
to the other; an alert raised through one reaches a subscriber on the other; an acknowledgement
deadline set through one applies on the other, and its escalation fires once, not once per
replica.

`pytest -s tests/test_replicas.py` prints a transcript of what each replica answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from schema import ids
from tests.conftest import (
    BACKGROUND_ROLE,
    SERVICE_ROLE,
    Env,
    background_url,
    build_env,
    require_pg,
    require_redis,
    service_url,
    unique,
)
from tests.test_audit import superuser
from tests.test_cli import CLI, site_env
from tests.test_consent import READ, REVOKE, grant, new_peacebuilder
from tests.test_incidents import REPORT, incident_input
from tests.test_ratelimit import VIEWER, assert_throttled
from tests.test_realtime import Subscriber, free_port

pytestmark = pytest.mark.anyio

RATE = 4  # requests per client per minute, for both replicas together
STARTUP_SECONDS = 120  # two cores shared with other test runs: be patient
PROFILE = """{ viewer { roles } cases(first: 10) { edges { node {
  peacebuilder { pseudonym profile { legalName } } } } } }"""
SET_ROLES = """mutation($id: ID!, $roles: [Role!]!) {
  setUserRoles(input: {userId: $id, roles: $roles}) { user { roles } userErrors { message } } }"""
TICK = 1.0  # SAFETY_NET_SCHEDULER_INTERVAL in both replicas, seconds
ACK_MINUTES = 1  # the shortest acknowledgement deadline an organisation may set
INBOX = "{ inbox { kind payload } }"
# Superuser, BYPASSRLS or table owner; a tenancy key the database lacks, no background role.
ROLE_WARNING = "warning: the service "


@dataclass
class Replica:
    """One `safety-net serve` process."""

    name: str
    port: int
    process: asyncio.subprocess.Process
    log: Path

    async def post(self, query: str, variables: dict[str, Any] | None = None, *, token: str,
                   purpose: str | None = "protection") -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"}
        if purpose:
            headers["safety-net-purpose"] = purpose
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as http:
            return await http.post("/graphql", json={"query": query, "variables": variables},
                                   headers=headers)

    async def gql(self, query: str, variables: dict[str, Any] | None = None, *, token: str,
                  purpose: str | None = "protection") -> dict[str, Any]:
        response = await self.post(query, variables, token=token, purpose=purpose)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=5) as http:
            while True:
                assert self.process.returncode is None, f"replica {self.name} exited: {self.output()}"
                assert time.monotonic() < deadline, f"replica {self.name} not ready: {self.output()}"
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if needle in line]

    @contextlib.asynccontextmanager
    async def subscribed(self, token: str) -> AsyncIterator[Subscriber]:
        """`subscription { alerts }` over graphql-transport-ws on this replica, for the block."""
        sub = Subscriber(self.port, token)
        sub.start()
        assert sub.task is not None
        ready = asyncio.create_task(sub.ready.wait())
        try:
            await asyncio.wait({ready, sub.task}, timeout=30,
                               return_when=asyncio.FIRST_COMPLETED)
            if sub.task.done():
                sub.task.result()  # raises why the subscription failed
            assert sub.ready.is_set(), f"no subscription on replica {self.name}: {self.output()}"
            await asyncio.sleep(0.5)  # the server registers it after reading `subscribe`
            yield sub
        finally:
            for task in (ready, sub.task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)


@dataclass
class Deployment:
    env: Env  # the same database from inside the test: setup and tokens, rates off
    a: Replica
    b: Replica


@pytest.fixture(scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory,
                     anyio_backend: str) -> AsyncIterator[Deployment]:
    require_pg()
    redis_url = require_redis()
    tmp = tmp_path_factory.mktemp("replicas")
    env, close = await build_env("postgresql", tmp)
    # As in production: the schema owner migrated (build_env), the replicas connect as the
    # service role, so row-level security applies to everything they do.
    variables = {**site_env(env.settings.data_dir, service_url(env.owner_url)),
                 "SAFETY_NET_DB_SERVICE_ROLE": SERVICE_ROLE,
                 "SAFETY_NET_BACKGROUND_DATABASE_URL": background_url(env.owner_url),
                 "SAFETY_NET_DB_BACKGROUND_ROLE": BACKGROUND_ROLE,
                 "REDIS_URL": redis_url, "SAFETY_NET_REDIS_PREFIX": unique("sn-replicas"),
                 "SAFETY_NET_RATE_CLIENT": f"{RATE}/60",
                 "SAFETY_NET_SCHEDULER": "on", "SAFETY_NET_SCHEDULER_INTERVAL": str(TICK)}
    replicas: list[Replica] = []
    try:
        for name in ("A", "B"):
            port, log = free_port(), tmp / f"replica-{name}.log"
            with log.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    CLI, "serve", "--port", str(port), env=variables, cwd=tmp, stdout=out,
                    stderr=subprocess.STDOUT)
            replicas.append(Replica(name, port, process, log))
        await asyncio.gather(*(r.wait_ready() for r in replicas))
        a, b = replicas
        print(f"\nreplica A: pid {a.process.pid}, port {a.port}; replica B: pid {b.process.pid}, "
              f"port {b.port}; one PostgreSQL database, one Redis; "
              f"SAFETY_NET_RATE_CLIENT={RATE}/60, scheduler on in both every {TICK:g} s")
        for replica in replicas:
            assert replica.log_lines(ROLE_WARNING) == [], replica.output()
        async with superuser(env) as conn:
            roles = dict((await conn.execute(text(
                "SELECT usename, count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() GROUP BY usename"))).all())
        print(f"both replicas connect as {SERVICE_ROLE}, and as {BACKGROUND_ROLE} for the "
              "system scope (neither the owner nor a superuser): connections to the database "
              f"(replicas and this test) by role {roles}; neither log says {ROLE_WARNING!r}")
        assert set(roles) == {SERVICE_ROLE, BACKGROUND_ROLE}, roles
        yield Deployment(env, a, b)
    finally:
        for replica in replicas:
            await replica.stop()
        await close()


async def step_scans(env: Env) -> int:
    """How often the scheduled steps were read: each scheduler pass reads them once."""
    async with superuser(env) as conn:
        return int(await conn.scalar(text(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'scheduled_steps'")))


async def test_rate_limit_is_counted_across_replicas(deployment: Deployment) -> None:
    env, a, b = deployment.env, deployment.a, deployment.b
    token = await env.token("mofa", "caseworker")
    for n in range(1, RATE + 1):
        replica = a if n % 2 else b  # A, B, A, B: each replica alone sees only half
        response = await replica.post(VIEWER, token=token)
        print(f"replica {replica.name}: mofa/caseworker request {n} of {RATE} -> "
              f"{response.status_code}")
        assert response.status_code == 200, response.text
    refused = await a.post(VIEWER, token=token)  # A's third request, the client's fifth
    assert refused.status_code == 429, f"not limited across replicas: {refused.text}"
    error = refused.json()["errors"][0]["extensions"]
    print(f"replica A: mofa/caseworker request {RATE + 1} -> {refused.status_code} "
          f"{error['code']} (limit {error['limit']}, Retry-After "
          f"{refused.headers.get('retry-after')} s), though A itself has seen only {RATE // 2}")
    assert_throttled(refused, "RATE_LIMITED", "client", 60)
    assert_throttled(await b.post(VIEWER, token=token), "RATE_LIMITED", "client", 60)
    print("replica B: mofa/caseworker request 6 -> 429 RATE_LIMITED as well")
    other = await b.post(VIEWER, token=await env.token("mofa", "analyst"))
    print(f"replica B: mofa/analyst (another client) -> {other.status_code}")
    assert other.status_code == 200, other.text


async def test_role_change_on_one_replica_bites_on_the_next_request_to_the_other(
        deployment: Deployment) -> None:
    env, a, b = deployment.env, deployment.a, deployment.b
    users = await env.gql("{ users(first: 50) { edges { node { id username } } } }",
                          as_=("mofa", "admin"))
    focal_id = next(e["node"]["id"] for e in users["data"]["users"]["edges"]
                    if e["node"]["username"] == "focal")
    focal = await env.token("mofa", "focal")

    def mariam(body: dict[str, Any]) -> str | None:
        assert "errors" not in body, body
        [node] = [e["node"] for e in body["data"]["cases"]["edges"]
                  if e["node"]["peacebuilder"]["pseudonym"] == "mariam"]
        return node["peacebuilder"]["profile"]["legalName"]  # type: ignore[no-any-return]

    before = await b.gql(PROFILE, token=focal)  # B has now loaded the role assignments
    print(f"replica B: mofa/focal roles {before['data']['viewer']['roles']}, reads mariam's "
          f"legal name {mariam(before)!r}")
    assert before["data"]["viewer"]["roles"] == ["FOCAL_POINT"]
    assert mariam(before) == "Demo Person D"

    changed = await a.gql(SET_ROLES, {"id": focal_id, "roles": ["ANALYST"]},
                          token=await env.token("mofa", "admin"))
    print(f"replica A: mofa/admin setUserRoles(focal -> [ANALYST]) -> "
          f"{changed['data']['setUserRoles']}")
    assert changed["data"]["setUserRoles"] == {"user": {"roles": ["ANALYST"]}, "userErrors": []}

    after = await b.gql(PROFILE, token=focal)  # the same token, the very next request
    print(f"replica B, next request: mofa/focal roles {after['data']['viewer']['roles']}, "
          f"mariam's legal name {mariam(after)!r}, redacted "
          f"{after.get('extensions', {}).get('redacted')}")
    assert after["data"]["viewer"]["roles"] == ["ANALYST"]
    assert mariam(after) is None  # analysts see the pseudonymous record only


async def test_consent_revoked_on_one_replica_is_denied_on_the_next_read_on_the_other(
        deployment: Deployment) -> None:
    env, a, b = deployment.env, deployment.a, deployment.b
    pb = await new_peacebuilder(env, "fund")
    g = await grant(env, pb, as_=("fund", "focal"), to_org="embassy")
    embassy = await env.token("embassy", "focal")
    first = await b.gql(READ, {"id": pb["id"]}, token=embassy)
    summary = first["data"]["peacebuilder"]["cases"][0]["summary"]
    print(f"replica B: embassy/focal reads her case under her grant -> summary {summary!r}")
    assert summary

    her = await env.peacebuilder_token(pb["login"])
    revoked = await a.gql(REVOKE, {"id": g["id"]}, token=her, purpose=None)
    status = revoked["data"]["revokeConsent"]["grant"]["status"]
    print(f"replica A: she revokes the grant -> {status}")
    assert status == "REVOKED"

    second = await b.gql(READ, {"id": pb["id"]}, token=embassy)
    codes = [e.get("extensions", {}).get("code") for e in second.get("errors", [])]
    print(f"replica B, next read: data {second['data']}, errors {codes}")
    assert second["data"] == {"peacebuilder": None}


async def test_an_alert_raised_through_one_replica_reaches_a_subscriber_on_the_other(
        deployment: Deployment) -> None:
    env, a, b = deployment.env, deployment.a, deployment.b
    pb = await new_peacebuilder(env, "embassy")
    async with b.subscribed(await env.token("embassy", "focal")) as sub:
        print("replica B: embassy/focal subscribed to alerts (graphql-transport-ws)")
        started = time.monotonic()
        body = await a.gql(REPORT, incident_input(pb["case"]),
                           token=await env.token("embassy", "caseworker"))
        assert body["data"]["reportIncident"]["userErrors"] == [], body
        incident = body["data"]["reportIncident"]["incident"]
        print(f"replica A: embassy/caseworker reportIncident({incident['severity']}) on her case")
        alert = await sub.wait_for("incident_reported", seconds=30)
        payload = json.loads(alert["payload"])
        print(f"replica B: the subscription delivered {alert['kind']} "
              f"{sorted(payload)} after {time.monotonic() - started:.1f} s")
    assert payload["incident"] == incident["id"]  # the same opaque ID the API answered
    assert set(payload) == {"incident", "case", "severity", "reported_by"}  # IDs and codes


async def test_a_deadline_set_on_one_replica_escalates_once_across_both(
        deployment: Deployment) -> None:
    env, a, b = deployment.env, deployment.a, deployment.b
    policy = await b.gql(f"mutation {{ setAcknowledgementDeadline(input: {{severity: CRITICAL, "
                         f"minutes: {ACK_MINUTES}}}) {{ minutes userErrors {{ code }} }} }}",
                         token=await env.token("fund", "admin"))
    print(f"replica B: fund/admin setAcknowledgementDeadline(CRITICAL, {ACK_MINUTES} min) -> "
          f"{policy['data']['setAcknowledgementDeadline']}")
    assert policy["data"]["setAcknowledgementDeadline"] == {"minutes": ACK_MINUTES,
                                                            "userErrors": []}
    pb = await new_peacebuilder(env, "fund")
    focal = await env.token("fund", "focal")
    scans_before, polling_since = await step_scans(env), time.monotonic()
    async with a.subscribed(focal) as on_a, b.subscribed(focal) as on_b:
        print("replicas A and B: fund/focal subscribed to alerts on each")
        body = await a.gql(REPORT, incident_input(pb["case"]),
                           token=await env.token("fund", "caseworker"))
        started = time.monotonic()
        assert body["data"]["reportIncident"]["userErrors"] == [], body
        incident = body["data"]["reportIncident"]["incident"]
        uid = ids.decode(incident["id"], "Incident")
        incident_id = incident["id"]  # alert payloads name it by its global ID
        due_in = (datetime.fromisoformat(incident["acknowledgementDeadline"])
                  - datetime.now(UTC)).total_seconds()
        print(f"replica A: fund/caseworker reportIncident(CRITICAL) -> acknowledgement due in "
              f"{due_in:.0f} s (the deadline set through B); nobody acknowledges, waiting")
        assert ACK_MINUTES * 60 - 15 < due_in <= ACK_MINUTES * 60
        for name, sub in (("A", on_a), ("B", on_b)):
            alert = await sub.wait_for("escalation", seconds=due_in + 30)
            assert json.loads(alert["payload"])["incident"] == incident_id
            print(f"replica {name}: the subscription delivered escalation level "
                  f"{json.loads(alert['payload'])['level']} "
                  f"{time.monotonic() - started:.1f} s after the report")
        await asyncio.sleep(4 * TICK)  # both schedulers pass over the due step again
        polled = (await step_scans(env) - scans_before) / (time.monotonic() - polling_since)
        print(f"meanwhile scheduled_steps was read {polled:.1f} times a second; one scheduler "
              f"polls at most {1 / TICK:g}: both replicas' schedulers were running")
        assert polled > 1.2 / TICK  # with slack for a busy machine
        for name, sub in (("A", on_a), ("B", on_b)):
            kinds = [i["kind"] for i in sub.received]
            print(f"replica {name}: after {4 * TICK:g} more scheduler intervals the "
                  f"subscription has seen {kinds}")
            # A critical incident also starts a risk reassessment (issue 19): its own alert.
            assert sorted(kinds) == ["escalation", "incident_reported",
                                     "risk_reassessment_due"], kinds

    async with superuser(env) as conn:
        inbox = (await conn.execute(text(
            "SELECT recipient, count(*) FROM inbox WHERE kind = 'escalation' "
            "AND subject_id = :id GROUP BY recipient"), {"id": uid})).all()
        events = await conn.scalar(text(
            "SELECT count(*) FROM case_events WHERE kind = 'incident.escalated' "
            "AND subject_id = :id"), {"id": uid})
        steps = (await conn.execute(text(
            "SELECT step, outcome FROM scheduled_steps WHERE kind = 'escalation' "
            "AND subject_id = :id ORDER BY step"), {"id": uid})).all()
    print(f"database (read as the superuser that migrated it): escalation inbox items for it by recipient "
          f"{[n for _, n in inbox]}, incident.escalated events {events}, steps "
          f"{[tuple(s) for s in steps]}")
    assert inbox and all(n == 1 for _, n in inbox), inbox  # one per fund focal point
    assert events == 1
    assert [tuple(s) for s in steps] == [(1, "fired"), (2, None)]  # the chain's next level, scheduled

    for replica in (a, b):
        alerts = (await replica.gql(INBOX, token=focal))["data"]["inbox"]
        mine = [i["kind"] for i in alerts if json.loads(i["payload"]).get("incident") == incident_id]
        print(f"replica {replica.name}: still serving; fund/focal's inbox for the incident {mine}")
        assert sorted(mine) == ["escalation", "incident_reported", "risk_reassessment_due"]
        assert replica.process.returncode is None
        assert replica.log_lines("scheduler pass failed") == [], replica.output()
