"""The wall the service password alone cannot open (docs/decisions/0015-signed-tenancy.md).

Every query here runs on a raw connection as the service role (or the background role), the
way someone holding its password would: settings written by hand, forged, expired or replayed
signatures, consent rows written directly. They must reveal and release nothing. What the
application signs (the deployment's keys) still works, and only the background role may use
the system scope. Plus: the registering organisation follows her consent like any other, the
policies verify once per statement, and the consent key can be rotated by `safety-net migrate`.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app import tenancy
from app.crypto import KeyEncryptionKeys
from app.db import Database
from app.storage import install_wall, wall_problems
from app.tables import integrity
from app.tables.consent import BreakGlass, ConsentAccess
from app.tenancy import SYSTEM
from app.wall import SET_TEXT, Wall, WallError
from schema import ids
from tests.conftest import BACKGROUND_ROLE, SERVICE_ROLE, build_env
from tests.test_consent import CASES, READ, grant, new_peacebuilder
from tests.test_rls import _decided, _org

pytestmark = pytest.mark.anyio

# Tables where something of hers lives, and how to find her rows in each.
HERS = {
    "peacebuilders": "id = :p",
    "peacebuilder_data": "peacebuilder_id = :p",
    "data_keys": "peacebuilder_id = :p",
    "peacebuilder_networks": "peacebuilder_id = :p",
    "consent_events": "peacebuilder_id = :p",
    "consent_grants": "peacebuilder_id = :p",
    "consent_access": "peacebuilder_id = :p",
    "cases": "peacebuilder_id = :p",
    "case_team": "case_id IN (SELECT id FROM cases WHERE peacebuilder_id = :p)",
    "case_events": "case_id IN (SELECT id FROM cases WHERE peacebuilder_id = :p)",
    "case_notes": "case_id IN (SELECT id FROM cases WHERE peacebuilder_id = :p)",
}
EVERYONE = ("users", "cases", "peacebuilders", "peacebuilder_data", "consent_access",
            "access_log", "data_keys", "organisations")


@pytest.fixture
def pg(env):
    if env.backend != "postgresql":
        pytest.skip("roles, signed tenancies and MAC triggers exist on PostgreSQL only")
    return env


@asynccontextmanager
async def connection(url: str):
    """A connection as someone holding that role's password, outside the app's machinery."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn, conn.begin():
            yield conn
    finally:
        await engine.dispose()


async def counts(url: str, settings: dict[str, str] | None, tables=EVERYONE,
                 where: str = "true", **params) -> dict[str, int]:
    """Rows visible per table after `settings` were set (by hand or signed) as the first
    statement of the transaction."""
    async with connection(url) as conn:
        if settings is not None:
            full = {"peacebuilders_sha256": "", "expires": "", "mac": "", **settings}
            await conn.execute(text(SET_TEXT), full)
        return {t: int(await conn.scalar(text(f"SELECT count(*) FROM {t} WHERE {where}"),
                                         params) or 0) for t in tables}


async def hers(url: str, settings: dict[str, str], pb_id: uuid.UUID) -> dict[str, int]:
    """Her rows visible per table (HERS) under `settings`."""
    seen: dict[str, int] = {}
    for table, where in HERS.items():
        seen |= await counts(url, settings, tables=(table,), where=where, p=pb_id)
    return seen


def nothing(seen: dict[str, int]) -> bool:
    return all(n == 0 for n in seen.values())


def service(pg) -> str:
    return pg.runtime.settings.database_url


def background(pg) -> str:
    return pg.runtime.settings.background_database_url


async def _her_registered_by_fund(pg):
    pb = await new_peacebuilder(pg, "fund")
    return pb, ids.decode(pb["id"], "Peacebuilder")


# --- the settings alone ------------------------------------------------------------------------

async def test_settings_set_by_hand_reveal_nothing(pg):
    _, pb_id = await _her_registered_by_fund(pg)
    fund = await _decided(pg, "fund")
    assert pb_id in fund.peacebuilders
    by_hand = [
        SYSTEM.settings(),
        fund.settings(),  # the very values the app decided for fund, without its signature
        {**fund.settings(), "peacebuilders": str(pb_id)},
        {**fund.settings(), "mac": "0" * 64, "expires": str(int(time.time()) + 60)},
    ]
    for settings in by_hand:
        assert nothing(await counts(service(pg), settings)), settings
        assert nothing(await counts(background(pg), settings)), settings
    # The control: the same decision, signed by the application, shows fund's rows.
    assert (await counts(service(pg), pg.runtime.db.signed(fund)))["cases"] > 0


