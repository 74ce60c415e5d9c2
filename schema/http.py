"""GraphQL over HTTP: authentication, limits before anything runs, one transaction per request,
spec-shaped responses."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from graphql import FieldNode, GraphQLError, get_operation_ast
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from app import tenancy
from app.access.context import AccessContext
from app.access.log import add_deferred, count_deferred, write_deferred
from app.access.principal import ANONYMOUS
from app.auth.edge import (
    admit,
    bearer_token,
    parse_purpose,
    refuse_purpose,
    runtime_context,
)
from app.auth.tokens import IssuerUnavailable
from app.errors import AppError, PurposeRequired, Unauthenticated, UnknownPurpose
from app.idempotency import service as idempotency
from app.logs import request_id_var
from app.metrics import code_label
from app.operations import service as operations
from app.outage import outage
from app.ratelimit import Verdict, limiter
from app.read import children
from app.runtime import Runtime
from schema import params as request_params
from schema.context import Context
from schema.errors import format_error
from schema.limits import LimitExceeded, Limits, check
from schema.loaders import Loaders
from schema.outage import ServiceUnavailable
from schema.published import graphiql_page
from schema.purpose import reads_records
from schema.sizes import InputTooLong

log = logging.getLogger("safety_net.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# Accepted even where an organisation takes only registered operations, so its admin can never
# be locked out of managing the list (and people can see who they are and enrol a factor).
ALWAYS_ACCEPTED = frozenset({"registerOperation", "unregisterOperation", "setOperationPolicy",
                             "operationPolicy", "viewer", "startTotpEnrolment",
                             "confirmTotpEnrolment", "signOut", "__typename"})
# Answered without a token: a woman with no account finds who takes requests and asks for help.
PUBLIC_FIELDS = frozenset({"requestHelp", "helpDesks"})


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


class PersistedQueryNotFound(AppError):
    code = "PERSISTED_QUERY_NOT_FOUND"
    message = "No operation with that hash is registered for your organisation."


class OperationNotRegistered(AppError):
    code = "OPERATION_NOT_REGISTERED"
    message = "Your organisation accepts only registered operations; register this one."


def throttled(verdict: Verdict, media: str) -> JSONResponse:
    quota = (verdict.limit or "").endswith("_cost")
    body = _error_body("Query cost quota used up; try again later." if quota
                       else "Too many requests; try again later.",
                       "QUOTA_EXCEEDED" if quota else "RATE_LIMITED")
    body["errors"][0]["extensions"].update(limit=verdict.limit, retryAfter=verdict.retry_after)
    log.warning("throttled", extra={"limit": verdict.limit, "retry_after": verdict.retry_after})
    return JSONResponse(body, status_code=429, media_type=media,
                        headers={"Retry-After": str(verdict.retry_after)})


def _root_fields(document: Any, operation: str | None) -> set[str] | None:
    """Names of the operation's top-level fields; None if it spreads fragments there."""
    op = get_operation_ast(document, operation)
    if op is None:
        return None
    names = set()
    for sel in op.selection_set.selections:
        if not isinstance(sel, FieldNode):
            return None
        names.add(sel.name.value)
    return names


def _selections_of(document: Any, operation: str | None, name: str) -> int:
    """How many times the operation selects the top-level field `name` (aliases included)."""
    op = get_operation_ast(document, operation)
    return sum(1 for sel in (op.selection_set.selections if op else [])
               if isinstance(sel, FieldNode) and sel.name.value == name)


