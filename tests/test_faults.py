"""Fault injection against a real deployment: a `safety-net serve` process (uvicorn) connected as
the service role to a private PostgreSQL cluster this module starts with `initdb`/`pg_ctl`, so it
can stop it cleanly, crash it and restart it without touching the shared one.

- PostgreSQL stopped cleanly and crashed (`pg_ctl stop -m immediate`) while clients write: every
  acknowledged write is there afterwards, `safety-net audit verify` passes, and the outage gets
  answers (not 200, no hang).
- The server killed with `kill -9` several times while clients write: the same.
- A private `redis-server` stopped and frozen (SIGSTOP) while requests go on: the service answers.
- Many concurrent consent changes on one grant: no internal error, a consistent final state.
- schemathesis fuzzes the GraphQL schema against the running server: no 5xx, no stack trace.

Every test is `heavy`; the figures (writes acknowledged and found, outage answers, latencies)
are printed and repeated in the run's closing summary. `pytest -s tests/test_faults.py` shows
the transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.config import REPO_ROOT
from app.ids import decode
from tests.conftest import (
    BACKGROUND_ROLE,
    REQUIRE_SERVICES,
    SERVICE_ROLE,
    Env,
    background_url,
    build_env,
    figure,
    service_url,
)
from tests.private_services import PrivatePostgres, PrivateRedis, Server
from tests.test_cli import CLI, site_env
from tests.test_consent import new_peacebuilder

pytestmark = [pytest.mark.anyio, pytest.mark.heavy]

REPORT = """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
  incident { id } userErrors { field message code } } }"""
ADD_NOTE = """mutation($input: AddCaseNoteInput!) { addCaseNote(input: $input) {
  note { id } userErrors { field message code } } }"""
WRITERS = 3  # concurrent clients writing
REQUEST_TIMEOUT = 30.0  # seconds: an answer later than this is a hang (server's own limit: 10 s)
OUTAGE_SECONDS = 3.0  # how long PostgreSQL stays down each time
CALM_SECONDS = 2.0  # writes between faults
KILLS = 3


def _owner_sql_url(env: Env) -> str:
    return env.owner_url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class Deployment:
    pg: PrivatePostgres
    env: Env  # the same database from inside the test: setup, tokens (as the service role)
    server: Server
    tmp: Path

    def cli_env(self) -> dict[str, str]:
        """`safety-net` commands as the operator: the schema owner, the server's data dir."""
        return site_env(self.env.settings.data_dir, self.env.owner_url)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, *args], env=self.cli_env(), cwd=self.tmp,
                              capture_output=True, text=True, timeout=timeout, check=False)

    async def verify_log(self) -> str:
        """`safety-net audit chain` then `audit verify`; returns verify's summary line."""
        chained = await asyncio.to_thread(self.cli, "audit", "chain")
        assert chained.returncode == 0, chained.stdout + chained.stderr
        verified = await asyncio.to_thread(self.cli, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        return " ".join(verified.stdout.split())


@pytest.fixture(scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory,
                     anyio_backend: str) -> AsyncIterator[Deployment]:
    tmp = tmp_path_factory.mktemp("faults")
    started = time.monotonic()
    pg = await asyncio.to_thread(PrivatePostgres.create)
    try:
        await asyncio.to_thread(pg.start)
        env, close = await build_env("postgresql", tmp, pg_admin_url=pg.url())
        try:
            variables = {**site_env(env.settings.data_dir, service_url(env.owner_url)),
                         "SAFETY_NET_DB_SERVICE_ROLE": SERVICE_ROLE,
                         "SAFETY_NET_BACKGROUND_DATABASE_URL": background_url(env.owner_url),
                         "SAFETY_NET_DB_BACKGROUND_ROLE": BACKGROUND_ROLE}
            for rate in ("CLIENT", "ORG", "COST_QUOTA_CLIENT", "COST_QUOTA_ORG", "LOGIN",
                         "LOGIN_IP", "TOKEN", "TOKEN_IP"):
                variables[f"SAFETY_NET_RATE_{rate}"] = "off"
            server = Server([CLI, "serve"], variables, tmp, tmp / "server.log")
            await server.start()
            figure(f"faults: private PostgreSQL (initdb as {'postgres' if pg.as_root else 'self'}) "
                   f"on port {pg.port}, migrated, demo loaded, server on port {server.port} as "
                   f"{SERVICE_ROLE}: ready in {time.monotonic() - started:.1f} s")
            try:
                yield Deployment(pg, env, server, tmp)
            finally:
                await server.stop()
        finally:
            if not pg.running():
                await asyncio.to_thread(pg.start)
            await close()
    finally:
        await asyncio.to_thread(pg.remove)


# --- continuous writers --------------------------------------------------------------------------

@dataclass
class Answer:
    kind: str  # "incident" or "note"
    sent: float
    received: float
    status: int | None  # None: no HTTP answer (connection refused or dropped)
    error: str = ""  # transport error class, or the GraphQL error code/message
    content_type: str = ""
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    written: str | None = None  # the acknowledged row's UUID


@dataclass
class Writers:
    """WRITERS clients alternating reportIncident and addCaseNote on one case until stopped."""

    base_url: str
    token: str
    case_id: str
    answers: list[Answer] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._client(n)) for n in range(WRITERS)]

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.gather(*self.tasks)

    async def _client(self, n: int) -> None:
        headers = {"authorization": f"Bearer {self.token}", "safety-net-purpose": "protection"}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT,
                                     headers=headers) as http:
            for i in itertools.count():
                if self.stopping.is_set():
                    return
                marker = f"fault-{n}-{i}-{uuid.uuid4().hex[:6]}"
                if i % 2 == 0:
                    kind, query = "incident", REPORT
                    variables: dict[str, Any] = {"i": {
                        "caseId": self.case_id, "type": "THREATS", "severity": "MEDIUM",
                        "reportedBy": "herself", "reportedVia": "secure_messenger",
                        "description": marker}}
                else:
                    kind, query = "note", ADD_NOTE
                    variables = {"input": {"caseId": self.case_id, "body": marker}}
                sent = time.monotonic()
                try:
                    response = await http.post("/graphql", json={"query": query,
                                                                 "variables": variables})
                except httpx.TimeoutException as exc:
                    self.answers.append(Answer(kind, sent, time.monotonic(), None,
                                               f"HANG {type(exc).__name__}"))
                    continue
                except httpx.TransportError as exc:
                    self.answers.append(Answer(kind, sent, time.monotonic(), None,
                                               type(exc).__name__))
                    await asyncio.sleep(0.05)  # nothing listening: do not spin
                    continue
                self.answers.append(self._read(kind, sent, response))

    @staticmethod
    def _read(kind: str, sent: float, response: httpx.Response) -> Answer:
        answer = Answer(kind, sent, time.monotonic(), response.status_code,
                        content_type=response.headers.get("content-type", ""),
                        body=response.text[:300], headers=dict(response.headers))
        if not answer.content_type.startswith("application/json"):
            return answer
        body = response.json()
        if body.get("errors"):
            error = body["errors"][0]
            answer.error = error.get("extensions", {}).get("code") or error.get("message", "")
            return answer
        if response.status_code != 200 or not body.get("data"):
            return answer
        payload = body["data"]["reportIncident" if kind == "incident" else "addCaseNote"]
        if payload["userErrors"]:
            answer.error = f"userErrors {payload['userErrors']}"
            return answer
        thing = payload["incident" if kind == "incident" else "note"]
        answer.written = str(decode(thing["id"], "Incident" if kind == "incident" else "CaseNote"))
        return answer

    def acknowledged(self, kind: str) -> list[str]:
        return [a.written for a in self.answers if a.kind == kind and a.written]

    def between(self, start: float, end: float) -> list[Answer]:
        """Answers to requests sent and answered within [start, end]."""
        return [a for a in self.answers if a.sent >= start and a.received <= end]