async def test_forged_expired_and_replayed_signatures_reveal_nothing(pg):
    _, pb_id = await _her_registered_by_fund(pg)
    fund, embassy = await _decided(pg, "fund"), await _decided(pg, "embassy")
    assert pb_id not in embassy.peacebuilders
    # Forged: the right shape, another key.
    forger = Wall(60)
    forger._cache["tenancy"] = os.urandom(32)
    for forged in (forger.signed(fund), forger.signed(SYSTEM)):
        assert nothing(await counts(service(pg), forged))
        assert nothing(await counts(background(pg), forged))
    # Replayed: embassy's valid signature with other values (its org, her ID, the scope, the
    # list with or without its digest, a later expiry).
    signed = pg.runtime.db.signed(embassy)
    assert (await counts(service(pg), signed))["users"] > 0  # valid as it was made
    with_her = ",".join(sorted({*signed["peacebuilders"].split(","), str(pb_id)} - {""}))
    replays = [
        {**signed, "org": str(fund.org_id)},
        {**signed, "scope": "system"},
        {**signed, "peacebuilders": with_her},
        {**signed, "peacebuilders": with_her,
         "peacebuilders_sha256": hashlib.sha256(with_her.encode()).hexdigest()},
        {**signed, "log_orgs": f"{signed['log_orgs']},{fund.org_id}"},
        {**signed, "expires": str(int(signed["expires"]) + 3600)},
    ]
    for replay in replays[:2] + replays[3:]:
        assert nothing(await counts(service(pg), replay)), replay
    # A list changed without its signed digest reads as empty; the rest of the signature stands,
    # so it shows no more than the signed tenancy did (embassy's own rows), and nothing of hers.
    original = await counts(service(pg), signed)
    altered = await counts(service(pg), replays[2])
    assert all(altered[t] <= original[t] for t in EVERYONE), (altered, original)
    assert altered["peacebuilders"] == altered["peacebuilder_data"] == 0
    assert nothing(await hers(service(pg), replays[2], pb_id))
    # Expired: authentic, but past its time; an error (not an empty result), so a transaction
    # that outlived its signature fails loudly.
    old = pg.runtime.db.wall.signed(fund, now=time.time() - pg.runtime.db.wall.ttl - 5)
    with pytest.raises(DBAPIError, match="has expired"):
        await counts(service(pg), old)



async def test_only_the_background_role_may_use_the_system_scope(pg):
    system = pg.runtime.db.system.signed(SYSTEM)  # a valid system signature, by the app's key
    assert nothing(await counts(service(pg), system))  # service password + the key: nothing
    seen = await counts(background(pg), system)
    assert seen["users"] > 0 and seen["organisations"] > 0
    # The service role's engine refuses to sign it at all: asking is a bug.
    with pytest.raises(WallError):
        pg.runtime.db.signed(SYSTEM)
    with tenancy.using(SYSTEM):  # and the app routes system work to the background role
        async with pg.runtime.db.transaction() as s:
            assert await s.scalar(text("SELECT current_user")) == BACKGROUND_ROLE
    assert await wall_problems(pg.runtime.db) == []


async def test_keys_are_out_of_reach_of_the_service_and_background_roles(pg):
    for url in (service(pg), background(pg)):
        for sql in ("SELECT * FROM sn_private.keys", "SELECT * FROM sn_private.system_roles",
                    "SELECT sn_private.hmac('tenancy', 'x')", "SELECT sn_private.declare_system()"):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with connection(url) as conn:
                    await conn.execute(text(sql))


async def test_a_process_with_another_key_is_told_at_start(pg):
    class OtherKeys:
        def service_key(self, name: str) -> bytes:
            return b"k" * 32

    db = Database(service(pg), background_url=background(pg), keys=OtherKeys())
    try:
        problems = await wall_problems(db)
    finally:
        await db.dispose()
    assert any("tenancy key the database does not hold" in p for p in problems), problems
    assert any("background connection may not use the system scope" in p for p in problems)


# --- once per statement ------------------------------------------------------------------------

