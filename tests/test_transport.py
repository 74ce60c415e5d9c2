"""The HTTP edge against hostile clients: CSRF, CORS, security headers, body size, timeouts,
production mode (no introspection, no schema hints, masked errors), and no secrets in logs."""

from __future__ import annotations

import asyncio
import logging
import re
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import REPO_ROOT
from app.incidents import attachments
from app.logs import JsonFormatter, quiet_third_party
from app.orgs import service as orgs_service
from app.peacebuilders import service as pb_service
from app.tables.peacebuilders import Peacebuilder
from schema.server import create_app
from tests.conftest import Env, unique
from tests.factories import INTAKE
from tests.test_auth import enrol_totp, login_token, new_user, totp_now

pytestmark = pytest.mark.anyio

VIEWER = "{ viewer { name } }"
ORGS = "{ organisations(first: 1) { totalCount } }"


@asynccontextmanager
async def served(deployment: Env, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Another app over the same deployment, built with other settings."""
    runtime = deployment.runtime
    before = runtime.settings
    runtime.settings = replace(before, **changes)
    try:
        app = create_app(runtime)
    finally:
        runtime.settings = before
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        yield client


async def auth(env: Env, org: str = "mofa", user: str = "caseworker") -> dict[str, str]:
    return {"authorization": f"Bearer {await env.token(org, user)}",
            "safety-net-purpose": "protection"}


# --- CSRF ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain",
                                          "multipart/form-data; boundary=x", "application/graphql"])
async def test_bodies_a_cross_site_form_can_send_are_refused(env, content_type):
    headers = {**await auth(env), "content-type": content_type}
    before = env.runtime.db.statements.count
    response = await env.client.post("/graphql", content=b'{"query": "{ viewer { name } }"}',
                                     headers=headers)
    assert response.status_code == 415
    assert env.runtime.db.statements.count == before


async def test_mutations_never_run_over_get(env):
    mutation = 'mutation { openCase(input: {peacebuilderId: "x"}) { case { id } } }'
    headers = await auth(env)
    for params in ({"query": mutation}, {"query": mutation, "operationName": None}):
        response = await env.client.get("/graphql", params={k: v for k, v in params.items() if v},
                                        headers=headers)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        assert "data" not in response.json()


async def test_cors_allows_only_listed_origins(env):
    async with served(env, cors_origins=("https://app.example.org",)) as client:
        preflight = {"access-control-request-method": "POST",
                     "access-control-request-headers": "authorization, content-type"}
        ok = await client.options("/graphql", headers={"origin": "https://app.example.org",
                                                       **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example.org"
        assert "access-control-allow-credentials" not in ok.headers
        evil = await client.options("/graphql", headers={"origin": "https://evil.example",
                                                         **preflight})
        assert evil.status_code == 400
        assert "access-control-allow-origin" not in evil.headers
        simple = await client.post("/graphql", json={"query": VIEWER}, headers={
            "origin": "https://evil.example", **await auth(env)})
        assert "access-control-allow-origin" not in simple.headers
    # No origins configured (the default): no CORS headers at all.
    plain = await env.client.options("/graphql", headers={"origin": "https://app.example.org",
                                                          "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in plain.headers


# --- headers, body size, timeouts -------------------------------------------------------------

async def test_security_headers_on_every_response(env):
    for response in (await env.client.get("/healthz"),
                     await env.client.post("/graphql", json={"query": VIEWER}),  # 401
                     await env.client.post("/graphql", json={"query": VIEWER},
                                           headers=await auth(env))):
        h = response.headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["content-security-policy"].startswith("default-src 'none'")
        assert h["referrer-policy"] == "no-referrer" and h["cache-control"] == "no-store"
        assert h["cross-origin-resource-policy"] == "same-origin"
        assert "strict-transport-security" not in h  # development
    page = await env.client.get("/graphql", headers={"accept": "text/html"})
    # GraphiQL, development only: its assets are the service's own, no CDN, no inline script.
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert "unpkg.com" not in page.text


async def test_body_size_limit_is_configurable_and_applies_everywhere(env):
    async with served(env, max_body_bytes=1000) as client:
        headers = {**await auth(env), "content-type": "application/json"}
        fits = b'{"query": "{ viewer { name } }"}'.ljust(1000)
        assert (await client.post("/graphql", content=fits, headers=headers)).status_code == 200
        over = fits + b" "
        refused = await client.post("/graphql", content=over, headers=headers)
        assert refused.status_code == 413
        assert refused.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
        assert refused.headers["x-request-id"]

        async def chunks():  # no Content-Length: counted as it arrives
            for _ in range(11):
                yield b" " * 100

        streamed = await client.post("/graphql", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        login = await client.post("/auth/login", content=over,
                                  headers={"content-type": "application/json"})
        assert login.status_code == 413
        # Attachments have their own, larger limit (5 MiB); the endpoint decides about them.
        path = "/incidents/x/attachments"
        small_file = await client.post(path, content=b"x" * 300_000, headers=await auth(env))
        assert small_file.status_code != 413
        big_file = await client.post(path, content=b"x" * (attachments.MAX_BYTES + 1),
                                     headers=await auth(env))
        assert big_file.status_code == 413


async def test_a_slow_request_times_out_with_nothing_sent_or_kept(env, monkeypatch):
    real_list, real_create = orgs_service.list_orgs, pb_service.create

    async def slow_list(*args: Any, **kwargs: Any) -> Any:
        page = await real_list(*args, **kwargs)
        await asyncio.sleep(5)
        return page

    async def slow_create(*args: Any, **kwargs: Any) -> Any:
        created = await real_create(*args, **kwargs)  # flushed in the request's transaction
        await asyncio.sleep(5)
        return created

    monkeypatch.setattr(orgs_service, "list_orgs", slow_list)
    monkeypatch.setattr(pb_service, "create", slow_create)
    pseudonym = unique("slow")
    async with served(env, request_timeout_seconds=0.3) as client:
        headers = await auth(env)
        timed_out = await client.post("/graphql", json={"query": ORGS}, headers=headers)
        assert timed_out.status_code == 504
        assert timed_out.json() == {"errors": [{
            "message": "The request took too long and was stopped; nothing was changed.",
            "extensions": {"code": "TIMEOUT"}}]}
        create = await client.post("/graphql", headers=headers, json={
            "query": "mutation($i: CreatePeacebuilderInput!) { createPeacebuilder(input: $i) "
                     "{ peacebuilder { id } } }",
            "variables": {"i": {"pseudonym": pseudonym,
                                "intakeConsent": INTAKE}}})
        assert create.status_code == 504
        # The deployment carries on, and the timed-out mutation left nothing behind.
        assert (await client.post("/graphql", json={"query": VIEWER}, headers=headers)).json() == {
            "data": {"viewer": {"name": "caseworker"}}}
    async with env.runtime.db.transaction() as session:
        assert await session.scalar(select(Peacebuilder).where(
            Peacebuilder.pseudonym == pseudonym)) is None


# --- production mode ------------------------------------------------------------------------------

TYPOS = {
    "{ viewr { name } }": "viewer",
    "{ cases(frist: 1) { totalCount } }": "first",
    "{ organisations(kind: MINISTR) { totalCount } }": "MINISTRY",
    "{ viewer { nam } }": "name",
}


async def test_development_gives_hints(env):
    body = await env.gql("{ viewr { name } }", as_=("mofa", "caseworker"))
    assert "Did you mean" in body["errors"][0]["message"]


async def test_production_has_no_introspection_hints_or_graphiql(env):
    async with served(env, env="production") as client:
        headers = await auth(env)
        introspect = await client.post("/graphql", headers=headers, json={
            "query": "{ __schema { types { name } } }"})
        assert "data" not in introspect.json()
        assert "introspection" in introspect.json()["errors"][0]["message"].lower()
        by_type = await client.post("/graphql", headers=headers, json={
            "query": '{ __type(name: "Case") { fields { name } } }'})
        assert "data" not in by_type.json()
        typename = await client.post("/graphql", headers=headers, json={"query": "{ __typename }"})
        assert typename.json() == {"data": {"__typename": "Query"}}
        for query, hint in TYPOS.items():
            body = (await client.post("/graphql", headers=headers, json={"query": query})).json()
            message = body["errors"][0]["message"]
            assert "Did you mean" not in message and f"'{hint}'" not in message, message
        page = await client.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404 and "graphiql" not in page.text.lower()
        assert page.headers["strict-transport-security"].startswith("max-age=")


async def test_production_masks_unexpected_errors_and_logs_no_personal_data(
        env, monkeypatch, caplog):
    address = " ".join(["Secret Legal Name lives at 12", "Hidden Road"])  # data, not code

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(address)

    monkeypatch.setattr(orgs_service, "list_orgs", broken)
    async with served(env, env="production") as client:
        with caplog.at_level(logging.DEBUG):
            response = await client.post("/graphql", json={"query": ORGS},
                                         headers=await auth(env))
    [error] = response.json()["errors"]
    assert error["message"] == "Internal error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR",
                                   "requestId": response.headers["x-request-id"]}
    assert "unexpected ValueError" in caplog.text
    assert "Hidden Road" not in caplog.text and "Secret Legal Name" not in caplog.text


# --- logs and dependencies ------------------------------------------------------------------

async def test_tokens_passwords_and_codes_never_reach_the_logs(env, caplog):
    quiet_third_party()  # as the service configures logging (app.logs.configure)
    with caplog.at_level(logging.DEBUG):
        _, username, password = await new_user(env, "fund", ["FOCAL_POINT"])
        pending = await login_token(env, "fund", username, password)
        secret = await enrol_totp(env, pending)
        code = totp_now(secret, 1)
        response = await env.client.post("/auth/login", json={
            "organisation": "fund", "username": username, "password": password, "totp": code})
        token = response.json()["access_token"]
        await env.gql(VIEWER, token=token)
        await env.gql("{ nope }", token=token)  # an error path too
        wrong = await env.client.post("/auth/login", json={
            "organisation": "fund", "username": username, "password": password + "x"})
        assert wrong.status_code == 401
    formatter = JsonFormatter()
    logged = "\n".join([caplog.text, *(formatter.format(r) for r in caplog.records)])
    assert '"path": "/graphql"' in logged and "/auth/login" in logged  # requests logged ...
    for secret_value in (password, token, pending, secret, code, token.split(".")[2]):
        assert secret_value not in logged  # ... without any credential


def test_dependencies_are_pinned_with_hashes():
    lock = (REPO_ROOT / "requirements.lock").read_text()
    entries = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s\\]+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}"
                         r"(?: \\)?\n)+)", lock, re.MULTILINE)
    requirement_lines = [line for line in lock.splitlines()
                         if line and not line.startswith((" ", "#"))]
    assert len(entries) == len(requirement_lines) > 20, "every requirement pinned with hashes"
    pinned = {re.sub(r"[-_.]+", "-", name.split("[")[0]).lower() for name, _, _ in entries}
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    for requirement in wanted:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=\[; ]", requirement)[0]).lower()
        assert name in pinned, f"{requirement} is not in requirements.lock"