async def writers_on(deployment: Deployment, org: str = "mofa") -> Writers:
    env = deployment.env
    pb = await new_peacebuilder(env, org)
    token = await env.token(org, "caseworker")
    return Writers(deployment.server.base_url, token, pb["case"])


async def missing_writes(deployment: Deployment, writers: Writers) -> dict[str, list[str]]:
    """Acknowledged rows that are not in the database (read as the schema owner)."""
    conn = await asyncpg.connect(_owner_sql_url(deployment.env))
    try:
        missing = {}
        for kind, table in (("incident", "incidents"), ("note", "case_notes")):
            wanted = writers.acknowledged(kind)
            found = {str(r["id"]) for r in await conn.fetch(
                f"SELECT id FROM {table} WHERE id = ANY($1::uuid[])", wanted)}
            missing[kind] = [w for w in wanted if w not in found]
        return missing
    finally:
        await conn.close()


def describe(answers: list[Answer]) -> str:
    counts = Counter(
        "acknowledged" if a.written else
        f"{a.status or 'no answer'} {a.content_type.split(';')[0]} {a.error}".strip()
        for a in answers)
    return ", ".join(f"{n} x {what}" for what, n in counts.most_common())


def outage_answer_problems(answers: list[Answer]) -> list[str]:
    """What is wrong with the answers given while the database was down: each must be a 503
    with a JSON `SERVICE_UNAVAILABLE` error, `Retry-After` and a request ID, on a connection the
    server kept open (issue 15 #4; schema/outage.py)."""
    problems = []
    for a in answers:
        if a.written:
            problems.append(f"acknowledged while the database was down: {a}")
        elif a.error.startswith("HANG"):
            problems.append(f"no answer within {REQUEST_TIMEOUT:g} s: {a}")
        elif a.status is None:
            problems.append(f"connection closed with no answer ({a.error})")
        elif a.status != 503 or not a.content_type.startswith("application/json"):
            problems.append(f"HTTP {a.status} {a.content_type} {a.error}: {a.body[:120]}")
        elif a.error != "SERVICE_UNAVAILABLE" or not a.headers.get("retry-after") \
                or not a.headers.get("x-request-id"):
            problems.append(f"503 without code, Retry-After or request ID: {a.headers} {a.body}")
        elif "Traceback" in a.body:
            problems.append(f"stack trace in the answer: {a.body}")
    return problems