async def test_policies_verify_once_per_statement_not_per_row(pg):
    fund = await _decided(pg, "fund")
    signed = pg.runtime.db.signed(fund)
    async with connection(service(pg)) as conn:
        await conn.execute(text(SET_TEXT), signed)
        plan = "\n".join(r[0] for r in await conn.execute(text(
            "EXPLAIN (VERBOSE) SELECT i.id FROM incidents i JOIN cases c ON c.id = i.case_id")))
    assert "InitPlan" in plan, plan
    filters = [line for line in plan.splitlines() if "Filter:" in line or "Cond:" in line]
    # No sn_*() call in a per-row filter (each is an InitPlan, `$n`): a column of the alias
    # `sn_case` (the policies below a case) is not a call.
    assert filters and not any(re.search(r"\bsn_\w+\(", line) for line in filters), plan
    # Counted: the verifying function runs a handful of times per statement, not once per row.
    async with connection(pg.owner_url) as conn:  # the superuser may track function calls...
        await conn.execute(text("SET LOCAL track_functions = 'pl'"))
        await conn.execute(text(f"SET LOCAL ROLE {SERVICE_ROLE}"))  # ...then acts as the service
        await conn.execute(text(SET_TEXT), signed)
        rows = await conn.scalar(text("SELECT count(*) FROM access_log a, role_assignments r"))
        calls = await conn.scalar(text(
            "SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'sn_verified_scope'"))
    assert rows > 200 and calls is not None and calls <= 6, (rows, calls)


# --- consent rows --------------------------------------------------------------------------------

async def test_consent_rows_written_directly_are_refused(pg):
    pb, pb_id = await _her_registered_by_fund(pg)
    fund = await _decided(pg, "fund")  # a tenancy that may act on her record, signed by the app
    embassy = await _org(pg, "embassy")
    async with connection(pg.owner_url) as conn:
        grant_id, event_id = (await conn.execute(text(
            "SELECT grant_id, id FROM consent_events WHERE peacebuilder_id = :p "
            "ORDER BY version LIMIT 1"), {"p": pb_id})).one()
    now = datetime.now(UTC)
    forged_mac = integrity.compute(os.urandom(32), "consent_access", {
        "id": uuid.uuid4(), "grant_id": grant_id, "peacebuilder_id": pb_id, "org_id": embassy,
        "via_working_group_id": None, "covered_at": now, "category": "profile",
        "purpose": "protection", "valid_from": now, "valid_until": None})
    attempts = [
        ("INSERT INTO consent_access (id, grant_id, peacebuilder_id, org_id, covered_at, category, "
         "purpose, valid_from, mac) VALUES (:id, :g, :p, :o, now(), 'profile', 'protection', "
         "now(), :m)", {"m": forged_mac}),
        ("INSERT INTO consent_access (id, grant_id, peacebuilder_id, org_id, covered_at, category, "
         "purpose, valid_from) VALUES (:id, :g, :p, :o, now(), 'contact', 'protection', now())", {}),
        ("INSERT INTO consent_events (id, grant_id, version, peacebuilder_id, kind, recipient_type, "
         "recipient_id, categories, purposes, valid_from, covered_org_ids, recorded_by, "
         "acting_for_her, at) VALUES (:id, :g, 99, :p, 'extend', 'organisation', :o, "
         "'[\"profile\"]', '[\"protection\"]', now(), :orgs, 'user:x', false, now())",
         {"orgs": f'["{embassy}"]'}),
        ("INSERT INTO break_glass (id, peacebuilder_id, org_id, opened_by, reason, opened_at, "
         "expires_at) VALUES (:id, :p, :f, 'user:x', '', now(), now() + interval '1 hour')",
         {"f": fund.org_id}),
        ("INSERT INTO peacebuilder_networks (id, peacebuilder_id, org_id) VALUES (:id, :p, :o)", {}),
        # An existing, valid row turned towards another organisation.
        ("UPDATE consent_access SET purpose = 'advocacy' WHERE peacebuilder_id = :p", {}),
        ("UPDATE consent_grants SET categories = '[\"contact\",\"location\"]' "
         "WHERE peacebuilder_id = :p", {}),
    ]
    for sql, params in attempts:
        with pytest.raises(DBAPIError, match="integrity code"):
            async with connection(service(pg)) as conn:
                await conn.execute(text(SET_TEXT), pg.runtime.db.signed(fund))
                await conn.execute(text(sql), {"id": uuid.uuid4(), "g": grant_id, "p": pb_id,
                                               "o": embassy, **params})
    # Her consent record is append-only for both roles: no UPDATE, no DELETE at all.
    for url, signed in ((service(pg), pg.runtime.db.signed(fund)),
                        (background(pg), pg.runtime.db.system.signed(SYSTEM))):
        for sql in ("UPDATE consent_events SET note = NULL WHERE id = :e",
                    "DELETE FROM consent_events WHERE id = :e"):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with connection(url) as conn:
                    await conn.execute(text(SET_TEXT), signed)
                    await conn.execute(text(sql), {"e": event_id})
    assert pb_id not in (await _decided(pg, "embassy")).peacebuilders
    assert (await pg.gql(READ, {"id": pb["id"]}, as_=("embassy", "focal")))["data"] == {
        "peacebuilder": None}


