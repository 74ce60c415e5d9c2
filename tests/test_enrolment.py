"""One-time enrolment codes: a first second factor is never enrolled with a password alone, and
never on one admin's word (app/auth/enrolment.py).

Everything goes through GraphQL and /auth/login as clients do; the harness only reads rows to
show what the database holds (attempts, hashes) and declares a one-person organisation the way
an operator does (`tenants apply`).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import select

from app import cli
from app.access.principal import SYSTEM
from app.auth import enrolment
from app.logs import JsonFormatter, quiet_third_party
from app.runtime import context_for
from app.tables.audit import AccessLogEntry
from app.tables.auth import EnrolmentCode
from app.tenants import schema as tenant_schema
from app.tenants import service as tenant_service
from schema import ids
from tests.conftest import Env, unique
from tests.test_auth import (
    CLAIM_CODE,
    CONFIRM_TOTP,
    CONFIRM_TWO_PERSON,
    CREATE_USER,
    REQUEST_CODE,
    RESET_PASSWORD,
    START_TOTP,
    codes,
    enrol_totp,
    enrolment_code,
    login,
    login_token,
    new_client,
    new_user,
    request_enrolment_code,
    totp_now,
    whole_access_log_text,
)
from tests.test_consent import clock_env  # noqa: F401 -- a fixture: a deployment on a FrozenClock
from tests.test_mfa import RESET_TOTP, token_as

pytestmark = pytest.mark.anyio


# --- helpers -----------------------------------------------------------------------------------

def user_uuid(gid: str) -> uuid.UUID:
    return ids.decode(gid, "User")


async def start(env: Env, token: str, code: str | None = None) -> dict[str, Any]:
    body = await env.gql(START_TOTP, {"code": code}, token=token)
    assert "errors" not in body, body
    return body["data"]["startTotpEnrolment"]  # type: ignore[no-any-return]


def refused(payload: dict[str, Any]) -> str:
    """The message of a start refused for its enrolment code (no secret was handed out)."""
    assert payload["secret"] is None and payload["otpauthUri"] is None, payload
    [error] = payload["userErrors"]
    assert error["field"] == ["input", "enrolmentCode"] and error["code"] == "BAD_USER_INPUT"
    return str(error["message"])


async def code_rows(env: Env, user_gid: str) -> list[EnrolmentCode]:
    async with env.runtime.db.transaction() as session:  # the harness reads what is stored
        return list(await session.scalars(select(EnrolmentCode).where(
            EnrolmentCode.user_id == user_uuid(user_gid)).order_by(EnrolmentCode.issued_at)))


async def log_entries(env: Env, action: str, target: str | uuid.UUID) -> list[AccessLogEntry]:
    async with env.runtime.db.transaction() as session:
        return list(await session.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == action, AccessLogEntry.target_id == str(target))
            .order_by(AccessLogEntry.at)))


def wrong_code_for(code: str) -> str:
    """A well-formed code that is not `code`."""
    while enrolment.normalise(other := enrolment.new_code()) == enrolment.normalise(code):
        pass
    return other


async def solo_organisation(env: Env, tmp_path: Path) -> str:
    """A new organisation whose only person is its admin and focal point, declared the way an
    operator declares organisations (`safety-net tenants apply`)."""
    slug = unique("solo")
    folder = tmp_path / slug
    folder.mkdir()
    (folder / f"{slug}.yaml").write_text(
        f"slug: {slug}\nname: A one-person network\nkind: peacebuilders_network\n"
        f'country: "KE"\nfocal_points: [only]\nusers:\n'
        f"  - username: only\n    name: The only person\n    roles: [org_admin, focal_point]\n")
    async with env.runtime.db.transaction() as session:
        ctx = context_for(env.runtime, session, SYSTEM, request_id=unique("test-apply"))
        await tenant_service.apply(ctx, tenant_schema.load_dir(folder))
    return slug


# --- the password alone, or one admin alone, enrols nobody -------------------------------------

async def test_password_alone_cannot_enrol_a_focal_point(env):
    gid, username, password = await new_user(env, "mofa", ["FOCAL_POINT"])
    pending = await login_token(env, "mofa", username, password)
    for attempt in (None, "", "ABCDE-FGHIJ-KMNPQ-RSTVW"):
        assert "enrolment code" in refused(await start(env, pending, attempt))
    # Nothing was started: there is no pending seed to confirm either.
    confirm = await env.gql(CONFIRM_TOTP, {"code": "123456"}, token=pending)
    assert confirm["data"]["confirmTotpEnrolment"]["enrolled"] is False
    # Still only enrolment is open to her.
    assert codes(await env.gql("{ cases(first: 1) { totalCount } }", token=pending)) == [
        "MFA_ENROLMENT_REQUIRED"]
    denials = await log_entries(env, "mfa.enrolment_code.use", user_uuid(gid))
    assert [d.reason for d in denials] == ["no enrolment code", "no enrolment code",
                                          "no valid enrolment code"]
    assert all(d.decision == "deny" for d in denials)


async def test_one_admin_alone_cannot_issue_a_code(env):
    gid, _, _ = await new_user(env, "embassy", ["FOCAL_POINT"])
    confirmation = await request_enrolment_code(env, "embassy", gid, asker="admin")
    # The admin who asked (and who set the password) can neither confirm nor see a code.
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=("embassy", "admin"))
    assert codes(body) == ["FORBIDDEN"]
    body = await env.gql(CLAIM_CODE, {"id": confirmation}, as_=("embassy", "admin"))
    assert codes(body) == ["NOT_FOUND"]  # nothing issued yet
    # A focal point who asks cannot confirm her own request either.
    other, _, _ = await new_user(env, "embassy", ["CASEWORKER"])
    own = await request_enrolment_code(env, "embassy", other, asker="focal")
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": own}, as_=("embassy", "focal"))
    assert codes(body) == ["FORBIDDEN"]
    # Once a second person confirmed, only that person is shown the code, once.
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=("embassy", "focal2"))
    assert body["data"]["confirmTwoPerson"]["confirmation"]["status"] == "CONFIRMED", body
    body = await env.gql(CLAIM_CODE, {"id": confirmation}, as_=("embassy", "admin"))
    assert codes(body) == ["FORBIDDEN"]
    body = await env.gql(CLAIM_CODE, {"id": confirmation}, as_=("embassy", "focal"))
    assert codes(body) == ["FORBIDDEN"]
    shown = await env.gql(CLAIM_CODE, {"id": confirmation}, as_=("embassy", "focal2"))
    assert shown["data"]["claimEnrolmentCode"]["code"], shown
    again = await env.gql(CLAIM_CODE, {"id": confirmation}, as_=("embassy", "focal2"))
    payload = again["data"]["claimEnrolmentCode"]
    assert payload["code"] is None and payload["userErrors"][0]["code"] == "CONFLICT"
    # Each step is in the access log, by ID.
    target = user_uuid(gid)
    for action in ("mfa.enrolment_code.request", "mfa.enrolment_code.issue"):
        assert [e.decision for e in await log_entries(env, action, target)] == ["allow"], action
    claims = await log_entries(env, "mfa.enrolment_code.claim", target)
    assert sorted(e.decision for e in claims) == ["allow", "deny", "deny"]  # admin, focal


async def test_a_one_person_organisation_is_told_plainly(env, tmp_path):
    slug = await solo_organisation(env, tmp_path)
    body = await env.gql(CREATE_USER, {"input": {"username": "second", "displayName": "Second",
                                                 "roles": ["FOCAL_POINT"]}}, as_=(slug, "only"))
    gid = body["data"]["createUser"]["user"]["id"]
    body = await env.gql(REQUEST_CODE, {"id": gid}, as_=(slug, "only"))
    payload = body["data"]["requestEnrolmentCode"]
    assert payload["confirmation"] is None
    [error] = payload["userErrors"]
    assert "two-person rule" in error["message"] and "no such focal point" in error["message"]
    assert "safety-net users enrolment-code" in error["message"]
    assert await code_rows(env, gid) == []


async def test_who_may_ask(env):
    gid, _, _ = await new_user(env, "unpc", ["ANALYST"])
    assert codes(await env.gql(REQUEST_CODE, {"id": gid}, as_=("unpc", "caseworker"))) == [
        "FORBIDDEN"]
    _, client_id, secret = await new_client(env, "unpc")
    from tests.test_auth import client_token
    machine = await client_token(env, client_id, secret)
    assert codes(await env.gql(REQUEST_CODE, {"id": gid}, token=machine)) == ["FORBIDDEN"]
    # Another organisation's person does not exist for the asker.
    assert codes(await env.gql(REQUEST_CODE, {"id": gid}, as_=("fund", "admin"))) == ["NOT_FOUND"]
    # A password-only admin must enrol first; a stale second factor must step up.
    pwd = await token_as(env, "unpc", "admin", acr="pwd")
    assert codes(await env.gql(REQUEST_CODE, {"id": gid}, token=pwd)) == [
        "MFA_ENROLMENT_REQUIRED"]
    # Asking twice while the first waits is refused; so is asking for someone enrolled.
    await request_enrolment_code(env, "unpc", gid)
    body = await env.gql(REQUEST_CODE, {"id": gid}, as_=("unpc", "focal"))
    assert body["data"]["requestEnrolmentCode"]["userErrors"][0]["code"] == "CONFLICT"
    enrolled, username, password = await new_user(env, "unpc", ["CASEWORKER"])
    await enrol_totp(env, await login_token(env, "unpc", username, password))
    body = await env.gql(REQUEST_CODE, {"id": enrolled}, as_=("unpc", "admin"))
    error = body["data"]["requestEnrolmentCode"]["userErrors"][0]
    assert error["code"] == "CONFLICT" and "resetUserTotp" in error["message"]


async def test_the_person_the_code_is_for_cannot_confirm_it(env):
    gid, username, password = await new_user(env, "wpn", ["FOCAL_POINT"])
    confirmation = await request_enrolment_code(env, "wpn", gid)
    # With her password only she holds no role at all ...
    pending = await login_token(env, "wpn", username, password)
    assert codes(await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, token=pending)) == [
        "FORBIDDEN"]
    # ... and even with an operator's token (which counts as a second factor) she may not.
    strong = await token_as(env, "wpn", username, acr="mfa")
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, token=strong)
    assert codes(body) == ["FORBIDDEN"]
    assert "cannot confirm it" in body["errors"][0]["message"]
    assert await code_rows(env, gid) == []  # the refused confirmation changed nothing
    denials = await log_entries(env, "two_person.confirm",
                                ids.decode(confirmation, "Confirmation"))
    assert [d.reason for d in denials] == [
        "two-person rule: needs a person holding focal_point",
        "two-person rule: the person the code is for cannot confirm it"]
    # A real second person can.
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=("wpn", "focal"))
    assert body["data"]["confirmTwoPerson"]["confirmation"]["status"] == "CONFIRMED", body


async def test_whoever_set_the_password_never_also_holds_the_code(env):
    # A person who is both admin and focal point creates a colleague (so knows the password).
    _, boss, _ = await new_user(env, "nhri", ["ORG_ADMIN", "FOCAL_POINT"])
    boss_token = await token_as(env, "nhri", boss, acr="mfa")
    body = await env.gql(CREATE_USER, {"input": {"username": unique("u"), "displayName": "New",
                                                 "roles": ["AUDITOR"]}}, token=boss_token)
    gid = body["data"]["createUser"]["user"]["id"]
    password = body["data"]["createUser"]["initialPassword"]
    username = body["data"]["createUser"]["user"]["username"]
    confirmation = await request_enrolment_code(env, "nhri", gid, asker="focal")
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, token=boss_token)
    assert codes(body) == ["FORBIDDEN"] and "set this person's password" in body["errors"][0][
        "message"]
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=("nhri", "focal2"))
    assert body["data"]["confirmTwoPerson"]["confirmation"]["status"] == "CONFIRMED", body
    code = (await env.gql(CLAIM_CODE, {"id": confirmation}, as_=("nhri", "focal2")))[
        "data"]["claimEnrolmentCode"]["code"]
    # The holder of the code resetting the password would hold both: the reset voids the code.
    reset = await env.gql(RESET_PASSWORD, {"id": gid}, as_=("nhri", "admin"))
    new_password = reset["data"]["resetUserPassword"]["initialPassword"]
    assert (await login(env, "nhri", username, password)).status_code == 401
    pending = await login_token(env, "nhri", username, new_password)
    assert "no valid enrolment code" in refused(await start(env, pending, code))
    assert [r.status for r in await code_rows(env, gid)] == ["void"]
    assert len(await log_entries(env, "mfa.enrolment_code.void", user_uuid(gid))) == 1


# --- the code itself ---------------------------------------------------------------------------

async def test_a_wrong_code_is_counted_and_five_lock_it(env):
    gid, username, password = await new_user(env, "fund", ["FOCAL_POINT"])
    code = await enrolment_code(env, "fund", gid)
    pending = await login_token(env, "fund", username, password)
    wrong = wrong_code_for(code)
    messages = [refused(await start(env, pending, wrong)) for _ in range(enrolment.MAX_ATTEMPTS)]
    assert "4 tries left" in messages[0] and "1 try left" in messages[3]
    assert "locked" in messages[-1]
    [row] = await code_rows(env, gid)
    assert row.attempts == enrolment.MAX_ATTEMPTS and row.status == "locked"
    # Locked: the right code no longer opens anything.
    assert "no valid enrolment code" in refused(await start(env, pending, code))
    denials = await log_entries(env, "mfa.enrolment_code.use", user_uuid(gid))
    assert [d.reason for d in denials] == ["wrong enrolment code"] * 4 + [
        "enrolment code locked", "no valid enrolment code"]
    assert [json.loads(d.details)["attempts"] if isinstance(d.details, str)
            else d.details["attempts"] for d in denials[:5]] == [1, 2, 3, 4, 5]
    # A new code (two people again) works.
    await enrol_totp(env, pending, await enrolment_code(env, "fund", gid))


async def test_a_code_works_once_and_tolerates_how_people_type_it(env):
    gid, username, password = await new_user(env, "mofa", ["AUDITOR"])
    code = await enrolment_code(env, "mofa", gid)
    pending = await login_token(env, "mofa", username, password)
    typed = code.lower().replace("-", " ")  # lower case, spaces instead of dashes
    first = await start(env, pending, typed)
    assert first["userErrors"] == [] and first["secret"], first
    assert "no valid enrolment code" in refused(await start(env, pending, code))
    confirmed = await env.gql(CONFIRM_TOTP, {"code": totp_now(first["secret"])}, token=pending)
    assert confirmed["data"]["confirmTotpEnrolment"] == {"enrolled": True, "userErrors": []}
    assert [r.status for r in await code_rows(env, gid)] == ["used"]
    # Now she has a factor: replacing it is step-up's business, not a code's.
    assert codes(await env.gql(START_TOTP, {"code": code}, token=pending)) == ["STEP_UP_REQUIRED"]
    mfa = await env.client.post("/auth/login", json={
        "organisation": "mofa", "username": username, "password": password,
        "totp": totp_now(first["secret"], 1)})
    assert mfa.status_code == 200
    enrolled = await log_entries(env, "mfa.enrol", user_uuid(gid))
    assert [e.decision for e in enrolled] == ["allow", "deny"]  # enrolled; then step-up refused


async def test_an_expired_code_fails(clock_env):  # noqa: F811
    env = clock_env
    gid, username, password = await new_user(env, "embassy", ["FOCAL_POINT"])
    pending = await login_token(env, "embassy", username, password)
    code = await enrolment_code(env, "embassy", gid)
    env.clock.advance(hours=72)
    assert "expired" in refused(await start(env, pending, code))
    # Shown too late: one confirmed but claimed only after 72 hours shows nothing.
    confirmation = await request_enrolment_code(env, "embassy", gid)
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=("embassy", "focal"))
    assert body["data"]["confirmTwoPerson"]["confirmation"]["status"] == "CONFIRMED", body
    env.clock.advance(hours=72, seconds=1)
    late = (await env.gql(CLAIM_CODE, {"id": confirmation}, as_=("embassy", "focal")))[
        "data"]["claimEnrolmentCode"]
    assert late["code"] is None and "expired" in late["userErrors"][0]["message"]
    # A seed started with a code cannot be confirmed once that code's time is over.
    code = await enrolment_code(env, "embassy", gid)
    started = await start(env, pending, code)
    assert started["secret"], started
    env.clock.advance(hours=72)
    body = await env.gql(CONFIRM_TOTP, {"code": totp_now(started["secret"])}, token=pending)
    assert body["data"]["confirmTotpEnrolment"]["enrolled"] is False
    assert "expired" in body["data"]["confirmTotpEnrolment"]["userErrors"][0]["message"]


async def test_after_a_reset_a_new_code_is_needed(env):
    gid, username, password = await new_user(env, "unpc", ["FOCAL_POINT"])
    pending = await login_token(env, "unpc", username, password)
    used = await enrolment_code(env, "unpc", gid)
    await enrol_totp(env, pending, used)
    # An unused code issued before a reset does not survive it either.
    other_gid, other_name, other_password = await new_user(env, "unpc", ["FOCAL_POINT"])
    unused = await enrolment_code(env, "unpc", other_gid)
    for target in (gid, other_gid):
        body = await env.gql(RESET_TOTP, {"id": target}, as_=("unpc", "admin"))
        assert body["data"]["resetUserTotp"]["userErrors"] == [], body
    again = await login(env, "unpc", username, password)
    assert again.status_code == 200 and again.json()["mfa_enrolment_required"] is True
    token = again.json()["access_token"]
    assert "enrolment code" in refused(await start(env, token))
    assert "no valid enrolment code" in refused(await start(env, token, used))
    other = await login_token(env, "unpc", other_name, other_password)
    assert "no valid enrolment code" in refused(await start(env, other, unused))
    assert [r.status for r in await code_rows(env, other_gid)] == ["void"]
    # Two people issue a new one; then she enrols again.
    await enrol_totp(env, token, await enrolment_code(env, "unpc", gid))


# --- bootstrap: the operator's console -----------------------------------------------------------

def run_cli(env: Env, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """`safety-net ARGS` against this deployment's database and keys (as the operator runs it)."""
    monkeypatch.setenv("DATABASE_URL", env.settings.database_url)
    monkeypatch.setenv("SAFETY_NET_DATA_DIR", str(env.settings.data_dir))
    monkeypatch.setenv("SAFETY_NET_KEK_DIR", str(env.settings.keks))
    monkeypatch.setenv("SAFETY_NET_DB_SERVICE_ROLE", env.settings.db_service_role)
    # The operator's console works in the system scope: the background role's connection.
    monkeypatch.setenv("SAFETY_NET_BACKGROUND_DATABASE_URL", env.settings.background_database_url)
    monkeypatch.setenv("SAFETY_NET_DB_BACKGROUND_ROLE", env.settings.db_background_role)
    return cli.main(list(args))


