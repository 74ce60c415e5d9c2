"""The HTTP edge: probes, request IDs, GraphQL-over-HTTP shapes, CSRF-safe content types."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import select

from app.tables.audit import AccessLogEntry
from tests.conftest import unique
from tests.logcapture import service_logs
from tests.test_audit import DENIED

pytestmark = pytest.mark.anyio

VIEWER = "{ viewer { name } }"


async def test_health_and_readiness(env):
    assert (await env.client.get("/healthz")).text == "ok"
    ready = await env.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "reason": "ok"}


async def test_request_id_is_ours_and_the_clients_is_kept_beside_it(env):
    fresh = await env.client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    assert "x-client-request-id" not in fresh.headers
    theirs = "client-42.trace:a_b"
    echoed = await env.client.get("/healthz", headers={"x-request-id": theirs})
    assert echoed.headers["x-request-id"] != theirs and len(echoed.headers["x-request-id"]) == 32
    assert echoed.headers["x-client-request-id"] == theirs
    assert echoed.headers["x-content-type-options"] == "nosniff"


async def _log_rows(env, *request_ids: str) -> list[AccessLogEntry]:
    async with env.runtime.db.transaction() as session:
        return list(await session.scalars(select(AccessLogEntry).where(
            AccessLogEntry.request_id.in_(request_ids))))


async def _whole_access_log(env) -> str:
    async with env.runtime.db.transaction() as session:
        rows = await session.execute(select(AccessLogEntry.__table__))
        return json.dumps([list(r) for r in rows], default=str)


async def test_a_client_chosen_request_id_never_becomes_the_access_logs(env):
    """Every route that writes the access log: GraphQL (a denial), /auth/login, /oauth/token
    (both grants), /audit/export. A 32-hex value (once taken as the request ID) is only ever
    `client_request_id`."""
    forged = uuid.uuid4().hex
    token = await env.token("mofa", "caseworker")
    with service_logs() as logs:
        responses = [
            await env.post(DENIED, token=token, headers={"x-request-id": forged}),
            await env.client.post("/auth/login", headers={"x-request-id": forged}, json={
                "organisation": "fund", "username": unique("nobody"), "password": "wrong"}),
            await env.client.post("/oauth/token", headers={"x-request-id": forged},
                                  data={"grant_type": "client_credentials",
                                        "client_id": unique("nobody"), "client_secret": "x"}),
            await env.client.post("/oauth/token", headers={"x-request-id": forged},
                                  data={"grant_type": "refresh_token",
                                        "refresh_token": unique("snr_nothing")}),
            await env.client.get("/audit/export", headers={
                "x-request-id": forged, "authorization": f"Bearer {token}",
                "safety-net-purpose": "protection"}),
        ]
    ours = [r.headers["x-request-id"] for r in responses]
    assert forged not in ours and len(set(ours)) == len(ours)
    assert all(r.headers["x-client-request-id"] == forged for r in responses)
    rows = await _log_rows(env, forged, *ours)
    assert rows and {r.request_id for r in rows} <= set(ours)
    assert {r.request_id for r in rows} == set(ours)  # each wrote at least one entry
    assert forged not in await _whole_access_log(env)
    lines = [line for line in logs.lines() if line["message"] == "request"]
    assert [line["request_id"] for line in lines] == ours
    assert all(line["client_request_id"] == forged for line in lines)


HOSTILE = [
    "a b\r\nX-Injected: {marker}",
    "{marker}" + "A" * 10_000,
    '{{"request_id": "{marker}", "level": "critical"}}',
    "{marker}\n{{\"message\": \"forged line\"}}",
    "{marker}" + "\u00e9",
    "{marker}/../etc",
    "{marker}" + "x" * 50,  # 65 characters
]


async def test_hostile_request_ids_never_reach_logs(env):
    token = await env.token("mofa", "caseworker")
    markers = []
    with service_logs() as logs:
        for template in HOSTILE:
            marker = unique("hostile")
            markers.append(marker)
            value = template.format(marker=marker)
            raw = value.encode("utf-8")
            for response in (
                await env.client.get("/healthz", headers=[(b"x-request-id", raw)]),
                await env.post(DENIED, token=token, headers={"x-request-id": raw}),
            ):
                assert len(response.headers["x-request-id"]) == 32
                assert "x-client-request-id" not in response.headers
    text = logs.text
    assert len(logs.lines()) >= 2 * len(HOSTILE)  # one JSON object per line, none forged
    assert all("client_request_id" not in line for line in logs.lines())
    whole = await _whole_access_log(env)
    for marker in markers:
        assert marker not in text and marker not in whole


async def test_websocket_connection_gets_our_request_id(tmp_path):
    """The subscription endpoint: the handshake's X-Request-ID is the client's, not the log's."""
    import websockets

    from tests.conftest import build_env
    from tests.test_realtime import serve

    env, close = await build_env("sqlite", tmp_path)
    try:
        async with serve(env.runtime) as port:
            token = await env.token("mofa", "focal")
            forged = uuid.uuid4().hex
            async with websockets.connect(
                    f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"],
                    additional_headers={"X-Request-ID": forged}) as ws:
                ours = ws.response.headers["x-request-id"]
                assert ours != forged and len(ours) == 32
                assert ws.response.headers["x-client-request-id"] == forged
                await ws.send(json.dumps({"type": "connection_init", "payload": {
                    "authorization": f"Bearer {token}", "purpose": "intelligence_gathering"}}))
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
        rows = await _log_rows(env, forged, ours)
        assert [(r.request_id, r.action, r.decision) for r in rows] == [
            (ours, "request.purpose", "deny")]
    finally:
        await close()