async def test_postgres_clean_stop_and_crash_lose_no_acknowledged_write(
        deployment: Deployment) -> None:
    pg, server = deployment.pg, deployment.server
    writers = await writers_on(deployment)
    outages: list[tuple[str, float, float]] = []
    readiness: list[str] = []  # /readyz during each outage
    writers.start()
    try:
        await asyncio.sleep(CALM_SECONDS)
        for mode in ("fast", "immediate"):
            took = await asyncio.to_thread(pg.stop, mode)
            down = time.monotonic()
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            async with httpx.AsyncClient(base_url=server.base_url, timeout=REQUEST_TIMEOUT) as http:
                ready = await http.get("/readyz")
            readiness.append(f"{ready.status_code} {ready.json().get('status')}")
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            up_from = time.monotonic()
            restart = await asyncio.to_thread(pg.start)
            outages.append((mode, down, up_from))
            print(f"pg_ctl stop -m {mode}: {took:.1f} s; down {OUTAGE_SECONDS:g} s; "
                  f"pg_ctl start: {restart:.1f} s")
            await asyncio.sleep(CALM_SECONDS)
        recovered_from = time.monotonic()
        await asyncio.sleep(CALM_SECONDS)
    finally:
        await writers.stop()

    assert server.process is not None and server.process.returncode is None, server.output()
    hangs = [a for a in writers.answers if a.error.startswith("HANG")]
    assert hangs == [], f"requests with no answer within {REQUEST_TIMEOUT:g} s: {hangs[:3]}"
    for (mode, down, up_from), ready in zip(outages, readiness, strict=True):
        during = writers.between(down, up_from)
        label = "clean stop" if mode == "fast" else "crash"
        figure(f"faults: PostgreSQL {label} (pg_ctl stop -m {mode}), answers while down: "
               f"{describe(during) or 'none'}; /readyz {ready}")
        assert ready == "503 unavailable", ready
        assert during, f"no request was answered during the {label}"
        problems = outage_answer_problems(during)
        assert problems == [], f"{len(problems)} of {len(during)}: {problems[:5]}"
    after = [a for a in writers.answers if a.sent >= recovered_from]
    assert after and all(a.written for a in after), \
        f"not recovered {CALM_SECONDS:g} s after the restart: {describe(after)}"

    missing = await missing_writes(deployment, writers)
    acknowledged = {k: len(writers.acknowledged(k)) for k in ("incident", "note")}
    verified = await deployment.verify_log()
    figure(f"faults: PostgreSQL clean stop + crash during writes: {len(writers.answers)} "
           f"requests by {WRITERS} clients; acknowledged incidents {acknowledged['incident']}, "
           f"notes {acknowledged['note']}; missing afterwards: "
           f"{sum(len(m) for m in missing.values())}; audit verify: {verified}")
    assert missing == {"incident": [], "note": []}
    assert sum(acknowledged.values()) > 0


