"""Structured JSON logs with the request ID. Callers log IDs and codes, never personal data."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import traceback
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

# --- credentials never reach a log line, whoever logs them (invariant 8 and the issuer's keys) ---

REDACTED = "[redacted]"
# Field and parameter names whose values are credentials (compared lowercased, `-` as `_`).
SENSITIVE = frozenset({
    "authorization", "proxy_authorization", "cookie", "set_cookie", "password", "new_password",
    "current_password", "initial_password", "passwd", "secret", "client_secret", "token",
    "access_token", "refresh_token", "id_token", "totp", "code_verifier", "assertion",
    "client_assertion", "metrics_token", "kek", "enrolment_code", "enrolmentcode"})
_NAMES = "|".join(sorted((n.replace("_", "[_-]") for n in SENSITIVE), key=len, reverse=True))
# An Authorization header's credentials: `Bearer <token>`, `Basic <base64>`.
_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic)(\s+|%20|\+)[A-Za-z0-9._~+/=-]+")
# A JWT/JWS (its header is base64url JSON: `eyJ`), whole or cut short, with what follows.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}")
# `name=value`, `name: value`, `"name": "value"`, `'name': 'value'` (also JSON-escaped).
_NAMED = re.compile(rf"(?i)(\b(?:{_NAMES})\b\\?[\"']?\s*[:=]\s*)(?!(?:bearer|basic)\s)"
                    r"(?:(\\?\")[^\"\\]*\\?\"|(')[^']*'|[^\s&,;'\"})\]]+)")


# A URL's password: `scheme://user:password@host` (a database or Redis URL in an error).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")


def _named(match: re.Match[str]) -> str:
    quote = match.group(2) or match.group(3) or ""
    return f"{match.group(1)}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """The text with every credential-shaped value replaced by `[redacted]`: an Authorization
    header's credentials, anything JWT-shaped, a URL's password and the values of sensitive
    names."""
    text = _CREDENTIALS.sub(rf"\1\2{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    return _NAMED.sub(_named, text)


def _sensitive(key: Any) -> bool:
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    return isinstance(key, str) and key.lower().replace("-", "_") in SENSITIVE


def scrub(value: Any, depth: int = 0) -> Any:
    """A structured value with sensitive fields and credential-shaped strings redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("latin-1"))
    if depth > 8:
        return REDACTED
    if isinstance(value, dict):
        return {k: REDACTED if _sensitive(k) else scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        if isinstance(value, tuple) and len(value) == 2 and _sensitive(value[0]):
            return (scrub(value[0]), REDACTED)  # a header pair: (b"authorization", b"Bearer …")
        return [scrub(v, depth + 1) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


def _frame_summary(arg: Any) -> Any:
    """websockets logs every frame at DEBUG ("< %s"): its kind and size, never its data (a
    subscription's `connection_init` carries the bearer token)."""
    kind = type(arg)
    if kind.__name__ == "Frame" and kind.__module__.startswith("websockets"):
        return f"{arg.opcode.name} [{len(arg.data)} bytes]"
    return arg


def _scrub_message(record: logging.LogRecord) -> None:
    """Render the message now, redacted, so no handler formats the raw arguments later."""
    try:
        if isinstance(record.args, tuple):
            record.args = tuple(_frame_summary(a) for a in record.args)
        message = record.getMessage()
    except Exception:  # a broken call must not raise here, nor print its arguments later
        message = f"{record.msg} [arguments withheld: unformattable]"
    record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        # For formatters that print tracebacks (ours prints the type only).
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Message, exception and structured fields (`extra=`) of one record, redacted in place."""
    _scrub_message(record)
    for key, value in list(vars(record).items()):
        if key not in _RESERVED:
            setattr(record, key, REDACTED if _sensitive(key) else scrub(value))
    return record


class RedactingFilter(logging.Filter):
    """On the service's handler: every record it writes, from any logger, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def install_redaction() -> None:
    """Redact every record when it is made, whichever handlers it later reaches (pytest's,
    an operator's own logging config, uvicorn's): `extra=` fields are added after this runs,
    so the handler filter covers those."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub_message(record)
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    CORE = ("time", "level", "logger", "message", "request_id", "client_request_id", "trace_id",
            "span_id", "exception")
    DROPPED = ("color_message",)  # uvicorn's message again, with terminal colour codes

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
        # Structured fields never replace the ones above (a forged `request_id`, say).
        data.update({k: v for k, v in vars(record).items()
                     if k not in _RESERVED and k not in self.CORE and k not in self.DROPPED})
        if record.exc_info and record.exc_info[0] is not None:
            # Type and stack only: exception messages can carry values from the request.
            data["exception"] = record.exc_info[0].__name__
        return json.dumps(data, default=str)


# Libraries that log SQL parameters, request bodies, URLs or issued tokens at DEBUG: values that
# may be hers, or credentials (Authlib prints each token it issues: "Issue token {...}").
NOISY = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "asyncpg", "httpx", "httpcore",
         "websockets", "uvicorn.access", "multipart", "python_multipart", "authlib", "joserfc")
# Never below INFO: uvicorn hands this logger to websockets, which logs every frame at DEBUG.
CAPPED = ("uvicorn.error",)


def quiet_third_party(level: int = logging.INFO) -> None:
    """Never let libraries log below WARNING (uvicorn's own below INFO), whatever our level."""
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in CAPPED:
        logging.getLogger(name).setLevel(max(logging.INFO, level))


def configure(level: str = "INFO", stream: Any = None) -> None:
    """JSON lines on stderr (or `stream`), every record redacted (`install_redaction`, and a
    filter on the handler for structured fields), libraries kept quiet."""
    install_redaction()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_third_party(root.level)
    # uvicorn's own access log would print query strings; ours logs path and status only.
    logging.getLogger("uvicorn.access").disabled = True
