"""Admission on PostgreSQL (app/auth/edge.py `admit`): the caller, her organisation's consent rows,
its networks and (for auditors) the organisations it oversees are read in ONE statement
(app/access/context.py `Admission`), read before the caller's roles are final and checked in
Python as strictly as when each was read on its own.

Every decision here is compared with the one made the old way (each read in turn,
`decide_tenancy()` without what was read alongside the caller), and rows that got into the
tables without the application's MAC reach nobody through the combined statement either."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select, text

from app import tenancy
from app.access.visibility import CareScope, Mode, verified_from_first
from app.auth import mfa
from app.auth.edge import admit, runtime_context
from app.auth.principals import resolve
from app.errors import Unauthenticated
from app.tables import integrity
from app.tables.consent import ConsentAccess
from app.tenancy import SYSTEM, Tenancy
from schema import ids
from tests.test_consent import grant, new_peacebuilder
from tests.test_rls import _org
from tests.test_wall import connection

pytestmark = pytest.mark.anyio


@pytest.fixture
def pg(env):
    if env.backend != "postgresql":
        pytest.skip("admission decides a tenancy on PostgreSQL only")
    return env


async def _claims(env, org: str, user: str | None = None, client: str | None = None) -> Any:
    return await env.runtime.verify_token(await env.token(org, user, client))


async def _the_old_way(env, claims, purpose: str | None) -> Tenancy:
    """The decision with each of admission's reads run on its own (no `Admission`)."""
    runtime = env.runtime
    with tenancy.using(SYSTEM):
        async with runtime.db.transaction() as session:
            principal = await resolve(session, runtime.policy, claims,
                                      mfa_roles=mfa.mfa_roles(runtime.settings),
                                      now=runtime.clock.now())
            ctx = runtime_context(runtime, session, principal, request_id="t",
                                  purpose=purpose)
            return await ctx.decide_tenancy()


@contextmanager
def statements(env):
    """The statements admission's background connection runs (its tenancy's declaration
    aside)."""
    seen: list[str] = []
    engine = env.runtime.db.system.engine.sync_engine

    def before(_conn, _cursor, statement, _params, _context, _many) -> None:
        if "set_config" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


CALLERS = [("fund", "focal", None), ("fund", "caseworker", None), ("fund", "analyst", None),
           ("fund", "admin", None), ("nhri", "auditor", None), ("nhri", "focal", None),
           ("mofa", None, "mofa-system"), ("unpc", "focal", None)]


@pytest.mark.parametrize("purpose", ["protection", "emergency_response", "aggregate_reporting",
                                     None])
async def test_one_statement_and_the_same_decision_as_reading_each_in_turn(pg, purpose):
    await new_peacebuilder(pg, "fund")
    for org, user, client in CALLERS:
        claims = await _claims(pg, org, user, client)
        with statements(pg) as seen:
            _, decided = await admit(pg.runtime, claims, purpose, "t")
        assert decided == await _the_old_way(pg, claims, purpose), (org, user, client)
        # The caller, the consent rows, the networks, the overseen organisations: one round
        # trip. Read after it only: break-glass (emergency response only) and the other rows of
        # a woman whose first row did not verify (other tests of the suite forge such rows).
        assert "UNION ALL" in seen[0], seen
        for later in seen[1:]:
            assert (("FROM break_glass" in later and purpose == "emergency_response")
                    or "consent_access.peacebuilder_id IN" in later), seen
    focal = await admit(pg.runtime, await _claims(pg, "fund", "focal"), "protection", "t")
    assert focal[1].peacebuilders  # the comparison above was not of empty sets only


