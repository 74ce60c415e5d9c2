"""Rate limits and quotas: fixed windows counted in Redis (shared by replicas) or in-process.

Each limit is "amount per seconds" for one key (a client, an organisation, a login account, an
OAuth client ID asking for tokens, or a client address). A request is admitted only if every key
it touches has room; then all are charged.

Redis is a helper, not a dependency (docs/decisions/0017-redis-as-helper.md). Every call is
bounded by `SAFETY_NET_REDIS_TIMEOUT_MS` (connect and read, no retries), and a circuit breaker
(`app/breaker.py`) stops calling a Redis that failed `SAFETY_NET_REDIS_BREAKER_FAILURES` times in
a row for `SAFETY_NET_REDIS_BREAKER_SECONDS`, so a hung or down Redis costs a request at most one
timeout before the breaker opens, and nothing after. The limits then **fail open** to counting
in this replica's memory: each replica applies them on its own (N replicas admit up to N times a
limit), counted by `safety_net_rate_limit_fail_open_total`; the state changes are one log line
each and the `safety_net_redis_circuit_state{component="rate_limits"}` gauge. Throttling protects
capacity, it is not an access decision. What must hold whatever Redis does — failed sign-ins per
account and per address, tries per enrolment code — is counted in the database
(`app/auth/attempts.py`, `app/auth/enrolment.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from app.breaker import CircuitBreaker
from app.config import Settings, parse_rate

log = logging.getLogger("safety_net.ratelimit")


@dataclass(frozen=True)
class Rate:
    amount: int
    seconds: int

    @classmethod
    def parse(cls, value: str) -> Rate | None:
        parsed = parse_rate(value)
        return cls(*parsed) if parsed else None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds, at least 1 when refused
    limit: str | None = None  # which limit refused: "client", "organisation", ...


ALLOWED = Verdict(True)
Charge = tuple[str, str, int, Rate]  # (limit name, key, amount, rate); one amount per call


class MemoryCounter:
    """Fixed windows in this process's memory (one replica, or Redis unreachable)."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def take(self, charges: list[Charge]) -> Verdict:
        now = time.monotonic()
        current = []
        for name, key, amount, rate in charges:
            end, used = self._windows.get(key, (0.0, 0))
            if end <= now:
                end, used = now + rate.seconds, 0
            if used + amount > rate.amount:
                return Verdict(False, max(1, math.ceil(end - now)), name)
            current.append((key, end, used + amount))
        if len(self._windows) > self.MAX_KEYS:
            self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
        for key, end, used in current:
            self._windows[key] = (end, used)
        return ALLOWED


# KEYS: counters. ARGV[1]: amount; then per key a limit and a window in ms. Checks every key,
# then charges every key, atomically. Returns {0, 0} or {index of the full key, ms to wait}.
_SCRIPT = """
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used + amount > tonumber(ARGV[i * 2]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then ttl = tonumber(ARGV[i * 2 + 1]) end
    return {i, ttl}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, amount)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[i * 2 + 1]) end
end
return {0, 0}
"""


def bounded_client(url: str, timeout: float) -> Any:
    """A Redis client whose every call gives up after `timeout` seconds (connecting included)
    and never retries by itself: the circuit breaker decides when to try again."""
    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                          retry=Retry(NoBackoff(), 0), retry_on_timeout=False,
                          health_check_interval=0)


class RedisCounter:
    """The same windows in Redis, shared by every replica."""

    def __init__(self, url: str, timeout: float = 0.05) -> None:
        self.client: Any = bounded_client(url, timeout)
        self.timeout = timeout
        self.script = self.client.register_script(_SCRIPT)

    async def take(self, charges: list[Charge]) -> Verdict:
        args: list[int] = [charges[0][2]]
        for _, _, _, rate in charges:
            args += [rate.amount, rate.seconds * 1000]
        # The socket timeouts bound each read; this bounds the whole call (a NOSCRIPT fallback
        # is two round trips) whatever the client library does.
        async with asyncio.timeout(self.timeout * 3):
            index, wait_ms = await self.script(keys=[c[1] for c in charges], args=args)
        if index == 0:
            return ALLOWED
        return Verdict(False, max(1, math.ceil(int(wait_ms) / 1000)), charges[int(index) - 1][0])

    async def close(self) -> None:
        await self.client.aclose()


