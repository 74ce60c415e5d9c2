"""Her account's lifecycle, through GraphQL and the sign-in endpoints on both databases: one-time
codes (single use, expiry, a lock after wrong tries, two people at her lead organisation), every
reset ending her sessions, the hold on widening after a reset, her TOTP, suspension (on another
app instance at the next request; a lead organisation's lapsing after 72 hours; her network
still revoking for her), signing out everywhere, the duress password, and no secret in any log
(docs/decisions/0027-her-account-threat-model.md)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from app import tenancy
from app.auth import totp
from app.runtime import Runtime
from app.tables.audit import AccessLogEntry
from app.tables.consent import HerCode, PeacebuilderAccount
from app.tenancy import SYSTEM as SYSTEM_SCOPE
from schema import ids
from schema.server import create_app
from tests.conftest import BACKENDS, build_env, unique
from tests.factories import CONFIRM_TWO_PERSON, INTAKE
from tests.logcapture import service_logs
from tests.test_consent import CONFIRM_NETWORK, CREATE_PB, GRANT, REVOKE, org_id
from tests.test_incidents import inbox_of, inbox_since

pytestmark = pytest.mark.anyio

ISSUE = """mutation($i: IssueHerCodeInput!) { issueHerCode(input: $i) {
  code expiresAt purpose confirmationId userErrors { field message code } } }"""
SUSPEND = """mutation($id: ID!) { suspendHerLogin(input: {peacebuilderId: $id}) {
  done confirmationId userErrors { field message code } } }"""
REINSTATE = """mutation($id: ID!) { reinstateHerLogin(input: {peacebuilderId: $id}) {
  done confirmationId userErrors { field message code } } }"""
EVERYWHERE = """mutation { signOutEverywhere { sessionsEnded userErrors { message code } } }"""
DURESS = """mutation($p: String!, $a: DuressAlert!) { setDuressPassword(input: {password: $p,
  alert: $a}) { set userErrors { field message code } } }"""
ME = """{ me { peacebuilder { pseudonym } cases { id } notices { kind } approvals { id }
  consentGrants { id } networks { id } dataRequests { id } } }"""
NOTICES = "{ me { notices { kind } } }"
MY_GRANTS = "{ me { consentGrants { id status awaiting } } }"
START_TOTP = "mutation { startTotpEnrolment { secret otpauthUri userErrors { message code } } }"
CONFIRM_TOTP = """mutation($c: String!) { confirmTotpEnrolment(input: {code: $c}) {
  enrolled userErrors { message code } } }"""
CONFIRM_CONSENT = """mutation($id: ID!) { confirmConsent(input: {grantId: $id}) {
  grant { id status awaiting } userErrors { field message code } } }"""
PASSWORD = "a long passphrase of hers"


@pytest.fixture(scope="module", params=BACKENDS)
async def clock_env(request, tmp_path_factory, anyio_backend):
    from app.clock import FrozenClock

    clock = FrozenClock(datetime(2033, 5, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("account"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def woman(env) -> dict:
    """A woman registered by unpc, her network wpn confirmed by two unpc focal points; no login."""
    wpn = await org_id(env, "wpn")
    created = await env.gql(CREATE_PB, {"input": {
        "pseudonym": unique("pb"), "networkIds": [wpn],
        "intakeConsent": {**INTAKE, "categories": ["INCIDENT_DETAILS"]}}},
        as_=("unpc", "caseworker"))
    assert created["data"]["createPeacebuilder"]["userErrors"] == [], created
    pb = created["data"]["createPeacebuilder"]["peacebuilder"]["id"]
    asked = await env.gql(CONFIRM_NETWORK, {"pb": pb, "n": wpn}, as_=("unpc", "focal"))
    link = asked["data"]["confirmNetwork"]["link"]["id"]
    await _confirm_second(env, "unpc", link, first="focal")
    return {"id": pb, "raw": ids.decode(pb, "Peacebuilder")}


async def _confirm_second(env, org: str, target: str, *, first: str) -> dict:
    from tests.factories import pending_confirmation, second_of

    confirmer = second_of(first)
    confirmation = await pending_confirmation(env, org, target, as_user=confirmer)
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=(org, confirmer))
    assert body["data"]["confirmTwoPerson"]["userErrors"] == [], body
    return body


async def issue(env, pb: dict, as_=("wpn", "focal"), **extra) -> dict:
    body = await env.gql(ISSUE, {"i": {"peacebuilderId": pb["id"], **extra}}, as_=as_)
    payload = body["data"]["issueHerCode"]
    assert payload["userErrors"] == [], body
    return payload


async def redeem(env, code: str, password: str = PASSWORD, login: str | None = None,
                 client: httpx.AsyncClient | None = None) -> httpx.Response:
    body = {"code": code, "password": password, **({"login": login} if login else {})}
    return await (client or env.client).post("/auth/redeem-code", json=body)


async def sign_in(env, login: str, password: str = PASSWORD, totp_code: str | None = None,
                  client: httpx.AsyncClient | None = None) -> httpx.Response:
    body = {"login": login, "password": password,
            **({"totp": totp_code} if totp_code else {})}
    return await (client or env.client).post("/auth/login", json=body)


async def enrolled(env, pb: dict) -> dict:
    """She holds a login, enrolled with a code her network issued; signed in."""
    login = unique("her")
    code = (await issue(env, pb))["code"]
    done = await redeem(env, code, login=login)
    assert done.status_code == 200, done.text
    signed = await sign_in(env, login)
    assert signed.status_code == 200, signed.text
    return {**pb, "login": login, "token": signed.json()["access_token"],
            "refresh": signed.json()["refresh_token"]}


def code_of(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"] if body.get("errors") else ""


async def refused(env, token: str, client: httpx.AsyncClient | None = None) -> bool:
    """The token is refused (HTTP 401, UNAUTHENTICATED) at this request."""
    response = await (client or env.client).post(
        "/graphql", json={"query": NOTICES}, headers={"authorization": f"Bearer {token}"})
    return response.status_code == 401 and code_of(response.json()) == "UNAUTHENTICATED"


# --- codes --------------------------------------------------------------------------------------

async def test_enrolment_code_is_single_use_and_expires(clock_env):
    env = clock_env
    pb = await woman(env)
    before = await inbox_of(env, "wpn", "focal2")
    issued = await issue(env, pb)
    assert issued["purpose"] == "enrolment" and len(issued["code"].replace("-", "")) == 28
    # Stored only hashed: no column holds the code or its secret part.
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            row = (await s.scalars(select(HerCode).where(
                HerCode.peacebuilder_id == pb["raw"]))).one()
    secret = issued["code"].replace("-", "")[8:]
    assert secret not in json.dumps({c: str(getattr(row, c)) for c in row.__table__.columns.keys()})
    login = unique("her")
    first = await redeem(env, issued["code"].lower(), login=login)  # any case works
    assert first.status_code == 200 and first.json()["purpose"] == "enrolment", first.text
    again = await redeem(env, issued["code"], password="another long passphrase")
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # Only the password she chose signs in; she is told on her first sign-in; her network too.
    assert (await sign_in(env, login, "another long passphrase")).status_code == 401
    signed = await sign_in(env, login)
    assert signed.status_code == 200
    told = await env.gql(NOTICES, token=signed.json()["access_token"], purpose=None)
    assert "enrolment_code_issued" in [n["kind"] for n in told["data"]["me"]["notices"]]
    kinds = [i.kind for i in await inbox_since(env, "wpn", "focal2", before)]
    assert "her_code_issued" in kinds and "her_password_set" in kinds
    # A reset code past its lifetime (72 hours by default) no longer works.
    late = await issue(env, pb)
    assert late["purpose"] == "reset"
    env.clock.advance(hours=72, minutes=1)
    expired = await redeem(env, late["code"], password="a third long passphrase")
    assert expired.status_code == 400
    assert (await sign_in(env, login)).status_code == 200  # her password is unchanged


async def test_wrong_tries_lock_the_code(clock_env):
    env = clock_env
    pb = await woman(env)
    code = (await issue(env, pb))["code"]
    plain = code.replace("-", "")
    wrong = plain[:8] + ("0" if plain[8] != "0" else "1") + plain[9:]
    for _ in range(5):
        refused = await redeem(env, wrong, login=unique("her"))
        assert refused.status_code == 400
    # Locked: the right code no longer works either (counted in the database, per code).
    assert (await redeem(env, code, login=unique("her"))).status_code == 400
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            row = (await s.scalars(select(HerCode).where(
                HerCode.peacebuilder_id == pb["raw"]))).one()
    assert (row.attempts, row.status) == (5, "locked")


async def test_lead_organisation_issues_a_code_only_with_two_people(clock_env):
    env = clock_env
    pb = await woman(env)
    asked = await issue(env, pb, as_=("unpc", "focal"))
    assert asked["code"] is None and asked["confirmationId"]
    await _confirm_second(env, "unpc", pb["id"], first="focal")
    # The one who asked never sees it; the second person, who confirmed, does (once).
    by_asker = await env.gql(ISSUE, {"i": {"peacebuilderId": pb["id"],
                                           "confirmationId": asked["confirmationId"]}},
                             as_=("unpc", "focal"))
    assert code_of(by_asker) == "FORBIDDEN"
    shown = await issue(env, pb, as_=("unpc", "focal2"), confirmationId=asked["confirmationId"])
    assert shown["code"]
    twice = await env.gql(ISSUE, {"i": {"peacebuilderId": pb["id"],
                                        "confirmationId": asked["confirmationId"]}},
                          as_=("unpc", "focal2"))
    assert twice["data"]["issueHerCode"]["code"] is None
    assert twice["data"]["issueHerCode"]["userErrors"][0]["code"] == "CONFLICT"
    # Another organisation gets nothing, as for a record that does not exist.
    foreign = await env.gql(ISSUE, {"i": {"peacebuilderId": pb["id"]}}, as_=("mofa", "focal"))
    assert code_of(foreign) == "NOT_FOUND"


async def test_a_reset_ends_all_her_sessions_and_tells_her(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    assert (await env.gql(NOTICES, token=her["token"], purpose=None)).get("errors") is None
    reset = await issue(env, her)
    assert reset["purpose"] == "reset"
    assert (await redeem(env, reset["code"], password="her new long passphrase")).status_code == 200
    # Her old access token and refresh token stop working at once.
    assert await refused(env, her["token"])
    refreshed = await env.client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": her["refresh"]})
    assert refreshed.status_code == 400
    signed = await sign_in(env, her["login"], "her new long passphrase")
    told = await env.gql(NOTICES, token=signed.json()["access_token"], purpose=None)
    assert "password_reset" in [n["kind"] for n in told["data"]["me"]["notices"]]


# --- the hold after a reset ----------------------------------------------------------------------

async def _grant_to(env, token: str, pb: dict, org: str) -> dict:
    body = await env.gql(GRANT, {"input": {
        "peacebuilderId": pb["id"], "categories": ["INCIDENT_DETAILS"],
        "purposes": ["PROTECTION"], "recipientOrganisationId": await org_id(env, org)}},
        token=token, purpose=None)
    assert body["data"]["grantConsent"]["userErrors"] == [], body
    return body["data"]["grantConsent"]["grant"]


async def test_widening_is_held_after_a_reset_until_her_network_confirms(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    before = await inbox_of(env, "wpn", "focal")
    held = await _grant_to(env, her["token"], her, "mofa")
    assert held["status"] == "PENDING"
    mine = await env.gql(MY_GRANTS, token=her["token"], purpose=None)
    assert {"id": held["id"], "status": "PENDING", "awaiting": "HER_NETWORK"} in \
        mine["data"]["me"]["consentGrants"]
    # Her network is asked; its confirmation brings it into force.
    assert "her_consent_held" in [i.kind for i in await inbox_since(env, "wpn", "focal", before)]
    confirmed = await env.gql(CONFIRM_CONSENT, {"id": held["id"]}, as_=("wpn", "focal"))
    assert confirmed["data"]["confirmConsent"]["grant"]["status"] == "LIVE", confirmed
    # Narrowing (a revocation) applies at once, hold or not.
    revoked = await env.gql(REVOKE, {"id": held["id"]}, token=her["token"], purpose=None)
    assert revoked["data"]["revokeConsent"]["grant"]["status"] == "REVOKED", revoked
    # After the hold (7 days), what she grants is in force at once.
    env.clock.advance(days=7, minutes=1)
    fresh = await sign_in(env, her["login"])
    later = await _grant_to(env, fresh.json()["access_token"], her, "fund")
    assert later["status"] == "LIVE"


# --- her second factor ---------------------------------------------------------------------------

async def test_totp_is_required_at_sign_in_once_enrolled(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    started = await env.gql(START_TOTP, token=her["token"], purpose=None)
    secret = started["data"]["startTotpEnrolment"]["secret"]
    assert secret and started["data"]["startTotpEnrolment"]["userErrors"] == []
    now_code = totp.code_at(secret, totp.step_of(time.time()))
    done = await env.gql(CONFIRM_TOTP, {"c": now_code}, token=her["token"], purpose=None)
    assert done["data"]["confirmTotpEnrolment"]["enrolled"] is True, done
    assert (await sign_in(env, her["login"])).status_code == 401
    assert (await sign_in(env, her["login"], totp_code="000000")).status_code == 401
    fresh = totp.code_at(secret, totp.step_of(time.time()) + 1)  # unused step (window +1)
    signed = await sign_in(env, her["login"], totp_code=fresh)
    assert signed.status_code == 200, signed.text


# --- suspension ---------------------------------------------------------------------------------

@pytest.fixture
async def second_instance(clock_env) -> AsyncIterator[httpx.AsyncClient]:
    """Another app instance on the same database: its own runtime, pools and caches."""
    from app.tenancy import SYSTEM as TEST_SETUP

    runtime = Runtime.create(clock_env.settings, clock=clock_env.clock,
                             tenancy_fallback=TEST_SETUP)
    app = create_app(runtime)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://other")
    try:
        yield client
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await runtime.close()


async def _gql_on(client: httpx.AsyncClient, query: str, token: str, variables=None) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_suspended_login_is_refused_on_the_next_request_on_another_instance(
        clock_env, second_instance):
    env = clock_env
    her = await enrolled(env, await woman(env))
    assert (await _gql_on(second_instance, NOTICES, her["token"])).get("errors") is None
    done = await env.gql(SUSPEND, {"id": her["id"]}, as_=("wpn", "focal"))
    assert done["data"]["suspendHerLogin"] == {"done": True, "confirmationId": None,
                                               "userErrors": []}
    # The very next request on the other instance is refused; so is signing in anywhere.
    assert await refused(env, her["token"], second_instance)
    sessionless = await env.peacebuilder_token(her["login"])
    assert await refused(env, sessionless, second_instance)
    assert (await sign_in(env, her["login"], client=second_instance)).status_code == 401
    # Her network is told, and she is (her notice, read once she is back).
    assert "her_login_suspended" in [i.kind for i in await inbox_of(env, "wpn", "focal2")]
    back = await env.gql(REINSTATE, {"id": her["id"]}, as_=("wpn", "focal"))
    assert back["data"]["reinstateHerLogin"]["done"] is True
    signed = await sign_in(env, her["login"], client=second_instance)
    assert signed.status_code == 200
    told = await _gql_on(second_instance, NOTICES, signed.json()["access_token"])
    assert "login_suspended" in [n["kind"] for n in told["data"]["me"]["notices"]]


async def test_a_lead_suspension_lapses_after_72_hours_and_her_network_still_revokes(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    env.clock.advance(days=8)  # past the hold: her grant is in force at once
    her_token = (await sign_in(env, her["login"])).json()["access_token"]
    live = await _grant_to(env, her_token, her, "embassy")
    assert live["status"] == "LIVE"
    asked = await env.gql(SUSPEND, {"id": her["id"]}, as_=("unpc", "focal"))
    assert asked["data"]["suspendHerLogin"]["done"] is False
    assert (await sign_in(env, her["login"])).status_code == 200  # one person alone: nothing yet
    await _confirm_second(env, "unpc", her["id"], first="focal")
    assert (await sign_in(env, her["login"])).status_code == 401
    # Suspended, her network still revokes for her.
    revoked = await env.gql(REVOKE, {"id": live["id"]}, as_=("wpn", "focal"))
    assert revoked["data"]["revokeConsent"]["grant"]["status"] == "REVOKED", revoked
    env.clock.advance(hours=71)
    assert (await sign_in(env, her["login"])).status_code == 401
    env.clock.advance(hours=1, minutes=1)
    assert (await sign_in(env, her["login"])).status_code == 200  # lapsed, unconfirmed


# --- quick exit and duress ------------------------------------------------------------------------

async def test_sign_out_everywhere_ends_all_her_sessions(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    other = await sign_in(env, her["login"])
    ended = await env.gql(EVERYWHERE, token=her["token"], purpose=None)
    assert ended["data"]["signOutEverywhere"] == {"sessionsEnded": 2, "userErrors": []}
    for token in (her["token"], other.json()["access_token"]):
        assert await refused(env, token)
    refreshed = await env.client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": other.json()["refresh_token"]})
    assert refreshed.status_code == 400


async def test_duress_sign_in_shows_nothing_and_alerts_whom_she_chose(clock_env):
    env = clock_env
    her = await enrolled(env, await woman(env))
    duress = "my duress passphrase"
    env.clock.advance(days=8)
    her_token = (await sign_in(env, her["login"])).json()["access_token"]
    await _grant_to(env, her_token, her, "nhri")
    chosen = await env.gql(DURESS, {"p": duress, "a": "network"}, token=her_token, purpose=None)
    assert chosen["data"]["setDuressPassword"] == {"set": True, "userErrors": []}
    real = await env.gql(ME, token=her_token, purpose=None)
    assert real["data"]["me"]["consentGrants"] and real["data"]["me"]["notices"]
    network_before = await inbox_of(env, "wpn", "focal")
    lead_before = await inbox_of(env, "unpc", "focal")
    signed = await sign_in(env, her["login"], duress)
    assert signed.status_code == 200
    assert set(signed.json()) == set((await sign_in(env, her["login"])).json())
    token = signed.json()["access_token"]
    shown = await env.gql(ME, token=token, purpose=None)
    assert "errors" not in shown, shown
    me = shown["data"]["me"]
    # The shell of her record as a normal sign-in shows it (tests/test_attack_18.py), nothing in it.
    assert me["peacebuilder"]["pseudonym"] == \
        real["data"]["me"]["peacebuilder"]["pseudonym"]
    assert all(me[k] == [] for k in ("cases", "notices", "approvals", "consentGrants",
                                     "networks", "dataRequests"))
    # A grant asked for under duress looks recorded, and is not.
    faked = await env.gql(GRANT, {"input": {
        "peacebuilderId": her["id"], "categories": ["INCIDENT_DETAILS"],
        "purposes": ["PROTECTION"], "recipientOrganisationId": await org_id(env, "mofa")}},
        token=token, purpose=None)
    assert faked["data"]["grantConsent"]["userErrors"] == []
    assert faked["data"]["grantConsent"]["grant"]["status"] == "PENDING"
    after = await env.gql(ME, token=her_token, purpose=None)
    assert len(after["data"]["me"]["consentGrants"]) == len(real["data"]["me"]["consentGrants"])
    # Her network (whom she chose) is alerted; her lead organisation is not.
    alerts = [i for i in await inbox_since(env, "wpn", "focal", network_before)
              if i.kind == "her_duress_sign_in"]
    assert alerts and alerts[0].payload == {"peacebuilder": str(her["raw"])}
    assert "her_duress_sign_in" not in [i.kind for i in
                                        await inbox_since(env, "unpc", "focal", lead_before)]
    # Logged as such, for auditors; the duress session's own view holds nothing of it.
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            logged = list(await s.scalars(select(AccessLogEntry).where(
                AccessLogEntry.action == "auth.login.duress",
                AccessLogEntry.target_id == str(her["raw"]))))
    assert logged and logged[0].details["alert"] == "network"


# --- no secret anywhere -------------------------------------------------------------------------

async def test_no_code_or_password_in_logs_errors_or_the_access_log(clock_env):
    env = clock_env
    pb = await woman(env)
    login = unique("her")
    with service_logs("DEBUG") as captured:
        issued = await issue(env, pb)
        wrong = issued["code"][:-1] + ("0" if issued["code"][-1] != "0" else "1")
        refused = await redeem(env, wrong, login=login)
        short = await redeem(env, issued["code"], password="short", login=login)
        done = await redeem(env, issued["code"], login=login)
        signed = await sign_in(env, login)
        bad = await sign_in(env, login, "wrong " + PASSWORD)
        token = signed.json()["access_token"]
        duress = "my very own duress words"
        await env.gql(DURESS, {"p": duress, "a": "both"}, token=token, purpose=None)
    assert done.status_code == 200 and bad.status_code == 401
    secrets_ = [issued["code"], issued["code"].replace("-", ""), wrong, PASSWORD, duress]
    answers = refused.text + short.text + bad.text
    with tenancy.using(SYSTEM_SCOPE):
        async with env.runtime.db.transaction() as s:
            entries = list(await s.scalars(select(AccessLogEntry).where(
                AccessLogEntry.target_id == str(pb["raw"]))))
            account = (await s.scalars(select(PeacebuilderAccount).where(
                PeacebuilderAccount.peacebuilder_id == pb["raw"]))).one()
    log_text = json.dumps([[e.action, e.reason, e.details] for e in entries])
    assert "her.code.issue" in log_text and "her.code.redeem" in log_text
    for secret in secrets_:
        assert secret not in captured.text
        assert secret not in answers
        assert secret not in log_text
    assert account.duress_hash and duress not in account.duress_hash


async def test_cli_suspends_and_reinstates_her_login_for_pilots(clock_env, capsys):
    from app.cli import her_login

    env = clock_env
    her = await enrolled(env, await woman(env))
    assert await her_login(env.settings, "suspend", str(her["raw"])) == 0
    assert "suspended" in capsys.readouterr().out
    assert await refused(env, her["token"])
    assert (await sign_in(env, her["login"])).status_code == 401
    assert await her_login(env.settings, "reinstate", str(her["raw"])) == 0
    assert (await sign_in(env, her["login"])).status_code == 200
    assert await her_login(env.settings, "suspend", "not-a-uuid") == 2
    # Issued at the console: shown once on stdout, a reset (she has a password).
    assert await her_login(env.settings, "issue-code", str(her["raw"])) == 0
    assert "reset code (shown once" in capsys.readouterr().out
