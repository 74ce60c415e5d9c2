"""GET /audit/export: the caller's auditable entries as JSON Lines or CSV, with the signed
checkpoint that covers them, so the export can be verified offline
(`safety-net audit verify-export FILE`).

The JSON Lines export is self-verifying: its first line is the checkpoint; then every entry from
the first exported one up to the checkpoint's size, in order — entries the caller may read in
full, the others as {seq, hash} stubs — so the chain can be recomputed up to the signed head
without revealing other organisations' entries.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.audit import checkpoints, queries
from app.audit.chain import COLUMNS, _iso
from app.audit.models import AccessLogEntry
from app.audit.service import LogFilter
from app.auth.edge import request_context
from app.errors import AppError, BadInput


def _filter(request: Request) -> LogFilter:
    q = request.query_params
    try:
        return LogFilter(
            since=datetime.fromisoformat(q["from"]) if q.get("from") else None,
            until=datetime.fromisoformat(q["to"]) if q.get("to") else None,
            decision=q.get("decision") or None, purpose=q.get("purpose") or None,
            actor=q.get("actor") or None)
    except ValueError as exc:
        raise BadInput("from/to must be ISO 8601 date-times.", field="from") from exc


def _entry(row: Any) -> dict[str, Any]:
    return {"seq": row.seq, "id": str(row.id), "at": _iso(row.at), "request_id": row.request_id,
            "actor": row.actor, "org_id": str(row.org_id) if row.org_id else None,
            "purpose": row.purpose, "action": row.action, "target_type": row.target_type,
            "target_id": row.target_id, "decision": row.decision, "reason": row.reason,
            "details": row.details, "refs": row.refs, "prev_hash": row.prev_hash,
            "hash": row.hash}


async def export_endpoint(request: Request) -> Response:
    runtime = request.app.state.runtime
    fmt = request.query_params.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        return JSONResponse({"error": "format must be jsonl or csv"}, status_code=400)
    worker = runtime.extras.get("log_worker")
    try:
        if worker is not None:
            await worker.tick()
            await worker.maybe_checkpoint(force=True)
        cp = checkpoints.latest(runtime.settings.checkpoints)
        async with request_context(request) as ctx:
            if cp is None:
                raise BadInput("Nothing to export yet.")
            visible, first = await queries.export_rows(ctx, _filter(request), cp.size)
            rows = (await ctx.session.execute(
                select(*COLUMNS).where(AccessLogEntry.seq >= first, AccessLogEntry.seq <= cp.size)
                .order_by(AccessLogEntry.seq))).all()
            ctx.record("audit_log.export", details={"format": fmt, "entries": len(visible),
                                                    "checkpoint": cp.size})
    except AppError as exc:
        status = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404}.get(exc.code, 400)
        return JSONResponse({"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]},
                            status_code=status)
    note = checkpoints.render(cp)
    headers = {"Content-Disposition": f'attachment; filename="access-log.{fmt}"',
               "Cache-Control": "no-store"}
    if fmt == "csv":
        out = io.StringIO()
        fields = list(_entry(rows[0]).keys()) if rows else ["seq"]
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            if row.id in visible:
                data = _entry(row)
                data["details"] = json.dumps(data["details"], sort_keys=True)
                writer.writerow(data)
        # Headers are Latin-1: the signed note (with its em dash) travels base64-encoded.
        headers["X-Safety-Net-Checkpoint"] = base64.b64encode(note.encode()).decode()
        return Response(out.getvalue(), media_type="text/csv", headers=headers)
    lines = [json.dumps({"type": "checkpoint", "note": note})]
    for row in rows:
        if row.id in visible:
            lines.append(json.dumps({"type": "entry", **_entry(row)}, sort_keys=True))
        else:
            lines.append(json.dumps({"type": "stub", "seq": row.seq, "hash": row.hash,
                                     "prev_hash": row.prev_hash}))
    return Response("\n".join(lines) + "\n", media_type="application/x-ndjson", headers=headers)