async def test_a_consent_row_that_slipped_past_the_trigger_releases_nothing(pg):
    """Someone with the owner's rights (or a restore with triggers off) put a row in without
    the application's key: admission does not count it, nor does the release of categories."""
    pb, pb_id = await _her_registered_by_fund(pg)
    embassy = await _org(pg, "embassy")
    async with connection(pg.owner_url) as conn:
        grant_id = await conn.scalar(text(
            "SELECT grant_id FROM consent_access WHERE peacebuilder_id = :p LIMIT 1"), {"p": pb_id})
        await conn.execute(text("ALTER TABLE consent_access DISABLE TRIGGER consent_access_mac"))
        for category in ("profile", "identity", "contact", "incident_details"):
            await conn.execute(text(
                "INSERT INTO consent_access (id, grant_id, peacebuilder_id, org_id, covered_at, "
                "category, purpose, valid_from, mac) VALUES (:id, :g, :p, :o, now(), :c, "
                "'protection', now() - interval '1 minute', :m)"),
                {"id": uuid.uuid4(), "g": grant_id, "p": pb_id, "o": embassy, "c": category,
                 "m": "ab" * 32})
        await conn.execute(text("ALTER TABLE consent_access ENABLE TRIGGER consent_access_mac"))
    assert pb_id not in (await _decided(pg, "embassy")).peacebuilders
    body = await pg.gql(READ, {"id": pb["id"]}, as_=("embassy", "focal"))
    assert body["data"] == {"peacebuilder": None}
    listed = await pg.gql(CASES, {"pb": pb["id"]}, as_=("embassy", "focal"))
    assert listed["data"]["cases"]["totalCount"] == 0
    # (The page's decision is made in SQL and trusts the rows row-level security lets it read:
    # for a woman outside the verified decided set, that is none of hers. Decision 0015.)
    # Her registering organisation, whose rows are genuine, still reads her.
    assert (await pg.gql(READ, {"id": pb["id"]}, as_=("fund", "focal")))["data"]["peacebuilder"]


async def test_python_and_sql_build_the_same_canonical_text(pg):
    """The MAC computed by the app is the one the trigger recomputes: also for text that is not
    ASCII (lengths in bytes), microseconds of zero, NULLs, booleans and JSON lists."""
    _, pb_id = await _her_registered_by_fund(pg)
    fund = await _org(pg, "fund")
    opened = datetime.now(UTC).replace(microsecond=0)
    glass = BreakGlass(peacebuilder_id=pb_id, org_id=fund, opened_by="user:zoë",
                       reason="réservé — ✓ 保护", opened_at=opened,
                       expires_at=opened + timedelta(hours=1))
    with tenancy.using(SYSTEM):  # the triggers verify the MACs stamped in Python, or this fails
        async with pg.runtime.db.transaction() as s:
            s.add(glass)
            await s.flush()
            glass.closed_at = opened + timedelta(minutes=5)  # an UPDATE, stamped again
    for table in integrity.COVERED:
        async with connection(pg.owner_url) as conn:
            in_sql = dict((await conn.execute(text(
                f"SELECT r.id, sn_private.canonical_{table}(r) FROM {table} r "
                "WHERE r.peacebuilder_id = :p"), {"p": pb_id})).all())
        assert in_sql or table == "peacebuilder_networks", table
        with tenancy.using(SYSTEM):
            async with pg.runtime.db.transaction() as s:
                key = integrity.key_of(s)
                column = integrity.table_of(table).c.peacebuilder_id
                stored = (await s.execute(select(*integrity.columns(table))
                                          .where(column == pb_id))).all()
        assert {r.id for r in stored} == set(in_sql), table
        for row in stored:
            assert integrity.canonical(table, row._mapping) == in_sql[row.id], table
            assert integrity.intact(key, table, row), table


# --- the registering organisation follows her consent --------------------------------------------

