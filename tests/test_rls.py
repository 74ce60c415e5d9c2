"""PostgreSQL row-level security: the database's own wall, tested as the service role.

Every query here runs on the connection the service itself uses (a role that is neither owner
nor superuser and cannot bypass RLS) with a tenancy declared the way the app declares it, so
these tests show what a bug in the application's checks could still reach: nothing of another
organisation's. (Tests run as a superuser would prove nothing: superusers bypass RLS.)
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app import tenancy
from app.auth import principals
from app.storage import service_role_problems, wall_problems
from app.tenancy import NOBODY, Scope, Tenancy
from schema import ids
from tests.conftest import BACKGROUND_ROLE, SERVICE_ROLE
from tests.test_consent import grant, new_peacebuilder

pytestmark = pytest.mark.anyio

# Tables without organisation-owned data, left without row-level security (each with why).
EXEMPT = {
    "alembic_version": "the schema's revision (the service may only read it)",
    "policy_state": "one version counter: any write only makes every replica reload the policy",
}


@pytest.fixture
def pg(env):
    if env.backend != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only (SQLite: the app's checks)")
    return env


async def _org(env, slug: str) -> uuid.UUID:
    async with env.runtime.db.transaction() as s:  # the harness's setup runs as the system
        found = await principals.find_user(s, slug, "focal")
        assert found is not None
        return found.org_id


async def _rows(env, tenancy_: Tenancy, sql: str, **params) -> list:
    with tenancy.using(tenancy_):
        async with env.runtime.db.transaction() as s:
            return list((await s.execute(text(sql), params)).all())


async def _org_tenancy(env, slug: str, peacebuilders=()) -> Tenancy:
    org = await _org(env, slug)
    return Tenancy(Scope.ORG, org_id=org, peacebuilders=frozenset(peacebuilders),
                   log_orgs=frozenset({org}))


async def test_the_service_connects_as_a_role_that_cannot_bypass_rls(pg):
    assert await service_role_problems(pg.runtime.db) == []
    assert await wall_problems(pg.runtime.db) == []
    who = "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    assert await _rows(pg, await _org_tenancy(pg, "fund"), who) == [(SERVICE_ROLE, False, False)]
    # The system scope's transactions run on the background role's own connection.
    assert await _rows(pg, tenancy.SYSTEM, who) == [(BACKGROUND_ROLE, False, False)]


async def test_every_table_with_organisation_data_has_rls_enabled_and_forced(pg):
    engine = create_async_engine(pg.owner_url)
    try:
        async with engine.connect() as conn:
            tables = (await conn.execute(text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1"))).all()
    finally:
        await engine.dispose()
    names = {t[0] for t in tables}
    assert set(EXEMPT) <= names, "an exempt table no longer exists: update EXEMPT"
    unprotected = [t[0] for t in tables if t[0] not in EXEMPT and not (t[1] and t[2] and t[3])]
    assert unprotected == [], f"tables without forced row-level security: {unprotected}"
    assert len(names - set(EXEMPT)) >= 35  # the catalog query really saw the schema


async def test_no_tenancy_declared_gives_no_rows(pg):
    for table in ("users", "cases", "peacebuilders", "consent_access", "access_log", "incidents"):
        assert await _rows(pg, NOBODY, f"SELECT count(*) FROM {table}") == [(0,)], table
    # And the system scope sees them: the emptiness above is RLS, not an empty database.
    assert (await _rows(pg, tenancy.SYSTEM, "SELECT count(*) FROM users"))[0][0] > 0
    # A raw connection as the service role that declares nothing at all: the same.
    engine = create_async_engine(pg.runtime.settings.database_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar() == 0
            assert (await conn.execute(text("SELECT count(*) FROM cases"))).scalar() == 0
    finally:
        await engine.dispose()


async def test_another_organisations_rows_are_invisible_and_untouchable(pg):
    pb = await new_peacebuilder(pg, "fund")  # fund's case; embassy holds no grant for her
    case_id = ids.decode(pb["case"], "Case")
    # What the app decides for fund (her intake consent), and an embassy tenancy reaching no one.
    fund, embassy = await _decided(pg, "fund"), await _org_tenancy(pg, "embassy")
    assert await _rows(pg, fund, "SELECT id FROM cases WHERE id = :c", c=case_id) == [(case_id,)]
    assert await _rows(pg, embassy, "SELECT id FROM cases WHERE id = :c", c=case_id) == []
    # The embassy's transaction cannot see fund's staff either, nor fund's log entries.
    assert await _rows(pg, embassy, "SELECT count(*) FROM users WHERE org_id = :o",
                       o=fund.org_id) == [(0,)]
    assert await _rows(pg, embassy, "SELECT count(*) FROM access_log WHERE org_id = :o",
                       o=fund.org_id) == [(0,)]
    with tenancy.using(embassy):
        async with pg.runtime.db.transaction() as s:
            updated = await s.execute(text("UPDATE cases SET status = 'CLOSED' WHERE id = :c"),
                                      {"c": case_id})
            deleted = await s.execute(text("DELETE FROM case_events WHERE case_id = :c"), {"c": case_id})
            renamed = await s.execute(text("UPDATE users SET display_name = 'x' WHERE org_id = :o"),
                                      {"o": fund.org_id})
            assert (updated.rowcount, deleted.rowcount, renamed.rowcount) == (0, 0, 0)
    status = await _rows(pg, tenancy.SYSTEM, "SELECT status FROM cases WHERE id = :c", c=case_id)
    assert status != [("CLOSED",)] and len(status) == 1


async def test_insert_with_another_organisations_id_is_refused(pg):
    pb = await new_peacebuilder(pg, "fund")
    case_id = ids.decode(pb["case"], "Case")
    fund, embassy = await _decided(pg, "fund"), await _org_tenancy(pg, "embassy")
    attempts = [
        ("INSERT INTO case_notes (id, case_id, org_id, author, body, created_at) "
         "VALUES (:id, :c, :o, 'user:x', 'planted', now())", {"c": case_id, "o": fund.org_id}),
        ("INSERT INTO users (id, org_id, username, display_name, active, created_at) "
         "VALUES (:id, :o, :u, 'Planted', true, now())", {"o": fund.org_id, "u": f"u{uuid.uuid4().hex[:8]}"}),
        ("INSERT INTO role_assignments (id, org_id, subject, role) "
         "VALUES (:id, :o, 'user:x', 'org_admin')", {"o": fund.org_id}),
    ]
    for sql, params in attempts:
        with tenancy.using(embassy), pytest.raises(DBAPIError, match="row-level security"):
            async with pg.runtime.db.transaction() as s:
                await s.execute(text(sql), {"id": uuid.uuid4(), **params})
    # Its own organisation's ID is accepted: the refusal above is about whose row it is.
    with tenancy.using(fund):
        async with pg.runtime.db.transaction() as s:
            await s.execute(text(attempts[0][0]), {"id": uuid.uuid4(), **attempts[0][1]})
            await s.rollback()


async def test_her_record_reaches_another_organisation_only_through_the_decided_set(pg):
    pb = await new_peacebuilder(pg, "fund")
    pb_id, case_id = ids.decode(pb["id"], "Peacebuilder"), ids.decode(pb["case"], "Case")
    # What the app decides for unpc before and after she grants it (the one decision function).
    before = await _decided(pg, "unpc")
    assert pb_id not in before.peacebuilders
    assert await _rows(pg, before, "SELECT id FROM cases WHERE id = :c", c=case_id) == []
    await grant(pg, pb, as_=("fund", "caseworker"), to_org="unpc")
    after = await _decided(pg, "unpc")
    assert pb_id in after.peacebuilders
    assert await _rows(pg, after, "SELECT id FROM cases WHERE id = :c", c=case_id) == [(case_id,)]
    # Her data keys and profile rows follow her record; internal notes stay with their org.
    assert (await _rows(pg, after, "SELECT count(*) FROM data_keys WHERE peacebuilder_id = :p",
                        p=pb_id))[0][0] == 1
    assert await _rows(pg, after, "SELECT count(*) FROM case_notes WHERE case_id = :c",
                       c=case_id) == [(0,)]


async def _decided(env, slug: str) -> Tenancy:
    from app.auth.edge import admit
    from app.auth.tokens import Claims

    async with env.runtime.db.transaction() as s:
        found = await principals.find_user(s, slug, "focal")
        assert found is not None
    token = await env.token(slug, "focal")
    claims: Claims = await env.runtime.verify_token(token)
    _, decided = await admit(env.runtime, claims, "protection", "test-rls")
    assert decided.org_id == found.org_id
    return decided


async def test_a_pooled_connection_does_not_carry_the_previous_tenancy(pg):
    from app.db import Database

    # Service role, fallback NOBODY, signing with the deployment's keys.
    db = Database(pg.runtime.settings.database_url, keys=pg.runtime.db.keys)
    # One connection only: the second transaction gets the very connection the first used.
    await db.engine.dispose()
    db.engine = create_async_engine(pg.runtime.settings.database_url, pool_size=1, max_overflow=0)
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from app.db import TenantSession

    db.sessionmaker = async_sessionmaker(db.engine, expire_on_commit=False,
                                         sync_session_class=TenantSession,
                                         info={"fallback": NOBODY, "wall": db.wall})
    fund = await _org_tenancy(pg, "fund")
    try:
        with tenancy.using(fund):
            async with db.transaction() as s:
                pid_1 = await s.scalar(text("SELECT pg_backend_pid()"))
                assert (await s.scalar(text("SELECT count(*) FROM users"))) > 0
        async with db.transaction() as s:  # nothing declared by this unit of work
            assert await s.scalar(text("SELECT pg_backend_pid()")) == pid_1
            assert await s.scalar(text("SELECT current_setting('safety_net.org', true)")) == ""
            assert await s.scalar(text("SELECT count(*) FROM users")) == 0
        # Even a connection used outside the session machinery starts clean.
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar() == pid_1
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar() == 0
    finally:
        await db.dispose()


async def test_a_request_runs_under_its_decided_tenancy(pg):
    """Through the app: a GraphQL request's transaction declares what was decided for it."""
    seen: list[tuple[str, tuple]] = []
    from sqlalchemy import event

    def capture(role: str):
        def listener(_conn, _cursor, statement, parameters, *_):
            if statement.startswith("SELECT set_config('safety_net.scope'"):
                values = (tuple(parameters.values()) if isinstance(parameters, dict)
                          else tuple(parameters))
                seen.append((role, values))
        return listener

    engines = [(pg.runtime.db.system.engine.sync_engine, capture("background")),
               (pg.runtime.db.engine.sync_engine, capture("service"))]
    for engine, listener in engines:
        event.listen(engine, "before_cursor_execute", listener)
    try:
        body = await pg.gql("{ viewer { organisation { slug } } }", as_=("embassy", "focal"))
    finally:
        for engine, listener in engines:
            event.remove(engine, "before_cursor_execute", listener)
    assert body["data"]["viewer"]["organisation"]["slug"] == "embassy"
    embassy = await _org(pg, "embassy")
    # Sign-in and the decision: the principal resolved across organisations, in the system
    # scope, on the background role's connection; then the request itself, as the service role.
    assert seen[0][0] == "background" and seen[0][1][0] == "system", seen
    assert any(role == "service" and values[0] == "org" and values[1] == str(embassy)
               for role, values in seen[1:]), seen
    # Every declaration is signed: an expiry and a 64-hex-digit MAC ride along.
    assert all(len(values) == 7 and len(values[6]) == 64 for _, values in seen), seen


