"""Alert emails make the inbox's and the subscription's decision (app/notify/inbox.entitled), as
their recipient, at delivery: no email about a case she can no longer see (invariants 1, 2, 8).

Each test builds its own deployment (both backends) with an SMTP sink, and gives the people it
alerts an address."""

from __future__ import annotations

import email
import email.policy
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.auth import principals
from app.clock import FrozenClock
from app.notify import outbox
from app.tables.notify import InboxItem
from app.tables.orgs import User
from schema import ids
from tests.conftest import build_env
from tests.smtp_sink import SMTPSink
from tests.test_auth import DEACTIVATE_USER, SET_ROLES, new_user
from tests.test_consent import new_peacebuilder
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio

MEASURE = """mutation($c: ID!, $d: DateTime) { addMeasure(input: {caseId: $c, kind: ACCOMPANIMENT,
  dueAt: $d}) { measure { id } userErrors { message } } }"""
REVOKE_ALL = "mutation { revokeAllConsent(input: {}) { revoked { id } } }"
TEAM = """mutation($c: ID!, $m: ID!) { removeCaseTeamMember(input: {caseId: $c, memberId: $m}) {
  case { id teamMemberIds } userErrors { message } } }"""
LINK = re.compile(r"/alerts/([A-Za-z0-9_-]+)")


@pytest.fixture
async def mail_env(backend, tmp_path, anyio_backend):
    sink = SMTPSink()
    await sink.start()
    clock = FrozenClock(datetime(2035, 3, 1, 9, 0, tzinfo=UTC))
    # The outbox worker is driven by the tests (`sent`): e-mails leave after the answer.
    env, close = await build_env(backend, tmp_path, clock=clock, smtp_host="127.0.0.1",
                                 smtp_port=sink.port, outbox_worker=False)
    env.clock, env.sink = clock, sink
    for name in ("focal", "caseworker"):
        await give_address(env, "fund", name)
    try:
        yield env
    finally:
        await close()
        await sink.stop()


async def give_address(env, org: str, username: str) -> str:
    address = f"{username}.{uuid.uuid4().hex[:6]}@{org}.example"
    async with env.runtime.db.transaction() as s:
        user = await principals.find_user(s, org, username)
        await s.execute(update(User).where(User.id == user.id).values(email=address))
    env.addresses = {**getattr(env, "addresses", {}), username: address}
    return address


async def sent(env) -> None:
    """Run the outbox worker until nothing waits: what the background worker does after the
    request has answered."""
    await outbox.worker(env.runtime).drain()


def emailed(env, username: str) -> list[str]:
    """IDs of the inbox items linked in the emails sent to this user."""
    found = []
    for raw in env.sink.messages:
        message = email.message_from_string(raw, policy=email.policy.default)
        if message["To"] == env.addresses[username]:
            # The link names the alert by its opaque global ID; the tests compare stored IDs.
            found += [str(ids.decode(a, "Alert")) for a in LINK.findall(message.get_content())]
    return found


async def items_of(env, org: str, username: str, kind: str) -> list[InboxItem]:
    async with env.runtime.db.transaction() as s:
        user = await principals.find_user(s, org, username)
        return list(await s.scalars(select(InboxItem).where(
            InboxItem.recipient == user.subject, InboxItem.kind == kind)
            .order_by(InboxItem.created_at)))


def case_of(item: InboxItem) -> str:
    return ids.encode("Case", item.case_id)


async def test_an_alert_she_can_still_see_is_emailed_to_focal_point_and_team(mail_env):
    env = mail_env
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == []
    await sent(env)
    for who in ("focal", "caseworker"):
        [item] = await items_of(env, "fund", who, "incident_reported")
        assert emailed(env, who) == [str(item.id)]
        assert item.emailed_at is not None
    for message in env.sink.messages:  # a link only: nothing about her
        assert pb["login"] not in message and "Threatening" not in message


