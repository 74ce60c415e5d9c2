"""graphql-transport-ws held to the protocol (issue 15 #6, issue 16 "silent traps"): only
subscriptions run, malformed messages close with 4400, `connection_init` keys are
case-insensitive, a subscription starts from now unless `after` is given, and an expired token
closes with 4401 "Token expired". A real server and a real websocket client."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
import websockets

from app.auth import principals
from app.runtime import Runtime
from tests.conftest import build_env
from tests.test_consent import new_peacebuilder
from tests.test_incidents import REPORT, incident_input
from tests.test_realtime import serve

pytestmark = pytest.mark.anyio

ALERTS = "subscription($a: String) { alerts(after: $a) { kind payload cursor } }"


@pytest.fixture(scope="module")
async def live(tmp_path_factory, anyio_backend):
    """One SQLite deployment served by uvicorn (the protocol does not depend on the database;
    tests/test_realtime.py covers PostgreSQL and replicas)."""
    env, close = await build_env("sqlite", tmp_path_factory.mktemp("socket"))
    runtime = Runtime.create(replace(env.settings, scheduler=False, log_worker=False))
    try:
        async with serve(runtime) as port:
            yield env, runtime, port
    finally:
        await runtime.close()
        await close()


def _connect(port: int) -> Any:
    return websockets.connect(f"ws://127.0.0.1:{port}/graphql",
                              subprotocols=["graphql-transport-ws"])


async def _closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        for _ in range(10):
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None, "dropped without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def _init(ws: Any, token: str, **extra: Any) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": {
        "authorization": f"Bearer {token}", "purpose": "protection", **extra}}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"


@pytest.mark.parametrize("payload", [
    {"purpose": ["protection"]}, {"purpose": {"a": 1}}, {"authorization": 42},
    [1, 2], "text", 7, {"purpose": "a\x00b"}],
    ids=["purpose list", "purpose object", "authorization number", "payload list",
         "payload string", "payload number", "purpose NUL"])
async def test_a_malformed_connection_init_closes_4400(live, payload) -> None:
    env, _, port = live
    token = await env.token("mofa", "focal")
    if isinstance(payload, dict):
        payload = {"authorization": f"Bearer {token}", **payload}
    async with _connect(port) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        code, _ = await _closed_with(ws)
    assert code == 4400


@pytest.mark.parametrize("message", [
    "[1,2]", '"connection_init"', "null", '{"type": 5}', "[" * 3000 + "]" * 3000,
    '{"type": "subscribe", "id": "1", "payload": [1]}',
    '{"type": "subscribe", "id": 1, "payload": {"query": "subscription { alerts { kind } }"}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "subscription { alerts { kind } }", '
    '"variables": ' + "[" * 3000 + "]" * 3000 + "}}"],
    ids=["list", "string", "null", "type not a string", "nested 3000", "payload list",
         "id number", "variables nested 3000"])
async def test_a_malformed_message_closes_4400(live, message) -> None:
    env, _, port = live
    async with _connect(port) as ws:
        await _init(ws, await env.token("mofa", "focal"))
        await ws.send(message)
        code, _ = await _closed_with(ws)
    assert code == 4400


async def test_a_second_init_closes_4429_and_keys_are_case_insensitive(live) -> None:
    env, _, port = live
    token = await env.token("mofa", "focal")
    async with _connect(port) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {
            "Authorization": f"Bearer {token}", "Purpose": "protection"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        code, _ = await _closed_with(ws)
    assert code == 4429


async def test_a_bad_token_closes_4403_and_subscribe_before_ack_4401(live) -> None:
    _, _, port = live
    async with _connect(port) as ws:
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"authorization": "Bearer nope"}}))
        assert (await _closed_with(ws))[0] == 4403
    async with _connect(port) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": "1",
                                  "payload": {"query": "subscription { alerts { kind } }"}}))
        assert (await _closed_with(ws))[0] == 4401


@pytest.mark.parametrize("query,code", [
    ("{ viewer { name } }", "OPERATION_NOT_SUPPORTED"),
    ("mutation { startTotpEnrolment { userErrors { message } } }", "OPERATION_NOT_SUPPORTED"),
    ("subscription { alerts { nope } }", "GRAPHQL_VALIDATION_FAILED"),
    ("subscription { alerts(after: \"\\u0000\") { kind } }", "BAD_USER_INPUT"),
    ("subscription A { alerts { kind } }", "BAD_REQUEST"),  # operationName B below
], ids=["query", "mutation", "invalid", "NUL literal", "unknown operationName"])
async def test_only_subscriptions_run(live, query, code) -> None:
    env, _, port = live
    async with _connect(port) as ws:
        await _init(ws, await env.token("mofa", "focal"))
        payload: dict[str, Any] = {"query": query}
        if code == "BAD_REQUEST":
            payload["operationName"] = "B"
        await ws.send(json.dumps({"type": "subscribe", "id": "op", "payload": payload}))
        raw = await asyncio.wait_for(ws.recv(), 10)
        message = json.loads(raw)
        assert message["type"] == "error" and message["id"] == "op", raw
        assert [e["extensions"]["code"] for e in message["payload"]] == [code], raw
        assert "SocketContext" not in raw and "Traceback" not in raw
        # The connection stays usable.
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"


async def _subject(env, org: str, user: str) -> str:
    async with env.runtime.db.transaction() as s:
        found = await principals.find_user(s, org, user)
        return found.subject


async def _report(env, port: int, case: str) -> str:
    """Through the served app: its broker is the subscribers' (no Redis between them here)."""
    token = await env.token("mofa", "caseworker")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        response = await http.post("/graphql", json={
            "query": REPORT, "variables": incident_input(case)}, headers={
            "authorization": f"Bearer {token}", "safety-net-purpose": "protection"})
    # Alert payloads name the incident by the same opaque global ID (one ID scheme).
    return str(response.json()["data"]["reportIncident"]["incident"]["id"])


