"""Issue 18, attacked as insiders would: her account's lifecycle through the GraphQL API and the
sign-in routes of the real app, on both databases (docs/decisions/0027-her-account-threat-model.md).
Each test is an attack; it passes when the attack fails."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app import tenancy
from app.tables.consent import HerCode
from app.tenancy import SYSTEM as SYSTEM_SCOPE
from tests.conftest import BACKENDS, build_env, unique
from tests.logcapture import service_logs
from tests.test_her_account import (
    ISSUE,
    PASSWORD,
    SUSPEND,
    _confirm_second,
    code_of,
    enrolled,
    issue,
    redeem,
    refused,
    sign_in,
    woman,
)

pytestmark = pytest.mark.anyio

DURESS = """mutation($p: String!, $a: DuressAlert!) { setDuressPassword(input: {password: $p,
  alert: $a}) { set userErrors { field message code } } }"""
ME_SHELL = "{ me { peacebuilder { id pseudonym preferredLanguage createdAt } } }"
REINSTATE = """mutation($id: ID!) { reinstateHerLogin(input: {peacebuilderId: $id}) {
  done confirmationId userErrors { field message code } } }"""


@pytest.fixture(scope="module", params=BACKENDS)
async def clock_env(request, tmp_path_factory, anyio_backend):
    from app.clock import FrozenClock

    clock = FrozenClock(datetime(2033, 5, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("attack18"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


def _sub_of(token: str) -> str:
    """The subject of a bearer token, as anyone holding her phone can decode it."""
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["sub"]


# --- codes --------------------------------------------------------------------------------------

async def test_two_redeems_of_one_code_in_parallel_only_one_wins(clock_env):
    env = clock_env
    pb = await woman(env)
    code = (await issue(env, pb))["code"]
    first, second = await asyncio.gather(
        redeem(env, code, password="the intercepting passphrase", login=unique("thief")),
        redeem(env, code, password=PASSWORD, login=unique("her")),
        return_exceptions=True)
    answers = [r for r in (first, second) if not isinstance(r, BaseException)]
    won = [r for r in answers if r.status_code == 200]
    assert len(won) <= 1, [r.text for r in answers]
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            row = (await s.scalars(select(HerCode).where(
                HerCode.peacebuilder_id == pb["raw"]))).one()
    assert row.status == ("used" if won else "live")


async def test_a_voided_code_stays_refused_after_a_newer_one(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    old = (await issue(env, her))["code"]
    newer = (await issue(env, her))["code"]
    assert (await redeem(env, old, password="stolen old passphrase")).status_code == 400
    assert (await redeem(env, newer, password="her newer passphrase")).status_code == 200
    assert (await redeem(env, newer, password="a second go passphrase")).status_code == 400
    assert (await sign_in(env, her["login"], "her newer passphrase")).status_code == 200


async def test_a_lead_focal_point_never_gets_her_code_alone(clock_env):
    env = clock_env
    pb = await woman(env)
    asked = await issue(env, pb, as_=("unpc", "focal"))
    # Replaying its own unconfirmed request is no code; confirming its own request is refused.
    early = await env.gql(ISSUE, {"i": {"peacebuilderId": pb["id"],
                                        "confirmationId": asked["confirmationId"]}},
                          as_=("unpc", "focal"))
    assert early["data"]["issueHerCode"]["code"] is None
    from tests.factories import CONFIRM_TWO_PERSON

    own = await env.gql(CONFIRM_TWO_PERSON, {"id": asked["confirmationId"]}, as_=("unpc", "focal"))
    assert "confirmTwoPerson" not in json.dumps(own.get("data") or {}) or \
        own["data"]["confirmTwoPerson"]["userErrors"] or own.get("errors"), own
    # A machine client of the lead organisation is no focal point: not found.
    machine = await env.gql(ISSUE, {"i": {"peacebuilderId": pb["id"]}},
                            token=await env.token("unpc", client="unpc-system"))
    assert code_of(machine) in ("NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED"), machine


# --- suspension ---------------------------------------------------------------------------------

async def _lead_suspends(env, her: dict) -> None:
    asked = await env.gql(SUSPEND, {"id": her["id"]}, as_=("unpc", "focal"))
    assert asked["data"]["suspendHerLogin"]["userErrors"] == [], asked
    await _confirm_second(env, "unpc", her["id"], first="focal")


async def test_a_lead_organisation_cannot_chain_suspensions_past_72_hours(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    await _lead_suspends(env, her)
    assert (await sign_in(env, her["login"])).status_code == 401
    # Lapsed after 72 hours: asking again at once would keep her out without her network.
    env.clock.advance(hours=72, minutes=1)
    again = await env.gql(SUSPEND, {"id": her["id"]}, as_=("unpc", "focal"))
    errors = again["data"]["suspendHerLogin"]["userErrors"]
    assert errors and errors[0]["code"] == "CONFLICT", again
    assert (await sign_in(env, her["login"])).status_code == 200
    # Nor by lifting it itself and suspending anew while it is in force.
    env.clock.advance(days=7)
    await _lead_suspends(env, her)
    lift = await env.gql(REINSTATE, {"id": her["id"]}, as_=("unpc", "focal"))
    assert lift["data"]["reinstateHerLogin"]["confirmationId"], lift
    await _confirm_second(env, "unpc", her["id"], first="focal")
    renewed = await env.gql(SUSPEND, {"id": her["id"]}, as_=("unpc", "focal"))
    assert renewed["data"]["suspendHerLogin"]["userErrors"][0]["code"] == "CONFLICT", renewed
    # Her network may always suspend for her.
    by_network = await env.gql(SUSPEND, {"id": her["id"]}, as_=("wpn", "focal"))
    assert by_network["data"]["suspendHerLogin"]["done"] is True, by_network
    assert (await sign_in(env, her["login"])).status_code == 401


async def test_a_suspended_login_cannot_refresh(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    done = await env.gql(SUSPEND, {"id": her["id"]}, as_=("wpn", "focal"))
    assert done["data"]["suspendHerLogin"]["done"] is True
    refreshed = await env.client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": her["refresh"]})
    assert refreshed.status_code in (400, 401)
    assert await refused(env, her["token"])


# --- duress -------------------------------------------------------------------------------------

async def test_a_duress_session_shows_her_own_record_shell(clock_env):
    """Whoever holds her phone decodes the token's subject, and compares what `me` shows with
    what a normal sign-in shows: the decoy must not differ in ID, pseudonym, language or
    registration date, nor change between two requests."""
    env = clock_env
    her = await enrolled(env, await woman(env))
    duress = "my own duress passphrase"
    set_ = await env.gql(DURESS, {"p": duress, "a": "network"}, token=her["token"], purpose=None)
    assert set_["data"]["setDuressPassword"]["set"] is True
    real = await env.gql(ME_SHELL, token=her["token"], purpose=None)
    signed = await sign_in(env, her["login"], duress)
    assert signed.status_code == 200
    token = signed.json()["access_token"]
    assert _sub_of(token) == _sub_of(her["token"])
    first = await env.gql(ME_SHELL, token=token, purpose=None)
    env.clock.advance(minutes=3)
    second = await env.gql(ME_SHELL, token=token, purpose=None)
    assert first == second == real, (first, real)


async def test_no_code_password_or_duress_word_reaches_logs_or_alerts(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    duress = "duress words of hers"
    with service_logs("DEBUG") as captured:
        await env.gql(DURESS, {"p": duress, "a": "both"}, token=her["token"], purpose=None)
        signed = await sign_in(env, her["login"], duress)
        code = (await issue(env, her))["code"]
        wrong = await redeem(env, code[:-1] + ("0" if code[-1] != "0" else "1"))
        same = await redeem(env, code, password=duress)
    assert signed.status_code == 200 and wrong.status_code == 400
    assert same.status_code == 400 and duress not in same.text
    from tests.test_incidents import inbox_of

    alerts = json.dumps([i.payload for i in await inbox_of(env, "wpn", "focal")])
    for secret in (duress, code, code.replace("-", ""), PASSWORD):
        assert secret not in captured.text and secret not in alerts


async def test_one_enrolment_code_cannot_enumerate_login_names(clock_env):
    """The "taken" answer tells whether a woman has that login: each one counts as a try on the
    code, so its holder learns at most a few names before the code locks."""
    env = clock_env
    known = await enrolled(env, await woman(env))
    pb = await woman(env)
    code = (await issue(env, pb))["code"]
    answers = [await redeem(env, code, login=known["login"]) for _ in range(6)]
    taken = [a for a in answers if a.json().get("field") == "login"]
    assert 1 <= len(taken) <= 5, [a.text for a in answers]
    assert answers[-1].json()["error"] == "invalid_grant"  # locked: the generic answer
    assert (await redeem(env, code, login=unique("her"))).status_code == 400
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            row = (await s.scalars(select(HerCode).where(
                HerCode.peacebuilder_id == pb["raw"]))).one()
    assert row.status == "locked"


# --- the hold after a reset -----------------------------------------------------------------------

APPROVE = """mutation($pb: ID, $o: ID!) { recordApproval(act: "public_statement",
  peacebuilderId: $pb, organisationId: $o, description: "a statement about her work") {
  approval { id act status } userErrors { message } } }"""
MY_APPROVALS = "{ me { approvals { id } } }"


async def test_whoever_redeemed_a_code_cannot_approve_a_public_act_during_the_hold(clock_env):
    """Signed in with a code-set password, the code's issuer could approve a public statement
    about her (the most exposing act there is): during the hold only her network records it."""
    from tests.test_consent import org_id

    env = clock_env
    her = await enrolled(env, await woman(env))
    fund = await org_id(env, "fund")
    asked = await env.gql(APPROVE, {"o": fund}, token=her["token"], purpose=None)
    assert asked["data"]["recordApproval"]["approval"] is None, asked
    assert asked["data"]["recordApproval"]["userErrors"], asked
    mine = await env.gql(MY_APPROVALS, token=her["token"], purpose=None)
    assert mine["data"]["me"]["approvals"] == []
    # Her network may record it for her; after the hold, she may herself.
    for_her = await env.gql(APPROVE, {"pb": her["id"], "o": fund}, as_=("wpn", "focal"))
    assert for_her["data"]["recordApproval"]["approval"], for_her
    env.clock.advance(days=7, minutes=1)
    later = (await sign_in(env, her["login"])).json()["access_token"]
    own = await env.gql(APPROVE, {"o": fund}, token=later, purpose=None)
    assert own["data"]["recordApproval"]["approval"], own


async def test_a_duress_session_setting_a_duress_password_looks_done_and_changes_nothing(
        clock_env):
    """A coercer who knows the feature tries to set a duress password from the session she
    opened: the answer must be a normal session's, and her own duress words keep alerting."""
    from tests.test_incidents import inbox_of, inbox_since

    env = clock_env
    her = await enrolled(env, await woman(env))
    duress = "her real duress words"
    normal = await env.gql(DURESS, {"p": duress, "a": "network"}, token=her["token"],
                           purpose=None)
    token = (await sign_in(env, her["login"], duress)).json()["access_token"]
    tried = await env.gql(DURESS, {"p": "coercer chosen words", "a": "lead"}, token=token,
                          purpose=None)
    assert json.dumps(tried, sort_keys=True) == json.dumps(normal, sort_keys=True), tried
    # Nothing changed: her words still open the decoy and alert her network, not the lead.
    assert (await sign_in(env, her["login"], "coercer chosen words")).status_code == 401
    before = await inbox_of(env, "wpn", "focal")
    assert (await sign_in(env, her["login"], duress)).status_code == 200
    kinds = [i.kind for i in await inbox_since(env, "wpn", "focal", before)]
    assert "her_duress_sign_in" in kinds


