"""GET /monitoring/report?period=2026-Q1&format=csv|html|pdf: what the caller's organisation
released for a period (recorded figures only; a bearer token and the aggregate_reporting
purpose; documented in schema/openapi.py)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.auth.edge import request_context
from app.errors import AppError, BadInput
from app.incidents.http import STATUS
from app.monitoring import disclosure, report, service

TYPES = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8",
         "pdf": "application/pdf"}


async def report_endpoint(request: Request) -> Response:
    fmt = request.query_params.get("format", "html")
    period = request.query_params.get("period", "")
    try:
        if fmt not in TYPES:
            raise BadInput("format is csv, html or pdf.", field="format")
        async with request_context(request) as ctx:
            org, releases = await service.for_period(ctx, period)
    except AppError as exc:
        body = {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}
        return JSONResponse(body, status_code=STATUS.get(exc.code, 400))
    # The file is named from the parsed label, never the raw text (other digits, spaces).
    label = disclosure.parse_period(period).label
    if fmt == "csv":
        content: str | bytes = report.to_csv(releases)
    elif fmt == "html":
        content = report.to_html(label, org, releases)
    else:  # rendering a PDF is CPU work: off the event loop
        content = await asyncio.to_thread(report.to_pdf, label, org, releases)
    return Response(content, media_type=TYPES[fmt], headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"inline; filename=monitoring-{label}.{fmt}"
        if fmt == "html" else f"attachment; filename=monitoring-{label}.{fmt}"})
