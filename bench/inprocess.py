"""In-process measurements through the real ASGI app (httpx ASGITransport, as the tests do):
SQL statements per request, where a request's time goes (database vs Python), and what each
security step costs, by switching one step off at a time *inside this process only* (monkey
patches in the benchmark; app/ and schema/ are untouched).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

import app.pagination
from app.config import REPO_ROOT, Settings
from app.runtime import Runtime
from schema import ids
from schema.server import create_app

PAGE_QUERY = ("query Page($first: Int!) { cases(first: $first) { edges { node { id status "
              "riskLevel summary peacebuilder { pseudonym } incidents { id status severity "
              "description } } } } }")
CASE_QUERY = ("query One($id: ID!) { case(id: $id) { id status riskLevel summary "
              "peacebuilder { pseudonym } incidents { id status severity description } } }")
NOTE_MUTATION = ("mutation Note($input: AddCaseNoteInput!) { addCaseNote(input: $input) "
                 "{ note { id } userErrors { message } } }")
PURPOSE = "protection"


# The page built up field by field: what each consent-gated part of it costs.
LADDER = [
    ("id status riskLevel", "id status riskLevel"),
    ("+ summary (gated)", "id status riskLevel summary"),
    ("+ peacebuilder", "id status riskLevel summary peacebuilder { pseudonym }"),
    ("+ incidents", "id status riskLevel summary peacebuilder { pseudonym } "
                    "incidents { id status severity }"),
    ("+ description (gated)", "id status riskLevel summary peacebuilder { pseudonym } "
                              "incidents { id status severity description }"),
]


def ladder_body(fields: str, first: int = 50) -> dict[str, Any]:
    return {"query": "query Ladder($first: Int!) { cases(first: $first) { edges { node { "
                     + fields + " } } } }", "variables": {"first": first}}


# The bare schema's last rung with its two text fields behind async resolvers awaiting a
# DataLoader (no SQL, no logic): the price of the gate's shape alone.
BARE_ASYNC = ("id status riskLevel summaryAsync peacebuilder { pseudonym } "
              "incidents { id status severity descriptionAsync }")


async def ladder(envs: dict[str, InProcess], rounds: int = 5, per_round: int = 4) -> dict[str, Any]:
    """Median ms per request of each rung, for each app, interleaved in rounds; "bare" also
    gets the rung `BARE_ASYNC`."""
    rungs = {w: list(LADDER) + ([("gates' shape only", BARE_ASYNC)] if w == "bare" else [])
             for w in envs}
    times: dict[str, dict[str, list[float]]] = {w: {n: [] for n, _ in rungs[w]} for w in envs}
    for who, env in envs.items():
        for _, fields in rungs[who]:
            await env.post(ladder_body(fields))
    for _ in range(rounds):
        for who, env in envs.items():
            for name, fields in rungs[who]:
                body = ladder_body(fields)
                times[who][name] += await env.timed(lambda _, b=body: b, per_round)
    return {who: {n: statistics.median(v) * 1000 for n, v in t.items()}
            for who, t in times.items()}


def page_body(first: int) -> dict[str, Any]:
    return {"query": PAGE_QUERY, "variables": {"first": first}}


def counted_page_body(first: int) -> dict[str, Any]:
    """The page with `totalCount` too: the service counts only when it is selected."""
    return {"query": PAGE_QUERY.replace("cases(first: $first) {", "cases(first: $first) { totalCount"),
            "variables": {"first": first}}


def case_body(case_id: uuid.UUID) -> dict[str, Any]:
    return {"query": CASE_QUERY, "variables": {"id": ids.encode("Case", case_id)}}


def note_body(case_id: uuid.UUID, n: int = 0) -> dict[str, Any]:
    return {"query": NOTE_MUTATION, "variables": {"input": {
        "caseId": ids.encode("Case", case_id), "body": f"Benchmark note {n}: call back tomorrow."}}}


@dataclass
class InProcess:
    """The real app (or a baseline app) behind an in-process HTTP client."""

    client: httpx.AsyncClient
    counter: Any  # app.db.StatementCounter
    engine: Any
    headers: dict[str, str]

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.client.post("/graphql", json=body, headers=self.headers)
        r.raise_for_status()
        data = r.json()
        if data.get("errors"):
            raise RuntimeError(f"GraphQL errors: {data['errors']}")
        return data  # type: ignore[no-any-return]

    async def statements(self, body: dict[str, Any]) -> int:
        await self.post(body)  # warm caches (policy, parser, prepared statements)
        start = self.counter.count
        await self.post(body)
        return int(self.counter.count - start)

    async def timed(self, bodies: Callable[[int], dict[str, Any]], n: int) -> list[float]:
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            await self.post(bodies(i))
            out.append(time.perf_counter() - t0)
        return out


def unlimited() -> dict[str, Any]:
    """Rates and cost quotas off (the benchmark sends thousands of requests as one client),
    and a cost budget that lets the statement count ask for 200 cases. Only settings this
    version of the service has are touched."""
    names = {f.name for f in dataclasses.fields(Settings)}
    wanted = {"rate_client": "off", "rate_org": "off", "cost_quota_client": "off",
              "cost_quota_org": "off", "max_cost": 1_000_000}
    return {k: v for k, v in wanted.items() if k in names}


def issue(runtime: Runtime, subject: str, org_id: uuid.UUID) -> str:
    """A token as `safety-net token` prints it: a fully signed-in person (second factor)."""
    try:
        return str(runtime.issuer.issue(subject=subject, org_id=str(org_id), acr="mfa")[0])
    except TypeError:  # a version without acr
        return str(runtime.issuer.issue(subject=subject, org_id=str(org_id))[0])


@contextlib.asynccontextmanager
async def ours(url: str, data_dir: Path, subject: str, org_id: uuid.UUID,
               background_url: str = "") -> AsyncIterator[InProcess]:
    """Our app; on PostgreSQL as deployed: the service role, and the background role's URL for
    sign-in and admission (the system scope)."""
    settings = replace(Settings(), database_url=url, data_dir=data_dir, log_worker=False,
                       scheduler=False, policy_dir=REPO_ROOT / "policies",
                       tenants_dir=REPO_ROOT / "tenants", background_database_url=background_url,
                       **unlimited())
    runtime = Runtime.create(settings)
    asgi = create_app(runtime)
    token = issue(runtime, subject, org_id)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bench",
                               timeout=60)
    lifespan = asgi.router.lifespan_context(asgi)
    await lifespan.__aenter__()
    try:
        yield InProcess(client, runtime.db.statements, runtime.db.engine,
                        {"authorization": f"Bearer {token}", "safety-net-purpose": PURPOSE})
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await runtime.close()


@contextlib.asynccontextmanager
async def bare(url: str, org_id: uuid.UUID) -> AsyncIterator[InProcess]:
    from bench.baselines.bare_schema import create_app as bare_app

    asgi = bare_app(url, str(org_id))
    db = asgi.state.db
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bench",
                               timeout=60)
    try:
        yield InProcess(client, db.statements, db.engine, {})
    finally:
        await client.aclose()
        await db.dispose()


@contextlib.contextmanager
def max_page(n: int) -> Iterator[None]:
    """Allow pages above MAX_PAGE (100) for the statement count at 200, in this process only."""
    old = app.pagination.MAX_PAGE
    app.pagination.MAX_PAGE = n
    try:
        yield
    finally:
        app.pagination.MAX_PAGE = old


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


class StatementTimer:
    """Time spent inside the database driver, per statement (cursor execute to its end)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine.sync_engine
        self.events: list[tuple[str, float]] = []
        self._start: dict[int, float] = {}

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self._start[id(cursor)] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        t0 = self._start.pop(id(cursor), None)
        if t0 is not None:
            self.events.append((statement, time.perf_counter() - t0))

    def __enter__(self) -> StatementTimer:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


