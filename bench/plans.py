"""The page's main statement on PostgreSQL, as the service builds it and as it could be built:
database time per execution at each size, so a proposed index or rewrite comes with its
measured before/after (run against the benchmark's own databases; app/ is untouched).

- current ("before" since proposal 1 was applied): `Case.peacebuilder_id IN (visible
  peacebuilders)` ordered by (opened_at, id) DESC, LIMIT 51 (app/cases/repository.py `query`,
  which the page used until then, + app/pagination.py);
- + index: the same with an index on cases (opened_at DESC, id DESC), created and dropped here;
- materialized CTE: the visible set computed first (`WITH visible AS MATERIALIZED`), so the
  page is driven from what the caller may see rather than from every case: the page's statement
  now (app/cases/repository.py `page_query`).
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, text

from app.access.visibility import CareScope, Mode
from app.cases import repository as repo
from app.db import Database
from app.tables.cases import Case

INDEX = "bench_tmp_cases_opened"


def statements(org_id: uuid.UUID, subject: str) -> dict[str, Select[Any]]:
    scope = CareScope(org_id=org_id, subject=subject, purpose="protection", now=datetime.now(UTC),
                      mode=Mode.FOCAL)
    order = (Case.opened_at.desc(), Case.id.desc())
    current = repo.query(scope).order_by(*order).limit(51)
    cte = repo.page_query(scope).order_by(*order).limit(51)
    return {"current": current, "materialized CTE": cte}


async def _time(db: Database, stmt: Select[Any], n: int) -> tuple[float, list[uuid.UUID]]:
    times, ids = [], []
    async with db.sessionmaker() as session:
        await session.execute(stmt)
        for _ in range(n):
            t0 = time.perf_counter()
            ids = [c.id for c in (await session.scalars(stmt)).all()]
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, ids


async def page_statement(url: str, org_id: uuid.UUID, subject: str, n: int = 9) -> dict[str, Any]:
    """Median ms of the page statement variants; `same` tells they return the same cases."""
    db = Database(url)
    out: dict[str, Any] = {}
    try:
        stmts = statements(org_id, subject)
        ms, ref = await _time(db, stmts["current"], n)
        out["current"] = ms
        ms, ids = await _time(db, stmts["materialized CTE"], n)
        out["materialized CTE"] = ms
        same = ids == ref
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"CREATE INDEX IF NOT EXISTS {INDEX} "
                                    "ON cases (opened_at DESC, id DESC)"))
            await conn.execute(text("ANALYZE cases"))
        try:
            ms, ids = await _time(db, stmts["current"], n)
            out["+ index (opened_at, id)"] = ms
            same = same and ids == ref
        finally:
            async with db.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f"DROP INDEX IF EXISTS {INDEX}"))
        out["same"] = same
    finally:
        await db.dispose()
    return out