async def test_server_kill_9_loses_no_acknowledged_write(deployment: Deployment) -> None:
    server = deployment.server
    writers = await writers_on(deployment)
    rng = random.Random(15)
    restarts: list[float] = []
    writers.start()
    try:
        await asyncio.sleep(CALM_SECONDS)
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            server.kill()
            await server.wait_dead()
            restarts.append(await server.start())
        await asyncio.sleep(CALM_SECONDS)
        recovered_from = time.monotonic()
        await asyncio.sleep(CALM_SECONDS)
    finally:
        await writers.stop()

    hangs = [a for a in writers.answers if a.error.startswith("HANG")]
    assert hangs == [], f"requests with no answer within {REQUEST_TIMEOUT:g} s: {hangs[:3]}"
    errors = [a for a in writers.answers if a.status is not None and not a.written]
    assert errors == [], f"answered, but not with an acknowledged write: {describe(errors)}"
    after = [a for a in writers.answers if a.sent >= recovered_from]
    assert after and all(a.written for a in after), describe(after)
    missing = await missing_writes(deployment, writers)
    acknowledged = {k: len(writers.acknowledged(k)) for k in ("incident", "note")}
    verified = await deployment.verify_log()
    figure(f"faults: kill -9 of the server {KILLS} times during writes (restart to ready "
           f"{', '.join(f'{s:.1f}' for s in restarts)} s): {len(writers.answers)} requests, "
           f"{describe(writers.answers)}; acknowledged incidents {acknowledged['incident']}, notes "
           f"{acknowledged['note']}; missing afterwards: {sum(len(m) for m in missing.values())}; "
           f"audit verify: {verified}")
    assert missing == {"incident": [], "note": []}
    assert sum(acknowledged.values()) > 0




# --- a private Redis, stopped and frozen -----------------------------------------------------------

VIEWER = "{ viewer { name } }"
FROZEN_REQUESTS = 3  # concurrent reportIncident calls while Redis is frozen (each may take ~16 s)
REDIS_TIMEOUT = 90.0  # seconds: the client's patience with a frozen Redis


async def timed(http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
                ) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    return time.monotonic() - started, response


def acknowledged_incident(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    body = response.json()
    payload = (body.get("data") or {}).get("reportIncident") or {}
    return not body.get("errors") and not payload.get("userErrors") and bool(payload.get("incident"))


def seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in sorted(values)) + " s"


