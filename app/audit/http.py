"""GET /audit/export: the caller's auditable entries as JSON Lines or CSV, with the signed
checkpoint that covers them, so the export can be verified offline
(`safety-net audit verify-export FILE`).

The JSON Lines export is self-verifying: its first line is the checkpoint; then every entry from
the first exported one up to the checkpoint's size, in order — entries the caller may read in
full, the others as {seq, hash} stubs — so the chain can be recomputed up to the signed head
without revealing other organisations' entries.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import ids, tenancy
from app.audit import checkpoints, queries
from app.audit.chain import raw_select
from app.audit.queries import LogFilter
from app.auth.edge import request_context
from app.errors import AppError, BadInput
from app.inputs import check_text, parse_datetime


def _filter(request: Request) -> LogFilter:
    q = request.query_params
    for name, value in q.items():
        check_text(value, name)
    return LogFilter(
        since=parse_datetime(q["from"], "from") if q.get("from") else None,
        until=parse_datetime(q["to"], "to") if q.get("to") else None,
        decision=q.get("decision") or None, purpose=q.get("purpose") or None,
        actor=q.get("actor") or None)


FIELDS = ("seq", "id", "at", "request_id", "actor", "org_id", "purpose", "action", "target_type",
          "target_id", "decision", "reason", "details", "refs", "prev_hash", "hash")


def _entry(row: Any) -> dict[str, Any]:
    """The stored form (what the hash covers), with details as JSON rather than text, and the
    target's opaque global ID beside it (not hashed: what clients use with the API)."""
    data = dict(zip(FIELDS, row, strict=True))
    data["details"] = json.loads(data["details"]) if data["details"] else None
    data["target_global_id"] = ids.target_global_id(data["target_type"], data["target_id"])
    return data


async def export_endpoint(request: Request) -> Response:
    runtime = request.app.state.runtime
    fmt = request.query_params.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        return JSONResponse({"error": "format must be jsonl or csv"}, status_code=400)
    worker = runtime.extras.get("log_worker")
    try:
        async with request_context(request) as ctx:
            log_filter = _filter(request)  # before any work: a malformed filter is a 400
            ctx.require_recent_mfa("audit_log.export")
            await ctx.require("audit_log", "export")
            # Only now, for an authenticated auditor: chain what is pending and sign a
            # checkpoint covering it (before this transaction reads anything).
            if worker is not None:
                await worker.tick()
                await worker.maybe_checkpoint(force=True)
            cp = await asyncio.to_thread(checkpoints.latest, runtime.settings.checkpoints)
            if cp is None:
                raise BadInput("Nothing to export yet.")
            visible_ids, first = await queries.export_rows(ctx, log_filter, cp.size)
            visible = {v.hex for v in visible_ids}
            # The range as stored, so the chain verifies offline: entries outside this auditor's
            # view leave as hash stubs only (below), which needs a read across organisations.
            with tenancy.using(tenancy.SYSTEM):
                async with runtime.db.transaction() as whole:
                    rows = (await whole.execute(text(
                        f"{raw_select(runtime.db.dialect)} WHERE seq >= :a AND seq <= :b ORDER BY seq"),
                        {"a": first, "b": cp.size})).all()
            ctx.record("audit_log.export", details={"format": fmt, "entries": len(visible),
                                                    "checkpoint": cp.size})
    except AppError as exc:
        status = {"UNAUTHENTICATED": 401, "STEP_UP_REQUIRED": 401, "FORBIDDEN": 403,
                  "NOT_FOUND": 404}.get(exc.code, 400)
        return JSONResponse({"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]},
                            status_code=status)
    note = checkpoints.render(cp)
    headers = {"Content-Disposition": f'attachment; filename="access-log.{fmt}"',
               "Cache-Control": "no-store"}
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*FIELDS, "target_global_id"])
        writer.writeheader()
        for row in rows:
            if row[1] in visible:
                data = _entry(row)
                data["details"] = row[12]
                writer.writerow(data)
        # Headers are Latin-1: the signed note (with its em dash) travels base64-encoded.
        headers["X-Safety-Net-Checkpoint"] = base64.b64encode(note.encode()).decode()
        return Response(out.getvalue(), media_type="text/csv", headers=headers)
    lines = [json.dumps({"type": "checkpoint", "note": note})]
    for row in rows:
        if row[1] in visible:
            lines.append(json.dumps({"type": "entry", **_entry(row)}, sort_keys=True))
        else:
            lines.append(json.dumps({"type": "stub", "seq": row[0], "hash": row[15],
                                     "prev_hash": row[14]}))
    return Response("\n".join(lines) + "\n", media_type="application/x-ndjson", headers=headers)
