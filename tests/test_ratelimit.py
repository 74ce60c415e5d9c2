"""Rate limits and quotas per client and per organisation: 429 with Retry-After, in-process and
on Redis (shared by replicas), sign-in attempts and token requests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from app import ratelimit
from app.audit.models import AccessLogEntry
from app.ratelimit import MemoryCounter, Rate, RateLimiter
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
                                    "rate_token", "rate_token_ip")}
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
                       rate_org="off", cost_quota_client="off", cost_quota_org="off")
    limiter = RateLimiter(settings)
    try:
        with caplog.at_level(logging.WARNING, "safety_net.ratelimit"):
            assert (await limiter.request("user:a", None)).allowed
            assert not (await limiter.request("user:a", None)).allowed
        assert "counted in-process" in caplog.text
    finally:
        await limiter.close()
