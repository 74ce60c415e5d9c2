"""Two replicas for real: two `safety-net serve` processes on one PostgreSQL database and one
Redis, sharing nothing in memory. Requests split across them are rate-limited together; a role
change and a consent revocation made through one bite on the very next request to the other.

`pytest -s tests/test_replicas.py` prints a transcript of what each replica answered.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Env, build_env, require_pg, require_redis, unique
from tests.test_cli import CLI, site_env
from tests.test_consent import READ, REVOKE, grant, new_peacebuilder
from tests.test_ratelimit import VIEWER, assert_throttled
from tests.test_realtime import free_port

pytestmark = pytest.mark.anyio

RATE = 4  # requests per client per minute, for both replicas together
STARTUP_SECONDS = 120  # two cores shared with other test runs: be patient
PROFILE = """{ viewer { roles } cases(first: 10) { edges { node {
  peacebuilder { pseudonym profile { legalName } } } } } }"""
SET_ROLES = """mutation($id: ID!, $roles: [Role!]!) {
  setUserRoles(input: {userId: $id, roles: $roles}) { user { roles } userErrors { message } } }"""


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
    variables = {**site_env(env.settings.data_dir, env.settings.database_url),
                 "REDIS_URL": redis_url, "SAFETY_NET_REDIS_PREFIX": unique("sn-replicas"),
                 "SAFETY_NET_RATE_CLIENT": f"{RATE}/60"}
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
              f"SAFETY_NET_RATE_CLIENT={RATE}/60")
        yield Deployment(env, a, b)
    finally:
        for replica in replicas:
            await replica.stop()
        await close()


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
