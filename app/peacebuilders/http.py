"""GET /me/data-copy: her own copy of everything we hold about her, streamed.

The same JSON document `me { dataCopy }` gave, written as it is read — each case, and each batch
of 20 of its incidents, in a transaction of its own — so its size never depends on what a
replica can hold in memory.
Only she can download it (a peacebuilder's own token; no purpose needed); the download is in
the access log (`data.export`, via download) before any byte of it leaves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app.auth.edge import request_context
from app.errors import AppError
from app.peacebuilders import self_service

STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404}


def _refuse(exc: AppError) -> JSONResponse:
    return JSONResponse({"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]},
                        status_code=STATUS.get(exc.code, 400))


async def data_copy_endpoint(request: Request) -> Response:
    try:
        async with request_context(request) as ctx:
            head, case_ids = await self_service.data_copy_head(ctx, via="download")
    except AppError as exc:
        return _refuse(exc)

    async def body() -> AsyncIterator[bytes]:
        async for piece in self_service.copy_pieces(head, case_ids,
                                                    lambda: request_context(request)):
            yield piece.encode()

    return StreamingResponse(body(), media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="my-data.json"',
        "Cache-Control": "no-store"})
