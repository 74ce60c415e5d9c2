"""Alerts through the outbox: written in the request's own transaction, published afterwards by
a worker (several per database, none claiming another's rows), at least once, de-duplicated by
the subscriber; a frozen Redis (a private redis-server stopped with SIGSTOP) delays an alert
but never the answer; after the outage subscribers resync and get what they missed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import func, select

from app.notify import outbox
from app.notify.service import notify
from app.runtime import Runtime
from app.tables.consent import Notice
from app.tables.notify import InboxItem, OutboxEntry
from app.tables.orgs import Organisation
from app.tenancy import as_system
from tests.conftest import build_env
from tests.private_redis import private_redis
from tests.test_consent import new_peacebuilder
from tests.test_incidents import REPORT, incident_input
from tests.test_realtime import Subscriber, serve

pytestmark = pytest.mark.anyio


@as_system
async def outbox_rows(runtime: Runtime) -> list[OutboxEntry]:
    async with runtime.db.transaction() as session:
        return list(await session.scalars(select(OutboxEntry)))


@as_system
async def inbox_count(runtime: Runtime, kind: str | None = None) -> int:
    query = select(func.count()).select_from(InboxItem)
    if kind is not None:
        query = query.where(InboxItem.kind == kind)
    async with runtime.db.transaction() as session:
        return int(await session.scalar(query) or 0)


@as_system
async def notice_count(runtime: Runtime) -> int:
    """Her notices: each is published to her subscription through the outbox too."""
    async with runtime.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Notice)) or 0)


async def test_alerts_are_written_with_the_change_and_published_after(backend, tmp_path):
    env, close = await build_env(backend, tmp_path, outbox_worker=False)
    try:
        pb = await new_peacebuilder(env, "fund")
        body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
        assert body["data"]["reportIncident"]["userErrors"] == []
        rows = await outbox_rows(env.runtime)
        # Each alert, and each notice to her, has its row.
        assert len(rows) == await inbox_count(env.runtime) + await notice_count(env.runtime) >= 2
        assert await inbox_count(env.runtime, "incident_reported") >= 1
        # A failed mutation writes no alert and no outbox row.
        failed = await env.post(REPORT, incident_input("Q2FzZTpub3BlOm5vcGU="),
                                as_=("fund", "caseworker"))
        assert len(await outbox_rows(env.runtime)) == len(rows), failed.text
        # The worker publishes them (in-process without Redis) and deletes them.
        worker = outbox.worker(env.runtime)
        queue = env.runtime.broker.subscribe(rows[0].recipient)
        assert await worker.drain() == len(rows)
        assert await outbox_rows(env.runtime) == []
        mine = {str(r.item_id) for r in rows if r.recipient == rows[0].recipient}
        assert {queue.get_nowait() for _ in mine} == mine
    finally:
        await close()


async def test_workers_of_several_replicas_claim_different_rows(backend, tmp_path):
    env, close = await build_env(backend, tmp_path, outbox_worker=False)
    try:
        @as_system
        async def raise_alerts(n: int) -> None:
            async with env.runtime.db.transaction() as session:
                org = (await session.scalars(select(Organisation.id))).first()
                await notify(session, [(f"user:{uuid.uuid4()}", org) for _ in range(n)],
                             kind="task_due", subject_id=None, case_id=None, payload={},
                             at=env.runtime.clock.now())

        await raise_alerts(1000)
        waiting = len(await outbox_rows(env.runtime))  # and the demo data's alerts
        replicas = [outbox.OutboxWorker(env.runtime) for _ in range(4)]
        claims = await asyncio.gather(*(w._claim() for w in replicas))
        claimed = [item for batch in claims for item, _ in batch]
        assert len(claimed) == len(set(claimed)) == 4 * outbox.BATCH
        # Everything gets published exactly once by the replicas together (no Redis here).
        for w, batch in zip(replicas, claims, strict=True):
            await w._finish([i for i, _ in batch], published=True)
        totals = await asyncio.gather(*(w.drain() for w in replicas))
        assert sum(totals) == waiting - len(claimed)
        assert await outbox_rows(env.runtime) == []
    finally:
        await close()


@pytest.mark.heavy
async def test_a_frozen_redis_delays_the_alert_not_the_answer(backend, tmp_path, capsys):
    """Two replicas on one database and a private Redis. Redis is frozen (SIGSTOP): reporting
    an incident through replica A still answers at once; the alert reaches a subscriber on
    replica B later — from the outbox, by B's own worker while Redis is down, and again through
    Redis after the thaw, which the subscriber drops as a repeat; then a resync brings it an
    alert whose publication was lost."""
    with private_redis(tmp_path) as redis_server:
        env, close = await build_env(backend, tmp_path, redis_url=redis_server.url,
                                     redis_breaker_seconds=1.0)
        settings = replace(env.settings, scheduler=False, log_worker=False)
        a, b = Runtime.create(settings), Runtime.create(settings)
        try:
            pb = await new_peacebuilder(env, "mofa")
            focal = await env.token("mofa", "focal")
            caseworker = await env.token("mofa", "caseworker")
            async with serve(a) as port_a, serve(b) as port_b:
                sub = Subscriber(port_b, focal)
                sub.start()
                await asyncio.wait_for(sub.ready.wait(), 10)
                await asyncio.wait_for(b.broker.listening.wait(), 10)
                await asyncio.sleep(0.3)
                redis_server.freeze()
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_a}") as http:
                    started = time.perf_counter()
                    response = await http.post("/graphql", json={
                        "query": REPORT, "variables": incident_input(pb["case"])}, headers={
                        "authorization": f"Bearer {caseworker}",
                        "safety-net-purpose": "protection"})
                    took = time.perf_counter() - started
                assert response.status_code == 200
                assert response.json()["data"]["reportIncident"]["userErrors"] == []
                with capsys.disabled():
                    print(f"\n[{backend}] reportIncident with Redis frozen: {took * 1000:.0f} ms")
                reported = await sub.wait_for("incident_reported", seconds=15)
                assert set(json.loads(reported["payload"])) == {"incident", "case", "severity",
                                                                  "reported_by"}
                assert await outbox_rows(a), "kept for Redis while it is frozen"

                redis_server.thaw()
                for _ in range(200):  # the breaker's probe, then the publication
                    if not await outbox_rows(a):
                        break
                    await asyncio.sleep(0.1)
                assert await outbox_rows(a) == []
                await asyncio.sleep(0.5)
                kinds = [i["kind"] for i in sub.received]
                assert kinds.count("incident_reported") == 1, kinds  # published twice, shown once

                # A publication lost (an item stored, its message never heard): the resync
                # after an outage brings it.
                @as_system
                async def missed_alert() -> str:
                    async with a.db.transaction() as session:
                        from app.auth import principals

                        user = await principals.find_user(session, "mofa", "focal")
                        item = InboxItem(recipient=user.subject, org_id=user.org_id,
                                         kind="task_due", subject_id=None, case_id=None,
                                         payload={}, created_at=a.clock.now())
                        session.add(item)
                        await session.flush()
                        return str(item.id)

                missed = await missed_alert()
                await a.broker.publish_resync()  # what the first publish after an outage adds
                await sub.wait_for("task_due", seconds=10)
                # At least once: the same item published again is dropped by the subscriber.
                await a.broker.publish([(focal_subject(env, focal), missed)])
                await asyncio.sleep(0.5)
                assert [i["kind"] for i in sub.received].count("task_due") == 1
                assert sub.task is not None
                sub.task.cancel()
        finally:
            redis_server.thaw()
            await close()


def focal_subject(env, token: str) -> str:
    return str(env.runtime.issuer.verify(token).subject)