class RateLimiter:
    """The service's limits (settings) over one counter."""

    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.redis_prefix
        self.rates = {
            "client": Rate.parse(settings.rate_client),
            "organisation": Rate.parse(settings.rate_org),
            "client_cost": Rate.parse(settings.cost_quota_client),
            "organisation_cost": Rate.parse(settings.cost_quota_org),
            "login_account": Rate.parse(settings.rate_login),
            "login_address": Rate.parse(settings.rate_login_ip),
            "token_client": Rate.parse(settings.rate_token),
            "token_address": Rate.parse(settings.rate_token_ip),
            "help_address": Rate.parse(settings.rate_help_ip),
        }
        # Counted in the database (app/auth/attempts.py), not here: they hold when Redis fails.
        self.signin_rates = {"signin_account": Rate.parse(settings.signin_failures),
                             "signin_address": Rate.parse(settings.signin_failures_ip)}
        self.memory = MemoryCounter()
        self.redis = (RedisCounter(settings.redis_url, settings.redis_timeout_ms / 1000)
                      if settings.redis_url else None)
        self.breaker = CircuitBreaker("rate_limits", failures=settings.redis_breaker_failures,
                                      open_seconds=settings.redis_breaker_seconds)
        self._metrics: Any = None

    @property
    def metrics(self) -> Any:
        """The app's Metrics (set by `limiter`): refusals, fail-open decisions, the circuit."""
        return self._metrics

    @metrics.setter
    def metrics(self, value: Any) -> None:
        self._metrics = self.breaker.metrics = value

    async def _take(self, amount: int, wanted: list[tuple[str, str]]) -> Verdict:
        verdict = await self._count(amount, wanted)
        if not verdict.allowed and self.metrics is not None:
            self.metrics.count_throttled(verdict.limit)
        return verdict

    async def _count(self, amount: int, wanted: list[tuple[str, str]]) -> Verdict:
        charges: list[Charge] = [
            (name, f"{self.prefix}:rl:{name}:{key}", amount, rate)
            for name, key in wanted if (rate := self.rates[name]) is not None]
        if not charges:
            return ALLOWED
        if self.redis is not None:
            if self.breaker.allow():
                try:
                    verdict = await self.redis.take(charges)
                except Exception as exc:  # any Redis failure: count here rather than fail
                    self.breaker.failure(exc)
                else:
                    self.breaker.success()
                    return verdict
            # Fail open: this replica's own count (README "Redis as a helper").
            if self.metrics is not None:
                self.metrics.rate_fail_open.inc()
        return await self.memory.take(charges)

    async def request(self, subject: str, org: str | None) -> Verdict:
        """One request by a client (person, system or peacebuilder) and its organisation."""
        wanted = [("client", subject)]
        if org:
            wanted.append(("organisation", org))
        return await self._take(1, wanted)

    async def cost(self, subject: str, org: str | None, cost: int) -> Verdict:
        """Charge a query's cost against the client's and the organisation's quota."""
        if cost <= 0:
            return ALLOWED
        wanted = [("client_cost", subject)]
        if org:
            wanted.append(("organisation_cost", org))
        return await self._take(cost, wanted)

    async def login(self, account: str, address: str) -> Verdict:
        """A password login attempt; the account name is hashed, never stored."""
        digest = hashlib.sha256(account.encode()).hexdigest()[:32]
        return await self._take(1, [("login_account", digest), ("login_address", address)])

    async def token(self, client_id: str, address: str) -> Verdict:
        """A request to /oauth/token, counted before the secret is checked (a wrong secret costs
        the same as a right one); the client ID is hashed, never stored."""
        digest = hashlib.sha256(client_id.encode()).hexdigest()[:32]
        return await self._take(1, [("token_client", digest), ("token_address", address)])

    async def help_request(self, address: str) -> Verdict:
        """A request for help without an account (`requestHelp`), per client address, counted
        before anything is looked up."""
        return await self._take(1, [("help_address", address)])

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()


def limiter(runtime: Any) -> RateLimiter:
    """The runtime's limiter, made on first use."""
    found = runtime.extras.get("rate_limiter")
    if found is None:
        found = runtime.extras["rate_limiter"] = RateLimiter(runtime.settings)
    found.metrics = getattr(runtime, "metrics", None)
    return found  # type: ignore[no-any-return]