async def test_a_policy_in_memory_that_is_stale_changes_what_is_read_not_what_is_decided(pg):
    """The combined statement is built from the roles the policy in memory gives the token's
    subject; the caller's row brings the policy's version, and a newer policy decides."""
    pb = await new_peacebuilder(pg, "fund")
    await grant(pg, pb, as_=("fund", "focal"), to_org="nhri")
    policy = pg.runtime.policy
    focal = await _claims(pg, "fund", "focal")
    auditor = await _claims(pg, "nhri", "auditor")
    expected = {"focal": await _the_old_way(pg, focal, "protection"),
                "auditor": await _the_old_way(pg, auditor, "protection")}
    her = ids.decode(pb["id"], "Peacebuilder")
    assert her in expected["focal"].peacebuilders
    assert her not in expected["auditor"].peacebuilders
    assert len(expected["auditor"].log_orgs) > 1  # an auditor of organisations that accept it
    fund, nhri = str(await _org(pg, "fund")), str(await _org(pg, "nhri"))
    real = dict(policy._subject_roles)
    try:
        # In memory the focal point has no role and the auditor is a focal point only; the
        # database's policy is newer (the caller's row says so: version -1 is never current).
        policy._subject_roles = {**real, (focal.subject, fund): frozenset(),
                                 (auditor.subject, nhri): frozenset({"focal_point"})}
        policy.version = -1
        with statements(pg) as seen:
            _, decided = await admit(pg.runtime, focal, "protection", "t")
        assert decided == expected["focal"]
        # The newer policy is loaded; her consent rows were not read with her: read after.
        assert len(seen) == 3 and "role_assignments" in seen[1], seen
        assert "DISTINCT ON" in seen[2] and "UNION" not in seen[2], seen
        policy._subject_roles = {**real, (auditor.subject, nhri): frozenset({"focal_point"})}
        policy.version = -1
        with statements(pg) as seen:
            _, decided = await admit(pg.runtime, auditor, "protection", "t")
        # The consent rows read for a focal point are not used; the overseen organisations,
        # not read, are read after.
        assert decided == expected["auditor"]
        assert len(seen) == 3 and "oversight" in seen[2], seen
    finally:
        policy.version = -1  # reloaded from the database on the next request


async def test_a_caller_found_inactive_is_refused_although_the_rest_was_read(pg):
    await new_peacebuilder(pg, "fund")
    claims = await _claims(pg, "fund", "caseworker")
    user_id = uuid.UUID(claims.subject.partition(":")[2])
    async with connection(pg.owner_url) as conn:
        await conn.execute(text("UPDATE users SET active = false WHERE id = :u"), {"u": user_id})
    try:
        with statements(pg) as seen, pytest.raises(Unauthenticated):
            await admit(pg.runtime, claims, "protection", "t")
        assert len(seen) == 1 and "UNION ALL" in seen[0]
    finally:
        async with connection(pg.owner_url) as conn:
            await conn.execute(text("UPDATE users SET active = true WHERE id = :u"),
                               {"u": user_id})


async def _forge(pg, sql: str, params: dict[str, Any], table: str) -> None:
    """A row put in with the owner's rights and the table's MAC trigger off (a superuser, a
    restore with triggers off)."""
    async with connection(pg.owner_url) as conn:
        await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_mac"))
        await conn.execute(text(sql), params)
        await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_mac"))


def _first_id() -> uuid.UUID:
    """An ID that sorts before every uuid4 (the forged row is not found last by chance)."""
    return uuid.UUID(int=uuid.uuid4().int >> 70)


FORGED_CONSENT = (
    "INSERT INTO consent_access (id, grant_id, peacebuilder_id, org_id, covered_at, category, "
    "purpose, valid_from, mac) VALUES (:id, :g, :p, :o, now(), 'profile', 'protection', "
    "now() - interval '1 minute', :m)")


async def test_a_forged_consent_row_with_a_mac_copied_from_a_genuine_one_reaches_nobody(pg):
    pb = await new_peacebuilder(pg, "fund")
    pb_id = ids.decode(pb["id"], "Peacebuilder")
    embassy = await _org(pg, "embassy")
    async with connection(pg.owner_url) as conn:
        grant_id, mac = (await conn.execute(text(
            "SELECT grant_id, mac FROM consent_access WHERE peacebuilder_id = :p LIMIT 1"),
            {"p": pb_id})).one()
    for forged_mac in (mac, None, "ab" * 32):
        await _forge(pg, FORGED_CONSENT, {"id": _first_id(), "g": grant_id, "p": pb_id,
                                          "o": embassy, "m": forged_mac}, "consent_access")
    claims = await _claims(pg, "embassy", "focal")
    with statements(pg) as seen:
        _, decided = await admit(pg.runtime, claims, "protection", "t")
    assert pb_id not in decided.peacebuilders
    assert "UNION ALL" in seen[0]
    assert decided == await _the_old_way(pg, claims, "protection")


