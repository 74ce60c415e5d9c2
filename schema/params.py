"""GraphQL-over-HTTP request parameters: the document (or its registered hash), variables and
operation name, from a GET query string or a JSON body."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from app.errors import BadInput
from app.inputs import check_json
from app.operations.service import sha256_of

JSON = "application/json"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class RequestError(Exception):
    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST",
                 field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.field = status, message, code, field


@dataclass(frozen=True)
class Params:
    query: str | None
    variables: dict[str, Any] | None
    operation: str | None
    # SHA-256 of a registered document (Apollo `extensions.persistedQuery.sha256Hash` or
    # `documentId`), when the client sent one.
    sha256: str | None


def _json_param(raw: str | None, name: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"{name} must be a JSON object.") from exc


async def parse(request: Request) -> Params:
    """The request's parameters (the body size is limited by `server.BodyLimit`)."""
    if request.method == "GET":
        q = request.query_params
        data: dict[str, Any] = {
            "query": q.get("query"), "operationName": q.get("operationName"),
            "variables": _json_param(q.get("variables"), "variables"),
            "extensions": _json_param(q.get("extensions"), "extensions"),
            "documentId": q.get("documentId")}
    else:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != JSON:
            # Only JSON: form and text bodies are what a cross-site form can send (CSRF).
            raise RequestError(415, "Send the request as application/json.")
        body = await request.body()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
            raise RequestError(400, "The request body is not valid JSON.") from exc
        if isinstance(data, list):
            raise RequestError(400, "Batched requests are not accepted: send one operation per "
                                    "request.", "BATCHING_NOT_SUPPORTED")
        if not isinstance(data, dict):
            raise RequestError(400, "The request body must be a JSON object.")
    try:
        # Before anything hashes, parses or stores them: no NUL, no lone surrogate, bounded depth.
        check_json(data, "request")
    except BadInput as exc:
        raise RequestError(400, exc.message, exc.code, exc.field) from exc
    query, variables, operation = data.get("query"), data.get("variables"), data.get("operationName")
    if query is not None and not isinstance(query, str):
        raise RequestError(400, "query must be a string.")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "variables must be a JSON object.")
    if operation is not None and not isinstance(operation, str):
        raise RequestError(400, "operationName must be a string.")
    sha256 = _document_hash(data)
    if sha256 is None and (query is None or not query.strip()):
        raise RequestError(400, "A query is required.")
    if sha256 is not None and query is not None and sha256_of(query) != sha256:
        raise RequestError(400, "The document does not match its SHA-256 hash.")
    return Params(query=query, variables=variables, operation=operation, sha256=sha256)


def _document_hash(data: dict[str, Any]) -> str | None:
    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(400, "extensions must be a JSON object.")
    persisted = (extensions or {}).get("persistedQuery")
    document_id = data.get("documentId")
    if persisted is None and document_id is None:
        return None
    if persisted is not None:
        value = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    else:
        value = document_id.removeprefix("sha256:") if isinstance(document_id, str) else None
    if not isinstance(value, str) or not SHA256.match(value):
        raise RequestError(400, "A registered document is named by its SHA-256 hash: 64 "
                                "lowercase hex digits (or documentId \"sha256:<hash>\").")
    return value
