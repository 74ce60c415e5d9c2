"""What query bombs cost before and with the limits of issue 7.

    .venv/bin/python bench/query_bombs.py [--database-url URL] [--timeout 60]

Builds the demo deployment (SQLite in a temporary directory unless a URL is given) and sends each
bomb through the real app twice: with every limit lifted ("before": body, document, tokens, depth,
aliases, directives, cost, batch and timeout all out of the way) and with the default limits.
Prints wall time and peak Python memory (tracemalloc, in a second run: tracing slows the code),
the SQL statements each bomb caused and what the server answered. Parse and validation caches
are cleared before each run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from strawberry.extensions.validation_cache import _get_validate_cache

from app import demo
from app.access.principal import SYSTEM
from app.auth import principals
from app.config import REPO_ROOT, Settings
from app.runtime import Runtime, context_for
from app.storage import upgrade
from app.tenants import schema as tenant_schema
from app.tenants import service as tenant_service
from schema.limits import _shape
from schema.server import create_app

LIFTED = {"max_depth": 10**6, "max_aliases": 10**6, "max_directives": 10**6,
          "max_tokens": 10**8, "max_document_bytes": 10**9, "max_cost": 10**300,
          "max_body_bytes": 10**9}
RATES_OFF = {name: "off" for name in ("rate_client", "rate_org", "cost_quota_client",
                                      "cost_quota_org", "rate_login", "rate_login_ip")}


def bombs() -> dict[str, Any]:
    """name -> a request body (dict) or a list of bodies (a batch)."""
    deep = "profile { country }"
    for _ in range(47):  # 6 + 2 x 47 = 100 levels
        deep = f"cases {{ peacebuilder {{ {deep} }} }}"
    deep = f"{{ cases(first: 1) {{ edges {{ node {{ peacebuilder {{ {deep} }} }} }} }} }}"
    expensive = "cases(first: 100) { edges { node { id status peacebuilder { pseudonym } } } }"
    aliases = "{ " + " ".join(f"a{i}: {expensive}" for i in range(1000)) + " }"
    megabyte = "{ viewer { " + "name " * 210_000 + "} }"
    fragments = ["query { viewer { ...F0 } }"]
    for i in range(30):
        fragments.append(f"fragment F{i} on Viewer {{ organisation {{ name }} "
                         f"...F{i + 1} ...F{i + 1} }}")
    fragments.append("fragment F30 on Viewer { name }")
    batch = [{"query": "{ cases(first: 100) { edges { node { id summary } } } }"}] * 1000
    return {"depth 100": {"query": deep},
            "1,000 aliases of cases(first: 100)": {"query": aliases},
            f"{len(megabyte) / 2**20:.1f} MB document": {"query": megabyte},
            "nested fragments (2^30 fan-out)": {"query": " ".join(fragments)},
            "batch of 1,000 operations": batch}


def outcome(response: httpx.Response) -> str:
    """What the server said, in a few words."""
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return str(response.status_code)
    if not errors:
        return f"{response.status_code} data"
    ext = errors[0].get("extensions", {})
    detail = ext.get("limit") or errors[0]["message"][:20]
    return f"{response.status_code} {ext.get('code', '')} ({detail})"


async def send(client: httpx.AsyncClient, token: str, body: Any, batched: bool) -> str:
    headers = {"authorization": f"Bearer {token}", "safety-net-purpose": "protection"}
    if isinstance(body, list) and batched:
        # Batching is off; "before" runs what a server that batched would have run.
        for one in body:
            response = await client.post("/graphql", json=one, headers=headers)
        return f"{outcome(response)} x{len(body)}"
    response = await client.post("/graphql", content=json.dumps(body),
                                 headers={**headers, "content-type": "application/json"})
    return outcome(response)


def clear_caches() -> None:
    """Each run parses and validates afresh, as a new hostile document would be, and does not
    pay for collecting the previous run's garbage."""
    _shape.cache_clear()
    _get_validate_cache(512).cache_clear()
    gc.collect()


async def measure(runtime: Runtime, client: httpx.AsyncClient, token: str, body: Any,
                  batched: bool) -> tuple[float, float, str, int]:
    clear_caches()
    statements = runtime.db.statements.count
    started = time.perf_counter()
    said = await send(client, token, body, batched)
    took = time.perf_counter() - started
    statements = runtime.db.statements.count - statements
    clear_caches()
    tracemalloc.start()
    await send(client, token, body, batched)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return took, peak / 2**20, said, statements


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="request timeout of the 'before' app, seconds")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sn-bombs-"))
    url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    settings = replace(Settings(), database_url=url, data_dir=tmp, log_worker=False,
                       policy_dir=REPO_ROOT / "policies", tenants_dir=REPO_ROOT / "tenants",
                       **RATES_OFF)
    await asyncio.to_thread(upgrade, url)
    runtime = Runtime.create(settings)
    async with runtime.db.transaction() as session:
        ctx = context_for(runtime, session, SYSTEM, request_id="bench-setup")
        await tenant_service.apply(ctx, tenant_schema.load_dir(settings.tenants_dir))
    await demo.load(runtime)
    async with runtime.db.transaction() as session:
        user = await principals.find_user(session, "unpc", "focal")
        assert user is not None
        token = runtime.issuer.issue(subject=user.subject, org_id=str(user.org_id), acr="mfa")[0]

    def app_for(changes: dict[str, Any]) -> httpx.AsyncClient:
        runtime.settings = replace(settings, **changes)
        app = create_app(runtime)
        runtime.settings = settings
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b",
                                 timeout=args.timeout * 2)

    before = app_for({**LIFTED, "request_timeout_seconds": args.timeout})
    limited = app_for({})
    print(f"{'bomb':<36}| {'before: s':>9} {'MiB':>6} {'SQL':>5}  {'outcome':<56}"
          f"| {'limits: s':>9} {'MiB':>5} {'SQL':>3}  outcome")
    for name, body in bombs().items():
        b = await measure(runtime, before, token, body, batched=True)
        w = await measure(runtime, limited, token, body, batched=False)
        print(f"{name:<36}| {b[0]:>9.3f} {b[1]:>6.1f} {b[3]:>5}  {b[2]:<56}"
              f"| {w[0]:>9.4f} {w[1]:>5.2f} {w[3]:>3}  {w[2]}", flush=True)
    await before.aclose()
    await limited.aclose()
    await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
