"""Two real uvicorn instances on one PostgreSQL and Redis: alerts cross replicas over Redis
pub/sub and websockets, an escalation fires once, a revoked subscriber stops, emails carry a link
and nothing about her."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import select, text, update

from app.clock import FrozenClock
from app.runtime import Runtime
from app.tables.orgs import User
from schema.server import create_app
from tests.conftest import REQUIRE_SERVICES, build_env, require_pg
from tests.smtp_sink import SMTPSink
from tests.test_consent import new_peacebuilder
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio
REDIS_URL = os.environ.get("SAFETY_NET_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def require_redis() -> None:
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is required but not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(runtime: Runtime):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port,
                                           log_level="warning", ws="websockets-sansio", lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class Subscriber:
    def __init__(self, port: int, token: str, purpose: str = "protection") -> None:
        self.port, self.token, self.purpose = port, token, purpose
        self.received: list[dict] = []
        self.completed = asyncio.Event()
        self.ready = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{self.port}/graphql",
                                      subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {
                "authorization": f"Bearer {self.token}", "purpose": self.purpose}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription { alerts { kind payload cursor } }"}}))
            self.ready.set()
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] == "next":
                        self.received.append(message["payload"]["data"]["alerts"])
                    elif message["type"] in ("complete", "error"):
                        self.completed.set()
                        return
            except websockets.ConnectionClosed as closed:
                # The server shut down under it at the end of a test (1012 service restart):
                # the test has checked what was received; that close must not surface in the
                # next test's setup. Any other close is the test's to see.
                if closed.rcvd is None or closed.rcvd.code != 1012:
                    raise
                self.completed.set()

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def wait_for(self, kind: str, seconds: float = 10) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for item in self.received:
                if item["kind"] == kind:
                    return item
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {kind} alert; got {[i['kind'] for i in self.received]}")


async def test_two_instances_escalate_once_and_deliver_across_replicas(tmp_path):
    require_pg()
    await require_redis()
    sink = SMTPSink()
    await sink.start()
    clock = FrozenClock(datetime(2034, 1, 1, 8, 0, tzinfo=UTC))
    env, close = await build_env("postgresql", tmp_path, clock=clock, redis_url=REDIS_URL,
                                 smtp_host="127.0.0.1", smtp_port=sink.port)
    settings = replace(env.settings, scheduler=False, log_worker=False)
    a, b = Runtime.create(settings, clock=clock), Runtime.create(settings, clock=clock)
    try:
        async with env.runtime.db.transaction() as s:
            await s.execute(update(User).values(email="focal@example.org")
                            .where(User.username == "focal"))
        pb = await new_peacebuilder(env, "mofa")
        focal = await env.token("mofa", "focal")
        async with serve(a) as port_a, serve(b) as port_b:
            sub = Subscriber(port_b, focal)
            sub.start()
            await asyncio.wait_for(sub.ready.wait(), 10)
            await asyncio.sleep(0.3)
            caseworker = await env.token("mofa", "caseworker")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_a}") as http:
                response = await http.post("/graphql", json={
                    "query": REPORT, "variables": incident_input(pb["case"])}, headers={
                    "authorization": f"Bearer {caseworker}", "safety-net-purpose": "protection"})
                assert response.json()["data"]["reportIncident"]["userErrors"] == []
            reported = await sub.wait_for("incident_reported")
            assert set(json.loads(reported["payload"])) == {"incident", "case", "severity", "reported_by"}
            clock.advance(minutes=61)
            ticks = await asyncio.gather(a.extras["scheduler"].tick(), b.extras["scheduler"].tick())
            # One replica fired the step, once: one item for each of mofa's two focal points.
            assert sorted(len(t) for t in ticks) == [0, 2]
            escalation = await sub.wait_for("escalation")
            await asyncio.sleep(0.5)
            assert [i["kind"] for i in sub.received].count("escalation") == 1
            text = json.dumps(sub.received)
            assert pb["login"] not in text and "Threatening" not in text
            # Email: a link only.
            for _ in range(50):
                if any("escalation" in m for m in sink.messages):
                    break
                await asyncio.sleep(0.1)
            mails = [m for m in sink.messages if "escalation" in m]
            assert mails and "/alerts/" in mails[0]
            assert pb["login"] not in mails[0] and "Threatening" not in mails[0]
            assert json.loads(escalation["payload"])["level"] == 1

            # She revokes everything: the next alert about her case ends the subscription.
            due = clock.now() + timedelta(hours=25)
            await env.gql("""mutation($c: ID!, $d: DateTime) { addMeasure(input: {caseId: $c,
                kind: ACCOMPANIMENT, dueAt: $d}) { measure { id } } }""",
                          {"c": pb["case"], "d": due.isoformat()}, as_=("mofa", "focal"))
            her = await env.peacebuilder_token(pb["login"])
            await env.gql("mutation { revokeAllConsent(input: {}) { revoked { id } } }", token=her,
                          purpose=None)
            clock.advance(hours=2)
            await a.extras["scheduler"].tick()
            await asyncio.wait_for(sub.completed.wait(), 10)
            assert "task_due" not in [i["kind"] for i in sub.received]
    finally:
        await a.close()
        await b.close()
        await close()
        await sink.stop()


async def test_subscription_ends_when_its_token_expires(tmp_path):
    require_pg()
    env, close = await build_env("postgresql", tmp_path)
    settings = replace(env.settings, scheduler=False, log_worker=False)
    runtime = Runtime.create(settings)
    try:
        async with env.runtime.db.transaction() as s:
            user = await s.scalar(select(User).where(User.username == "focal"))
            subject, org = user.subject, str(user.org_id)
        ttl = env.settings.token_ttl_seconds
        # Signed in with her second factor (a focal point without one is refused at connect).
        token = env.runtime.issuer.issue(subject=subject, org_id=org, acr="mfa",
                                         now=time.time() - ttl + 2)[0]
        async with serve(runtime) as port:
            sub = Subscriber(port, token)
            sub.start()
            # Closed with a code the client acts on, not a bare `complete` (docs/decisions/0016).
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                await asyncio.wait_for(sub.task, 15)
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "Token expired")
    finally:
        await runtime.close()
        await close()


async def test_connection_without_a_valid_token_is_refused(tmp_path):
    require_pg()
    env, close = await build_env("postgresql", tmp_path)
    runtime = Runtime.create(replace(env.settings, scheduler=False, log_worker=False))
    try:
        async with serve(runtime) as port:
            async with websockets.connect(f"ws://127.0.0.1:{port}/graphql",
                                          subprotocols=["graphql-transport-ws"]) as ws:
                await ws.send(json.dumps({"type": "connection_init",
                                          "payload": {"authorization": "Bearer nope"}}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd.code == 4403
            # A valid token declaring a use that is not a purpose: refused, and logged.
            token = await env.token("mofa", "focal")
            async with websockets.connect(f"ws://127.0.0.1:{port}/graphql",
                                          subprotocols=["graphql-transport-ws"]) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": {
                    "authorization": f"Bearer {token}", "purpose": "intelligence_gathering"}}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd.code == 4403
        async with env.runtime.db.transaction() as s:
            refused = await s.scalar(text("SELECT count(*) FROM access_log WHERE action = "
                                          "'request.purpose' AND decision = 'deny'"))
        assert refused == 1
    finally:
        await runtime.close()
        await close()
