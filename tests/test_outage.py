"""A database outage answers 503 `SERVICE_UNAVAILABLE` with `Retry-After`, the request ID and the
security headers on every endpoint, and the server keeps the connection (issue 15, part 4)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import uvicorn

from app import ids
from app.runtime import Runtime
from schema.server import create_app
from tests.conftest import Env

pytestmark = pytest.mark.anyio

VIEWER = "{ viewer { name } }"


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _down_runtime(env: Env, tmp: Path) -> Runtime:
    """The same deployment (keys, settings) with its database gone: PostgreSQL on a port
    nothing listens on, SQLite on a path that cannot be opened (a directory)."""
    if env.backend == "postgresql":
        port = _unused_port()
        url = f"postgresql+asyncpg://safety_net_service@127.0.0.1:{port}/gone"
        settings = replace(env.settings, database_url=url,
                           background_database_url=url.replace("service", "background"))
    else:
        gone = tmp / "gone.db"
        gone.mkdir()
        settings = replace(env.settings, database_url=f"sqlite+aiosqlite:///{gone}")
    runtime = Runtime.create(settings)
    runtime.issuer = env.runtime.issuer
    return runtime


def _requests(token: str) -> list[tuple[str, str, dict]]:
    auth = {"authorization": f"Bearer {token}", "safety-net-purpose": "protection"}
    incident = ids.encode("Incident", uuid.uuid4())
    attachment = ids.encode("Attachment", uuid.uuid4())
    return [
        ("POST", "/graphql", {"json": {"query": VIEWER}, "headers": auth}),
        ("GET", "/graphql", {"params": {"query": VIEWER}, "headers": auth}),
        ("POST", "/auth/login", {"json": {"organisation": "mofa", "username": "caseworker",
                                          "password": "x" * 12}}),
        ("POST", "/oauth/token", {"data": {"grant_type": "client_credentials",
                                           "client_id": "nobody", "client_secret": "x"}}),
        ("GET", "/audit/export", {"headers": auth}),
        ("POST", f"/incidents/{incident}/attachments",
         {"content": b"hello", "headers": {**auth, "content-type": "text/plain"}}),
        ("GET", f"/attachments/{attachment}", {"headers": auth}),
    ]


async def test_a_database_outage_answers_503_on_every_endpoint(env: Env, tmp_path: Path) -> None:
    token = await env.token("mofa", "caseworker")
    runtime = _down_runtime(env, tmp_path)
    app = create_app(runtime)
    # raise_app_exceptions: an exception escaping the app (a crash, a dropped connection)
    # fails the test instead of becoming a 500.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        for method, path, kwargs in _requests(token):
            response = await client.request(method, path, **kwargs)
            where = f"{method} {path}"
            assert response.status_code == 503, (where, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/json"), where
            assert response.headers["retry-after"] == str(env.settings.outage_retry_after_seconds)
            request_id = response.headers["x-request-id"]
            assert len(request_id) == 32
            assert response.headers["x-content-type-options"] == "nosniff", where
            assert "default-src 'none'" in response.headers["content-security-policy"]
            assert response.headers["cache-control"] == "no-store"
            assert response.headers.get("connection", "").lower() != "close", where
            body = response.json()
            if path in ("/auth/login", "/oauth/token"):
                assert body["error"] == "temporarily_unavailable", where
                assert body["code"] == "SERVICE_UNAVAILABLE" and body["requestId"] == request_id
            else:
                [error] = body["errors"]
                assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE",
                                               "requestId": request_id}, where
            assert "Traceback" not in response.text and "Error" not in response.text
        ready = await client.get("/readyz")
        assert ready.status_code == 503
    await runtime.close()


@pytest.mark.heavy
async def test_an_outage_keeps_keep_alive_connections(env: Env, tmp_path: Path) -> None:
    """A real server: 40 requests over one keep-alive connection all get their 503."""
    token = await env.token("mofa", "caseworker")
    runtime = _down_runtime(env, tmp_path)
    port = _unused_port()
    # No lifespan: its migration check needs the database, down from the start here.
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    connections: set[str] = set()
    statuses = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     limits=httpx.Limits(max_connections=1)) as client:
            for i in range(40):
                method, path, kwargs = _requests(token)[i % 7]
                response = await client.request(method, path, **kwargs)
                statuses.append(response.status_code)
                stream = response.extensions.get("network_stream")
                if stream is not None:
                    connections.add(str(stream.get_extra_info("client_addr")))
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await runtime.close()
    print(f"outage: {statuses.count(503)}/40 answered 503 over {len(connections)} connection(s)")
    assert statuses == [503] * 40
    assert len(connections) == 1


async def test_a_websocket_init_during_an_outage_closes_1013(env: Env, tmp_path: Path) -> None:
    """The subscription endpoint: `connection_init` needs the database (is she still active?);
    down, the socket closes with 1013 "try again later" instead of dropping."""
    import json

    import websockets

    token = await env.token("mofa", "focal")
    runtime = _down_runtime(env, tmp_path)
    port = _unused_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port,
                                           log_level="critical", lifespan="off",
                                           ws="websockets-sansio"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/graphql",
                                      subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {
                "authorization": f"Bearer {token}", "purpose": "protection"}}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await runtime.close()


async def test_a_database_lost_mid_request_is_503_not_internal_error(env: Env) -> None:
    """The connection fails after admission, while resolvers read (fault injected at the
    driver boundary): the answer is 503, not `200 "Internal error."`."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    def fail(_conn, _cursor, statement: str, *_: object) -> None:
        if "FROM cases" in statement:
            raise OperationalError(statement, {}, ConnectionResetError("connection lost"))

    engine = env.runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", fail)
    try:
        response = await env.post("{ cases(first: 1) { edges { node { id } } } }",
                                  as_=("mofa", "caseworker"))
    finally:
        event.remove(engine, "before_cursor_execute", fail)
    assert response.status_code == 503, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["retry-after"] and response.headers["x-request-id"]
    assert (await env.post("{ viewer { name } }", as_=("mofa", "caseworker"))).status_code == 200