@contextlib.asynccontextmanager
async def redis_backed_server(deployment: Deployment, redis: PrivateRedis) -> AsyncIterator[Server]:
    """A second `safety-net serve` on the same database with rate limits and alerts on the
    private Redis (limits high enough never to refuse: Redis is on the path, not the limit)."""
    variables = {**deployment.server.env, "REDIS_URL": redis.url,
                 "SAFETY_NET_REDIS_PREFIX": f"sn-faults-{uuid.uuid4().hex[:8]}",
                 "SAFETY_NET_RATE_CLIENT": "100000/60", "SAFETY_NET_RATE_ORG": "100000/60"}
    server = Server([CLI, "serve"], variables, deployment.tmp, deployment.tmp / "server-redis.log")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_redis_stopped_or_frozen_the_service_keeps_answering(deployment: Deployment) -> None:
    env = deployment.env
    pb = await new_peacebuilder(env, "mofa")
    report = {"i": {"caseId": pb["case"], "type": "THREATS", "severity": "CRITICAL",
                    "reportedBy": "herself", "reportedVia": "secure_messenger",
                    "description": "Redis fault test."}}
    headers = {"authorization": f"Bearer {await env.token('mofa', 'caseworker')}",
               "safety-net-purpose": "protection"}
    redis = PrivateRedis.create()
    await asyncio.to_thread(redis.start)
    try:
        async with redis_backed_server(deployment, redis) as server, httpx.AsyncClient(
                base_url=server.base_url, timeout=REDIS_TIMEOUT, headers=headers) as http:

            async def round_of(label: str, n: int) -> list[float]:
                done = await asyncio.gather(*(timed(http, REPORT, report) for _ in range(n)),
                                            timed(http, VIEWER))
                reports, (viewer_took, viewer) = done[:-1], done[-1]
                for _, response in reports:
                    assert acknowledged_incident(response), f"{label}: {response.text[:300]}"
                assert viewer.status_code == 200 and "errors" not in viewer.json(), viewer.text
                figure(f"faults: Redis {label}: reportIncident x{n} concurrent answered 200 in "
                       f"{seconds([t for t, _ in reports])}; viewer query in {viewer_took:.2f} s")
                return [t for t, _ in reports]

            await round_of("up (baseline)", FROZEN_REQUESTS)
            redis.freeze()
            try:
                await round_of("frozen (SIGSTOP)", FROZEN_REQUESTS)
            finally:
                redis.thaw()
            await round_of("thawed (SIGCONT)", FROZEN_REQUESTS)
            redis.stop()
            await round_of("stopped", FROZEN_REQUESTS)
            await asyncio.to_thread(redis.start)  # the same port again
            await round_of("restarted", FROZEN_REQUESTS)
            assert server.process is not None and server.process.returncode is None
    finally:
        redis.stop()


# --- concurrent consent changes on one grant -------------------------------------------------------

CONSENT_ROUNDS = 4
GRANT_CATEGORIES = ["INCIDENT_DETAILS", "FAMILY", "HEALTH", "LEGAL", "FINANCIAL", "TRAVEL"]
GRANT_PURPOSES = ["PROTECTION", "LEGAL_SUPPORT", "ADVOCACY"]
SHE_GRANTS = """mutation($input: GrantConsentInput!) { grantConsent(input: $input) {
  grant { id status } userErrors { field message code } } }"""
NARROW = """mutation($input: NarrowConsentInput!) { narrowConsent(input: $input) {
  grant { id status categories purposes } userErrors { field message code } } }"""
REVOKE = """mutation($id: ID!) { revokeConsent(input: {grantId: $id}) {
  grant { id status } userErrors { field message code } } }"""


def consent_calls(grant_id: str, rng: random.Random) -> list[tuple[str, str, dict[str, Any]]]:
    """Each category but one and each purpose but one removed by its own narrowing (so every
    narrowing can be accepted on its own), some twice; two revocations; shuffled."""
    calls: list[tuple[str, str, dict[str, Any]]] = []
    for category in GRANT_CATEGORIES[1:] * 2:
        calls.append((f"narrow -{category}", NARROW,
                      {"input": {"grantId": grant_id, "categories": [category]}}))
    for purpose in GRANT_PURPOSES[1:] * 2:
        calls.append((f"narrow -{purpose}", NARROW,
                      {"input": {"grantId": grant_id, "purposes": [purpose]}}))
    calls += [("revoke", REVOKE, {"id": grant_id})] * 2
    rng.shuffle(calls)
    return calls


