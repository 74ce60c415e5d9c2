"""Logs carry IDs and codes, never a peacebuilder's data, tokens or secrets (invariant 8)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid

import httpx
import pytest
import uvicorn
import websockets

from app.logs import JsonFormatter
from schema.server import create_app
from tests.conftest import build_env, unique
from tests.logcapture import kept_logging, service_logs
from tests.test_auth import new_client, new_user
from tests.test_consent import READ, new_peacebuilder
from tests.test_incidents import REPORT, incident_input
from tests.test_realtime import free_port

pytestmark = pytest.mark.anyio


async def test_logs_hold_no_personal_data_tokens_or_secrets(env, caplog, monkeypatch):
    from app.logs import quiet_third_party

    quiet_third_party()  # as the service configures logging (app.logs.configure)
    caplog.set_level(logging.DEBUG)
    pb = await new_peacebuilder(env, "fund")
    token = await env.token("fund", "caseworker")
    await env.post(READ, {"id": pb["id"]}, token=token)
    await env.post(REPORT, incident_input(pb["case"]), token=token)
    # An unexpected failure whose exception text contains her data: the text must not be logged.
    from app.read import peacebuilders as read

    async def explode(ctx, views, fields):
        raise RuntimeError(f"boom {pb['login']} Secret Legal Name")

    monkeypatch.setattr(read, "_profiles", explode)
    failed = await env.post(READ, {"id": pb["id"]}, token=token)
    assert failed.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "boom" not in failed.text and "Secret" not in failed.text
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any('"unexpected RuntimeError' in line or "RuntimeError" in line for line in lines)
    text = "\n".join(lines)
    for secret in (pb["login"], "Secret Legal Name", "+1 555 0199", "Threatening", token):
        assert secret not in text, f"{secret[:12]}… leaked into the logs"


# --- tokens, client secrets and passwords, at any level ------------------------------------------

# Libraries an operator might turn up to DEBUG by their own logging configuration: what they
# print must still carry no credential (the service itself keeps them quiet, see app/logs.py).
LOUD = ("authlib", "uvicorn.error", "websockets", "httpx", "httpcore", "python_multipart",
        "strawberry", "asyncio", "joserfc")


def fragments(token: str) -> list[str]:
    """The whole token and pieces of it that identify it: its claims and its signature."""
    _, claims, signature = token.split(".")
    return [token, claims[:16], claims[-16:], signature[:16], signature[-16:]]


@contextlib.asynccontextmanager
async def uvicorn_serving(app):
    """As `safety-net serve` runs it: uvicorn's own logging config off, logs through ours."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, ws="websockets-sansio",
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_debug_logs_never_carry_tokens_secrets_or_passwords(backend, tmp_path, monkeypatch,
                                                                  capsys):
    """SAFETY_NET_LOG_LEVEL=DEBUG, the root logger at DEBUG, and every library that logs requests
    turned up to DEBUG too: a real uvicorn serving token issue, sign-in, GraphQL and a
    subscription prints none of the credentials involved, whole or in part."""
    env, close = await build_env(backend, tmp_path)
    try:
        _, client_id, secret = await new_client(env, "mofa")
        _, username, password = await new_user(env, "fund", ["CASEWORKER"])
        forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyOm1hbGxvcnkifQ." + uuid.uuid4().hex
        wrong_secret, wrong_password = unique("wrong-secret"), unique("wrong-password")
        with kept_logging():
            for name, value in {
                "SAFETY_NET_LOG_LEVEL": "DEBUG", "DATABASE_URL": env.settings.database_url,
                "SAFETY_NET_DATA_DIR": str(env.settings.data_dir),
                "SAFETY_NET_DB_SERVICE_ROLE": env.settings.db_service_role,
                "SAFETY_NET_BACKGROUND_DATABASE_URL": env.settings.background_database_url,
                "SAFETY_NET_DB_BACKGROUND_ROLE": env.settings.db_background_role,
                "SAFETY_NET_LOG_WORKER": "off", "SAFETY_NET_SCHEDULER": "off",
            }.items():
                monkeypatch.setenv(name, value)
            capsys.readouterr()
            app = create_app()  # as uvicorn's factory: logging configured from the settings
            assert logging.getLogger().level == logging.DEBUG
            assert logging.getLogger("authlib").getEffectiveLevel() >= logging.WARNING
            assert logging.getLogger("uvicorn.error").getEffectiveLevel() >= logging.INFO
            for name in LOUD:
                logging.getLogger(name).setLevel(logging.DEBUG)
            tokens = await _exercise(app, client_id, secret, username, password, wrong_secret,
                                     wrong_password, forged)
            out = capsys.readouterr().err
    finally:
        await close()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert any(line["level"] == "debug" for line in lines)  # DEBUG really was on
    assert any(line["message"] == "request" and line["path"] == "/oauth/token" for line in lines)
    assert "[redacted]" in out  # e.g. Authlib's "Issue token {...}"
    for value in (secret, wrong_secret, password, wrong_password):
        assert value not in out, f"{value[:6]}… leaked into the logs"
    for token in (*tokens, forged):
        for piece in fragments(token):
            assert piece not in out, f"a piece of a token ({piece[:6]}…) leaked into the logs"