async def test_the_registering_organisation_sees_nothing_once_she_revoked_its_only_grant(pg):
    pb, pb_id = await _her_registered_by_fund(pg)
    fund = await _decided(pg, "fund")
    assert pb_id in fund.peacebuilders
    before = await hers(service(pg), pg.runtime.db.signed(fund), pb_id)
    assert before["peacebuilders"] == before["cases"] == 1 and before["consent_access"] > 0
    her = await pg.peacebuilder_token(pb["login"])
    body = await pg.gql("mutation { revokeAllConsent(input: {}) { revoked { id } } }",
                        token=her, purpose=None)
    assert len(body["data"]["revokeAllConsent"]["revoked"]) == 1  # the intake grant, its only one
    # Through the API: not her record, not her case.
    for who in ("focal", "caseworker"):
        assert (await pg.gql(READ, {"id": pb["id"]}, as_=("fund", who)))["data"] == {
            "peacebuilder": None}
        assert (await pg.gql(CASES, {"pb": pb["id"]}, as_=("fund", who)))["data"]["cases"][
            "totalCount"] == 0
    # Through SQL, with the tenancy the application now decides and signs for fund.
    fund = await _decided(pg, "fund")
    assert pb_id not in fund.peacebuilders
    assert nothing(await hers(service(pg), pg.runtime.db.signed(fund), pb_id))
    # Registering another woman still works (its new record reached by that transaction only).
    _, again_id = await _her_registered_by_fund(pg)
    assert again_id in (await _decided(pg, "fund")).peacebuilders


async def test_a_pseudonym_of_a_woman_it_no_longer_sees_is_a_conflict_not_an_error(pg):
    from tests.test_consent import CREATE_PB

    pb, _ = await _her_registered_by_fund(pg)
    her = await pg.peacebuilder_token(pb["login"])
    await pg.gql("mutation { revokeAllConsent(input: {}) { revoked { id } } }", token=her,
                 purpose=None)
    async with connection(pg.owner_url) as conn:
        pseudonym = await conn.scalar(text("SELECT pseudonym FROM peacebuilders WHERE id = :p"),
                                      {"p": ids.decode(pb["id"], "Peacebuilder")})
    body = await pg.gql(CREATE_PB, {"input": {"pseudonym": pseudonym,
                                              "intakeConsent": {"obtainedVia": "IN_PERSON"}}},
                        as_=("fund", "caseworker"))
    errors = body["data"]["createPeacebuilder"]["userErrors"]
    assert [e["code"] for e in errors] == ["CONFLICT"], body


# --- key installation and rotation by `safety-net migrate` ----------------------------------------

async def test_migrate_rotates_the_consent_key_and_keeps_only_rows_that_verified(tmp_path):
    from tests.conftest import require_pg

    require_pg()
    env, close = await build_env("postgresql", tmp_path)
    try:
        pb = await new_peacebuilder(env, "fund")
        await grant(env, pb, as_=("fund", "focal"), to_org="unpc")
        pb_id = ids.decode(pb["id"], "Peacebuilder")
        unpc = await _org(env, "unpc")
        async with connection(env.owner_url) as conn:
            total = await conn.scalar(text("SELECT count(*) FROM consent_access"))
            await conn.execute(text("ALTER TABLE consent_access DISABLE TRIGGER consent_access_mac"))
            await conn.execute(text("UPDATE consent_access SET valid_until = NULL, mac = :m "
                                    "WHERE id = (SELECT min(id::text)::uuid FROM consent_access "
                                    "WHERE org_id = :o AND peacebuilder_id <> :pb)"),
                               {"m": "cd" * 32, "o": unpc, "pb": pb_id})
            await conn.execute(text("ALTER TABLE consent_access ENABLE TRIGGER consent_access_mac"))
        keys = KeyEncryptionKeys(env.settings.keks)
        assert await install_wall(env.owner_url, keys, BACKGROUND_ROLE) == []  # nothing changed
        (env.settings.keks / "consent.key").write_bytes(os.urandom(32))
        report = await install_wall(env.owner_url, keys, BACKGROUND_ROLE)
        assert f"consent_access: {total - 1} rows stamped with the consent key" in report, report
        assert "consent_access: 1 rows did not verify under the previous key and were left as " \
               "they were (they release nothing)" in report, report
        async with connection(env.owner_url) as conn:
            valid = await conn.scalar(text(
                "SELECT count(*) FROM consent_access r WHERE r.mac = "
                "sn_private.hmac('consent', sn_private.canonical_consent_access(r))"))
            assert valid == total - 1
            assert await conn.scalar(text("SELECT count(*) FROM sn_private.keys")) == 2
        env.runtime.db.keys = env.runtime.db.keys  # the service restarts with the new key
        assert pb_id in (await _decided(env, "unpc")).peacebuilders  # her other rows verify
        assert (await env.gql(READ, {"id": pb["id"]}, as_=("unpc", "focal")))["data"][
            "peacebuilder"]["profile"]["legalName"] is None  # INCIDENT_DETAILS only: as granted
        assert (await env.gql(READ, {"id": pb["id"]}, as_=("fund", "focal")))["data"][
            "peacebuilder"]["profile"]["legalName"]
    finally:
        await close()