# --- an open subscription ------------------------------------------------------------------------

NOTICE_FEED = "subscription { myNotices { id kind } }"


@pytest.mark.parametrize("backend_name", BACKENDS)
async def test_an_open_subscription_stops_at_the_next_message_once_suspended(
        tmp_path, backend_name):
    """Whoever holds her seized phone keeps its socket open: once her network suspends her
    login, the next message closes it (4401) on another instance, and delivers nothing."""
    import contextlib
    from dataclasses import replace

    import websockets

    from app.runtime import Runtime
    from tests.conftest import require_pg
    from tests.test_realtime import REDIS_URL, require_redis, serve

    if backend_name == "postgresql":
        require_pg()
    await require_redis()
    env, close = await build_env(backend_name, tmp_path, redis_url=REDIS_URL)
    other = Runtime.create(replace(env.settings, scheduler=False, log_worker=False))
    try:
        her = await enrolled(env, await woman(env))
        async with serve(other) as port:
            async with websockets.connect(f"ws://127.0.0.1:{port}/graphql",
                                          subprotocols=["graphql-transport-ws"]) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": {
                    "authorization": f"Bearer {her['token']}"}}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                          "payload": {"query": NOTICE_FEED}}))
                await asyncio.sleep(0.3)
                done = await env.gql(SUSPEND, {"id": her["id"]}, as_=("wpn", "focal"))
                assert done["data"]["suspendHerLogin"]["done"] is True
                got: list[dict] = []
                with contextlib.suppress(websockets.ConnectionClosed):
                    async with asyncio.timeout(10):
                        async for raw in ws:
                            got.append(json.loads(raw))
                assert ws.close_code == 4401, (ws.close_code, got)
                assert not [m for m in got if m.get("type") == "next"], got
    finally:
        await other.close()
        await close()


