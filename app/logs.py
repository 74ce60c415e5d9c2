"""Structured JSON logs with the request ID. Callers log IDs and codes, never personal data."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from app.telemetry import current_ids

# The service's own ID for the request (or WebSocket connection): always generated here, never
# taken from the client. It is the one in the access log, the log lines and `X-Request-ID`.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# What the client called it (its `X-Request-ID`), when that is a plain token: kept beside ours
# for correlating with the client's own logs, never stored in the access log.
client_request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_request_id", default=None)
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def client_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The client's `X-Request-ID` if it is at most 64 of `[A-Za-z0-9._:-]`; anything else
    (spaces, newlines, JSON, non-ASCII, longer) is dropped, never cleaned up and kept."""
    value = None
    for key, raw in headers:
        if key.lower() == b"x-request-id":
            value = raw
    if value is None or len(value) > 64:
        return None
    text = value.decode("latin-1")
    return text if CLIENT_REQUEST_ID.fullmatch(text) else None

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        client = client_request_id_var.get()
        if client is not None:
            data["client_request_id"] = client
        ids = current_ids()
        if ids is not None:
            data["trace_id"], data["span_id"] = ids
        data.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info and record.exc_info[0] is not None:
            # Type and stack only: exception messages can carry values from the request.
            data["exception"] = record.exc_info[0].__name__
        return json.dumps(data, default=str)


# Libraries that log SQL parameters, request bodies or URLs at DEBUG: values that may be hers.
NOISY = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "asyncpg", "httpx", "httpcore",
         "websockets", "uvicorn.access", "multipart")


def quiet_third_party() -> None:
    """Never let libraries log below WARNING, whatever our own level is."""
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_third_party()
    # uvicorn's own access log would print query strings; ours logs path and status only.
    logging.getLogger("uvicorn.access").disabled = True
