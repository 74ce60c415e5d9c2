"""The service's own log output, captured: `app.logs.configure` writing to a buffer, as
`safety-net serve` configures it for stderr, and everything put back afterwards."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app import logs

# Loggers whose level the service sets (app.logs) or a test turns up.
LIBRARIES = ("authlib", "uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "httpx",
             "httpcore", "python_multipart", "strawberry", "asyncio", "joserfc", "redis")


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line parsed: each must be one JSON object on one line."""
        return [json.loads(line) for line in self.text.splitlines() if line]


@contextmanager
def kept_logging() -> Iterator[None]:
    """Whatever the block does to logging (handlers, levels, the record factory), undone."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    names = {*logs.NOISY, *logs.CAPPED, *LIBRARIES}
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).disabled) for n in names}
    factory = logging.getLogRecordFactory()
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, (level, disabled) in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).disabled = disabled
        logging.setLogRecordFactory(factory)


@contextmanager
def service_logs(level: str = "INFO") -> Iterator[Captured]:
    captured = Captured()
    with kept_logging():
        logs.configure(level, stream=captured.stream)
        yield captured
