"""HTTP endpoints for evidence files (binary bodies do not belong in GraphQL JSON).

    POST /incidents/{incident_id}/attachments   body: the file; Content-Type: its type;
                                                 optional header Safety-Net-Category;
                                                 or multipart/form-data with a `file` part
                                                 (and an optional `category` field)
    GET  /attachments/{attachment_id}
IDs are the GraphQL global IDs. Both need a bearer token and a declared purpose.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import ids
from app.auth.edge import request_context
from app.errors import AppError, BadInput
from app.incidents import attachments

STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "ERASED": 410,
          "INTEGRITY_ERROR": 500, "INVALID_PURPOSE": 400, "PAYLOAD_TOO_LARGE": 413}


# A multipart body carries the file and a little framing around it.
MULTIPART_OVERHEAD = 64 * 1024
MULTIPART = "multipart/form-data"


class TooLarge(AppError):
    code = "PAYLOAD_TOO_LARGE"
    message = "File too large."


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == MULTIPART


async def _file_of(request: Request) -> tuple[str, bytes, str]:
    """(content type, bytes, category) of the upload: the raw body, or the `file` part of a
    multipart/form-data body (`curl -F file=@evidence.pdf`)."""
    content_type = request.headers.get("content-type", "")
    category = request.headers.get("safety-net-category", "incident_details")
    if not _is_multipart(request):
        return content_type, await request.body(), category
    try:
        form = await request.form(max_files=1, max_fields=2)
    except MultiPartException as exc:
        raise BadInput("Malformed multipart/form-data body.", field="file") from exc
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise BadInput("Send the file as the multipart part named `file`.", field="file")
        data = await part.read()
        field = form.get("category")
        if isinstance(field, str) and field:
            category = field.strip().lower()
        declared = (part.content_type or "").split(";")[0].strip().lower()
        if declared in ("", "application/octet-stream"):
            declared = attachments.sniff(data)
        return declared, data, category
    finally:
        await form.close()


def _error(exc: AppError) -> JSONResponse:
    body = {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}
    return JSONResponse(body, status_code=STATUS.get(exc.code, 400))


async def upload_endpoint(request: Request) -> Response:
    length = int(request.headers.get("content-length") or 0)
    framing = MULTIPART_OVERHEAD if _is_multipart(request) else 0
    if length > attachments.MAX_BYTES + framing:
        return _error(TooLarge())
    try:
        incident_id = ids.decode(request.path_params["incident_id"], "Incident")
        content_type, body, category = await _file_of(request)
        if len(body) > attachments.MAX_BYTES:
            raise TooLarge()
        async with request_context(request) as ctx:
            attachment = await attachments.upload(
                ctx, incident_id,  # type: ignore[arg-type]
                content_type, body, category)
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