async def grant_history(deployment: Deployment, grant: uuid.UUID) -> dict[str, Any]:
    conn = await asyncpg.connect(_owner_sql_url(deployment.env))
    try:
        events = await conn.fetch("SELECT version, kind, categories::text AS c, purposes::text AS p "
                                  "FROM consent_events WHERE grant_id = $1 ORDER BY version", grant)
        row = await conn.fetchrow("SELECT categories::text AS c, purposes::text AS p, revoked_at "
                                  "FROM consent_grants WHERE id = $1", grant)
        access = await conn.fetch("SELECT category, purpose FROM consent_access "
                                  "WHERE grant_id = $1", grant)
    finally:
        await conn.close()
    def names(stored: str) -> set[str]:  # as GraphQL spells them
        return {value.upper() for value in json.loads(stored)}

    return {"events": [(e["version"], e["kind"], names(e["c"]), names(e["p"])) for e in events],
            "categories": names(row["c"]), "purposes": names(row["p"]),
            "revoked": row["revoked_at"] is not None,
            "access": {(a["category"].upper(), a["purpose"].upper()) for a in access}}


async def test_concurrent_consent_changes_on_one_grant_serialise(deployment: Deployment) -> None:
    env, rng = deployment.env, random.Random(5)
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    orgs = await env.gql("{ organisations(first: 50) { edges { node { id slug } } } }",
                         as_=("mofa", "focal"))
    org_ids = {e["node"]["slug"]: e["node"]["id"] for e in orgs["data"]["organisations"]["edges"]}
    problems: list[str] = []
    outcomes: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=deployment.server.base_url, timeout=REQUEST_TIMEOUT,
                                 headers={"authorization": f"Bearer {her}"}) as http:
        for round_, recipient in enumerate(["embassy", "unpc", "nhri", "mofa"][:CONSENT_ROUNDS]):
            granted = (await http.post("/graphql", json={"query": SHE_GRANTS, "variables": {
                "input": {"peacebuilderId": pb["id"], "recipientOrganisationId": org_ids[recipient],
                          "categories": GRANT_CATEGORIES, "purposes": GRANT_PURPOSES}}})).json()
            assert granted["data"]["grantConsent"]["userErrors"] == [], granted
            grant_id = granted["data"]["grantConsent"]["grant"]["id"]
            calls = consent_calls(grant_id, rng)
            responses = await asyncio.gather(*(http.post("/graphql", json={
                "query": query, "variables": variables}) for _, query, variables in calls))
            accepted: list[str] = []
            for (label, _, _), response in zip(calls, responses, strict=True):
                if response.status_code != 200 or "Internal error." in response.text \
                        or "Traceback" in response.text:
                    problems.append(f"round {round_} {label}: HTTP {response.status_code} "
                                    f"{response.text[:200]}")
                    outcomes["internal error"] += 1
                    continue
                body = response.json()
                payload = (body.get("data") or {}).get(
                    "revokeConsent" if label == "revoke" else "narrowConsent")
                if body.get("errors") or not payload:
                    code = body["errors"][0].get("extensions", {}).get("code")
                    outcomes[f"error {code}"] += 1
                    continue
                if payload["userErrors"]:
                    outcomes[f"refused {payload['userErrors'][0]['code']}"] += 1
                    continue
                outcomes["accepted"] += 1
                accepted.append(label)
            state = await grant_history(deployment, decode(grant_id, "ConsentGrant"))
            events = state["events"]
            kinds = [kind for _, kind, _, _ in events]
            if [v for v, *_ in events] != list(range(1, len(events) + 1)):
                problems.append(f"round {round_}: event numbers {[v for v, *_ in events]}")
            if "revoke" in kinds and kinds.index("revoke") != len(kinds) - 1:
                problems.append(f"round {round_}: a change after the revocation: {kinds}")
            if kinds.count("narrow") != sum(a.startswith("narrow") for a in accepted):
                problems.append(f"round {round_}: {kinds.count('narrow')} narrow events for "
                                f"{sum(a.startswith('narrow') for a in accepted)} accepted narrowings")
            if ("revoke" in accepted) != ("revoke" in kinds) or kinds.count("revoke") > 1:
                problems.append(f"round {round_}: revocations accepted {accepted.count('revoke')}, "
                                f"recorded {kinds.count('revoke')}")
            removed = {label.split("-", 1)[1] for label in accepted if label.startswith("narrow")}
            categories = set(GRANT_CATEGORIES) - removed
            purposes = set(GRANT_PURPOSES) - removed
            _, _, last_categories, last_purposes = events[-1]
            if not state["revoked"] and (state["categories"], state["purposes"]) != (
                    categories, purposes):
                problems.append(f"round {round_}: grant has {state['categories']} "
                                f"{state['purposes']}; accepted narrowings leave {categories} "
                                f"{purposes} (lost update)")
            if (state["categories"], state["purposes"]) != (last_categories, last_purposes):
                problems.append(f"round {round_}: projection differs from its last event")
            live = set() if state["revoked"] else {(c, p) for c in state["categories"]
                                                   for p in state["purposes"]}
            if state["access"] != live:
                problems.append(f"round {round_}: consent_access {sorted(state['access'])} for "
                                f"{sorted(live)}")
    verified = await deployment.verify_log()
    state_problems = [p for p in problems if ": HTTP " not in p]
    figure(f"faults: concurrent consent changes, {CONSENT_ROUNDS} rounds of "
           f"{len(consent_calls('x', rng))} concurrent narrow/revoke calls on one grant: "
           f"{dict(outcomes)}; {len(state_problems)} inconsistent final states; audit verify: {verified}")
    for problem in state_problems[:10] + [p for p in problems if ": HTTP " in p][:3]:
        print(f"  {problem[:240]}")
    assert problems == [], problems