async def test_the_operator_bootstraps_the_first_people(env, tmp_path, monkeypatch, capsys):
    slug = await solo_organisation(env, tmp_path)
    # The one person creates a colleague; no second focal point exists to issue her code ...
    body = await env.gql(CREATE_USER, {"input": {"username": "second", "displayName": "Second",
                                                 "roles": ["FOCAL_POINT"]}}, as_=(slug, "only"))
    gid = body["data"]["createUser"]["user"]["id"]
    password = body["data"]["createUser"]["initialPassword"]
    # ... so the operator issues it at the console, once, for that person.
    status = await anyio.to_thread.run_sync(
        run_cli, env, monkeypatch, "users", "enrolment-code", "--org", slug, "--user", "second")
    out = capsys.readouterr()
    assert status == 0, out.err
    code = out.out.split("by email): ", 1)[1].split()[0]
    assert len(enrolment.normalise(code)) == enrolment.LENGTH
    pending = await login_token(env, slug, "second", password)
    secret = await enrol_totp(env, pending, code)
    ok = await env.client.post("/auth/login", json={
        "organisation": slug, "username": "second", "password": password,
        "totp": totp_now(secret, 1)})
    assert ok.status_code == 200 and "mfa_enrolment_required" not in ok.json()
    [issued] = await log_entries(env, "mfa.enrolment_code.issue", user_uuid(gid))
    assert issued.actor == SYSTEM.subject and issued.decision == "allow"
    assert code not in await whole_access_log_text(env)
    # A person who has a factor gets no code unless the operator resets it explicitly.
    status = await anyio.to_thread.run_sync(
        run_cli, env, monkeypatch, "users", "enrolment-code", "--org", slug, "--user", "second")
    out = capsys.readouterr()
    assert status == 1 and "already has a second factor" in out.err and out.out == ""
    status = await anyio.to_thread.run_sync(
        run_cli, env, monkeypatch, "users", "enrolment-code", "--org", slug, "--user", "second",
        "--reset-factor")
    assert status == 0, capsys.readouterr().err
    again = await env.client.post("/auth/login", json={
        "organisation": slug, "username": "second", "password": password})
    assert again.status_code == 200 and again.json()["mfa_enrolment_required"] is True
    status = await anyio.to_thread.run_sync(
        run_cli, env, monkeypatch, "users", "enrolment-code", "--org", slug, "--user", "nobody")
    assert status == 1 and "no such active user" in capsys.readouterr().err