async def test_unauthenticated_is_401_before_anything_else(env):
    for response in (
        await env.client.post("/graphql", json={"query": VIEWER}),
        await env.client.get("/graphql", params={"query": VIEWER}),
        await env.client.post("/graphql", json={"query": "{"}),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "data" not in response.json()


async def test_get_runs_queries_but_not_mutations(env):
    token = await env.token("mofa", "caseworker")
    auth = {"authorization": f"Bearer {token}"}
    ok = await env.client.get("/graphql", params={"query": VIEWER}, headers=auth)
    assert ok.status_code == 200 and ok.json() == {"data": {"viewer": {"name": "caseworker"}}}
    mutation = 'mutation { openCase(input: {peacebuilderId: "x"}) { case { id } } }'
    refused = await env.client.get("/graphql", params={"query": mutation}, headers=auth)
    assert refused.status_code == 405
    assert "data" not in refused.json()


async def test_only_json_bodies_are_accepted(env):
    token = await env.token("mofa", "caseworker")
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        response = await env.client.post("/graphql", content=b"query=%7B%7D", headers={
            "authorization": f"Bearer {token}", "content-type": content_type})
        assert response.status_code == 415, content_type


async def test_graphql_response_media_type_and_request_errors(env):
    token = await env.token("mofa", "caseworker")
    headers = {"authorization": f"Bearer {token}", "accept": "application/graphql-response+json"}
    ok = await env.client.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("application/graphql-response+json")
    bad = await env.client.post("/graphql", json={"query": "{ viewer { nope } }"}, headers=headers)
    assert bad.status_code == 400
    assert "data" not in bad.json()
    assert bad.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    syntax = await env.client.post("/graphql", json={"query": "{ viewer "}, headers=headers)
    assert syntax.status_code == 400 and "data" not in syntax.json()
    variables = await env.client.post("/graphql", headers=headers, json={
        "query": "query($f: Int) { cases(first: $f) { totalCount } }", "variables": {"f": "x"}})
    assert variables.status_code == 400 and "data" not in variables.json()
    unacceptable = await env.client.post("/graphql", json={"query": VIEWER}, headers={
        "authorization": f"Bearer {token}", "accept": "text/html"})
    assert unacceptable.status_code == 406


async def test_malformed_requests_are_400(env):
    token = await env.token("mofa", "caseworker")
    h = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    assert (await env.client.post("/graphql", content=b"{nope", headers=h)).status_code == 400
    assert (await env.client.post("/graphql", content=b"[1]", headers=h)).status_code == 400
    assert (await env.client.post("/graphql", json={"query": VIEWER, "variables": [1]},
                                  headers=h)).status_code == 400
    assert (await env.client.post("/graphql", json={"variables": {}}, headers=h)).status_code == 400


async def test_graphiql_is_served_in_development(env):
    page = await env.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_only_graphql_path_answers(env):
    assert (await env.client.post("/other", json={"query": VIEWER})).status_code == 404


async def test_a_document_whose_mutations_roll_back_says_none_was_saved(env):
    """Two mutations, one transaction: the second fails, so the first's payload is not kept
    either, and the response says so instead of showing it as a success."""
    from tests.conftest import unique

    name = unique("wg")
    doc = """mutation($ok: String!) {
      first: createUser(input: {username: $ok, displayName: "Kept?", roles: [ANALYST]}) {
        user { id } userErrors { field } }
      second: createUser(input: {username: "", displayName: "Bad", roles: [ANALYST]}) {
        user { id } userErrors { field } }
    }"""
    body = await env.gql(doc, {"ok": name}, as_=("mofa", "admin"))
    codes = [e["extensions"]["code"] for e in body.get("errors", [])]
    assert "ROLLED_BACK" in codes, body
    users = await env.gql("{ users(first: 100) { edges { node { username } } } }", as_=("mofa", "admin"))
    assert name not in {e["node"]["username"] for e in users["data"]["users"]["edges"]}
    # A single mutation with a user error is not told twice.
    single = await env.gql("""mutation {
      createUser(input: {username: "", displayName: "Bad", roles: [ANALYST]}) { userErrors { field } } }""",
                           as_=("mofa", "admin"))
    assert "errors" not in single and single["data"]["createUser"]["userErrors"]


def test_a_serving_process_freezes_its_startup_heap(monkeypatch):
    """`safety-net serve` turns SAFETY_NET_GC_FREEZE on for its workers; other processes (tests,
    tools) keep the collector's defaults. freeze_heap moves what exists to the permanent
    generation and makes young collections rarer (put back afterwards: this is a test process)."""
    import gc

    from app.config import Settings
    from schema.server import freeze_heap

    monkeypatch.delenv("SAFETY_NET_GC_FREEZE", raising=False)
    assert Settings.from_env().gc_freeze is False
    monkeypatch.setenv("SAFETY_NET_GC_FREEZE", "on")
    assert Settings.from_env().gc_freeze is True
    before = gc.get_threshold()
    try:
        freeze_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] >= 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
