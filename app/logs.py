"""Structured JSON logs with the request ID. Callers log IDs and codes, never personal data."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from app.telemetry import current_ids

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

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


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_third_party()
    # uvicorn's own access log would print query strings; ours logs path and status only.
    logging.getLogger("uvicorn.access").disabled = True