async def test_an_organisation_cannot_write_itself_access_or_move_ownership(pg):
    """The write side of the wall: rows that would widen what an organisation reaches, or that
    claim another organisation's authority, are refused even if the app tried to write them."""
    pb = await new_peacebuilder(pg, "fund")  # registered by fund; embassy holds no grant
    pb_id, case_id = ids.decode(pb["id"], "Peacebuilder"), ids.decode(pb["case"], "Case")
    embassy, fund = await _org_tenancy(pg, "embassy"), await _decided(pg, "fund")
    grant_id = (await _rows(pg, tenancy.SYSTEM, "SELECT grant_id FROM consent_access "
                            "WHERE peacebuilder_id = :p LIMIT 1", p=pb_id))[0][0]
    refused = [
        # consent released to itself, for a woman it may not act for
        (embassy, "INSERT INTO consent_access (id, grant_id, peacebuilder_id, org_id, covered_at, "
                  "category, purpose, valid_from) VALUES (:id, :g, :p, :o, now(), 'profile', "
                  "'protection', now())", {"g": grant_id, "p": pb_id, "o": embassy.org_id}),
        # a break-glass opened in another organisation's name (fund reaches her, embassy does not)
        (fund, "INSERT INTO break_glass (id, peacebuilder_id, org_id, opened_by, reason, opened_at, "
               "expires_at) VALUES (:id, :p, :o, 'user:x', '', now(), now() + interval '1 hour')",
         {"p": pb_id, "o": embassy.org_id}),
        # oversight of another organisation's log, declared by itself
        (embassy, "INSERT INTO oversight (id, org_id, overseer_org_id) VALUES (:id, :o, :e)",
         {"o": fund.org_id, "e": embassy.org_id}),
        # an incident reported in another organisation's name
        (fund, "INSERT INTO incidents (id, case_id, type, severity, status, reporting_org_id, "
               "recorded_by, reported_via, reported_at) VALUES (:id, :c, 'THREAT', 'LOW', "
               "'REPORTED', :o, 'user:x', 'IN_PERSON', now())", {"c": case_id, "o": embassy.org_id}),
    ]
    for who, sql, params in refused:
        # Consent and break-glass rows written by hand carry no valid MAC either: whichever
        # check comes first (the MAC trigger runs before the policy's WITH CHECK) refuses them.
        with tenancy.using(who), pytest.raises(DBAPIError,
                                               match=r"row-level security|integrity code"):
            async with pg.runtime.db.transaction() as s:
                await s.execute(text(sql), {"id": uuid.uuid4(), **params})
    # Ownership cannot be moved by a caller allowed to update the row.
    with tenancy.using(fund), pytest.raises(DBAPIError, match="cannot be changed"):
        async with pg.runtime.db.transaction() as s:
            await s.execute(text("UPDATE peacebuilders SET registered_by_org_id = :e WHERE id = :p"),
                            {"e": embassy.org_id, "p": pb_id})
    # The directories are read by every tenant and changed by nobody but the system.
    with tenancy.using(embassy):
        async with pg.runtime.db.transaction() as s:
            assert (await s.scalar(text("SELECT count(*) FROM organisations"))) > 1
    with tenancy.using(embassy), pytest.raises(DBAPIError, match="row-level security"):
        async with pg.runtime.db.transaction() as s:
            await s.execute(text("UPDATE organisations SET name = 'x' WHERE id = :o"),
                            {"o": fund.org_id})
    assert pb_id not in (await _decided(pg, "embassy")).peacebuilders