def _error_codes(response: Response) -> list[Any]:
    """`extensions.code` of each error in a JSON response; most responses have none, and a
    substring test finds that without decoding them."""
    body = bytes(response.body) if isinstance(response, JSONResponse) else b""
    if b'"errors"' not in body:
        return []
    try:
        errors = json.loads(body).get("errors") or []
        return [(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        return []


def _is_request_error(result: ExecutionResult) -> bool:
    """Parse, validation and variable errors: the document never executed."""
    if isinstance(result, PreExecutionError):
        return True
    return result.data is None and bool(result.errors) and all(
        not e.path for e in result.errors or [])


class RolledBack(AppError):
    code = "ROLLED_BACK"
    message = ("Nothing in this request was saved: one of its mutations failed, so all of them "
               "were rolled back. Send them again once the failure is fixed.")


def _say_rolled_back(result: ExecutionResult, document: Any, operation: str | None) -> None:
    """Several mutations in one document share one transaction: when one fails, the payloads
    of the others still read as successes, so say plainly that none of them was kept."""
    op = get_operation_ast(document, operation)
    if op is None or op.operation.value != "mutation":
        return
    if len(op.selection_set.selections) < 2 or isinstance(result, PreExecutionError):
        return
    result.errors = [*(result.errors or []),
                     GraphQLError(RolledBack.message, original_error=RolledBack())]


class GraphQLEndpoint:
    def __init__(self, runtime: Runtime, schema: Any, *, graphiql: bool) -> None:
        self.runtime, self.schema, self.graphiql = runtime, schema, graphiql
        settings = runtime.settings
        self.limits = Limits.from_settings(settings)
        self.hints = not settings.production
        self.timeout = settings.request_timeout_seconds

    async def handle(self, request: Request) -> Response:
        """One span per operation when tracing is on; error codes counted for /metrics."""
        tracer = self.runtime.telemetry.tracer
        if tracer is None:
            response = await self._handle(request)
            codes = _error_codes(response)
        else:
            # Exceptions are recorded by type only: their messages can quote request values.
            with tracer.start_as_current_span(
                    "graphql", record_exception=False, set_status_on_exception=False,
                    attributes={"safety_net.request_id": request_id_var.get()}) as span:
                try:
                    response = await self._handle(request)
                except BaseException as exc:
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    raise
                codes = _error_codes(response)
                span.set_attribute("http.response.status_code", response.status_code)
                if codes:
                    span.set_attribute("graphql.error.codes", sorted({code_label(c) for c in codes}))
                    span.set_status(Status(StatusCode.ERROR))
        if codes and self.runtime.metrics is not None:
            self.runtime.metrics.count_errors(codes)
        return response

    async def _handle(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return JSONResponse(_error_body("Use GET or POST.", "METHOD_NOT_ALLOWED"),
                                status_code=405, headers={"Allow": "GET, POST"})
        accept = request.headers.get("accept")
        if (request.method == "GET" and "query" not in request.query_params
                and accept and "text/html" in accept):
            if self.graphiql:
                # Development only; its assets are vendored (schema/static/graphiql).
                return graphiql_page()
            return JSONResponse(_error_body("Not found.", "NOT_FOUND"), status_code=404)
        media = _media_type(accept)
        if media is None:
            return JSONResponse(_error_body(f"Accept {GRAPHQL_RESPONSE} or {JSON}.",
                                            "NOT_ACCEPTABLE"), status_code=406)
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return await self._anonymous(request, media)
        try:
            claims = await self.runtime.verify_token(token)
        except Unauthenticated:
            return unauthenticated("Invalid or expired token.")
        except IssuerUnavailable:
            return JSONResponse(_error_body("The identity provider cannot be reached.",
                                            "SERVICE_UNAVAILABLE"), status_code=503,
                                headers={"Retry-After": "30"})
        verdict = await limiter(self.runtime).request(claims.subject, claims.org)
        if not verdict.allowed:
            return throttled(verdict, media)
        try:
            params = await request_params.parse(request)
        except request_params.RequestError as exc:
            body = _error_body(exc.message, exc.code)
            if exc.field:
                body["errors"][0]["extensions"]["field"] = exc.field
            return JSONResponse(body, status_code=exc.status, media_type=media)
        checked = None
        if params.query is not None:
            # Limits first: a hostile document costs no database work at all.
            try:
                checked = check(self.schema._schema, params.query, self.limits,
                                variables=params.variables, operation_name=params.operation)
            except (LimitExceeded, InputTooLong, GraphQLError) as exc:
                return self._refuse(exc, media)
        return await self._execute(request, claims, params, checked, media)

    async def _anonymous(self, request: Request, media: str) -> Response:
        """Without a token, only the public operations run (`requestHelp`, `helpDesks`): a woman
        with no account asking for help. A request for help is limited per client address
        before anything is looked up; the caller reaches nothing (no organisation, no role,
        tenancy NOBODY), and the service writes the request itself (app/directory/help.py)."""
        if request.method != "POST":
            return unauthenticated()
        try:
            params = await request_params.parse(request)
        except request_params.RequestError:
            return unauthenticated()
        if params.query is None:
            return unauthenticated()
        try:
            checked = check(self.schema._schema, params.query, self.limits,
                            variables=params.variables, operation_name=params.operation)
        except (LimitExceeded, InputTooLong, GraphQLError) as exc:
            if not any(name in params.query for name in PUBLIC_FIELDS):
                return unauthenticated()  # not an attempt at a public operation
            return self._refuse(exc, media)
        document, _cost = checked
        roots = _root_fields(document, params.operation)
        if not roots or not roots <= PUBLIC_FIELDS:
            return unauthenticated()
        if _selections_of(document, params.operation, "requestHelp") > 1:
            # The per-address limit counts requests: one request for help per request, so
            # aliases cannot multiply it.
            return self._refuse(GraphQLError(
                "One requestHelp per request.", extensions={"code": "BAD_USER_INPUT"}), media)
        if "requestHelp" in roots:
            address = request.client.host if request.client else "-"
            verdict = await limiter(self.runtime).help_request(address)
            if not verdict.allowed:
                return throttled(verdict, media)
        request_id = request_id_var.get()
        tenancy.declare(tenancy.NOBODY)
        access: AccessContext | None = None
        try:
            async with self.runtime.db.sessionmaker() as session:
                access = runtime_context(self.runtime, session, ANONYMOUS,
                                         request_id=request_id, purpose=None)
                context = Context(access=access, loaders=Loaders(access), request_id=request_id,
                                  document=document)
                try:
                    async with asyncio.timeout(self.timeout):
                        result = await self.schema.execute(
                            params.query, variable_values=params.variables,
                            context_value=context, operation_name=params.operation,
                            allowed_operation_types={OperationType.QUERY,
                                                     OperationType.MUTATION})
                except InvalidOperationTypeError:
                    await context.loaders.close()
                    return JSONResponse(_error_body(
                        "Subscriptions are served over the websocket, after sign-in.",
                        "OPERATION_NOT_SUPPORTED"), status_code=400, media_type=media)
                except TimeoutError:
                    await context.loaders.close()
                    return JSONResponse(_error_body(
                        "The request took too long and was stopped.", "TIMEOUT"),
                        status_code=504, media_type=media)
                finally:
                    await session.rollback()  # its own transaction writes nothing
        finally:
            if access is not None:
                access.flush_reads()
                with tenancy.using(tenancy.SYSTEM):  # nobody's tenancy: the log is the system's
                    await write_deferred(self.runtime.db, access.deferred)
        await self.runtime.after_commit(access.cache.get("published", []) if access else [])
        return self._respond(result, media, request_id)

    def _refuse(self, exc: Exception, media: str) -> Response:
        """A request error found before execution, shaped like graphql-core's own."""
        error = exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
        return self._respond(ExecutionResult(data=None, errors=[error]), media, request_id_var.get())

    async def _admit(self, access: AccessContext, claims: Any, params: request_params.Params,
                     checked: tuple[Any, int] | None, media: str,
                     post: bool) -> tuple[str, Any] | Response:
        """The document to run and its parse, or the response refusing it: registered
        operations, the organisation's allow-list, limits and the cost quota."""
        query = params.query
        digest = params.sha256 or (operations.sha256_of(query) if query is not None else None)
        if query is not None and not access.principal.only_registered_operations:
            # A full document from an organisation that accepts any: nothing to look up.
            admission = operations.Admission(only_registered=False, document=None)
        else:
            admission = await operations.admission(access, digest)
        if query is None:
            if admission.document is None:
                return self._refuse(PersistedQueryNotFound(), media)
            query = admission.document
            try:
                checked = check(self.schema._schema, query, self.limits,
                                variables=params.variables, operation_name=params.operation)
            except (LimitExceeded, InputTooLong, GraphQLError) as exc:
                return self._refuse(exc, media)
        assert checked is not None
        document, cost = checked
        if (admission.only_registered and admission.document is None
                and not (_root_fields(document, params.operation) or {"-"}) <= ALWAYS_ACCEPTED):
            access.deny("operation.run", reason="operation not registered",
                        details={"sha256": digest})
            return self._refuse(OperationNotRegistered(), media)
        if access.caller.must_declare_purpose and reads_records(
                self.schema._schema, document, params.operation, mutations=post):
            try:
                access.require_purpose()
            except PurposeRequired as exc:
                return self._refuse(exc, media)
        verdict = await limiter(self.runtime).cost(claims.subject, claims.org, cost)
        if not verdict.allowed:
            return throttled(verdict, media)
        return query, document

    async def _execute(self, request: Request, claims: Any, params: request_params.Params,
                       checked: tuple[Any, int] | None, media: str) -> Response:
        runtime = self.runtime
        request_id = request_id_var.get()
        access: AccessContext | None = None
        committed = False
        try:
            purpose = parse_purpose(request.headers.get("safety-net-purpose"))
        except UnknownPurpose as exc:
            # Unknown purposes (e.g. intelligence gathering) are refused and logged.
            try:
                await refuse_purpose(runtime, claims, request_id)
            except Unauthenticated:
                return unauthenticated("Invalid or expired token.")
            return JSONResponse(_error_body(exc.message, exc.code), status_code=400,
                                media_type=media)
        try:
            async with runtime.db.sessionmaker() as session:
                # The session begins nothing until its first statement: on PostgreSQL that is
                # after the tenancy below is declared (admission runs in its own transaction);
                # without row-level security admission's reads may be the session's first.
                try:
                    principal, decided = await admit(runtime, claims, purpose, request_id,
                                                     session=session)
                except Unauthenticated:
                    return unauthenticated("Invalid or expired token.")
                # From here on every transaction of this request (its own, the log's) declares
                # this.
                tenancy.declare(decided)
                access = runtime_context(runtime, session, principal, request_id=request_id,
                                         purpose=purpose)
                admitted = await self._admit(access, claims, params, checked, media,
                                             post=request.method == "POST")
                if isinstance(admitted, Response):
                    await session.rollback()
                    return admitted
                query, document = admitted
                try:
                    key = self._idempotency_key(request, query, document, params, purpose)
                except idempotency.InvalidKey as exc:
                    await session.rollback()
                    return JSONResponse(_error_body(str(exc), exc.code), status_code=400,
                                        media_type=media)
                if key is not None and (stored := await idempotency.find(access, key)):
                    return await self._replay(access, stored, media)
                request.state.principal = principal
                self._observe_operation(document, params.operation, access)
                # The read path refuses early what could never fit the response (decision 0018).
                access.cache[children.RESPONSE_BUDGET] = self.limits.max_response_bytes
                context = Context(access=access, loaders=Loaders(access), request_id=request_id,
                                  document=document)
                allowed = ({OperationType.QUERY} if request.method == "GET"
                           else {OperationType.QUERY, OperationType.MUTATION})
                try:
                    async with asyncio.timeout(self.timeout):
                        result = await self.schema.execute(
                            query, variable_values=params.variables, context_value=context,
                            operation_name=params.operation, allowed_operation_types=allowed)
                        await context.settle()
                except TimeoutError:
                    # Stop the request's loaders before touching the session again.
                    await context.loaders.close()
                    await session.rollback()
                    log.warning("request timed out", extra={"timeout_s": self.timeout})
                    return JSONResponse(_error_body(
                        "The request took too long and was stopped; nothing was changed.",
                        "TIMEOUT"), status_code=504, media_type=media)
                except InvalidOperationTypeError:
                    await session.rollback()
                    return JSONResponse(_error_body("Mutations must be sent with POST.",
                                                    "METHOD_NOT_ALLOWED"),
                                        status_code=405, media_type=media, headers={"Allow": "POST"})
                except CannotGetOperationTypeError:
                    await session.rollback()
                    return JSONResponse(_error_body("No operation with that operationName.",
                                                    "BAD_REQUEST"), status_code=400, media_type=media)
                down = next((d for e in result.errors or []
                             if (d := outage(e.original_error)) is not None), None)
                if down is not None:
                    # Not "Internal error.": the database (or broker) went away mid-request.
                    raise ServiceUnavailable(down)
                if context.too_large is None and context.loaders.stopped is not None:
                    context.too_large = context.loaders.stopped
                if context.too_large is not None:
                    # Over the response-size limit: nothing of it is sent, nothing is kept.
                    await session.rollback()
                    log.warning("response too large", extra={
                        "max_bytes": self.limits.max_response_bytes})
                    result = ExecutionResult(data=None, errors=[GraphQLError(
                        str(context.too_large), original_error=context.too_large)])
                    context.redactions.clear()
                elif result.errors or context.rollback_only:
                    await session.rollback()
                    _say_rolled_back(result, document, params.operation)
                elif key is not None:
                    # The first answer, kept in the mutation's own transaction.
                    if context.redactions:
                        result.extensions = {**(result.extensions or {}),
                                             "redacted": context.redactions}
                    response = self._respond(result, media, request_id)
                    try:
                        await idempotency.store(access, key, response.status_code,
                                                bytes(response.body),
                                                runtime.settings.idempotency_ttl_seconds)
                        await session.commit()
                    except IntegrityError:
                        # The same key, sent again while the first was running: that one
                        # committed first. Nothing of this run is kept; answer the first's.
                        await session.rollback()
                        stored = await idempotency.find(access, key)
                        if stored is None:
                            raise
                        return await self._replay(access, stored, media)
                    committed = True
                else:
                    # The response's reads and denials commit with the request's own
                    # transaction (one commit, not a second transaction after it): if that
                    # commit fails, no data leaves. A request that rolls back still writes
                    # them on their own, below.
                    access.flush_reads()
                    logged = await add_deferred(session, access.deferred)
                    await session.commit()
                    access.deferred.clear()
                    count_deferred(runtime.db, logged)
                    committed = True
        finally:
            if access is not None:
                # Reads and denials not committed above are committed on their own, after the
                # request's transaction and before the response: if that write fails, no data
                # leaves.
                access.flush_reads()
                await write_deferred(runtime.db, access.deferred)
        if committed:
            # Alerts stored by this request go out only now that they are durable.
            await runtime.after_commit(access.cache.get("published", []) if access else [])
        if context.redactions:
            result.extensions = {**(result.extensions or {}), "redacted": context.redactions}
        return self._respond(result, media, request_id)

    @staticmethod
    def _idempotency_key(request: Request, query: str, document: Any,
                         params: request_params.Params,
                         purpose: str | None) -> idempotency.Key | None:
        """The `Idempotency-Key` of a mutation (ignored on queries, which change nothing)."""
        header = request.headers.get("idempotency-key")
        if header is None:
            return None
        op = get_operation_ast(document, params.operation)
        if op is None or op.operation.value != "mutation":
            return None
        return idempotency.parse(header, document=query, variables=params.variables,
                                 operation=params.operation, purpose=purpose)

    async def _replay(self, access: AccessContext, stored: idempotency.Stored,
                      media: str) -> Response:
        """A retried mutation: its first answer (logged), or the key's reuse refused."""
        if stored.body is None:
            await access.session.rollback()
            access.deny("idempotency.replay", reason="key used for another request")
            return JSONResponse(_error_body(
                "This Idempotency-Key was used for another request; use a new key for a new "
                "request.", "IDEMPOTENCY_KEY_REUSED"), status_code=422, media_type=media)
        access.record("idempotency.replay", details={"first_at": stored.at.isoformat()})
        await access.session.commit()
        if self.runtime.metrics is not None:
            self.runtime.metrics.idempotent_replays.inc()
        return Response(stored.body, status_code=stored.status, media_type=media,
                        headers={"Idempotent-Replayed": "true"})

    def _observe_operation(self, document: Any, operation: str | None,
                           access: AccessContext) -> None:
        """Count the operation by type; name the span after it. The operation name is the
        document's (a GraphQL Name), never a variable; it goes to the span only, not to a label."""
        op = get_operation_ast(document, operation)
        if op is None:
            return
        kind = op.operation.value
        if self.runtime.metrics is not None:
            self.runtime.metrics.graphql_operations.labels(kind).inc()
        span = trace.get_current_span()
        if not span.is_recording():
            return
        name = op.name.value if op.name else None
        span.update_name(f"{kind} {name}" if name else kind)
        principal = access.principal
        span.set_attributes({
            "graphql.operation.type": kind,
            **({"graphql.operation.name": name} if name else {}),
            "safety_net.principal.kind": principal.kind.value,
            **({"safety_net.organisation": principal.org_slug} if principal.org_slug else {}),
            **({"safety_net.purpose": access.purpose} if access.purpose else {}),
        })

    def _respond(self, result: ExecutionResult, media: str, request_id: str) -> Response:
        errors = [format_error(e, request_id, hints=self.hints) for e in result.errors or []]
        if result.errors and _is_request_error(result):
            status = 400 if media == GRAPHQL_RESPONSE else 200
            return JSONResponse({"errors": errors}, status_code=status, media_type=media)
        body: dict[str, Any] = {"data": result.data}
        if errors:
            body["errors"] = errors
        if result.extensions:
            body["extensions"] = result.extensions
        return JSONResponse(body, status_code=200, media_type=media)
