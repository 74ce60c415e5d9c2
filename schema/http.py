"""GraphQL over HTTP: authentication, one transaction per request, spec-shaped responses."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from strawberry.http.ides import get_graphql_ide_html
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from app.access.context import AccessContext
from app.audit.service import write_deferred
from app.auth.principals import resolve
from app.auth.tokens import IssuerUnavailable
from app.consent.categories import Purpose
from app.errors import Unauthenticated
from app.logs import request_id_var
from app.runtime import Runtime
from schema.context import Context
from schema.errors import format_error
from schema.loaders import Loaders

log = logging.getLogger("safety_net.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MAX_BODY = 256 * 1024
PURPOSES = frozenset(p.value for p in Purpose)


class RequestError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _media_type(accept: str | None) -> str | None:
    """Pick the response type per the GraphQL-over-HTTP spec; None means 406."""
    if not accept:
        return JSON
    ranges = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if GRAPHQL_RESPONSE in ranges:
        return GRAPHQL_RESPONSE
    if JSON in ranges or "application/*" in ranges or "*/*" in ranges:
        return JSON
    return None


def _error_body(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def unauthenticated(message: str = "Authentication required.") -> JSONResponse:
    return JSONResponse(
        _error_body(message, "UNAUTHENTICATED"), status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="safety-net"'
                 + ('' if message.startswith("Authentication") else ', error="invalid_token"')})


async def _params(request: Request) -> tuple[str, dict[str, Any] | None, str | None]:
    if request.method == "GET":
        q = request.query_params
        raw_vars = q.get("variables")
        try:
            variables = json.loads(raw_vars) if raw_vars else None
        except ValueError as exc:
            raise RequestError(400, "variables must be a JSON object.") from exc
        query, operation = q.get("query"), q.get("operationName")
    else:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != JSON:
            # Only JSON: form and text bodies are what a cross-site form can send (CSRF).
            raise RequestError(415, "Send the request as application/json.")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise RequestError(413, "Request body too large.")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise RequestError(400, "The request body is not valid JSON.") from exc
        if not isinstance(data, dict):
            raise RequestError(400, "The request body must be a JSON object.")
        query, variables, operation = (data.get("query"), data.get("variables"),
                                       data.get("operationName"))
    if not isinstance(query, str) or not query.strip():
        raise RequestError(400, "A query is required.")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "variables must be a JSON object.")
    if operation is not None and not isinstance(operation, str):
        raise RequestError(400, "operationName must be a string.")
    return query, variables, operation


def _is_request_error(result: ExecutionResult) -> bool:
    """Parse, validation and variable errors: the document never executed."""
    if isinstance(result, PreExecutionError):
        return True
    return result.data is None and bool(result.errors) and all(
        not e.path for e in result.errors or [])


class GraphQLEndpoint:
    def __init__(self, runtime: Runtime, schema: Any, *, graphiql: bool) -> None:
        self.runtime, self.schema, self.graphiql = runtime, schema, graphiql

    async def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return JSONResponse(_error_body("Use GET or POST.", "METHOD_NOT_ALLOWED"),
                                status_code=405, headers={"Allow": "GET, POST"})
        accept = request.headers.get("accept")
        if (request.method == "GET" and "query" not in request.query_params
                and accept and "text/html" in accept):
            if self.graphiql:
                return HTMLResponse(get_graphql_ide_html())
            return JSONResponse(_error_body("Not found.", "NOT_FOUND"), status_code=404)
        media = _media_type(accept)
        if media is None:
            return JSONResponse(_error_body(f"Accept {GRAPHQL_RESPONSE} or {JSON}.",
                                            "NOT_ACCEPTABLE"), status_code=406)
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return unauthenticated()
        try:
            claims = await self.runtime.verify_token(token.strip())
        except Unauthenticated:
            return unauthenticated("Invalid or expired token.")
        except IssuerUnavailable:
            return JSONResponse(_error_body("The identity provider cannot be reached.",
                                            "SERVICE_UNAVAILABLE"), status_code=503,
                                headers={"Retry-After": "30"})
        try:
            query, variables, operation = await _params(request)
        except RequestError as exc:
            return JSONResponse(_error_body(exc.message, "BAD_REQUEST"), status_code=exc.status,
                                media_type=media)
        return await self._execute(request, claims, query, variables, operation, media)

    async def _execute(self, request: Request, claims: Any, query: str,
                       variables: dict[str, Any] | None, operation: str | None,
                       media: str) -> Response:
        runtime = self.runtime
        request_id = request_id_var.get()
        access: AccessContext | None = None
        committed = False
        try:
            async with runtime.db.sessionmaker() as session:
                try:
                    principal = await resolve(session, runtime.policy, claims)
                except Unauthenticated:
                    await session.rollback()
                    return unauthenticated("Invalid or expired token.")
                purpose = request.headers.get("safety-net-purpose")
                access = AccessContext(principal=principal, session=session, db=runtime.db,
                                       policy=runtime.policy, clock=runtime.clock,
                                       request_id=request_id, purpose=None)
                if purpose is not None:
                    if purpose.strip().lower() not in PURPOSES:
                        # Unknown purposes (e.g. intelligence gathering) are refused and logged.
                        access.deny("request.purpose", reason="unknown purpose")
                        await session.rollback()
                        return JSONResponse(_error_body(
                            "Unknown purpose. Declare one of: " + ", ".join(sorted(PURPOSES)) + ".",
                            "INVALID_PURPOSE"), status_code=400, media_type=media)
                    access.purpose = purpose.strip().lower()
                request.state.principal = principal
                context = Context(access=access, loaders=Loaders(access), request_id=request_id)
                allowed = ({OperationType.QUERY} if request.method == "GET"
                           else {OperationType.QUERY, OperationType.MUTATION})
                try:
                    result = await self.schema.execute(
                        query, variable_values=variables, context_value=context,
                        operation_name=operation, allowed_operation_types=allowed)
                except InvalidOperationTypeError:
                    await session.rollback()
                    return JSONResponse(_error_body("Mutations must be sent with POST.",
                                                    "METHOD_NOT_ALLOWED"),
                                        status_code=405, media_type=media, headers={"Allow": "POST"})
                except CannotGetOperationTypeError:
                    await session.rollback()
                    return JSONResponse(_error_body("No operation with that operationName.",
                                                    "BAD_REQUEST"), status_code=400, media_type=media)
                if result.errors or context.rollback_only:
                    await session.rollback()
                else:
                    await session.commit()
                    committed = True
        finally:
            if access is not None:
                # Reads and denials are committed on their own, after the request's transaction
                # and before the response: if that write fails, no data leaves.
                access.flush_reads()
                await write_deferred(runtime.db, access.deferred)
        if committed:
            # Alerts stored by this request go out only now that they are durable.
            await runtime.after_commit(access.cache.get("published", []) if access else [])
        if context.redactions:
            result.extensions = {**(result.extensions or {}), "redacted": context.redactions}
        return self._respond(result, media, request_id)

    def _respond(self, result: ExecutionResult, media: str, request_id: str) -> Response:
        errors = [format_error(e, request_id) for e in result.errors or []]
        if result.errors and _is_request_error(result):
            status = 400 if media == GRAPHQL_RESPONSE else 200
            return JSONResponse({"errors": errors}, status_code=status, media_type=media)
        body: dict[str, Any] = {"data": result.data}
        if errors:
            body["errors"] = errors
        if result.extensions:
            body["extensions"] = result.extensions
        return JSONResponse(body, status_code=200, media_type=media)
