"""Migration 0027 rewrote the row-level security policies and `sn_*` functions for speed; it
must not change what any caller sees or may write (docs/decisions/0014, addendum).

A differential test: the same callers (signed by the application, set by hand, forged, replayed,
expired, odd values the cheap claim check and the HMAC verification might read differently, the
system scope on the wrong role) read every protected table and try the same writes below 0027
(the schema downgraded to 0026) and at 0027; every answer (rows seen, rows written, error) must
be identical. Then the round trip: 0026 -> 0027 -> 0026 -> 0027 leaves the catalog as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app import tenancy
from app.storage import alembic_config
from app.tables.consent import BreakGlass
from app.tenancy import SYSTEM, Scope, Tenancy
from app.wall import SET_TEXT, Wall, message
from schema import ids
from tests.test_consent import grant, new_peacebuilder
from tests.test_rls import _decided
from tests.test_wall import background, service

pytestmark = pytest.mark.anyio

BELOW_A_CASE = ("case_events", "case_notes", "case_team", "check_in_schedules", "check_ins",
                "consultation_follow_ups", "consultations", "detention_checks",
                "detention_visits", "detentions", "hearings", "incidents", "measures",
                "proceedings", "referrals", "risk_assessments", "risk_threats",
                "security_assessments")
ORG_FIRST = ("consent_access", "break_glass")

CATALOG = text(
    "SELECT (SELECT string_agg(concat_ws('|', tablename, policyname, cmd, permissive, roles::text,"
    " qual, with_check), E'\\n' ORDER BY tablename, policyname) FROM pg_policies),"
    " (SELECT string_agg(pg_get_functiondef(p.oid), E'\\n' ORDER BY p.proname)"
    "  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    "  WHERE n.nspname = 'public' AND p.proname LIKE 'sn\\_%')")


@pytest.fixture
def pg(env):
    if env.backend != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only")
    return env


def _migrate(owner_url: str, action: str, revision: str) -> None:
    getattr(command, action)(alembic_config(owner_url), revision)


async def _catalog(owner_url: str) -> tuple[str, str]:
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(CATALOG)).one()
            return row[0], row[1]
    finally:
        await engine.dispose()


def _sign(wall: Wall, values: dict[str, str]) -> dict[str, str]:
    """A MAC over exactly these values with the deployment's key (a key holder's signature:
    used for values the application never signs, to see what the database makes of them)."""
    key = wall.key("tenancy")
    assert key is not None
    return {**values, "mac": hmac.new(key, message(values).encode(), hashlib.sha256).hexdigest()}


def _protected_tables(names: list[str]) -> list[str]:
    return [n for n in names if n not in ("alembic_version", "policy_state")]


async def _outcome(conn, sql: str, params: dict[str, Any], *, rows: bool) -> Any:
    nested = await conn.begin_nested()
    try:
        result = await conn.execute(text(sql), params)
        answer: Any = sorted(tuple(str(v) for v in r) for r in result.all()) if rows \
            else result.rowcount
    except DBAPIError as e:
        answer = ("error", type(e.orig).__name__, str(e.orig).splitlines()[0][-120:])
    await nested.rollback()
    return answer


async def _snapshot(pg, callers: dict[str, Callable[[], tuple[str, dict[str, str] | None]]],
                    tables: list[str], templates: dict[str, dict], cases: dict[str, uuid.UUID]
                    ) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for label, make in callers.items():
        url, settings = make()
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn, conn.begin():
                if settings is not None:
                    full = {"peacebuilders_sha256": "", "expires": "", "mac": "", **settings}
                    await conn.execute(text(SET_TEXT), full)
                for table in tables:
                    seen[f"{label} read {table}"] = await _outcome(
                        conn, f"SELECT md5(t::text) FROM {table} t", {}, rows=True)
                    seen[f"{label} update {table}"] = await _outcome(
                        conn, f"UPDATE {table} SET id = id", {}, rows=False)
                    seen[f"{label} delete {table}"] = await _outcome(
                        conn, f"DELETE FROM {table}", {}, rows=False)
                for table in BELOW_A_CASE:
                    for name, case_id in cases.items():
                        # Move every row it may update into that case.
                        seen[f"{label} move {table} -> {name}"] = await _outcome(
                            conn, f"UPDATE {table} SET case_id = :c", {"c": case_id}, rows=False)
                        if table in templates:
                            row = {**templates[table], "id": str(uuid.uuid4()),
                                   "case_id": str(case_id)}
                            if settings and settings.get("org"):  # written in its own name
                                row |= {k: settings["org"] for k in row if k.endswith("org_id")
                                        and row[k] is not None}
                            seen[f"{label} insert {table} -> {name}"] = await _outcome(
                                conn, f"INSERT INTO {table} SELECT * FROM "
                                f"jsonb_populate_record(NULL::{table}, CAST(:r AS jsonb))",
                                {"r": json.dumps(row)}, rows=False)
                for table in ORG_FIRST:
                    # Rows kept as they are: the MAC still verifies, so RLS decides.
                    seen[f"{label} touch {table}"] = await _outcome(
                        conn, f"UPDATE {table} SET mac = mac", {}, rows=False)
        except DBAPIError as e:  # the settings statement itself
            seen[f"{label} set"] = ("error", type(e.orig).__name__)
        finally:
            await engine.dispose()
    return seen


FILLER = {"uuid": lambda: str(uuid.uuid4()), "text": lambda: "x", "character varying": lambda: "x",
          "integer": lambda: 1, "smallint": lambda: 1, "bigint": lambda: 1, "numeric": lambda: 1,
          "boolean": lambda: False, "jsonb": lambda: {}, "json": lambda: {},
          "timestamp with time zone": lambda: "2026-01-01T00:00:00+00:00",
          "date": lambda: "2026-01-01", "ARRAY": lambda: []}


async def _templates(pg, case_id: uuid.UUID, org_id: uuid.UUID | None) -> dict[str, dict]:
    """A row of each table below a case: the first one there, else one built from the catalog
    (foreign keys to existing rows, the first value a CHECK lists, a filler by type)."""
    import re

    templates: dict[str, dict] = {}
    engine = create_async_engine(background(pg))
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text(SET_TEXT), pg.runtime.db.system.signed(SYSTEM))
            for _ in range(4):
                for table in BELOW_A_CASE:
                    if table in templates:
                        continue
                    row = await conn.scalar(text(f"SELECT to_jsonb(t) FROM {table} t LIMIT 1"))
                    if row is None:
                        row = await _build(conn, table, case_id, org_id, re)
                    if row is not None:
                        templates[table] = row
            # An attachment of her incident (its policy reaches the incident's, which 0027
            # rewrote), to read.
            if await conn.scalar(text("SELECT count(*) FROM attachments")) == 0:
                assert await _build(conn, "attachments", case_id, org_id, re) is not None
    finally:
        await engine.dispose()
    return templates


async def _build(conn, table: str, case_id: uuid.UUID, org_id: uuid.UUID | None, re) -> dict | None:
    columns = (await conn.execute(text(
        "SELECT column_name, data_type, is_nullable = 'YES', column_default IS NOT NULL "
        "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = :t"),
        {"t": table})).all()
    fks = dict((await conn.execute(text(
        "SELECT a.attname, c.confrelid::regclass::text FROM pg_constraint c JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.conrelid = CAST(:t AS regclass) AND c.contype = 'f'"), {"t": table})).all())
    checks = " ".join(r[0] for r in (await conn.execute(text(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND contype = 'c'"), {"t": table})).all())
    row: dict[str, Any] = {}
    for name, kind, nullable, has_default in columns:
        if name == "case_id":
            row[name] = str(case_id)
        elif name in fks and not nullable:
            ref = await conn.scalar(text(
                f"SELECT id FROM {fks[name]} WHERE "
                + ("case_id = :c" if fks[name] in BELOW_A_CASE else "true") + " LIMIT 1"),
                {"c": case_id})
            if ref is None:
                return None
            row[name] = str(ref)
        elif name.endswith("org_id") and org_id is not None and not nullable:
            row[name] = str(org_id)
        elif not nullable and not has_default:
            listed = re.search(rf"\(?{name}\)?(?:::text)? = ANY \(\(?ARRAY\['([^']*)'", checks)
            row[name] = listed.group(1) if listed else FILLER.get(kind, lambda: "x")()
    nested = await conn.begin_nested()
    try:
        made = await conn.scalar(text(
            f"INSERT INTO {table} SELECT * FROM jsonb_populate_record(NULL::{table}, "
            f"CAST(:r AS jsonb)) RETURNING to_jsonb({table})"),
            {"r": json.dumps(row)})
        await nested.commit()
        return made
    except DBAPIError:
        await nested.rollback()
        return None


@pytest.mark.heavy  # migrates the shared test database down and up again (~40 s)
async def test_0027_shows_and_accepts_exactly_the_rows_0026_did(pg):
    owner = pg.owner_url
    wall = pg.runtime.db.wall
    # Her, registered by fund, with a grant to unpc; another woman registered by embassy, whose
    # case fund cannot see; a third of fund's whose only grant to unpc is for advocacy (unpc's
    # own consent rows about a woman outside its decided list for protection).
    her = await new_peacebuilder(pg, "fund")
    await grant(pg, her, as_=("fund", "caseworker"), to_org="unpc")
    other = await new_peacebuilder(pg, "embassy")
    third = await new_peacebuilder(pg, "fund")
    await grant(pg, third, as_=("fund", "caseworker"), to_org="unpc", purposes=("ADVOCACY",))
    her_id = ids.decode(her["id"], "Peacebuilder")
    cases = {"hers": ids.decode(her["case"], "Case"), "other": ids.decode(other["case"], "Case"),
             "third": ids.decode(third["case"], "Case"), "missing": uuid.uuid4()}
    fund, embassy = await _decided(pg, "fund"), await _decided(pg, "embassy")
    unpc, wpn = await _decided(pg, "unpc"), await _decided(pg, "wpn")
    assert her_id not in embassy.peacebuilders
    # Break-glass rows: embassy's about her (its own organisation's row, of a woman outside its
    # decided list: visible to embassy before 0027 through `org_id = sn_org()`), fund's about
    # her, and embassy's about its own woman.
    opened = datetime.now(UTC)
    with tenancy.using(SYSTEM):
        async with pg.runtime.db.transaction() as s:
            for pb, org in ((her_id, embassy.org_id), (her_id, fund.org_id),
                            (ids.decode(other["id"], "Peacebuilder"), embassy.org_id)):
                s.add(BreakGlass(peacebuilder_id=pb, org_id=org, opened_by="user:x",
                                 reason="vital interest", opened_at=opened,
                                 expires_at=opened + timedelta(hours=1)))

    engine = create_async_engine(owner)
    try:
        async with engine.connect() as conn:
            names = [r[0] for r in (await conn.execute(text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity "
                "ORDER BY 1"))).all()]
    finally:
        await engine.dispose()
    tables = _protected_tables(names)
    # One row per table below a case (an existing one, else one made here on her case, as the
    # system), to read, move and insert copies of.
    templates = await _templates(pg, cases["hers"], fund.org_id)
    assert len(templates) >= 12, sorted(set(BELOW_A_CASE) - set(templates))
    forger = Wall(60)
    forger._cache["tenancy"] = os.urandom(32)
    her_alone = Tenancy(Scope.PEACEBUILDER, peacebuilders=frozenset({her_id}))
    later = lambda: str(int(time.time()) + 60)  # noqa: E731

    def svc(settings: Callable[[], dict[str, str] | None]):
        return lambda: (service(pg), settings())

    def bg(settings: Callable[[], dict[str, str] | None]):
        return lambda: (background(pg), settings())

    def replay(t: Tenancy, **changes: str) -> Callable[[], dict[str, str]]:
        return lambda: {**wall.signed(t), **changes}

    callers: dict[str, Callable[[], tuple[str, dict[str, str] | None]]] = {
        "undeclared": svc(lambda: None),
        "none signed": svc(lambda: wall.signed(Tenancy(Scope.NONE))),
        "fund": svc(lambda: wall.signed(fund)),
        "embassy": svc(lambda: wall.signed(embassy)),
        "unpc": svc(lambda: wall.signed(unpc)),
        "wpn": svc(lambda: wall.signed(wpn)),
        "fund, no list": svc(lambda: wall.signed(Tenancy(Scope.ORG, org_id=fund.org_id,
                                                         log_orgs=fund.log_orgs))),
        "her": svc(lambda: wall.signed(her_alone)),
        "system (background)": bg(lambda: pg.runtime.db.system.signed(SYSTEM)),
        "system signed, service role": svc(lambda: pg.runtime.db.system.signed(SYSTEM)),
        "fund on the background role": bg(lambda: wall.signed(fund)),
        # by hand
        "system by hand": svc(lambda: {**SYSTEM.settings(), "expires": later()}),
        "org by hand": svc(lambda: {**fund.settings(), "expires": later(), "mac": "0" * 64}),
        "system by hand, background": bg(lambda: {**SYSTEM.settings(), "expires": later(),
                                                  "mac": "f" * 64}),
        # forged
        "forged org": svc(lambda: forger.signed(fund)),
        "forged system": bg(lambda: forger.signed(SYSTEM)),
        "forged her": svc(lambda: forger.signed(her_alone)),
        # replayed with other values
        "embassy as system": svc(replay(embassy, scope="system")),
        "embassy as system, background": bg(replay(embassy, scope="system")),
        "embassy as fund": svc(replay(embassy, org=str(fund.org_id))),
        "her as org": svc(replay(her_alone, scope="org", org=str(fund.org_id))),
        "her as org, same values": svc(replay(her_alone, scope="org")),
        "fund as peacebuilder": svc(replay(fund, scope="peacebuilder")),
        "embassy with fund's list": svc(replay(embassy, peacebuilders=fund.settings()
                                               ["peacebuilders"])),
        "embassy, later expiry": svc(lambda: {**wall.signed(embassy),
                                              "expires": str(int(time.time()) + 3600)}),
        "system, later expiry": bg(lambda: {**pg.runtime.db.system.signed(SYSTEM),
                                            "expires": str(int(time.time()) + 7200)}),
        # expired (an error at the first statement that verifies)
        "fund expired": svc(lambda: wall.signed(fund, now=time.time() - wall.ttl - 5)),
        "her expired": svc(lambda: wall.signed(her_alone, now=time.time() - wall.ttl - 5)),
        "system expired": bg(lambda: pg.runtime.db.system.wall.signed(
            SYSTEM, now=time.time() - 4000)),
        # values the cheap claim check and the verification could read differently
        "fund expires zero-padded": svc(replay(fund, expires="0" + later())),
        "fund expires signed, padded": svc(lambda: _sign(wall, {**fund.settings(),
            "peacebuilders_sha256": hashlib.sha256(fund.settings()["peacebuilders"].encode())
            .hexdigest(), "expires": "0" + later()})),
        "fund expires 13 digits signed": svc(lambda: _sign(wall, {**fund.settings(),
            "peacebuilders_sha256": hashlib.sha256(fund.settings()["peacebuilders"].encode())
            .hexdigest(), "expires": "9999999999999"})),
        "fund expires with newline": svc(replay(fund, expires=later() + "\n")),
        "fund scope ORG signed": svc(lambda: _sign(wall, {**fund.settings(), "scope": "ORG",
            "peacebuilders_sha256": hashlib.sha256(fund.settings()["peacebuilders"].encode())
            .hexdigest(), "expires": later()})),
        "fund scope 'org ' signed": svc(lambda: _sign(wall, {**fund.settings(), "scope": "org ",
            "peacebuilders_sha256": hashlib.sha256(fund.settings()["peacebuilders"].encode())
            .hexdigest(), "expires": later()})),
        "system signed by key holder, service": svc(lambda: _sign(wall, {**SYSTEM.settings(),
            "peacebuilders_sha256": hashlib.sha256(b"").hexdigest(), "expires": later()})),
        "fund, mac upper-case": svc(lambda: {**wall.signed(fund),
                                             "mac": wall.signed(fund)["mac"].upper()}),
    }

    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    await asyncio.to_thread(_migrate, owner, "downgrade", "0026")
    try:
        catalog_26 = await _catalog(owner)
        before = await _snapshot(pg, callers, tables, templates, cases)
    finally:
        await asyncio.to_thread(_migrate, owner, "upgrade", "head")
    catalog_27 = await _catalog(owner)
    after = await _snapshot(pg, callers, tables, templates, cases)
    # The round trip gives back the same catalog both ways.
    await asyncio.to_thread(_migrate, owner, "downgrade", "0026")
    try:
        assert await _catalog(owner) == catalog_26
    finally:
        await asyncio.to_thread(_migrate, owner, "upgrade", "head")
    assert await _catalog(owner) == catalog_27
    assert catalog_26 != catalog_27  # the migration really ran between the snapshots

    assert before.keys() == after.keys()
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert changed == {}, "\n".join(f"{k}: 0026 {b!r} / 0027 {a!r}"
                                    for k, (b, a) in list(changed.items())[:40])
    # The control: the snapshots saw something (the comparison is not between two emptinesses).
    assert before["fund read cases"] and before["system (background) read cases"]
    assert before["unpc read consent_access"]
    assert before["fund read attachments"] and not before["embassy read attachments"]
    # Its own rows, one about her outside its list (other tests of the session may add more).
    assert len(before["embassy read break_glass"]) >= 2
    assert before["embassy touch break_glass"] >= 2 and before["fund touch break_glass"] >= 2
    assert before["fund expired read cases"][0] == "error"


SEEN = ("cases", "case_team", "incidents", "consent_access", "break_glass", "peacebuilders",
        "peacebuilder_data", "users", "access_log")


async def _read(conn, settings: dict[str, str] | None) -> dict[str, Any]:
    if settings is not None:
        full = {"peacebuilders_sha256": "", "expires": "", "mac": "", **settings}
        await conn.execute(text(SET_TEXT), full)
    return {t: await _outcome(conn, f"SELECT md5(x::text) FROM {t} x", {}, rows=True)
            for t in SEEN}


async def test_one_pooled_connection_answers_each_transaction_as_a_fresh_one(pg):
    """0027 moved the claim check and the decided list into PL/pgSQL, whose plans live as long as
    the connection: a connection reused by callers in turn (and a transaction that re-declares
    its tenancy, as `reach()` does) must answer each exactly as a new connection would."""
    wall = pg.runtime.db.wall
    her = await new_peacebuilder(pg, "fund")
    her_id = ids.decode(her["id"], "Peacebuilder")
    fund, embassy = await _decided(pg, "fund"), await _decided(pg, "embassy")
    forger = Wall(60)
    forger._cache["tenancy"] = os.urandom(32)
    callers: dict[str, Callable[[], dict[str, str] | None]] = {
        "fund": lambda: wall.signed(fund),
        "undeclared": lambda: None,
        "embassy": lambda: wall.signed(embassy),
        "her": lambda: wall.signed(Tenancy(Scope.PEACEBUILDER, peacebuilders=frozenset({her_id}))),
        "forged fund": lambda: forger.signed(fund),
        "fund expired": lambda: wall.signed(fund, now=time.time() - wall.ttl - 5),
        "embassy with her": lambda: wall.signed(Tenancy(
            Scope.ORG, org_id=embassy.org_id, peacebuilders=embassy.peacebuilders | {her_id},
            log_orgs=embassy.log_orgs)),
        "embassy as system": lambda: {**wall.signed(embassy), "scope": "system"},
    }
    fresh: dict[str, Any] = {}
    for label, settings in callers.items():
        engine = create_async_engine(service(pg))
        try:
            async with engine.connect() as conn, conn.begin():
                fresh[label] = await _read(conn, settings())
        finally:
            await engine.dispose()
    assert fresh["fund"]["cases"] and fresh["embassy with her"] != fresh["embassy"]
    order = list(callers) * 3 + list(reversed(callers)) * 2
    engine = create_async_engine(service(pg), pool_size=1, max_overflow=0)
    try:
        for label in order:  # one transaction each, on the same backend
            async with engine.connect() as conn, conn.begin():
                assert await _read(conn, callers[label]()) == fresh[label], label
        # Re-declared within one transaction: each statement follows the latest declaration.
        async with engine.connect() as conn, conn.begin():
            for label in order:
                if label in ("undeclared", "fund expired"):
                    continue
                assert await _read(conn, callers[label]()) == fresh[label], f"{label} (again)"
    finally:
        await engine.dispose()


CASES_READ = ("(( SELECT sn_system() AS sn_system) OR (peacebuilder_id IN ( SELECT sn_peacebuilders() "
              "AS sn_peacebuilders)))")


async def test_the_cases_read_policy_is_the_one_wall_below_a_case(pg):
    """The tables below a case admit a row when `EXISTS (SELECT 1 FROM cases ...)` finds its
    case with the case's woman in the decided list — through the cases table's own read policy
    AND the list tested again in the sub-select (which also keeps the planner's hashed variant
    an index scan of the visible cases, not a scan of every case). Each stays its own wall: a
    later policy that widened `cases` would not widen incidents, notes, referrals,
    detentions... on its own. The cases read policy is pinned too."""
    engine = create_async_engine(pg.owner_url)
    try:
        async with engine.connect() as conn:
            applicable = (await conn.execute(text(
                "SELECT policyname, permissive, roles::text, qual FROM pg_policies "
                "WHERE tablename = 'cases' AND cmd IN ('SELECT', 'ALL')"))).all()
            forced = (await conn.execute(text(
                "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class "
                "WHERE oid = 'cases'::regclass"))).scalar()
            below = (await conn.execute(text(
                "SELECT tablename, count(*) FILTER (WHERE concat(qual, with_check) "
                "LIKE '%FROM cases sn_case%WHERE ((sn_case.id = ' || tablename || '.case_id) "
                "AND (sn_case.peacebuilder_id = ANY (( SELECT sn_peacebuilder_ids()%') "
                "FROM pg_policies WHERE tablename = ANY(:t) GROUP BY tablename"),
                {"t": list(BELOW_A_CASE)})).all()
    finally:
        await engine.dispose()
    assert forced
    assert [(n, p, r, " ".join(q.split())) for n, p, r, q in applicable] == [
        ("cases_read", "PERMISSIVE", "{public}", CASES_READ)], applicable
    # Every table below a case reaches its own row's case in all four of its policies.
    assert sorted(t for t, n in below if n >= 4) == sorted(BELOW_A_CASE), below
