"""Rate limits and quotas per client and per organisation: 429 with Retry-After, in-process and
on Redis (shared by replicas), sign-in attempts and token requests."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from app import ratelimit
from app.ratelimit import MemoryCounter, Rate, RateLimiter
from app.tables.audit import AccessLogEntry
from tests.conftest import Env, require_redis, unique
from tests.test_auth import new_client, token_request

pytestmark = pytest.mark.anyio

VIEWER = "{ viewer { name } }"
CASES = "{ cases { edges { node { id } } } }"  # cost 1 + 20 x 2 = 41


@contextmanager
def limits(env: Env, **rates: Any) -> Iterator[RateLimiter]:
    """The shared deployment with other rates for one test (all others off)."""
    off = {name: "off" for name in ("rate_client", "rate_org", "cost_quota_client",
                                    "cost_quota_org", "rate_login", "rate_login_ip",
                                    "rate_token", "rate_token_ip", "signin_failures",
                                    "signin_failures_ip")}
    limiter = RateLimiter(replace(env.settings, **{**off, **rates}))
    before = env.runtime.extras.get("rate_limiter")
    env.runtime.extras["rate_limiter"] = limiter
    try:
        yield limiter
    finally:
        env.runtime.extras["rate_limiter"] = before


def assert_throttled(response: Any, code: str, limit: str, window: int) -> None:
    assert response.status_code == 429, response.text
    retry = int(response.headers["retry-after"])
    assert 1 <= retry <= window
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": code, "limit": limit, "retryAfter": retry}


async def test_per_client_rate_at_its_boundary(env):
    token = await env.token("mofa", "caseworker")
    other = await env.token("mofa", "analyst")
    with limits(env, rate_client="3/60"):
        for _ in range(3):
            assert (await env.post(VIEWER, token=token)).status_code == 200
        before = env.runtime.db.statements.count
        assert_throttled(await env.post(VIEWER, token=token), "RATE_LIMITED", "client", 60)
        assert env.runtime.db.statements.count == before  # refused before any work
        assert (await env.post(VIEWER, token=other)).status_code == 200


async def test_per_organisation_rate(env):
    a, b = await env.token("embassy", "caseworker"), await env.token("embassy", "analyst")
    with limits(env, rate_org="4/60"):
        for token in (a, b, a, b):
            assert (await env.post(VIEWER, token=token)).status_code == 200
        assert_throttled(await env.post(VIEWER, token=a), "RATE_LIMITED", "organisation", 60)
        assert (await env.post(VIEWER, as_=("nhri", "analyst"))).status_code == 200


async def test_cost_quota(env):
    token = await env.token("unpc", "caseworker")
    with limits(env, cost_quota_client="50/3600"):
        assert (await env.post(CASES, token=token)).status_code == 200
        assert_throttled(await env.post(CASES, token=token), "QUOTA_EXCEEDED", "client_cost", 3600)
        assert (await env.post(VIEWER, token=token)).status_code == 200  # 41 + 1 fits in 50
    with limits(env, cost_quota_org="45/3600"):
        assert (await env.post(CASES, token=token)).status_code == 200
        other = await env.token("unpc", "analyst")
        assert_throttled(await env.post(CASES, token=other), "QUOTA_EXCEEDED",
                         "organisation_cost", 3600)


async def test_sign_in_attempts_are_limited(env):
    body = {"organisation": "fund", "username": unique("nobody"), "password": "wrong"}
    with limits(env, rate_login="2/300"):
        for _ in range(2):
            assert (await env.client.post("/auth/login", json=body)).status_code == 401
        refused = await env.client.post("/auth/login", json=body)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 300
        assert refused.json()["error"] == "slow_down"
        other = {**body, "username": unique("someone")}
        assert (await env.client.post("/auth/login", json=other)).status_code == 401
    with limits(env, rate_login_ip="1/60"):
        assert (await env.client.post("/auth/login", json=body)).status_code == 401
        assert (await env.client.post("/auth/login", json=other)).status_code == 429


async def token_log_rows(env: Env) -> int:
    async with env.runtime.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(AccessLogEntry).where(
            AccessLogEntry.action == "token.issue")) or 0)


def throttled_count(env: Env, limit: str) -> float:
    value = env.runtime.metrics.registry.get_sample_value("safety_net_rate_limited_total",
                                                          {"limit": limit})
    return value or 0.0


def assert_token_throttled(response: Any, window: int) -> None:
    """RFC 6749 §5.2's shape (error, error_description), with 429 and Retry-After."""
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= window
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "slow_down" and body["error_description"]
    assert "access_token" not in body


