"""Rate limits and quotas: fixed windows counted in Redis (shared by replicas) or in-process.

Each limit is "amount per seconds" for one key (a client, an organisation, a login account, an
OAuth client ID asking for tokens, or a client address). A request is admitted only if every key
it touches has room; then all are charged. If Redis fails the limiter falls back to counting
in-process, per replica, and says so in the log: throttling protects capacity, it is not an
access decision, so it must not take the service down with it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

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


class RedisCounter:
    """The same windows in Redis, shared by every replica."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.client: Any = redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.script = self.client.register_script(_SCRIPT)

    async def take(self, charges: list[Charge]) -> Verdict:
        args: list[int] = [charges[0][2]]
        for _, _, _, rate in charges:
            args += [rate.amount, rate.seconds * 1000]
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
        }
        self.memory = MemoryCounter()
        self.redis = RedisCounter(settings.redis_url) if settings.redis_url else None
        self._warned_at = 0.0
        self.metrics: Any = None  # the app's Metrics (set by `limiter`): refusals are counted

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
            try:
                return await self.redis.take(charges)
            except Exception as exc:  # any Redis failure: count here rather than fail requests
                if time.monotonic() - self._warned_at > 60:
                    self._warned_at = time.monotonic()
                    log.warning("rate limits counted in-process: Redis failed (%s)",
                                type(exc).__name__)
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
