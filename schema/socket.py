"""graphql-transport-ws, held to the protocol and to our rules (docs/decisions/0016).

Only subscriptions run here (queries and mutations go over HTTP, through the allow-list and the
rate limits); every message is validated before it is used, and a malformed one closes the socket
with the protocol's code: 4400 bad message, 4401 unauthenticated or token expired, 4403
forbidden, 4408 no init in time, 4409 duplicate id, 4429 more than one init. Errors reach the
client in our shape (`extensions.code`, no exception text).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from graphql import GraphQLError, OperationType, get_operation_ast
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types import ExecutionResult

from app.errors import AppError, BadInput
from app.inputs import check_json
from app.logs import request_id_var
from app.ratelimit import limiter
from schema.errors import format_error
from schema.limits import LimitExceeded, check

log = logging.getLogger("safety_net.ws")

BAD_MESSAGE = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
TOKEN_EXPIRED = (UNAUTHORIZED, "Token expired")
# connection_init's fields and the JSON types they may have (names case-insensitive).
INIT_FIELDS: dict[str, tuple[type, ...]] = {"authorization": (str,), "purpose": (str, type(None))}


class SubscriptionsOnly(AppError):
    code = "OPERATION_NOT_SUPPORTED"
    message = ("Only subscriptions run over WebSocket; send queries and mutations over HTTP "
               "(POST /graphql).")


class NoSuchOperation(AppError):
    code = "BAD_REQUEST"
    message = "No operation with that operationName."


class RateLimited(AppError):
    code = "RATE_LIMITED"
    message = "Too many requests; try again later."


def _subscribe_problem(message: dict[str, Any]) -> str | None:
    """Why a `subscribe` message is malformed (closes with 4400), None if well-formed."""
    if not isinstance(message.get("id"), str) or not message["id"]:
        return "subscribe needs a string id"
    payload = message.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "subscribe needs a payload with a query string"
    for name in ("variables", "extensions"):
        if not isinstance(payload.get(name), dict | None):
            return f"{name} must be a JSON object"
    if not isinstance(payload.get("operationName"), str | None):
        return "operationName must be a string"
    return None


async def within_rate(runtime: Any, claims: Any) -> bool:
    """Whether a new subscription of this caller is within its request rate (one subscribe
    counts as one request): the WebSocket's and the dashboard's event stream's one check."""
    verdict = await limiter(runtime).request(claims.subject, claims.org)
    return bool(verdict.allowed)


class _Operation(Operation[Any, Any]):
    """Errors in our shape, never graphql-core's text of an unexpected exception."""

    __slots__ = ()

    def _errors(self, errors: list[GraphQLError]) -> list[dict[str, Any]]:
        hints = getattr(self.handler.view, "hints", False)
        return [format_error(e, request_id_var.get(), hints=hints) for e in errors]

    async def send_initial_errors(self, errors: list[GraphQLError]) -> None:
        await self.send_operation_message(
            {"id": self.id, "type": "error", "payload": self._errors(errors)})  # type: ignore[typeddict-item]

    async def send_next(self, execution_result: ExecutionResult) -> None:
        payload: dict[str, Any] = {"data": execution_result.data}
        if execution_result.errors:
            payload["errors"] = self._errors(execution_result.errors)
        if execution_result.extensions:
            payload["extensions"] = execution_result.extensions
        await self.send_operation_message(
            {"id": self.id, "type": "next", "payload": payload})  # type: ignore[typeddict-item]


class TransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The subscription closes the socket itself when the token expires.
        if hasattr(self.context, "close"):
            self.context.close = self.websocket.close

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("A message is a JSON object with a string type")
            return
        if message["type"] == "subscribe":
            problem = _subscribe_problem(message)
            if problem is not None:
                await self.handle_invalid_message(problem)
                return
        await super().handle_message(message)  # type: ignore[arg-type]

    async def handle_connection_init(self, message: Any) -> None:
        payload = message.get("payload")
        if not self.connection_init_received and isinstance(payload, dict):
            fields = {str(k).lower(): v for k, v in payload.items()}
            try:
                check_json(payload, "payload")
                wrong = next((name for name, types in INIT_FIELDS.items()
                              if name in fields and not isinstance(fields[name], types)), None)
            except BadInput:
                wrong = "payload"
            if wrong is not None:
                await self.websocket.close(code=BAD_MESSAGE,
                                           reason=f"Invalid connection init payload: {wrong}")
                return
        elif payload is None and "payload" in message:
            message = {**message, "payload": {}}
        await super().handle_connection_init(message)

    async def handle_subscribe(self, message: Any) -> None:
        if (not self.connection_acknowledged or message["id"] in self.operations
                or (self.max_subscriptions_per_connection is not None
                    and len(self.operations) >= self.max_subscriptions_per_connection)):
            await super().handle_subscribe(message)  # closes or refuses per the protocol
            return
        payload = message["payload"]
        refusal = await self._refusal(payload)
        operation = _Operation(self, message["id"], payload["query"], payload.get("variables"),
                               payload.get("operationName"))
        if refusal is not None:
            self.operations[message["id"]] = operation
            await operation.send_initial_errors([refusal])
            return
        operation.task = asyncio.create_task(self.run_operation(operation))
        operation.task.add_done_callback(self._task_done)
        self.operations[message["id"]] = operation

    async def _refusal(self, payload: dict[str, Any]) -> GraphQLError | None:
        """Why this operation does not run: bad input, over a limit, not a subscription,
        rate-limited. Nothing has executed."""
        view = self.view
        try:
            check_json(payload, "payload")
            document, _ = check(self.schema._schema, payload["query"], view.limits,  # type: ignore[attr-defined]
                                variables=payload.get("variables"),
                                operation_name=payload.get("operationName"))
            op = get_operation_ast(document, payload.get("operationName"))
            if op is None:
                raise NoSuchOperation()
            if op.operation is not OperationType.SUBSCRIPTION:
                raise SubscriptionsOnly()
            if not await within_rate(view.runtime, self.context.claims):  # type: ignore[attr-defined]
                raise RateLimited()
        except GraphQLError as exc:
            return exc
        except (AppError, LimitExceeded) as exc:
            return GraphQLError(exc.message, original_error=exc)
        return None
