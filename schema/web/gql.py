"""The dashboard's data: GraphQL documents run in process through the API's own endpoint.

Each call is handed to the same `GraphQLEndpoint.handle` that serves /graphql, with the
browser session's access token and declared purpose as its headers, so admission, limits,
consent, redaction, the access log and error shapes are exactly the API's: the dashboard
cannot see more than a partner's system with the same token would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import Message

GRAPHQL_PATH = "/graphql"


@dataclass
class Answer:
    """What one document answered: its data, errors, and the withheld fields by path."""

    status: int
    data: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    redacted: dict[str, str] = field(default_factory=dict)  # "a.b.0.c" -> reason

    @property
    def codes(self) -> set[str]:
        return {str((e.get("extensions") or {}).get("code")) for e in self.errors}

    @property
    def unauthenticated(self) -> bool:
        return self.status == 401

    def reason(self, *path: object) -> str | None:
        """Why a field was withheld from this caller, if it was."""
        return self.redacted.get(".".join(str(p) for p in path))


def _request(outer: Request, body: bytes, headers: list[tuple[bytes, bytes]]) -> Request:
    scope = {
        "type": "http", "method": "POST", "path": GRAPHQL_PATH, "raw_path": GRAPHQL_PATH.encode(),
        "root_path": "", "query_string": b"", "headers": headers, "http_version": "1.1",
        "scheme": outer.url.scheme, "client": outer.scope.get("client"),
        "server": outer.scope.get("server"), "app": outer.app, "state": {},
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def run(outer: Request, query: str, variables: dict[str, Any] | None = None, *,
              token: str, purpose: str | None) -> Answer:
    """Run one document as the browser's person (through /graphql's own handler)."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = [(b"authorization", b"Bearer " + token.encode()),
               (b"content-type", b"application/json"), (b"accept", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if purpose:
        headers.append((b"safety-net-purpose", purpose.encode()))
    response = await outer.app.state.graphql.handle(_request(outer, body, headers))
    try:
        payload = json.loads(bytes(response.body))
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    redacted = {".".join(str(p) for p in entry.get("path", [])): str(entry.get("reason", ""))
                for entry in ((payload.get("extensions") or {}).get("redacted") or [])}
    return Answer(status=response.status_code, data=payload.get("data"),
                  errors=list(payload.get("errors") or []), redacted=redacted)
