"""Issue 17, "owners who can act": a named person owns a task — her reminders and the overdue
escalation start with her, then her organisation's chain; deactivated, the chain takes over;
only the owner organisation names its people, and a refusal reveals nothing about another
organisation's people. Through GraphQL and the scheduler, both databases, controlled clock."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.clock import FrozenClock
from app.scheduler import run_due
from app.tables.audit import AccessLogEntry
from schema import ids
from tests.conftest import BACKENDS, build_env
from tests.factories import current_assessment
from tests.test_auth import DEACTIVATE_USER, new_user
from tests.test_consent import grant, new_peacebuilder, org_id
from tests.test_email import items_of

pytestmark = pytest.mark.anyio

ADD = """mutation($c: ID!, $o: ID, $p: ID, $d: DateTime) { addMeasure(input: {caseId: $c,
  kind: ACCOMPANIMENT, ownerOrganisationId: $o, ownerUserId: $p, dueAt: $d}) {
  measure { id ownerPerson { id displayName } } userErrors { field message code } } }"""
ASSIGN = """mutation($m: ID!, $p: ID) { assignMeasure(input: {measureId: $m, ownerUserId: $p}) {
  measure { id ownerPerson { id displayName } } userErrors { field message code } } }"""
MEASURES = "query($id: ID!) { case(id: $id) { measures { id ownerPerson { id displayName } } } }"
TIMELINE = "query($id: ID!) { case(id: $id) { timeline { kind subjectId details } } }"
INBOX = "{ inbox { id kind payload } }"


@pytest.fixture(scope="module", params=BACKENDS)
async def owners_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2036, 2, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("owners"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def add(env, pb, *, person=None, owner=None, as_=("fund", "focal"), days=2) -> dict:
    due = env.clock.now() + timedelta(days=days)
    body = await env.gql(ADD, {"c": pb["case"], "o": owner, "p": person, "d": due.isoformat()},
                         as_=as_)
    return body["data"]["addMeasure"]


def about(items, measure: str) -> list:
    raw = str(ids.decode(measure, "Measure"))
    return [i for i in items if (i.payload or {}).get("measure") == raw]


async def test_the_named_owner_is_reminded_and_escalated_to_first(owners_env):
    env = owners_env
    pb = await new_peacebuilder(env, "fund")
    person_id, person, _ = await new_user(env, "fund", ["CASEWORKER"])
    made = await add(env, pb, person=person_id)
    assert made["userErrors"] == []
    measure = made["measure"]["id"]
    assert made["measure"]["ownerPerson"] == {"id": person_id, "displayName": "Test User"}

    env.clock.advance(days=1, minutes=1)  # 24 hours before it falls due: her reminder
    await run_due(env.runtime.db, env.clock)
    assert len(about(await items_of(env, "fund", person, "task_due"), measure)) == 1
    assert about(await items_of(env, "fund", "focal", "task_due"), measure) == []
    # She reads it in her own inbox, though she is not on the case team (IDs only).
    mine = (await env.gql(INBOX, as_=("fund", person)))["data"]["inbox"]
    assert [a["kind"] for a in mine if json.loads(a["payload"]).get("measure") == measure] == [
        "task_due"]

    env.clock.advance(days=1)  # overdue: level 1 is her
    await run_due(env.runtime.db, env.clock)
    [first] = about(await items_of(env, "fund", person, "escalation"), measure)
    assert (first.payload["level"], first.payload["to"]) == (1, "owner")
    assert about(await items_of(env, "fund", "focal", "escalation"), measure) == []
    mine = (await env.gql(INBOX, as_=("fund", person)))["data"]["inbox"]
    assert "escalation" in [a["kind"] for a in mine]

    env.clock.advance(minutes=61)  # her time is up: the organisation's focal points
    await run_due(env.runtime.db, env.clock)
    [second] = about(await items_of(env, "fund", "focal", "escalation"), measure)
    assert (second.payload["level"], second.payload["to"]) == (2, "focal_points")
    assert "owner_person" not in second.payload


async def test_a_deactivated_owner_falls_back_to_the_organisations_chain(owners_env):
    env = owners_env
    pb = await new_peacebuilder(env, "fund")
    person_id, person, _ = await new_user(env, "fund", ["FOCAL_POINT"])
    made = await add(env, pb, person=person_id)
    measure = made["measure"]["id"]
    off = await env.gql(DEACTIVATE_USER, {"id": person_id}, as_=("fund", "admin"))
    assert off["data"]["deactivateUser"]["user"]["active"] is False

    env.clock.advance(days=1, minutes=1)
    await run_due(env.runtime.db, env.clock)
    assert about(await items_of(env, "fund", person, "task_due"), measure) == []
    assert len(about(await items_of(env, "fund", "focal", "task_due"), measure)) == 1

    env.clock.advance(days=1)
    await run_due(env.runtime.db, env.clock)
    assert about(await items_of(env, "fund", person, "escalation"), measure) == []
    [esc] = about(await items_of(env, "fund", "focal", "escalation"), measure)
    assert (esc.payload["level"], esc.payload["to"]) == (2, "focal_points")
    events = (await env.gql(TIMELINE, {"id": pb["case"]}, as_=("fund", "focal"))
              )["data"]["case"]["timeline"]
    mine = [(e["kind"], json.loads(e["details"] or "{}")) for e in events
            if e["subjectId"] == measure]
    assert ("measure.escalation_skipped", {"level": 1, "to": "owner"}) in mine


async def test_only_an_active_person_of_the_owner_organisation_and_nothing_leaks(owners_env):
    env = owners_env
    pb = await new_peacebuilder(env, "fund")
    analyst_id, _, _ = await new_user(env, "fund", ["ANALYST"])
    gone_id, _, _ = await new_user(env, "fund", ["CASEWORKER"])
    await env.gql(DEACTIVATE_USER, {"id": gone_id}, as_=("fund", "admin"))
    other_id, _, _ = await new_user(env, "nhri", ["FOCAL_POINT"])
    nobody = ids.encode("User", uuid.uuid4())
    messages = set()
    for candidate in (analyst_id, gone_id, other_id, nobody, pb["case"]):
        refused = await add(env, pb, person=candidate)
        assert refused["measure"] is None
        [error] = refused["userErrors"]
        assert error["field"] == ["input", "ownerUserId"]
        messages.add(error["message"])
    assert len(messages) == 1, "one answer whatever the ID: nothing about other organisations"
    async with env.runtime.db.transaction() as s:
        denied = list(await s.scalars(select(AccessLogEntry.id).where(
            AccessLogEntry.action == "measure.owner_person", AccessLogEntry.decision == "deny")))
    assert denied

    # The lead organisation cannot name a person of another owner organisation…
    await grant(env, pb, as_=("fund", "focal"), to_org="nhri", categories=["INCIDENT_DETAILS"],
                purposes=["PROTECTION"])
    nhri = await org_id(env, "nhri")
    refused = await add(env, pb, owner=nhri, person=other_id)
    assert refused["userErrors"][0]["message"] in messages
    # …that organisation names its own; the lead sees who (her ID), a third sees nothing.
    made = await add(env, pb, owner=nhri)
    measure = made["measure"]["id"]
    assigned = await env.gql(ASSIGN, {"m": measure, "p": other_id}, as_=("nhri", "focal"))
    assert assigned["data"]["assignMeasure"]["userErrors"] == []
    assert assigned["data"]["assignMeasure"]["measure"]["ownerPerson"] == {
        "id": other_id, "displayName": "Test User"}
    lead = (await env.gql(MEASURES, {"id": pb["case"]}, as_=("fund", "focal")))["data"]
    [seen] = [m for m in lead["case"]["measures"] if m["id"] == measure]
    assert seen["ownerPerson"] == {"id": other_id, "displayName": None}
    stranger = await env.post(ASSIGN, {"m": measure, "p": None}, as_=("fund", "focal"))
    assert stranger.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    cleared = await env.gql(ASSIGN, {"m": measure, "p": None}, as_=("nhri", "focal"))
    assert cleared["data"]["assignMeasure"]["measure"]["ownerPerson"] is None


# --- per person, which channels at which level ----------------------------------------------

ADD_CHANNEL = """mutation($u: String!) { addMyChannel(input: {url: $u, minLevel: 0}) {
  channel { id } userErrors { message } } }"""
SET_LEVELS = """mutation($l: [AlertChannelLevelInput!]!) { setMyAlertChannels(input: {levels: $l}) {
  levels { level inbox email webhookChannelIds chosen } userErrors { field message } } }"""
MY_LEVELS = "{ myAlertChannels { level inbox email webhookChannelIds chosen } }"


@pytest.fixture
async def channels_env(backend, tmp_path, anyio_backend):
    from tests.smtp_sink import SMTPSink
    from tests.webhook_receiver import WebhookReceiver

    sink, receiver = SMTPSink(), WebhookReceiver()
    await sink.start()
    await receiver.start()
    clock = FrozenClock(datetime(2036, 3, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(backend, tmp_path, clock=clock, smtp_host="127.0.0.1",
                                 smtp_port=sink.port, outbox_worker=False,
                                 public_url="https://safety-net.example")
    env.clock, env.sink, env.receiver = clock, sink, receiver
    try:
        yield env
    finally:
        await close()
        await sink.stop()
        await receiver.stop()


async def tick(env) -> None:
    from app.notify import outbox

    await run_due(env.runtime.db, env.clock)
    await outbox.worker(env.runtime).drain()


async def test_each_person_chooses_her_channels_per_level(channels_env):
    """She wants e-mail only at level 2 and her pager only at level 1: the task reminder
    (level 0) reaches her inbox alone, level 1 her pager alone, level 2 her e-mail alone."""
    from app.auth import principals
    from tests.test_email import emailed, give_address

    env = channels_env
    await give_address(env, "fund", "focal")
    async with env.runtime.db.transaction() as s:
        me = ids.encode("User", (await principals.find_user(s, "fund", "focal")).id)
    channel = (await env.gql(ADD_CHANNEL, {"u": env.receiver.url}, as_=("fund", "focal"))
               )["data"]["addMyChannel"]["channel"]["id"]
    before = (await env.gql(MY_LEVELS, as_=("fund", "focal")))["data"]["myAlertChannels"]
    assert before[1] == {"level": 1, "inbox": True, "email": True,
                         "webhookChannelIds": [channel], "chosen": False}, "the defaults"
    wrong = await env.gql(SET_LEVELS, {"l": [{"level": 1, "email": False,
                                              "webhookChannelIds": [ids.encode(
                                                  "Channel", uuid.uuid4())]}]},
                          as_=("fund", "focal"))
    assert wrong["data"]["setMyAlertChannels"]["userErrors"][0]["field"] == [
        "input", "levels", "0", "webhookChannelIds"]
    chosen = await env.gql(SET_LEVELS, {"l": [
        {"level": 0, "email": False, "webhookChannelIds": []},
        {"level": 1, "email": False, "webhookChannelIds": [channel]},
        {"level": 2, "email": True, "webhookChannelIds": []}]}, as_=("fund", "focal"))
    levels = chosen["data"]["setMyAlertChannels"]["levels"]
    assert levels[2] == {"level": 2, "inbox": True, "email": True, "webhookChannelIds": [],
                         "chosen": True}
    assert levels[3]["chosen"] is False and levels[3]["webhookChannelIds"] == [channel]
    # Another person's choice is hers alone: the case worker still has the defaults.
    theirs = (await env.gql(MY_LEVELS, as_=("fund", "caseworker")))["data"]["myAlertChannels"]
    assert not any(level["chosen"] for level in theirs)

    pb = await new_peacebuilder(env, "fund")
    made = await add(env, pb, person=me)
    measure = made["measure"]["id"]
    raw = str(ids.decode(measure, "Measure"))

    def mine(kind: str) -> list:
        return [i for i in env.items if i.kind == kind and i.payload.get("measure") == raw]

    env.clock.advance(days=1, minutes=1)  # the reminder: level 0
    await tick(env)
    env.items = await items_of(env, "fund", "focal", "task_due")
    [reminder] = mine("task_due")
    assert str(reminder.id) not in emailed(env, "focal")
    assert env.receiver.requests == []

    env.clock.advance(days=1)  # level 1: her as the task's owner
    await tick(env)
    env.items = await items_of(env, "fund", "focal", "escalation")
    [one] = mine("escalation")
    assert one.payload["level"] == 1
    assert [json.loads(r.body)["level"] for r in env.receiver.requests] == [1]
    assert str(one.id) not in emailed(env, "focal")

    env.clock.advance(minutes=61)  # level 2: the focal points, her among them
    await tick(env)
    env.items = await items_of(env, "fund", "focal", "escalation")
    two = [i for i in mine("escalation") if i.payload["level"] == 2]
    assert len(two) == 1
    assert str(two[0].id) in emailed(env, "focal")
    assert [json.loads(r.body)["level"] for r in env.receiver.requests] == [1], "no pager at 2"
    async with env.runtime.db.transaction() as s:
        logged = list(await s.scalars(select(AccessLogEntry.details).where(
            AccessLogEntry.action == "notify.alert_channels_set")))
    assert logged and "127.0.0.1" not in json.dumps(logged)


# --- her plain-language view ----------------------------------------------------------------

OVERVIEW = """query($l: String) { me { caseOverview(language: $l) { caseId language lines } } }"""
CLOSE = """mutation($i: CloseCaseInput!) { closeCase(input: $i) { case { status }
  userErrors { field message } } }"""
REFER = """mutation($c: ID!, $o: ID!) { referCase(input: {caseId: $c, toOrganisationId: $o,
  purpose: LEGAL_SUPPORT, request: "Find her a lawyer quickly."}) { referral { id }
  userErrors { message } } }"""


async def test_she_reads_her_case_in_plain_language_and_only_hers(owners_env):
    env = owners_env
    names = {e["node"]["slug"]: e["node"]["name"] for e in (await env.gql(
        "{ organisations(first: 50) { edges { node { slug name } } } }", as_=("fund", "focal"))
    )["data"]["organisations"]["edges"]}
    pb = await new_peacebuilder(env, "fund")
    other = await new_peacebuilder(env, "fund")
    person_id, _, _ = await new_user(env, "fund", ["CASEWORKER"])
    assert (await add(env, pb, person=person_id))["userErrors"] == []
    await grant(env, pb, as_=("fund", "focal"), to_org="nhri", categories=["INCIDENT_DETAILS"],
                purposes=["LEGAL_SUPPORT"])
    await current_assessment(env, pb["case"], "fund", login=pb["login"])
    referred = await env.gql(REFER, {"c": pb["case"], "o": await org_id(env, "nhri")},
                             as_=("fund", "focal"))
    assert referred["data"]["referCase"]["userErrors"] == []
    due = (env.clock.now() + timedelta(days=30)).isoformat()
    closed = await env.gql(CLOSE, {"i": {"caseId": pb["case"], "reason": "RISK_RESOLVED",
                                         "followUp": [{"kind": "PSYCHOSOCIAL_SUPPORT",
                                                       "dueAt": due,
                                                       "description": "Call her monthly."}]}},
                           as_=("fund", "focal"))
    assert closed["data"]["closeCase"]["case"]["status"] == "CLOSED"

    her = await env.peacebuilder_token(pb["login"])
    body = await env.gql(OVERVIEW, {"l": "fr"}, token=her, purpose=None)
    [case] = body["data"]["me"]["caseOverview"]
    assert case["caseId"] == pb["case"] and case["language"] == "fr"
    lines = case["lines"]
    fund, nhri = names["fund"], names["nhri"]
    assert lines[0].startswith("Votre dossier a été clos le") and fund in lines[0]
    assert "Motif de la clôture : le risque est passé." in lines
    assert f"Accompagnement : prévu, par {fund}, pour le " in " ".join(lines)
    assert any(line.startswith("Suivi : Soutien psychosocial") for line in lines)
    assert f"Votre dossier a été transmis à {nhri} pour soutien juridique : " \
           "en attente de réponse." in lines
    assert any("seront effacés le" in line for line in lines)
    text = json.dumps(lines)
    for private in ("Test User", "Call her monthly", "Find her a lawyer", "Threatened"):
        assert private not in text, "codes, dates and organisation names only"
    english = (await env.gql(OVERVIEW, {"l": "xx"}, token=her, purpose=None)
               )["data"]["me"]["caseOverview"][0]
    assert english["language"] == "en" and "Why it was closed: the risk has passed." in english[
        "lines"]
    # Her own cases only; the other woman sees hers, open.
    theirs = (await env.gql(OVERVIEW, {"l": None}, token=await env.peacebuilder_token(
        other["login"]), purpose=None))["data"]["me"]["caseOverview"]
    assert [c["caseId"] for c in theirs] == [other["case"]]
    assert theirs[0]["lines"] == [f"Your case is open: {fund} leads it."]
    staff = await env.gql(OVERVIEW, {"l": None}, as_=("fund", "focal"), purpose=None)
    assert staff["data"]["me"] is None


async def test_row_level_security_keeps_choices_to_her_organisation(owners_env):
    """PostgreSQL, as the service role: a person's channel choices are rows of her organisation
    only, and cannot be moved to another person or organisation in place."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from app.tenancy import using
    from tests.test_rls import _org_tenancy, _rows

    env = owners_env
    if env.backend != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only (SQLite: the app's checks)")
    chosen = await env.gql(SET_LEVELS, {"l": [{"level": 3, "email": False,
                                               "webhookChannelIds": []}]}, as_=("mofa", "focal"))
    assert chosen["data"]["setMyAlertChannels"]["userErrors"] == []
    mofa, fund = await _org_tenancy(env, "mofa"), await _org_tenancy(env, "fund")
    assert await _rows(env, mofa, "SELECT count(*) FROM alert_channel_choices") == [(1,)]
    assert await _rows(env, fund, "SELECT count(*) FROM alert_channel_choices") == [(0,)]
    with pytest.raises(DBAPIError, match="belongs to cannot be changed"):
        with using(mofa):
            async with env.runtime.db.transaction() as s:
                # Another person of her own organisation: the row's owner never changes.
                await s.execute(text("UPDATE alert_channel_choices SET user_id = (SELECT u.id "
                                     "FROM users u WHERE u.id <> alert_channel_choices.user_id "
                                     "LIMIT 1) WHERE level = 3"))
    with pytest.raises(DBAPIError):
        with using(mofa):
            async with env.runtime.db.transaction() as s:
                await s.execute(text("UPDATE alert_channel_choices SET org_id = :o"),
                                {"o": str(fund.org_id)})