async def test_token_requests_are_limited_per_client_id(env):
    _, client_id, secret = await new_client(env, "mofa")
    _, other_id, other_secret = await new_client(env, "mofa")
    with limits(env, rate_token="2/60"):
        for method in ("basic", "post"):  # the client ID counts however it is sent
            assert (await token_request(env, client_id, "wrong", method=method)).status_code in (
                400, 401)
        rows, statements = await token_log_rows(env), env.runtime.db.statements.count
        counted = throttled_count(env, "token_client")
        for _ in range(5):
            # Even the right secret: the attempt is refused before it is checked.
            assert_token_throttled(await token_request(env, client_id, secret), 60)
        assert env.runtime.db.statements.count == statements  # no database work at all
        assert await token_log_rows(env) == rows  # and no access-log entry per refusal
        assert throttled_count(env, "token_client") == counted + 5  # counted instead
        assert (await token_request(env, other_id, other_secret)).status_code == 200


async def test_token_requests_are_limited_per_client_address(env):
    _, client_id, secret = await new_client(env, "wpn")
    with limits(env, rate_token_ip="3/60"):
        for _ in range(3):  # three client IDs, guessed, from one address
            assert (await token_request(env, unique("guess"), "x")).status_code == 401
        rows = await token_log_rows(env)
        assert_token_throttled(await token_request(env, client_id, secret), 60)
        assert await token_log_rows(env) == rows
    with limits(env, rate_token="off", rate_token_ip="off"):  # "off" disables both
        for _ in range(5):
            assert (await token_request(env, client_id, secret)).status_code == 200


async def test_token_limits_on_redis_are_shared(env):
    url = require_redis()
    _, client_id, secret = await new_client(env, "unpc")
    with limits(env, redis_url=url, redis_prefix=unique("sn-test"), rate_token="2/60") as limiter:
        assert (await token_request(env, client_id, secret)).status_code == 200
        assert (await token_request(env, client_id, "wrong")).status_code == 401
        rows = await token_log_rows(env)
        assert_token_throttled(await token_request(env, client_id, secret), 60)
        assert await token_log_rows(env) == rows
        assert limiter.memory._windows == {}  # counted in Redis, not here
        other = RateLimiter(replace(env.settings, redis_url=url, redis_prefix=limiter.prefix,
                                    rate_token="2/60"))
        try:  # another replica sees the same window
            assert not (await other.token(client_id, "203.0.113.7")).allowed
        finally:
            await other.close()
        await limiter.close()


