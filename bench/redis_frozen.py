"""`reportIncident` latency with Redis healthy, frozen (SIGSTOP) and down, and how long after
the thaw the alerts it raised are published.

    .venv/bin/python -m bench.redis_frozen [--db sqlite|postgresql] [--requests 30]

Starts a private redis-server on a free port (never the shared one), builds a demo deployment
on the chosen database with that Redis, the request rate limits on (so every request consults
Redis) and the outbox worker running, then reports incidents through the real ASGI app
(httpx) in three phases: Redis answering; Redis frozen with SIGSTOP (connections accepted by
the kernel, nothing answered: the worst case, a hung Redis); Redis thawed. Prints p50/p99/max
per phase, the circuit breaker's state changes, and the delay from the thaw until the outbox is
empty (every alert published to Redis). Before this change (issue 15) a request paid two 0.5 s
rate-limit timeouts and `reportIncident` about 16 s with Redis hung.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from app.tables.notify import OutboxEntry
from app.tenancy import as_system


def _summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return (f"{name:<28} n={len(ms):<3} p50={statistics.median(ms):7.1f} ms  "
            f"p99={p99:7.1f} ms  max={ms[-1]:7.1f} ms")


async def main(db: str, requests: int) -> None:
    from tests.conftest import build_env
    from tests.private_redis import private_redis
    from tests.test_consent import new_peacebuilder
    from tests.test_incidents import REPORT, incident_input

    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    logging.getLogger("safety_net.redis").setLevel(logging.INFO)  # every circuit change
    with tempfile.TemporaryDirectory() as tmp, private_redis(Path(tmp)) as server:
        env, close = await build_env(db, Path(tmp), redis_url=server.url,
                                     rate_client="100000/60", rate_org="1000000/60")

        @as_system
        async def waiting() -> int:
            async with env.runtime.db.transaction() as session:
                return int(await session.scalar(
                    select(func.count()).select_from(OutboxEntry)) or 0)

        try:
            pb = await new_peacebuilder(env, "mofa")
            token = await env.token("mofa", "caseworker")

            async def report() -> float:
                started = time.perf_counter()
                body = await env.gql(REPORT, incident_input(pb["case"]), token=token)
                took = time.perf_counter() - started
                assert body["data"]["reportIncident"]["userErrors"] == [], body
                return took

            for _ in range(3):
                await report()  # warm up
            healthy = [await report() for _ in range(requests)]
            print(_summary("Redis answering", healthy))
            server.freeze()
            frozen = [await report() for _ in range(requests)]
            print(_summary("Redis frozen (SIGSTOP)", frozen))
            print(f"{'':<28} first request after the freeze: {frozen[0] * 1000:.1f} ms; "
                  f"alerts waiting in the outbox: {await waiting()}")
            server.thaw()
            thawed_at = time.perf_counter()
            for _ in range(100_000):
                if not await waiting():
                    break
                await asyncio.sleep(0.05)
            print(f"{'outbox empty after thaw':<28} {time.perf_counter() - thawed_at:.2f} s "
                  f"(circuit open time {env.settings.redis_breaker_seconds:g} s, then a probe)")
            after = [await report() for _ in range(requests)]
            print(_summary("Redis thawed", after))
        finally:
            server.thaw()
            await close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.db, args.requests))