HISTORY = """query($pb: ID) { accessHistory(peacebuilderId: $pb, first: 100) {
  edges { node { description decision } } } }"""
AUDIT = "{ accessLog(first: 100) { edges { node { action targetId details } } } }"


async def test_no_history_or_audit_view_of_an_organisation_shows_a_duress_sign_in(clock_env):
    """Whoever later makes her open her real account, and any organisation she did not choose
    to alert, must find no trace of the duress session in what they can read (decision 0027)."""
    from tests.test_consent import GRANT, org_id

    env = clock_env
    her = await enrolled(env, await woman(env))
    duress = "duress words again"
    await env.gql(DURESS, {"p": duress, "a": "network"}, token=her["token"], purpose=None)
    token = (await sign_in(env, her["login"], duress)).json()["access_token"]
    await env.gql(GRANT, {"input": {
        "peacebuilderId": her["id"], "categories": ["INCIDENT_DETAILS"],
        "purposes": ["PROTECTION"], "recipientOrganisationId": await org_id(env, "mofa")}},
        token=token, purpose=None)
    real = (await sign_in(env, her["login"])).json()["access_token"]
    seen = [await env.gql(HISTORY, {}, token=real, purpose=None),
            await env.gql(HISTORY, {"pb": her["id"]}, as_=("wpn", "focal")),
            await env.gql(AUDIT, as_=("nhri", "auditor"))]
    for body in seen:
        assert "errors" not in body, body
        assert "duress" not in json.dumps(body).lower(), body
