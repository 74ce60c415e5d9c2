"""Baselines (2) and (3): raw Starlette endpoints, no GraphQL at all.

- `POST /sql` (PostgreSQL only): the same 50-case page (same JSON, byte-compatible IDs and enum
  names) built by PostgreSQL in ONE statement with json_build_object/json_agg, passed through as
  text from an asyncpg pool of the same size as ours.
- `POST /const`: a constant JSON document (the HTTP ceiling of this server stack).

    DATABASE_URL=postgresql+asyncpg://... BENCH_ORG_ID=<uuid> \
        uvicorn bench.baselines.raw:create_app --factory
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _gid(type_name: str, column: str) -> str:
    """schema.ids.encode in SQL: base64url("Type:uuid") without padding."""
    return (f"rtrim(translate(encode(convert_to('{type_name}:' || {column}::text, 'UTF8'), "
            f"'base64'), '+/', '-_'), '=')")


PAGE_SQL = f"""
SELECT json_build_object('data', json_build_object('cases', json_build_object('edges',
  coalesce(json_agg(json_build_object('node', json_build_object(
    'id', {_gid('Case', 'c.id')},
    'status', upper(c.status),
    'riskLevel', upper(c.risk_level),
    'summary', c.summary,
    'peacebuilder', json_build_object('pseudonym', p.pseudonym),
    'incidents', (SELECT coalesce(json_agg(json_build_object(
                      'id', {_gid('Incident', 'i.id')},
                      'status', upper(i.status),
                      'severity', upper(i.severity),
                      'description', i.description) ORDER BY i.reported_at, i.id), '[]'::json)
                  FROM incidents i WHERE i.case_id = c.id)
  )) ORDER BY c.opened_at DESC, c.id DESC), '[]'::json))))::text
FROM (SELECT * FROM cases WHERE lead_org_id = $1
      ORDER BY opened_at DESC, id DESC LIMIT $2) c
JOIN peacebuilders p ON p.id = c.peacebuilder_id
"""  # noqa: S608 - constant SQL, parameters bound by asyncpg

CONSTANT = {"data": {"ok": True, "message": "constant response: the HTTP ceiling"}}


def create_app(database_url: str | None = None, org_id: str | None = None) -> Starlette:
    url = database_url or os.environ.get("DATABASE_URL", "")
    org = uuid.UUID(org_id or os.environ.get("BENCH_ORG_ID", str(uuid.UUID(int=0))))
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if url.startswith("postgresql"):
            import asyncpg

            dsn = url.replace("postgresql+asyncpg://", "postgresql://")
            state["pool"] = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        try:
            yield
        finally:
            if "pool" in state:
                await state["pool"].close()

    async def sql(request: Request) -> Response:
        await request.body()
        first = int(request.query_params.get("first", "50"))
        text = await state["pool"].fetchval(PAGE_SQL, org, first)
        return Response(text, media_type="application/json")

    async def const(request: Request) -> Response:
        await request.body()
        return JSONResponse(CONSTANT)

    async def healthz(request: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[Route("/sql", sql, methods=["POST"]),
                             Route("/const", const, methods=["POST", "GET"]),
                             Route("/healthz", healthz)], lifespan=lifespan)