async def test_a_forged_first_row_makes_her_other_rows_be_read(pg):
    """A forged row takes nothing away: whichever of her rows admission checks first, a genuine
    one still counts; given the forged one first, her other rows are read."""
    pb = await new_peacebuilder(pg, "fund")
    pb_id = ids.decode(pb["id"], "Peacebuilder")
    await grant(pg, pb, as_=("fund", "focal"), to_org="unpc")
    unpc = await _org(pg, "unpc")
    async with connection(pg.owner_url) as conn:
        grant_id, mac = (await conn.execute(text(
            "SELECT grant_id, mac FROM consent_access WHERE peacebuilder_id = :p AND org_id = :o "
            "AND purpose = 'protection' LIMIT 1"), {"p": pb_id, "o": unpc})).one()
    forged_id = _first_id()
    await _forge(pg, FORGED_CONSENT, {"id": forged_id, "g": grant_id, "p": pb_id, "o": unpc,
                                      "m": mac}, "consent_access")
    claims = await _claims(pg, "unpc", "focal")
    with statements(pg) as seen:
        _, decided = await admit(pg.runtime, claims, "protection", "t")
    assert pb_id in decided.peacebuilders
    assert "UNION ALL" in seen[0]
    assert decided == await _the_old_way(pg, claims, "protection")
    scope = CareScope(org_id=unpc, subject="t", purpose="protection", now=pg.runtime.clock.now(),
                      mode=Mode.FOCAL)
    with tenancy.using(SYSTEM):
        async with pg.runtime.db.transaction() as s:
            forged = (await s.execute(select(*integrity.columns("consent_access"))
                                      .where(ConsentAccess.id == forged_id))).all()
            assert not integrity.intact_selected(integrity.key_of(s), "consent_access",
                                                 forged[0])
            # As a row of the statement, and as the plain tuple admission's statement gives.
            for first in (forged, [tuple(forged[0])]):
                with statements(pg) as seen:
                    assert pb_id in await verified_from_first(s, scope, first)
                assert len(seen) == 1 and "consent_access.peacebuilder_id IN" in seen[0]


async def test_a_forged_network_row_reaches_nobody(pg):
    """A confirmed network acts for her without a grant: one put in without the application's
    MAC (or with another row's) does not."""
    pb = await new_peacebuilder(pg, "fund")
    pb_id = ids.decode(pb["id"], "Peacebuilder")
    async with connection(pg.owner_url) as conn:
        genuine = (await conn.execute(text(
            "SELECT mac FROM peacebuilder_networks WHERE confirmed_at IS NOT NULL AND mac IS NOT "
            "NULL LIMIT 1"))).scalar()
    assert genuine is not None
    insert = ("INSERT INTO peacebuilder_networks (id, peacebuilder_id, org_id, confirmed_at, "
              "confirmed_by, mac) VALUES (:id, :p, :o, now(), 'user:x', :m)")
    for org, forged_mac in (("embassy", genuine), ("wpn", None), ("nhri", "ab" * 32)):
        await _forge(pg, insert, {"id": uuid.uuid4(), "p": pb_id, "o": await _org(pg, org),
                                  "m": forged_mac}, "peacebuilder_networks")
        for user in ("focal", "admin"):
            claims = await _claims(pg, org, user)
            with statements(pg) as seen:
                _, decided = await admit(pg.runtime, claims, "protection", "t")
            assert pb_id not in decided.peacebuilders, (org, user)
            # The networks were read with the caller (the tests above left doubtful consent rows
            # in some organisations: those women's other rows are read after).
            assert "UNION ALL" in seen[0] and "FROM peacebuilder_networks" in seen[0]
            assert not any("peacebuilder_networks" in s for s in seen[1:]), seen
            assert decided == await _the_old_way(pg, claims, "protection")