# --- schemathesis fuzzing of the GraphQL schema ----------------------------------------------------

FUZZ_FIRST_PASS = 3  # examples per operation that every run sends, however slow the machine
FUZZ_EXAMPLES = 25  # examples per operation in all, while the time budget lasts
FUZZ_SECONDS = 30.0  # the time budget after the first pass
FUZZ_CALLERS = (("mofa", "caseworker"), ("mofa", "focal"), ("unpc", "admin"))
STACK_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


def schemathesis_schema() -> Any:
    try:
        import schemathesis
    except ImportError:  # the `test` extra; in requirements.lock once re-locked
        if REQUIRE_SERVICES:
            pytest.fail("schemathesis is not installed (pip install -e '.[test]')")
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    from hypothesis import strategies as st
    from schemathesis.graphql import nodes

    # Our two custom scalars. Date-times also without a timezone or with odd offsets (a client's
    # mistakes must be input errors); JSON as small values of each kind.
    moments = st.tuples(st.dates().map(str), st.times().map(lambda t: t.isoformat()),
                        st.sampled_from(["Z", "+00:00", "+05:30", "-12:00", "+14:00", ""]))
    schemathesis.graphql.scalar("DateTime", moments.map(lambda m: f"{m[0]}T{m[1]}{m[2]}")
                                .map(nodes.String))
    leaves = st.one_of(st.text(max_size=20).map(nodes.String),
                       st.integers(-(2**40), 2**40).map(nodes.Int), st.booleans().map(nodes.Boolean),
                       st.just(nodes.Null))
    schemathesis.graphql.scalar("JSON", st.one_of(leaves, st.lists(leaves, max_size=3)
                                                  .map(nodes.List)))
    return schemathesis.graphql.from_path(REPO_ROOT / "schema" / "schema.graphql")


