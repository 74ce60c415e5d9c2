"""A circuit breaker for calls to a helper service (Redis) that must never hold up a request.

Closed: calls go through. After `failures` failures in a row it opens: for `open_seconds` no call
is attempted at all (the caller takes its fallback at once, for free). Then it is half-open: one
call — the probe — goes through while every other call still takes the fallback; the probe's
success closes the breaker, its failure opens it again for another `open_seconds`.

Each state change is one log line and moves the `safety_net_redis_circuit_state{component}`
gauge (0 closed, 1 half-open, 2 open), so an operator sees when and for how long Redis was
skipped without a line per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("safety_net.redis")

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class CircuitBreaker:
    def __init__(self, component: str, *, failures: int, open_seconds: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.component = component
        self.threshold = max(1, failures)
        self.open_seconds = open_seconds
        self.monotonic = monotonic  # tests replace it
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False
        self.metrics: Any = None  # the app's Metrics, when there is one

    def allow(self) -> bool:
        """Whether to call the service now (False: take the fallback without trying)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self.monotonic() - self.opened_at < self.open_seconds:
                return False
            self._change(HALF_OPEN, "probing with one call")
        if self._probing:
            return False  # one probe at a time; the others take the fallback
        self._probing = True
        return True

    def success(self) -> None:
        self.failures = 0
        self._probing = False
        if self.state != CLOSED:
            self._change(CLOSED, "calls go through again")

    def failure(self, error: BaseException | None = None) -> None:
        self._probing = False
        self.failures += 1
        reason = type(error).__name__ if error is not None else "failure"
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.threshold):
            self.opened_at = self.monotonic()
            self._change(OPEN, f"{self.failures} failure(s), last {reason}; skipped for "
                               f"{self.open_seconds:g} s")

    def _change(self, state: str, why: str) -> None:
        previous, self.state = self.state, state
        level = logging.INFO if state == CLOSED else logging.WARNING
        log.log(level, "redis circuit %s: %s -> %s (%s)", self.component, previous, state, why,
                extra={"component": self.component, "circuit": state})
        if self.metrics is not None:
            self.metrics.set_circuit(self.component, STATE_VALUES[state])