async def test_memory_windows_end(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    counter, rate = MemoryCounter(), Rate(2, 10)
    charge = [("client", "k", 1, rate)]
    assert (await counter.take(charge)).allowed and (await counter.take(charge)).allowed
    refused = await counter.take(charge)
    assert not refused.allowed and refused.retry_after == 10 and refused.limit == "client"
    now[0] += 9.5
    assert (await counter.take(charge)).retry_after == 1
    now[0] += 0.5
    assert (await counter.take(charge)).allowed


async def test_redis_limits_are_shared_by_replicas(env):
    url = require_redis()
    settings = replace(env.settings, redis_url=url, redis_prefix=unique("sn-test"),
                       rate_client="3/60", rate_org="off", cost_quota_client="off",
                       cost_quota_org="off")
    replicas = [RateLimiter(settings), RateLimiter(settings)]
    try:
        subject = f"user:{unique('x')}"
        verdicts = [await replicas[i % 2].request(subject, None) for i in range(4)]
        assert [v.allowed for v in verdicts] == [True, True, True, False]
        assert 1 <= verdicts[-1].retry_after <= 60 and verdicts[-1].limit == "client"
        assert replicas[0].memory._windows == {}  # counted in Redis, not here
    finally:
        for limiter in replicas:
            await limiter.close()


async def test_redis_over_http(env):
    url = require_redis()
    token = await env.token("wpn", "caseworker")
    with limits(env, redis_url=url, redis_prefix=unique("sn-test"), rate_client="2/60") as limiter:
        assert (await env.post(VIEWER, token=token)).status_code == 200
        assert (await env.post(VIEWER, token=token)).status_code == 200
        assert_throttled(await env.post(VIEWER, token=token), "RATE_LIMITED", "client", 60)
        await limiter.close()


async def test_redis_down_falls_back_to_counting_here(env, caplog):
    settings = replace(env.settings, redis_url="redis://127.0.0.1:1/0", rate_client="1/60",
                       rate_org="off", cost_quota_client="off", cost_quota_org="off",
                       redis_breaker_failures=1)
    limiter = RateLimiter(settings)
    try:
        with caplog.at_level(logging.WARNING, "safety_net.redis"):
            assert (await limiter.request("user:a", None)).allowed
            assert not (await limiter.request("user:a", None)).allowed
        assert "redis circuit rate_limits: closed -> open" in caplog.text
    finally:
        await limiter.close()


# --- Redis as a helper: timeouts, the circuit breaker, counters that hold in the database ----

def _metric(metrics: Any, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_down_redis_opens_the_circuit_and_is_then_skipped(env, caplog):
    from app.metrics import Metrics

    settings = replace(env.settings, redis_url="redis://127.0.0.1:1/0", rate_client="2/60",
                       redis_breaker_failures=2, redis_breaker_seconds=30)
    limiter = RateLimiter(settings)
    metrics = limiter.metrics = Metrics()
    clock = limiter.breaker.monotonic = _Clock()
    calls = 0
    take = limiter.redis.take

    async def counted(charges: Any) -> Any:
        nonlocal calls
        calls += 1
        return await take(charges)

    limiter.redis.take = counted  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.INFO, "safety_net.redis"):
            assert (await limiter.request("user:a", None)).allowed
            assert (await limiter.request("user:a", None)).allowed
            assert limiter.breaker.state == "open" and calls == 2
            # Open: Redis is not even tried; the limit still applies, in this replica (fail-open).
            assert not (await limiter.request("user:a", None)).allowed
            assert calls == 2
            assert _metric(metrics, "safety_net_rate_limit_fail_open_total") == 3
            assert _metric(metrics, "safety_net_redis_circuit_state",
                           {"component": "rate_limits"}) == 2
            # After the open time one probe goes to Redis; it fails: open again, one line.
            clock.now += 31
            await limiter.request("user:b", None)
            assert calls == 3 and limiter.breaker.state == "open"
        changes = [r.getMessage() for r in caplog.records if r.name == "safety_net.redis"]
        assert len(changes) == 3, changes  # closed->open, open->half_open, half_open->open
        assert "closed -> open" in changes[0] and "half_open -> open" in changes[2]
    finally:
        await limiter.close()


@pytest.mark.heavy
async def test_a_hung_redis_costs_one_timeout_then_nothing(env, tmp_path, caplog):
    """A private redis-server frozen with SIGSTOP: calls time out after tens of milliseconds,
    the circuit opens, later calls skip Redis, and a probe after the thaw closes it again."""
    from app.metrics import Metrics
    from tests.private_redis import private_redis

    with private_redis(tmp_path) as server:
        settings = replace(env.settings, redis_url=server.url, redis_prefix=unique("sn-test"),
                           rate_client="100/60", redis_timeout_ms=50, redis_breaker_failures=2,
                           redis_breaker_seconds=30)
        limiter = RateLimiter(settings)
        limiter.metrics = Metrics()
        clock = limiter.breaker.monotonic = _Clock()
        try:
            assert (await limiter.request("user:a", None)).allowed  # connected, counted in Redis
            assert limiter.breaker.state == "closed"
            server.freeze()
            for _ in range(2):
                assert (await limiter.request("user:a", None)).allowed  # timed out: fail open
            assert limiter.breaker.state == "open"
            for _ in range(20):
                assert (await limiter.request("user:a", None)).allowed  # not even tried
            server.thaw()
            clock.now += 31
            with caplog.at_level(logging.INFO, "safety_net.redis"):
                assert (await limiter.request("user:a", None)).allowed
            assert limiter.breaker.state == "closed"
            assert "half_open -> closed" in caplog.text
        finally:
            server.thaw()
            await limiter.close()


async def test_failed_sign_ins_are_counted_in_the_database(env):
    """With the request limits failing open (Redis down, a fresh replica's memory), failed
    sign-ins still lock the account: the count is in the database."""
    username = unique("nobody")
    body = {"organisation": "fund", "username": username, "password": "wrong"}
    dead = "redis://127.0.0.1:1/0"
    with limits(env, redis_url=dead, rate_login="100/300", signin_failures="3/300"):
        for _ in range(3):
            assert (await env.client.post("/auth/login", json=body)).status_code == 401
    # Another replica (its own memory, Redis still down): the account stays locked.
    with limits(env, redis_url=dead, rate_login="100/300", signin_failures="3/300"):
        refused = await env.client.post("/auth/login", json=body)
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 300
        assert refused.json()["error"] == "slow_down"
        other = {**body, "username": unique("someone")}
        assert (await env.client.post("/auth/login", json=other)).status_code == 401
    async with env.runtime.db.transaction() as session:
        from app.tables.auth import SignInCounter

        keys = list(await session.scalars(select(SignInCounter.key)))
    assert all(len(k) == 64 and username not in k for k in keys)  # hashes, never the name


async def test_failed_sign_ins_per_address_and_success_takes_its_charge_back(env):
    from app.auth import attempts

    with limits(env, signin_failures="2/300", signin_failures_ip="off"):
        limiter = env.runtime.extras["rate_limiter"]
        assert limiter is not None
        account = unique("pb")
        first = await attempts.charge(env.runtime, account, "192.0.2.1")
        assert first.allowed
        await attempts.succeeded(env.runtime, first)  # a success: the account starts afresh
        for _ in range(2):
            assert (await attempts.charge(env.runtime, account, "192.0.2.1")).allowed
        refused = await attempts.charge(env.runtime, account, "192.0.2.1")
        assert not refused.allowed and refused.limit == "signin_account"
    address = f"198.51.100.{uuid.uuid4().int % 250}"
    with limits(env, signin_failures="off", signin_failures_ip="2/300"):
        assert (await attempts.charge(env.runtime, unique("a"), address)).allowed
        assert (await attempts.charge(env.runtime, unique("b"), address)).allowed
        refused = await attempts.charge(env.runtime, unique("c"), address)
        assert not refused.allowed and refused.limit == "signin_address"