def label(statement: str) -> str:
    """A short name for a statement: its verb and first table, and what kind of read it is."""
    verb = statement.lstrip().split(None, 1)[0].upper()
    table = re.search(r"(?:FROM|INTO|UPDATE)\s+\"?(\w+)", statement, re.IGNORECASE)
    name = f"{verb} {table.group(1) if table else '?'}"
    if verb == "SELECT" and re.match(r"\s*SELECT count\(", statement, re.IGNORECASE):
        return f"count {table.group(1) if table else '?'}"
    if verb == "SELECT" and re.search(r"\bLIMIT\b", statement):
        return name + " (page)"
    return name


async def where_time_goes(env: InProcess, body: Callable[[int], dict[str, Any]],
                          n: int) -> dict[str, Any]:
    """Per request: total ms, database ms, and the statements that took longest."""
    await env.post(body(0))
    with StatementTimer(env.engine) as timer:
        times = await env.timed(body, n)
    total = sum(times)
    db = sum(d for _, d in timer.events)
    per: dict[str, list[float]] = {}
    for stmt, d in timer.events:
        per.setdefault(label(stmt), []).append(d)
    top = sorted(((k, sum(v) / n * 1000, len(v) / n) for k, v in per.items()),
                 key=lambda x: -x[1])[:5]
    return {"request_ms": statistics.median(times) * 1000, "db_ms": db / n * 1000,
            "db_share": db / total if total else 0.0, "statements": len(timer.events) / n,
            "top": [{"statement": k, "ms": ms, "per_request": c} for k, ms, c in top]}


async def ab(env: InProcess, body: Callable[[int], dict[str, Any]], switch: Callable[[], Any],
             pairs: int = 30) -> dict[str, float]:
    """Requests with everything on (A) and with one step switched off (B), alternating A/B and
    B/A one request at a time; the saving is the median of the paired differences, which
    cancels most of the background load that a shared machine adds."""
    a: list[float] = []
    b: list[float] = []
    await env.post(body(0))
    with switch():
        await env.post(body(0))
    for i in range(pairs):
        if i % 2:
            a += await env.timed(body, 1)
            with switch():
                b += await env.timed(body, 1)
        else:
            with switch():
                b += await env.timed(body, 1)
            a += await env.timed(body, 1)
    saved = statistics.median(x - y for x, y in zip(a, b, strict=True))
    on = statistics.median(a)
    return {"on_ms": on * 1000, "off_ms": statistics.median(b) * 1000,
            "saved_ms": saved * 1000, "saved": saved / on if on else 0.0}

async def scale_ab(small: InProcess, big: InProcess, body_small: Callable[[int], dict[str, Any]],
                   body_big: Callable[[int], dict[str, Any]], rounds: int = 6,
                   per_round: int = 5) -> tuple[float, float]:
    """Median ms per request on the small and the big database, interleaved in rounds."""
    a: list[float] = []
    b: list[float] = []
    await small.post(body_small(0))
    await big.post(body_big(0))
    for _ in range(rounds):
        a += await small.timed(body_small, per_round)
        b += await big.timed(body_big, per_round)
    return statistics.median(a) * 1000, statistics.median(b) * 1000