async def test_rows_below_a_case_follow_their_own_case(pg):
    """A case's rows (team, incidents, measures...) are visible exactly when the case is, and
    the policy checks the row's own case (migration 0027: its ID, its woman in the decided
    list) instead of building the set of every visible case for each statement."""
    pb = await new_peacebuilder(pg, "fund")
    case_id = ids.decode(pb["case"], "Case")
    fund, embassy = await _decided(pg, "fund"), await _org_tenancy(pg, "embassy")
    team = "SELECT count(*) FROM case_team WHERE case_id = :c"  # her lead's caseworker
    everything = (await _rows(pg, tenancy.SYSTEM, team, c=case_id))[0][0]
    assert everything > 0
    assert await _rows(pg, fund, team, c=case_id) == [(everything,)]
    assert await _rows(pg, embassy, team, c=case_id) == [(0,)]
    # (Per row or hashed is the planner's choice, by the rows it expects; the catalog below is
    # what must hold.)
    engine = create_async_engine(pg.owner_url)
    try:
        async with engine.connect() as conn:
            building = (await conn.execute(text(
                "SELECT tablename || '.' || policyname FROM pg_policies "
                "WHERE concat(qual, with_check) LIKE '%IN ( SELECT cases.id%'"))).all()
    finally:
        await engine.dispose()
    assert building == [], "a policy builds every visible case: test the row's own case_id"