async def test_consent_revoked_before_delivery_means_no_email(mail_env):
    """Two women's tasks fall due in the same scheduler pass; one revoked her consent after the
    task was set. Both items are stored (the scheduler does not judge), only one is emailed,
    and the inbox shows the same one."""
    env = mail_env
    kept, revoked = await new_peacebuilder(env, "fund"), await new_peacebuilder(env, "fund")
    due = env.clock.now() + timedelta(days=3)
    for pb in (kept, revoked):
        body = await env.gql(MEASURE, {"c": pb["case"], "d": due.isoformat()},
                             as_=("fund", "focal"))
        assert body["data"]["addMeasure"]["userErrors"] == []
    her = await env.peacebuilder_token(revoked["login"])
    assert (await env.gql(REVOKE_ALL, token=her, purpose=None))["data"]["revokeAllConsent"]
    env.clock.set(due - timedelta(hours=23))
    await env.runtime.extras["scheduler"].tick()
    await sent(env)
    items = {case_of(i): i for i in await items_of(env, "fund", "focal", "task_due")}
    assert set(items) == {kept["case"], revoked["case"]}
    assert emailed(env, "focal") == [str(items[kept["case"]].id)]
    inbox = await env.gql("{ inbox { kind payload } }", as_=("fund", "focal"))
    shown = {json.loads(i["payload"])["case"] for i in inbox["data"]["inbox"]
             if i["kind"] == "task_due"}
    assert shown == {ids.encode("Case", items[kept["case"]].case_id)}


async def test_taken_off_the_team_or_the_role_or_deactivated_before_delivery(mail_env):
    """Mail held while the alerts are stored; then the case worker leaves the case team, one
    focal point loses the role and another is deactivated: only what each may still see goes."""
    env = mail_env
    mailer = env.runtime.mailer
    demoted_id, demoted, _ = await new_user(env, "fund", ["FOCAL_POINT"])
    gone_id, gone, _ = await new_user(env, "fund", ["FOCAL_POINT"])
    for name in (demoted, gone):
        await give_address(env, "fund", name)
    pb = await new_peacebuilder(env, "fund")
    host, mailer.host = mailer.host, ""  # held: stored, not yet delivered
    try:
        body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
        assert body["data"]["reportIncident"]["userErrors"] == []
        env.clock.advance(minutes=61)
        await env.runtime.extras["scheduler"].tick()  # escalation to the fund's focal points
    finally:
        mailer.host = host
    held = [(who, kind, await items_of(env, "fund", who, kind))
            for who, kind in (("caseworker", "incident_reported"), ("focal", "incident_reported"),
                              ("focal", "escalation"), (demoted, "escalation"),
                              (gone, "escalation"))]
    assert [len(found) for _, _, found in held] == [1] * 5, held
    assert env.sink.messages == []

    async with env.runtime.db.transaction() as s:
        caseworker = await principals.find_user(s, "fund", "caseworker")
    removed = await env.gql(TEAM, {"c": pb["case"], "m": ids.encode("User", caseworker.id)},
                            as_=("fund", "focal"))
    assert removed["data"]["removeCaseTeamMember"]["userErrors"] == []
    changed = await env.gql(SET_ROLES, {"id": demoted_id, "roles": ["CASEWORKER"]},
                            as_=("fund", "admin"))
    assert changed["data"]["setUserRoles"]["userErrors"] == []
    off = await env.gql(DEACTIVATE_USER, {"id": gone_id}, as_=("fund", "admin"))
    assert off["data"]["deactivateUser"]["user"]["active"] is False

    sent = await mailer.deliver(env.runtime, [str(found[0].id) for _, _, found in held])
    # The focal point still sees the case (consent, role) and still owes the escalation.
    focal = sorted(str(found[0].id) for who, _, found in held if who == "focal")
    assert sent == 2 and sorted(emailed(env, "focal")) == focal
    for who in ("caseworker", demoted, gone):
        assert emailed(env, who) == [], who