async def _exercise(app, client_id, secret, username, password, wrong_secret, wrong_password,
                    forged) -> list[str]:
    async with uvicorn_serving(app) as port, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}") as http:
        grant = {"grant_type": "client_credentials"}
        basic = await http.post("/oauth/token", data=grant, auth=(client_id, secret))
        posted = await http.post("/oauth/token", data={**grant, "client_id": client_id,
                                                       "client_secret": secret})
        refused = await http.post("/oauth/token", data={**grant, "client_id": client_id,
                                                        "client_secret": wrong_secret})
        assert (basic.status_code, posted.status_code, refused.status_code) == (200, 200, 400)
        signed_in = await http.post("/auth/login", json={"organisation": "fund",
                                                         "username": username,
                                                         "password": password})
        failed = await http.post("/auth/login", json={"organisation": "fund",
                                                      "username": username,
                                                      "password": wrong_password})
        assert (signed_in.status_code, failed.status_code) == (200, 401)
        tokens = [basic.json()["access_token"], posted.json()["access_token"],
                  signed_in.json()["access_token"]]
        for token in (*tokens, forged):
            headers = {"authorization": f"Bearer {token}", "safety-net-purpose": "protection"}
            await http.post("/graphql", json={"query": "{ viewer { name } }"}, headers=headers)
            await http.get("/graphql", params={"query": "{ viewer { name } }",
                                               "access_token": token}, headers=headers)
        async with websockets.connect(f"ws://127.0.0.1:{port}/graphql",
                                      subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {
                "authorization": f"Bearer {tokens[2]}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription { alerts { kind } }"}}))
            await asyncio.sleep(0.2)
    return tokens


async def test_redaction_covers_any_logger_messages_fields_and_exceptions():
    """Whatever a library or our own code hands the logging system: messages, arguments,
    structured fields (nested, bytes header pairs), exception text."""
    jwt_like = "eyJhbGciOiJFZDI1NTE5In0.eyJzdWIiOiJ1c2VyOjEyMyJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    secrets = ["s3cret-" + uuid.uuid4().hex, "pw-" + uuid.uuid4().hex, "opaque" + uuid.uuid4().hex]
    with service_logs("DEBUG") as captured:
        lib = logging.getLogger("some.library")
        lib.debug("Issue token %r to %r", {"access_token": jwt_like, "token_type": "Bearer"}, "x")
        lib.debug("request headers: Authorization: Bearer %s", secrets[2])
        lib.debug("body client_id=abc&client_secret=%s&grant_type=client_credentials", secrets[0])
        lib.info("login", extra={"authorization": f"Bearer {secrets[2]}",
                                 "form": {"client_secret": secrets[0], "password": secrets[1]},
                                 "headers": [(b"authorization", b"Basic " + secrets[0].encode())],
                                 "note": f'{{"password": "{secrets[1]}"}}'})
        try:
            raise ValueError(f"bad token {jwt_like}")
        except ValueError:
            lib.exception("failed")
        lib.warning("cannot reach %s", f"postgresql+asyncpg://svc:{secrets[1]}@db/safety")
        logging.getLogger("app.notify.service").info("kept as is: app.notify.service v1.2.3")
    text = captured.text
    for value in (jwt_like, *secrets, "c2lnbmF0dXJl", "Zm9v"):
        assert value not in text
    lines = captured.lines()
    assert lines[0]["message"] == "Issue token {'access_token': '[redacted]', 'token_type': " \
                                  "'Bearer'} to 'x'"
    assert lines[1]["message"] == "request headers: Authorization: Bearer [redacted]"
    assert lines[3]["form"] == {"client_secret": "[redacted]", "password": "[redacted]"}
    assert lines[3]["authorization"] == "[redacted]"
    assert lines[3]["headers"] == [["authorization", "[redacted]"]]
    assert lines[-2]["message"] == "cannot reach postgresql+asyncpg://svc:[redacted]@db/safety"
    assert lines[-1]["message"] == "kept as is: app.notify.service v1.2.3"
