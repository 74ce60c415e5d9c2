"""HTTP endpoints for evidence files (binary bodies do not belong in GraphQL JSON).

    POST /incidents/{incident_id}/attachments   body: the file; Content-Type: its type;
                                                 optional header Safety-Net-Category
    GET  /attachments/{attachment_id}
IDs are the GraphQL global IDs. Both need a bearer token and a declared purpose.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import ids
from app.auth.edge import request_context
from app.errors import AppError
from app.incidents import attachments

STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "ERASED": 410,
          "INTEGRITY_ERROR": 500, "INVALID_PURPOSE": 400}


def _error(exc: AppError) -> JSONResponse:
    body = {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}
    return JSONResponse(body, status_code=STATUS.get(exc.code, 400))


async def upload_endpoint(request: Request) -> Response:
    length = int(request.headers.get("content-length") or 0)
    if length > attachments.MAX_BYTES:
        return JSONResponse({"errors": [{"message": "File too large.",
                                         "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]},
                            status_code=413)
    try:
        incident_id = ids.decode(request.path_params["incident_id"], "Incident")
        body = await request.body()
        async with request_context(request) as ctx:
            attachment = await attachments.upload(
                ctx, incident_id,  # type: ignore[arg-type]
                request.headers.get("content-type", ""), body,
                request.headers.get("safety-net-category", "incident_details"))
            attachment_id = attachment.id
    except AppError as exc:
        return _error(exc)
    return JSONResponse({"id": ids.encode("Attachment", attachment_id)}, status_code=201)


async def download_endpoint(request: Request) -> Response:
    try:
        attachment_id = ids.decode(request.path_params["attachment_id"], "Attachment")
        async with request_context(request) as ctx:
            content_type, data = await attachments.download(ctx, attachment_id)  # type: ignore[arg-type]
    except AppError as exc:
        return _error(exc)
    return Response(data, media_type=content_type, headers={
        "Content-Disposition": "attachment", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})
