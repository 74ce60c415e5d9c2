"""Webhook channels (app/notify/webhooks.py): a person's own signed, content-free POST for each
alert worth waking her for, decided as her at delivery time like e-mail, retried with backoff
from stored state. Each test builds its own deployment (both backends) with the controlled
clock and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.auth import principals
from app.clock import FrozenClock
from app.notify import outbox, webhooks
from app.notify import service as notify
from app.runtime import Runtime
from app.tables.audit import AccessLogEntry
from app.tables.channels import NotifyChannel, WebhookDelivery
from app.tenancy import SYSTEM, using
from tests.conftest import build_env
from tests.test_auth import DEACTIVATE_USER, new_user
from tests.test_consent import new_peacebuilder
from tests.test_email import items_of
from tests.test_incidents import REPORT, incident_input
from tests.test_observability import scrape, value
from tests.test_rls import _org_tenancy, _rows
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.anyio

ADD = """mutation($u: String!, $l: Int!) { addMyChannel(input: {url: $u, minLevel: $l}) {
  channel { id kind url minLevel active } secret userErrors { field message code } } }"""
REMOVE = """mutation($id: ID!) { removeMyChannel(input: {channelId: $id}) {
  channel { id active } userErrors { message code } } }"""
MINE = "{ myChannels { id url minLevel } }"


@pytest.fixture
async def hook_env(backend, tmp_path, anyio_backend):
    receiver = WebhookReceiver()
    await receiver.start()
    clock = FrozenClock(datetime(2035, 3, 1, 9, 0, tzinfo=UTC))
    # Webhooks leave from the outbox worker, after the answer (app/notify/outbox.py): the
    # fixture runs it after each call and each scheduler pass, as the background worker would.
    env, close = await build_env(backend, tmp_path, clock=clock, outbox_worker=False,
                                 public_url="https://safety-net.example")
    env.clock, env.receiver = clock, receiver
    gql, scheduler = env.gql, env.runtime.extras["scheduler"]
    tick = scheduler.tick

    async def gql_then_deliver(*args, **kwargs):
        body = await gql(*args, **kwargs)
        await outbox.worker(env.runtime).drain()
        return body

    async def tick_then_deliver():
        published = await tick()
        await outbox.worker(env.runtime).drain()
        return published

    env.gql, scheduler.tick = gql_then_deliver, tick_then_deliver
    try:
        yield env
    finally:
        await close()
        await receiver.stop()


async def add_channel(env, who: tuple[str, str], url: str, min_level: int = 0) -> dict:
    body = await env.gql(ADD, {"u": url, "l": min_level}, as_=who)
    payload = body["data"]["addMyChannel"]
    assert payload["userErrors"] == [], payload
    return payload


async def deliveries(env) -> list[WebhookDelivery]:
    with using(SYSTEM):
        async with env.runtime.db.transaction() as s:
            return list(await s.scalars(select(WebhookDelivery)
                                        .order_by(WebhookDelivery.created_at)))


async def test_an_alert_reaches_her_webhook_signed_and_content_free(hook_env):
    env = hook_env
    added = await add_channel(env, ("fund", "focal"), env.receiver.url)
    secret = added["secret"]
    assert secret.startswith("whsec_") and added["channel"]["kind"] == "WEBHOOK"
    mine = (await env.gql(MINE, as_=("fund", "focal")))["data"]["myChannels"]
    assert mine == [{"id": added["channel"]["id"], "url": env.receiver.url, "minLevel": 0}]
    assert (await env.gql(MINE, as_=("fund", "caseworker")))["data"]["myChannels"] == []

    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == []
    [item] = await items_of(env, "fund", "focal", "incident_reported")
    [request] = env.receiver.requests
    assert request.method == "POST" and request.path == "/hook"
    assert webhooks.verify(secret, request.headers["safety-net-signature"], request.body)
    assert not webhooks.verify("whsec_other", request.headers["safety-net-signature"],
                               request.body)
    assert not webhooks.verify(secret, request.headers["safety-net-signature"],
                               request.body + b" ")
    sent = json.loads(request.body)
    assert sent == {"kind": "incident_reported", "alertId": str(item.id), "level": 0,
                    "at": item.created_at.isoformat(),
                    "link": f"https://safety-net.example/alerts/{item.id}"}
    raw = request.body.decode()
    for secret_of_hers in (pb["login"], "Threatening", str(item.case_id), pb["case"]):
        assert secret_of_hers not in raw
    [delivery] = await deliveries(env)
    assert (delivery.state, delivery.attempts) == ("delivered", 1)
    assert request.headers["safety-net-delivery"] == str(delivery.id)

    async with env.runtime.db.transaction() as s:
        actions = set(await s.scalars(select(AccessLogEntry.action).where(
            AccessLogEntry.action.like("notify.channel%"))))
    assert actions == {"notify.channel_add"}
    removed = await env.gql(REMOVE, {"id": added["channel"]["id"]}, as_=("fund", "focal"))
    assert removed["data"]["removeMyChannel"]["channel"]["active"] is False
    async with env.runtime.db.transaction() as s:
        logged = list(await s.execute(select(AccessLogEntry.action, AccessLogEntry.details).where(
            AccessLogEntry.action.like("notify.channel%"))))
    assert {a for a, _ in logged} == {"notify.channel_add", "notify.channel_remove"}
    assert "127.0.0.1" not in json.dumps([d for _, d in logged])  # not the URL
    assert (await env.gql(MINE, as_=("fund", "focal")))["data"]["myChannels"] == []
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == []
    assert len(env.receiver.requests) == 1  # removed: nothing more


async def test_urls_are_checked_and_channels_are_her_own(hook_env):
    env = hook_env
    for url, field in (("http://example.org/hook", "url"), ("ftp://127.0.0.1/x", "url"),
                       ("https://user:pw@example.org/", "url"),
                       ("https://169.254.169.254/latest", "url"), ("not a url", "url")):
        body = await env.gql(ADD, {"u": url, "l": 0}, as_=("fund", "focal"))
        [error] = body["data"]["addMyChannel"]["userErrors"]
        assert error["field"] == ["input", field] and error["code"] == "BAD_USER_INPUT", url
    body = await env.gql(ADD, {"u": "https://pager.example/hook", "l": 11}, as_=("fund", "focal"))
    assert body["data"]["addMyChannel"]["userErrors"][0]["field"] == ["input", "minLevel"]
    assert (await env.gql(MINE, as_=("fund", "focal")))["data"]["myChannels"] == []

    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    body = await env.gql(ADD, {"u": "https://pager.example/hook", "l": 0}, token=her, purpose=None)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    added = await add_channel(env, ("fund", "focal"), "https://pager.example/hook", 2)
    other = await env.gql(REMOVE, {"id": added["channel"]["id"]}, as_=("fund", "caseworker"))
    assert other["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert len((await env.gql(MINE, as_=("fund", "focal")))["data"]["myChannels"]) == 1


async def test_min_level_decides_which_alerts_use_the_channel(hook_env):
    """A pager for escalations only: the report itself (level 0) does not page her; the
    escalation an hour later (level 1) does."""
    env = hook_env
    added = await add_channel(env, ("fund", "focal"), env.receiver.url, min_level=1)
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == []
    assert env.receiver.requests == []
    env.clock.advance(minutes=61)
    await env.runtime.extras["scheduler"].tick()
    [item] = await items_of(env, "fund", "focal", "escalation")
    [request] = env.receiver.requests
    assert json.loads(request.body)["level"] == 1
    assert json.loads(request.body)["alertId"] == str(item.id)
    assert webhooks.verify(added["secret"], request.headers["safety-net-signature"], request.body)


async def test_a_deactivated_recipient_gets_nothing(hook_env):
    """Her channel stays configured, but she is deactivated before the alert: the delivery is
    decided as her at delivery time and withheld; the other focal point is paged."""
    env = hook_env
    gone_id, gone, _ = await new_user(env, "fund", ["FOCAL_POINT"])
    await add_channel(env, ("fund", gone), env.receiver.url)
    await add_channel(env, ("fund", "focal"), env.receiver.url.replace("/hook", "/focal"))
    off = await env.gql(DEACTIVATE_USER, {"id": gone_id}, as_=("fund", "admin"))
    assert off["data"]["deactivateUser"]["user"]["active"] is False
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == []
    env.clock.advance(minutes=61)
    await env.runtime.extras["scheduler"].tick()  # the escalation goes to active focal points
    # The chain never names a deactivated person (app/notify/chain.py), so there is no
    # item for her at all; the other focal point is paged.
    assert await items_of(env, "fund", gone, "escalation") == []
    paths = [r.path for r in env.receiver.requests]
    assert paths and set(paths) == {"/focal"}
    assert await items_of(env, "fund", "focal", "escalation")
    # An alert addressed to her anyway (stored as any domain would) is decided as her at
    # delivery: deactivated, her channel is not called.
    async with env.runtime.db.transaction() as session:
        user = await principals.find_user(session, "fund", gone)
        await notify.notify(session, [(user.subject, user.org_id)], kind="incident_reported",
                            subject_id=None, case_id=None, payload={}, at=env.clock.now())
    await outbox.worker(env.runtime).drain()
    assert {r.path for r in env.receiver.requests} == {"/focal"}


async def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(hook_env):
    env = hook_env
    env.receiver.fail_first = 2
    added = await add_channel(env, ("fund", "focal"), env.receiver.url)
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == []
    [delivery] = await deliveries(env)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, "http 503")
    assert delivery.next_attempt_at == env.clock.now() + webhooks.BACKOFF[0]

    hooks = env.runtime.webhooks
    assert await hooks.run_due(env.runtime) == 0  # not due yet: nothing sent
    assert len(env.receiver.requests) == 1
    env.clock.advance(minutes=1)
    assert await hooks.run_due(env.runtime) == 0  # second failure
    [delivery] = await deliveries(env)
    assert (delivery.attempts, delivery.next_attempt_at) == (
        2, env.clock.now() + webhooks.BACKOFF[1])
    env.clock.advance(minutes=3)
    assert await hooks.run_due(env.runtime) == 1
    [delivery] = await deliveries(env)
    assert (delivery.state, delivery.attempts) == ("delivered", 3)
    assert len(env.receiver.requests) == 3
    # The same delivery ID every time (receivers drop duplicates), each one signed.
    assert {r.headers["safety-net-delivery"] for r in env.receiver.requests} == {str(delivery.id)}
    assert all(webhooks.verify(added["secret"], r.headers["safety-net-signature"], r.body)
               for r in env.receiver.requests)
    env.clock.advance(hours=1)
    assert await hooks.run_due(env.runtime) == 0 and len(env.receiver.requests) == 3


async def test_attempts_are_bounded_and_a_claim_is_taken_once(hook_env):
    env = hook_env
    env.receiver.fail_first = 100
    await add_channel(env, ("fund", "focal"), env.receiver.url)
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == []
    hooks = env.runtime.webhooks
    [delivery] = await deliveries(env)
    # Two replicas race for the same due delivery: one claim wins.
    env.clock.advance(minutes=1)
    first = await hooks._claim(env.runtime, delivery.id)
    second = await hooks._claim(env.runtime, delivery.id)
    assert first is not None and second is None
    await hooks._retry_or_fail(env.runtime, first[0], "http 503")  # as the winner would
    for delay in webhooks.BACKOFF[1:]:
        env.clock.advance(seconds=delay.total_seconds())
        await hooks.run_due(env.runtime)
    [delivery] = await deliveries(env)
    assert (delivery.state, delivery.attempts) == ("failed", webhooks.MAX_ATTEMPTS)
    assert len(env.receiver.requests) == webhooks.MAX_ATTEMPTS - 1  # one claim never sent
    env.clock.advance(hours=2)
    await hooks.run_due(env.runtime)
    assert len(env.receiver.requests) == webhooks.MAX_ATTEMPTS - 1
    _, samples = await scrape(env)  # given up: counted for the operators' alerting
    assert value(samples, "safety_net_webhook_deliveries", state="failed") == 1
    assert value(samples, "safety_net_webhook_deliveries", state="pending") == 0


async def test_the_periodic_pass_queues_what_a_crash_left_out(hook_env):
    """The process stops between storing the alert and queueing its webhook (here: no webhook
    sender at commit time). Another pass, in any replica, finds the alert and sends it once."""
    env = hook_env
    await add_channel(env, ("fund", "focal"), env.receiver.url)
    hooks, env.runtime.webhooks = env.runtime.webhooks, None
    try:
        pb = await new_peacebuilder(env, "fund")
        body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
        assert body["data"]["reportIncident"]["userErrors"] == []
    finally:
        env.runtime.webhooks = hooks
    assert env.receiver.requests == [] and await deliveries(env) == []
    env.clock.advance(minutes=1)
    assert await hooks.tick(env.runtime) == 1
    assert await hooks.tick(env.runtime) == 0
    [item] = await items_of(env, "fund", "focal", "incident_reported")
    [request] = env.receiver.requests
    assert json.loads(request.body)["alertId"] == str(item.id)


async def test_row_level_security_keeps_channels_to_her_organisation(hook_env):
    """PostgreSQL, as the service role: her channel is a row of her organisation only; the
    deliveries are the delivery worker's (system scope) alone, invisible to any organisation;
    the URL and secret cannot be changed in place."""
    env = hook_env
    if env.backend != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only (SQLite: the app's checks)")
    await add_channel(env, ("fund", "focal"), env.receiver.url)
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == []
    fund, mofa = await _org_tenancy(env, "fund"), await _org_tenancy(env, "mofa")
    assert await _rows(env, fund, "SELECT count(*) FROM notify_channels") == [(1,)]
    assert await _rows(env, mofa, "SELECT count(*) FROM notify_channels") == [(0,)]
    assert await _rows(env, fund, "SELECT count(*) FROM webhook_deliveries") == [(0,)]
    assert await _rows(env, SYSTEM, "SELECT count(*) FROM webhook_deliveries") == [(1,)]
    with pytest.raises(DBAPIError):
        with using(fund):
            async with env.runtime.db.transaction() as s:
                await s.execute(text("UPDATE notify_channels SET url = 'https://evil.example/'"))


async def test_the_signing_secret_is_sealed_at_rest_and_bound_to_its_row(hook_env):
    env = hook_env
    added = await add_channel(env, ("fund", "focal"), env.receiver.url)
    with using(SYSTEM):
        async with env.runtime.db.transaction() as s:
            [channel] = list(await s.scalars(select(NotifyChannel)))
    assert channel.secret.startswith(webhooks.SEAL_PREFIX)
    assert added["secret"] not in channel.secret
    keys = env.runtime.db.keys
    assert webhooks.open_secret(keys, channel.org_id, channel.id, channel.secret) == added["secret"]
    # Copied onto another row (or organisation), it opens nothing: nothing would be signed.
    assert webhooks.open_secret(keys, channel.org_id, uuid.uuid4(), channel.secret) is None
    assert webhooks.open_secret(keys, uuid.uuid4(), channel.id, channel.secret) is None


async def test_two_replicas_send_each_delivery_once(hook_env):
    """A second runtime on the same database (its own connections, as another replica) runs its
    pass at the same moment as the first: every alert reaches the receiver exactly once."""
    env = hook_env
    await add_channel(env, ("fund", "focal"), env.receiver.url)
    hooks, env.runtime.webhooks = env.runtime.webhooks, None  # stored, not yet queued
    try:
        for _ in range(4):
            pb = await new_peacebuilder(env, "fund")
            body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
            assert body["data"]["reportIncident"]["userErrors"] == []
    finally:
        env.runtime.webhooks = hooks
    other = Runtime.create(env.settings, clock=env.clock)
    try:
        assert other.webhooks is not None
        sent = await asyncio.gather(hooks.tick(env.runtime), other.webhooks.tick(other),
                                    hooks.tick(env.runtime), other.webhooks.tick(other))
    finally:
        await other.close()
    items = await items_of(env, "fund", "focal", "incident_reported")
    alerts = sorted(json.loads(r.body)["alertId"] for r in env.receiver.requests)
    assert alerts == sorted(str(i.id) for i in items) and len(alerts) == 4
    assert sum(sent) == 4
    assert {d.state for d in await deliveries(env)} == {"delivered"}