@dataclass
class FuzzReport:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    stack_traces: list[str] = field(default_factory=list)
    internal: list[str] = field(default_factory=list)  # 200 with "Internal error."
    per_operation: Counter[str] = field(default_factory=Counter)


def fuzz_operation(operation: Any, examples: int, seed: int, base_url: str,
                   tokens: list[str], report: FuzzReport, deadline: float) -> None:
    """Send `examples` generated documents of one operation (sync: runs in a thread)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed

    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as http:

        @fixed_seed(seed)
        @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def send(case: Any) -> None:
            if time.monotonic() > deadline:
                return
            document = case.as_transport_kwargs(base_url=base_url)["json"]
            n = report.requests
            report.requests += 1
            report.per_operation[operation.label] += 1
            response = http.post("/graphql", json=document, headers={
                "authorization": f"Bearer {tokens[n % len(tokens)]}",
                "safety-net-purpose": "protection"})
            report.statuses[response.status_code] += 1
            where = f"{operation.label} HTTP {response.status_code}: {document['query'][:160]!r}"
            if response.status_code >= 500:
                report.server_errors.append(f"{where} -> {response.text[:200]}")
            if STACK_TRACE.search(response.text):
                report.stack_traces.append(f"{where} -> {response.text[:300]}")
            if response.headers.get("content-type", "").startswith("application/json"):
                for error in response.json().get("errors") or []:
                    code = (error.get("extensions") or {}).get("code", "none")
                    report.codes[code] += 1
                    if error.get("message") == "Internal error.":
                        report.internal.append(f"{where} variables "
                                               f"{document.get('variables')!r:.120}")

        send()


async def test_schemathesis_fuzzing_finds_no_server_error(deployment: Deployment) -> None:
    """Mutations run for real on the private database (an admin caller may even switch its
    organisation to registered operations only: its later requests are refused, not failed)."""
    schema = schemathesis_schema()
    operations = [result.ok() for result in schema.get_all_operations()]
    env = deployment.env
    tokens = [await env.token(org, user) for org, user in FUZZ_CALLERS]
    tokens.append(await env.peacebuilder_token((await new_peacebuilder(env, "wpn"))["login"]))
    report = FuzzReport()
    started = time.monotonic()
    for n, operation in enumerate(operations):  # every operation, however slow the machine
        await asyncio.to_thread(fuzz_operation, operation, FUZZ_FIRST_PASS, n,
                                deployment.server.base_url, tokens, report, float("inf"))
    first_pass = time.monotonic() - started
    deadline = time.monotonic() + FUZZ_SECONDS
    for n, operation in enumerate(operations):  # more of each while the budget lasts
        if time.monotonic() > deadline:
            break
        await asyncio.to_thread(fuzz_operation, operation, FUZZ_EXAMPLES, 1000 + n,
                                deployment.server.base_url, tokens, report, deadline)
    took = time.monotonic() - started
    assert deployment.server.process is not None and deployment.server.process.returncode is None
    least = min(report.per_operation[o.label] for o in operations)
    figure(f"faults: schemathesis {schemathesis_version()} fuzzed {len(operations)} GraphQL "
           f"operations with {report.requests} requests in {took:.0f} s (first pass "
           f"{first_pass:.0f} s; at least {least} per operation) as "
           f"{len(tokens)} callers: HTTP {dict(report.statuses)}; error codes "
           f"{dict(report.codes.most_common(8))}; server errors {len(report.server_errors)}, "
           f"stack traces {len(report.stack_traces)}, 'Internal error.' {len(report.internal)}")
    for line in (report.server_errors + report.stack_traces + report.internal)[:10]:
        print(f"  {line}")
    assert report.server_errors == []
    assert report.stack_traces == []
    assert report.internal == []  # an unhandled exception behind HTTP 200 is a server error too


def schemathesis_version() -> str:
    from importlib.metadata import version

    return version("schemathesis")