# --- the code is never written down ------------------------------------------------------------

async def test_the_code_is_in_no_log_error_or_column(env, caplog):
    quiet_third_party()  # as the service configures logging (app.logs.configure)
    with caplog.at_level(logging.DEBUG):
        gid, username, password = await new_user(env, "wpn", ["FOCAL_POINT"])
        code = await enrolment_code(env, "wpn", gid)
        pending = await login_token(env, "wpn", username, password)
        wrong = wrong_code_for(code)
        messages = [refused(await start(env, pending, wrong))]
        # A code written into the document itself, not passed as a variable.
        inline = await env.gql('mutation { startTotpEnrolment(input: {enrolmentCode: "'
                               + wrong + '"}) { secret userErrors { message } } }', token=pending)
        messages += [e["message"] for e in inline["data"]["startTotpEnrolment"]["userErrors"]]
        await enrol_totp(env, pending, code)
    formatter = JsonFormatter()
    logged = "\n".join([caplog.text, *(formatter.format(r) for r in caplog.records)])
    assert "/graphql" in logged  # requests were logged ...
    stored = await code_rows(env, gid)
    everything = "\n".join([logged, await whole_access_log_text(env), *messages,
                            *(str(vars(r)) for r in stored)])
    for value in (code, wrong):  # ... never a code, in any form people type it
        for form in (value, enrolment.normalise(value), value.lower()):
            assert form not in everything
    assert stored[0].code_hash and stored[0].code_hash.startswith("h1:")
    assert "[redacted]" in repr(enrolment.IssuedCode(code=code, expires_at=stored[0].expires_at,
                                                       user_id=stored[0].user_id))


async def test_the_inbox_asks_the_second_person_without_the_code(env):
    gid, _, _ = await new_user(env, "mofa", ["CASEWORKER"])
    confirmation = await request_enrolment_code(env, "mofa", gid)
    raw = ids.decode(confirmation, "Confirmation")
    from app.tables.notify import InboxItem
    async with env.runtime.db.transaction() as session:
        items = list(await session.scalars(select(InboxItem).where(
            InboxItem.subject_id == raw)))
    assert items, "the focal points were asked"
    assert all(i.kind == "confirmation_requested" for i in items)
