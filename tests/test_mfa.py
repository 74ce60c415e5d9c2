"""TOTP second factor, mandatory for focal points, admins and auditors; step-up (a recent second
factor) for break-glass, exports and consent changes by anyone but her."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from app.auth import principals, totp
from app.tables.audit import AccessLogEntry
from app.tables.consent import ConsentGrant
from app.tables.orgs import Organisation
from app.tables.peacebuilders import Peacebuilder
from schema import ids
from tests.conftest import Env
from tests.test_auth import (
    CONFIRM_TOTP,
    LOGIN_FAILED,
    START_TOTP,
    VIEWER,
    codes,
    enrol_totp,
    enrolment_code,
    login,
    login_token,
    new_user,
    totp_now,
)
from tests.test_consent import EXTEND, GRANT, NARROW, REVOKE, grant, new_peacebuilder, org_id

pytestmark = pytest.mark.anyio

CASES = "{ cases(first: 1) { totalCount } }"
REVOKE_ALL = """mutation($id: ID) { revokeAllConsent(input: {peacebuilderId: $id}) {
  revoked { id } userErrors { message } } }"""
OPEN_GLASS = """mutation($id: ID!) { openBreakGlass(input: {peacebuilderId: $id, hours: 2,
  reason: "Credible threat tonight; her network cannot reach her."}) {
  breakGlass { id } userErrors { message } } }"""
RESET_TOTP = """mutation($id: ID!) { resetUserTotp(input: {userId: $id}) {
  user { username } userErrors { message } } }"""


async def token_as(env: Env, org: str, user: str, *, acr: str, age: float = 0) -> str:
    """A token of a demo person, signed in `age` seconds ago with `acr`."""
    async with env.runtime.db.transaction() as session:
        found = await principals.find_user(session, org, user)
        assert found is not None
        subject, org_uuid = found.subject, found.org_id
    return env.runtime.issuer.issue(subject=subject, org_id=str(org_uuid), acr=acr,
                                    now=time.time() - age)[0]


@contextmanager
def configured(env: Env, **changes: Any) -> Iterator[None]:
    """Settings the edge reads per request (step-up, MFA roles), changed for one test."""
    before = env.runtime.settings
    env.runtime.settings = replace(before, **changes)
    try:
        yield
    finally:
        env.runtime.settings = before


def claims(env: Env, token: str) -> dict[str, Any]:
    return env.runtime.issuer.verify(token).raw


async def denials(env: Env, action: str) -> list[AccessLogEntry]:
    async with env.runtime.db.transaction() as session:
        return list(await session.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == action, AccessLogEntry.decision == "deny",
            AccessLogEntry.reason == "step-up required")))


# --- TOTP itself ---------------------------------------------------------------------------------

def test_totp_matches_rfc_6238_test_vectors():
    secret = base64.b32encode(b"12345678901234567890").decode()
    for at, expected in ((59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"),
                         (2000000000, "69279037"), (20000000000, "65353130")):
        assert totp.code_at(secret, totp.step_of(at), digits=8) == expected


def test_totp_window_and_format():
    secret = totp.new_secret()
    now = 1_700_000_000.0
    step = totp.step_of(now)
    for drift in (-1, 0, 1):
        assert totp.matching_step(secret, totp.code_at(secret, step + drift), now) == step + drift
    assert totp.matching_step(secret, totp.code_at(secret, step + 2), now) is None
    assert totp.matching_step(secret, "12 34", now) is None
    assert totp.matching_step(secret, "abcdef", now) is None
    uri = totp.provisioning_uri(secret, account="mofa/focal", issuer="Safety Net")
    assert uri.startswith("otpauth://totp/Safety%20Net%3Amofa%2Ffocal?secret=" + secret)


# --- enrolment and login ----------------------------------------------------------------------

async def test_focal_point_must_enrol_then_sign_in_with_a_code(env):
    gid, username, password = await new_user(env, "embassy", ["FOCAL_POINT"])
    first = await login(env, "embassy", username, password)
    assert first.status_code == 200 and first.json()["mfa_enrolment_required"] is True
    pending = first.json()["access_token"]
    assert claims(env, pending)["acr"] == "pwd"
    # Until she enrols, the token shows who she is and nothing else.
    assert (await env.gql(VIEWER, token=pending))["data"]["viewer"]["roles"] == []
    refused = await env.gql(CASES, token=pending)
    assert codes(refused) == ["MFA_ENROLMENT_REQUIRED"]
    # The password alone does not enrol: her one-time code (issued by two people) does.
    alone = (await env.gql(START_TOTP, token=pending))["data"]["startTotpEnrolment"]
    assert alone["secret"] is None
    assert alone["userErrors"][0]["field"] == ["input", "enrolmentCode"]
    code = await enrolment_code(env, "embassy", gid)
    started = (await env.gql(START_TOTP, {"code": code}, token=pending))["data"][
        "startTotpEnrolment"]
    secret = started["secret"]
    assert started["otpauthUri"].startswith("otpauth://totp/Safety%20Net%3Aembassy%2F")
    bad = await env.gql(CONFIRM_TOTP, {"code": "000000" if totp_now(secret) != "000000"
                                       else "111111"}, token=pending)
    assert bad["data"]["confirmTotpEnrolment"]["enrolled"] is False
    confirmed = await env.gql(CONFIRM_TOTP, {"code": totp_now(secret)}, token=pending)
    assert confirmed["data"]["confirmTotpEnrolment"] == {"enrolled": True, "userErrors": []}
    # Now every failure looks the same: no code, a wrong code, a replayed code.
    for code in (None, "123456" if totp_now(secret, 1) != "123456" else "654321"):
        body = {"organisation": "embassy", "username": username, "password": password}
        if code:
            body["totp"] = code
        failed = await env.client.post("/auth/login", json=body)
        assert failed.status_code == 401 and failed.json() == LOGIN_FAILED
    code = totp_now(secret, 1)
    ok = await env.client.post("/auth/login", json={
        "organisation": "embassy", "username": username, "password": password, "totp": code})
    assert ok.status_code == 200 and "mfa_enrolment_required" not in ok.json()
    token = ok.json()["access_token"]
    assert claims(env, token)["acr"] == "mfa"
    assert abs(claims(env, token)["auth_time"] - time.time()) < 60
    replayed = await env.client.post("/auth/login", json={
        "organisation": "embassy", "username": username, "password": password, "totp": code})
    assert replayed.status_code == 401 and replayed.json() == LOGIN_FAILED
    assert "errors" not in await env.gql(CASES, token=token)
    assert (await env.gql(VIEWER, token=token))["data"]["viewer"]["roles"] == ["FOCAL_POINT"]


async def test_caseworkers_may_enrol_and_then_need_the_code(env):
    _, username, password = await new_user(env, "embassy", ["CASEWORKER"])
    response = await login(env, "embassy", username, password)
    assert "mfa_enrolment_required" not in response.json()
    token = response.json()["access_token"]
    assert "errors" not in await env.gql(CASES, token=token)
    secret = await enrol_totp(env, token)
    assert (await login(env, "embassy", username, password)).status_code == 401
    with_code = await env.client.post("/auth/login", json={
        "organisation": "embassy", "username": username, "password": password,
        "totp": totp_now(secret, 1)})
    assert claims(env, with_code.json()["access_token"])["acr"] == "mfa"


async def test_only_people_enrol(env):
    client = await env.token("fund", client="fund-system")
    assert codes(await env.gql(START_TOTP, token=client)) == ["FORBIDDEN"]
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    # She enrols her own factor, on her own account (issue 18; tests/test_her_account.py).
    started = await env.gql(START_TOTP, token=her, purpose=None)
    assert "errors" not in started and started["data"]["startTotpEnrolment"]["secret"]


async def test_admin_resets_a_lost_factor_with_step_up(env):
    gid, username, password = await new_user(env, "nhri", ["AUDITOR"])
    await enrol_totp(env, await login_token(env, "nhri", username, password))
    stale = await token_as(env, "nhri", "admin", acr="mfa", age=120)
    with configured(env, step_up_seconds=60):
        refused = await env.gql(RESET_TOTP, {"id": gid}, token=stale)
    assert codes(refused) == ["STEP_UP_REQUIRED"]
    assert codes(await env.gql(RESET_TOTP, {"id": gid}, as_=("mofa", "admin"))) == ["NOT_FOUND"]
    done = await env.gql(RESET_TOTP, {"id": gid}, as_=("nhri", "admin"))
    assert done["data"]["resetUserTotp"]["user"]["username"] == username
    again = await login(env, "nhri", username, password)  # no TOTP needed to sign in ...
    assert again.status_code == 200 and again.json()["mfa_enrolment_required"] is True
    # ... but enrolling again takes a new enrolment code (two people), not the admin alone.
    retry = await env.gql(START_TOTP, token=again.json()["access_token"])
    assert retry["data"]["startTotpEnrolment"]["secret"] is None
    await enrol_totp(env, again.json()["access_token"], await enrolment_code(env, "nhri", gid))


async def test_replacing_a_confirmed_factor_needs_step_up(env):
    _, username, password = await new_user(env, "wpn", ["CASEWORKER"])
    secret = await enrol_totp(env, await login_token(env, "wpn", username, password))
    with_code = await env.client.post("/auth/login", json={
        "organisation": "wpn", "username": username, "password": password,
        "totp": totp_now(secret, 1)})
    token = with_code.json()["access_token"]
    started = await env.gql(START_TOTP, token=token)
    assert started["data"]["startTotpEnrolment"]["userErrors"] == []
    with configured(env, step_up_seconds=0):
        assert codes(await env.gql(START_TOTP, token=token)) == ["STEP_UP_REQUIRED"]


# --- step-up -----------------------------------------------------------------------------------

async def test_password_only_staff_cannot_change_her_consent(env):
    pb = await new_peacebuilder(env, "fund")
    live = await grant(env, pb, as_=("fund", "caseworker"), to_org="fund")
    pwd = await token_as(env, "fund", "caseworker", acr="pwd")
    grant_input = {"peacebuilderId": pb["id"], "recipientOrganisationId": await org_id(env, "fund"),
                   "categories": ["INCIDENT_DETAILS"], "purposes": ["PROTECTION"],
                   "obtainedVia": "IN_PERSON"}
    attempts = {
        "consent.grant": (GRANT, {"input": grant_input}),
        "consent.narrow": (NARROW, {"input": {"grantId": live["id"], "purposes": ["PROTECTION"]}}),
        "consent.extend": (EXTEND, {"input": {"grantId": live["id"], "categories": ["IDENTITY"],
                                              "obtainedVia": "IN_PERSON"}}),
        "consent.revoke": (REVOKE, {"id": live["id"]}),
    }
    for action, (query, variables) in attempts.items():
        before = len(await denials(env, action))
        body = await env.gql(query, variables, token=pwd)
        assert codes(body) == ["STEP_UP_REQUIRED"], (action, body)
        assert body["errors"][0]["message"] == "Sign in again with your second factor to do this."
        assert len(await denials(env, action)) == before + 1, action
    # The same person with a second factor may.
    done = await env.gql(REVOKE, {"id": live["id"]}, as_=("fund", "caseworker"))
    assert done["data"]["revokeConsent"]["grant"]["status"] == "REVOKED"


async def test_her_network_acts_for_her_only_after_a_recent_second_factor(env):
    # amani belongs to wpn (demo fixture); the refused request changes nothing.
    async with env.runtime.db.transaction() as session:
        amani = await session.scalar(select(Peacebuilder.id).where(
            Peacebuilder.pseudonym == "amani"))
    stale = await token_as(env, "wpn", "focal", acr="mfa", age=120)
    with configured(env, step_up_seconds=60):
        body = await env.gql(REVOKE_ALL, {"id": ids.encode("Peacebuilder", amani)}, token=stale)
    assert codes(body) == ["STEP_UP_REQUIRED"]
    assert len(await denials(env, "consent.revoke_all")) >= 1


async def test_she_changes_her_own_consent_with_a_password(env):
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    assert claims(env, her)["acr"] == "pwd"
    body = await env.gql(GRANT, {"input": {"recipientOrganisationId": await org_id(env, "unpc"),
                                           "categories": ["INCIDENT_DETAILS"],
                                           "purposes": ["PROTECTION"]}}, token=her)
    assert body["data"]["grantConsent"]["userErrors"] == [], body
    revoked = await env.gql(REVOKE_ALL, {}, token=her)
    assert revoked["data"]["revokeAllConsent"]["userErrors"] == [], revoked


async def test_machine_clients_cannot_change_consent(env):
    # mofa-system is on the team of mariam's case (demo fixture): it has standing, no person.
    async with env.runtime.db.transaction() as session:
        intake = await session.scalar(
            select(ConsentGrant.id).join(Peacebuilder, Peacebuilder.id == ConsentGrant.peacebuilder_id)
            .join(Organisation, Organisation.id == ConsentGrant.recipient_id)
            .where(Peacebuilder.pseudonym == "mariam", Organisation.slug == "mofa"))
    client = await env.token("mofa", client="mofa-system")

    async def refusals() -> int:
        async with env.runtime.db.transaction() as session:
            return len(list(await session.scalars(select(AccessLogEntry).where(
                AccessLogEntry.action == "consent.revoke", AccessLogEntry.decision == "deny",
                AccessLogEntry.reason == "consent rules: machine may not revoke this"))))

    before = await refusals()
    body = await env.gql(REVOKE, {"id": ids.encode("ConsentGrant", intake)}, token=client)
    errors = body["data"]["revokeConsent"]["userErrors"]
    assert errors and "Machine clients never record consent" in errors[0]["message"]
    assert body["data"]["revokeConsent"]["grant"] is None
    assert await refusals() == before + 1


async def test_break_glass_needs_a_recent_second_factor(env):
    pb = await new_peacebuilder(env, "fund")
    # A focal point without a second factor cannot do anything that needs her role.
    pwd = await token_as(env, "unpc", "focal", acr="pwd")
    body = await env.gql(OPEN_GLASS, {"id": pb["id"]}, token=pwd, purpose="emergency_response")
    assert codes(body) == ["MFA_ENROLMENT_REQUIRED"]
    # Where focal points need no factor by setting, a password still cannot open it.
    with configured(env, mfa_roles=()):
        body = await env.gql(OPEN_GLASS, {"id": pb["id"]}, token=pwd, purpose="emergency_response")
    assert codes(body) == ["STEP_UP_REQUIRED"]
    stale = await token_as(env, "unpc", "focal", acr="mfa", age=120)
    with configured(env, step_up_seconds=60):
        body = await env.gql(OPEN_GLASS, {"id": pb["id"]}, token=stale,
                             purpose="emergency_response")
    assert codes(body) == ["STEP_UP_REQUIRED"]
    assert len(await denials(env, "break_glass.open")) >= 2


async def test_export_needs_a_recent_second_factor(env):
    for token in (await token_as(env, "nhri", "auditor", acr="pwd"),
                  await token_as(env, "nhri", "auditor", acr="mfa", age=120)):
        with configured(env, step_up_seconds=60):
            response = await env.client.get("/audit/export",
                                             headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "STEP_UP_REQUIRED"