async def test_sqlite_rows_without_a_mac_are_stamped_by_migrate(tmp_path):
    env, close = await build_env("sqlite", tmp_path)
    try:
        pb = await new_peacebuilder(env, "fund")
        async with env.runtime.db.engine.begin() as conn:
            await conn.execute(text("UPDATE consent_access SET mac = NULL"))
        report = await install_wall(env.settings.database_url,
                                    KeyEncryptionKeys(env.settings.keks), "")
        assert any(line.startswith("consent_access: ") for line in report), report
        assert (await env.gql(READ, {"id": pb["id"]}, as_=("fund", "focal")))["data"][
            "peacebuilder"]["profile"]["legalName"]
        async with env.runtime.db.transaction() as s:
            rows = (await s.execute(select(*integrity.columns("consent_access")))).all()
        assert rows and all(integrity.intact(integrity.key_of(s), "consent_access", r)
                            for r in rows)
        assert all(r.mac for r in rows) and ConsentAccess.__table__.c.mac is not None
    finally:
        await close()


async def test_a_later_migration_can_cover_a_new_column(pg, monkeypatch):
    """What the migration adding a covered column does (integrity.change_sql), inside one owner
    transaction rolled back at the end: every row that verified still does, under the new text."""
    monkeypatch.setitem(integrity.COVERED, "consent_grants",
                        (*integrity.COVERED["consent_grants"], "confirmed_by"))
    engine = create_async_engine(pg.owner_url)
    try:
        async with engine.connect() as conn:
            tx = await conn.begin()
            verifies = ("SELECT count(*) FILTER (WHERE r.mac = sn_private.hmac('consent', "
                        "sn_private.canonical_consent_grants(r))), count(*) FROM consent_grants r")
            before = (await conn.execute(text(verifies))).one()
            await conn.execute(text("ALTER TABLE consent_grants ADD COLUMN confirmed_by text"))
            types = await conn.run_sync(lambda c: integrity.column_types(c, "consent_grants"))
            for statement in integrity.change_sql("consent_grants", types):
                await conn.execute(text(statement))
            after = (await conn.execute(text(verifies))).one()
            sample = await conn.scalar(text(
                "SELECT sn_private.canonical_consent_grants(r) FROM consent_grants r LIMIT 1"))
            await tx.rollback()
    finally:
        await engine.dispose()
    assert before[0] == before[1] > 0 and after == before, (before, after)
    assert sample.endswith("\nconfirmed_by=~"), sample


def test_admissions_mac_memory_vouches_only_for_the_exact_row_it_verified():
    """Admission remembers rows whose MAC verified (app/tables/integrity.py intact_selected):
    a row changed afterwards under the same MAC — a revoked grant made live again by a database
    password, moved to another organisation — or checked with another key is checked again, and
    fails; the verified row itself still passes."""
    key, other_key = os.urandom(32), os.urandom(32)
    now = datetime.now(UTC)
    values = {"id": uuid.uuid4(), "grant_id": uuid.uuid4(), "peacebuilder_id": uuid.uuid4(),
              "org_id": uuid.uuid4(), "via_working_group_id": None, "covered_at": now,
              "category": "identity", "purpose": "protection", "valid_from": now,
              "valid_until": now + timedelta(days=1)}
    mac = integrity.compute(key, "consent_access", values)

    def row(**changed: object) -> tuple:
        merged = {**values, **changed}
        return (*(merged[c] for c in integrity.COVERED["consent_access"]), mac)

    assert integrity.intact_selected(key, "consent_access", row())
    assert integrity.intact_selected(key, "consent_access", row())  # remembered: still true
    assert not integrity.intact_selected(key, "consent_access", row(valid_until=None))
    assert not integrity.intact_selected(key, "consent_access", row(org_id=uuid.uuid4()))
    assert not integrity.intact_selected(other_key, "consent_access", row())
    assert not integrity.intact_selected(key, "break_glass", row())