async def _subscribed(runtime: Runtime, subject: str, count: int) -> None:
    for _ in range(200):
        if len(runtime.broker._queues.get(subject, ())) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the subscription never registered")


async def _next_alert(ws: Any, kind: str | None = None) -> dict:
    """The next alert (of `kind`: a high or critical incident also starts a risk reassessment,
    whose alert may come first)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if message["type"] == "next":
            alert = message["payload"]["data"]["alerts"]
            if kind is None or alert["kind"] == kind:
                return alert
            continue
        assert message["type"] not in ("error", "complete"), message


async def test_a_subscription_starts_from_now_unless_after_is_given(live) -> None:
    env, runtime, port = live
    pb = await new_peacebuilder(env, "mofa")
    await _report(env, port, pb["case"])  # an alert already in her inbox: not replayed
    subject = await _subject(env, "mofa", "focal")
    token = await env.token("mofa", "focal")
    async with _connect(port) as ws:
        await _init(ws, token)
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": ALERTS}}))
        await _subscribed(runtime, subject, 1)
        second = await _report(env, port, pb["case"])
        first_seen = await _next_alert(ws, "incident_reported")
    assert second in first_seen["payload"], first_seen
    third = await _report(env, port, pb["case"])  # while disconnected
    async with _connect(port) as ws:
        await _init(ws, token)
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {
            "query": ALERTS, "variables": {"a": first_seen["cursor"]}}}))
        replayed = await _next_alert(ws, "incident_reported")
    assert third in replayed["payload"], replayed


async def test_an_expired_token_closes_4401(live) -> None:
    env, _, port = live
    subject = await _subject(env, "mofa", "focal")
    async with env.runtime.db.transaction() as s:
        found = await principals.find_user(s, "mofa", "focal")
        org = str(found.org_id)
    ttl = env.settings.token_ttl_seconds
    token = env.runtime.issuer.issue(subject=subject, org_id=org, acr="mfa",
                                     now=time.time() - ttl + 2)[0]
    async with _connect(port) as ws:
        await _init(ws, token)
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": ALERTS}}))
        code, reason = await _closed_with(ws)
    assert (code, reason) == (4401, "Token expired")


async def test_subscribe_counts_against_the_request_rate_limit(tmp_path) -> None:
    env, close = await build_env("sqlite", tmp_path, rate_client="3/60")
    runtime = Runtime.create(replace(env.settings, scheduler=False, log_worker=False))
    try:
        async with serve(runtime) as port, _connect(port) as ws:
            await _init(ws, await env.token("mofa", "focal"))
            for i in range(4):
                await ws.send(json.dumps({"type": "subscribe", "id": str(i),
                                          "payload": {"query": ALERTS}}))
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "error" and message["id"] == "3", message
            assert message["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    finally:
        await runtime.close()
        await close()
