"""Fast bulk generator for the benchmarks: organisations, people, roles, peacebuilders, consent,
cases, incidents, case teams and a chained access log, written with bulk inserts (COPY on
PostgreSQL), never through the API.

The rows are consistent with what the API would have written, so the real visibility rules
apply to them:
- every peacebuilder has an intake grant to her lead organisation (every default category, for
  protection and emergency response), its `grant` event, and the flattened `consent_access`
  rows (1 organisation x 8 categories x 2 purposes);
- a third of them also granted a working group of five organisations their incident details
  for protection (5 more `consent_access` rows, via the group, covered since the group began);
- the lead organisation's case worker is on each case team;
- each case has three incidents, all acknowledged (so the scheduler has nothing to escalate);
- every peacebuilder has her own data key, wrapped by the deployment's KEK (`db.keys`), and her
  profile fields, case summary and incident details are sealed with it exactly as the services
  seal them (app/her/sealing.py), so the API decrypts what it reads, as in production.

The caller measured is the focal point of `bench-000`. It leads `CALLER_CASES` cases and sees
`WG_CASES` more through a working group; both sets are created once, at the first size, so what
the caller sees stays the same while the database grows around it. Its own cases are the newest
(opened in the last days), so the first page is the same 50 cases for our API and the baselines.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app import crypto, wall
from app.audit import chain
from app.db import Database, canonical_json
from app.tables import integrity
from app.tables.cases import Case
from app.tables.categories import DEFAULT_CATEGORIES
from app.tables.consent import CaseTeamMember, ConsentAccess, ConsentEvent, ConsentGrant
from app.tables.incidents import Incident
from app.tables.orgs import (
    Organisation,
    PolicyState,
    RoleAssignment,
    User,
    WorkingGroup,
    WorkingGroupMember,
)
from app.tables.peacebuilders import DataKey, Peacebuilder, PeacebuilderDatum
from bench import audit_verify

ORGS = 200
USERS_PER_ORG = 50  # 200 x 50 = 10,000 role assignments ("policy lines")
WG_SIZE = 5
CALLER = "bench-000"
CALLER_CASES = 250  # enough for a page of 200
WG_CASES = 50
INCIDENTS_PER_CASE = 3
KINDS = ["ministry", "embassy_mission", "un_protection_cluster", "nhri", "peacebuilders_network",
         "fund", "ohchr_office", "law_enforcement_liaison"]
CATEGORIES = sorted(DEFAULT_CATEGORIES)
PURPOSES = ["emergency_response", "protection"]
BASE_TIME = datetime.now(UTC) - timedelta(days=1100)  # before every generated case
TEXT = ("Threats after speaking at a local peace forum; follow-up visits by unknown men, "
        "messages to her family, and a smear campaign online. ")


@dataclass
class World:
    """What later stages need to know about the generated data."""

    org_ids: list[uuid.UUID] = field(default_factory=list)
    caseworkers: list[str] = field(default_factory=list)  # subject of each org's case worker
    wg_ids: list[uuid.UUID] = field(default_factory=list)  # groups of orgs 1..199 (not the caller)
    caller_wg: uuid.UUID | None = None
    cases: int = 0
    serial: int = 0  # pseudonym counter

    @property
    def caller_org(self) -> uuid.UUID:
        return self.org_ids[0]


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - benchmark data, not secrets


class Writer:
    """Bulk inserts: COPY on PostgreSQL, executemany on SQLite. Rows of the tables whose rows
    carry the application's MAC (app/tables/integrity.py) are stamped with `mac_key`, as the
    ORM's events stamp them (the bulk load runs with triggers off, but the service checks them)."""

    def __init__(self, conn: AsyncConnection, mac_key: bytes | None = None) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self.rows = 0
        self.mac_key = mac_key

    async def put(self, table: Table, rows: Iterable[dict[str, Any]], chunk: int = 50_000) -> None:
        buf: list[dict[str, Any]] = []
        for row in rows:
            buf.append(row)
            if len(buf) >= chunk:
                await self._flush(table, buf)
                buf = []
        if buf:
            await self._flush(table, buf)

    async def _flush(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self.rows += len(rows)
        if table.name in integrity.COVERED:
            if self.mac_key is None:
                raise RuntimeError(f"{table.name} rows need the consent key (Writer mac_key)")
            for row in rows:
                row["mac"] = integrity.compute(self.mac_key, table.name, row)
        if not self.pg:
            await self.conn.execute(table.insert(), rows)
            return
        columns = list(rows[0])
        json_cols = {c for c in columns if table.c[c].type.__class__.__name__ == "JSON"}
        records = [tuple(canonical_json(r[c]) if c in json_cols else r[c] for c in columns)
                   for r in rows]
        raw = await self.conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=records, columns=columns)


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


async def organisations(db: Database, world: World) -> None:
    """200 organisations with 50 users each (focal, caseworker, analyst, admin, 46 more case
    workers), their role assignments, and 40 working groups of five (the caller in one)."""
    rng = _rng(1)
    async with db.engine.begin() as conn:
        w = Writer(conn)
        orgs, users, roles = [], [], []
        for i in range(ORGS):
            org_id = uuid.uuid4()
            world.org_ids.append(org_id)
            orgs.append({"id": org_id, "slug": f"bench-{i:03d}", "name": f"Bench organisation {i}",
                         "kind": KINDS[i % len(KINDS)], "country": "KE",
                         "created_at": BASE_TIME})
            names = ["focal", "caseworker", "analyst", "admin"] + [
                f"cw{n:02d}" for n in range(USERS_PER_ORG - 4)]
            for name in names:
                uid = uuid.uuid4()
                users.append({"id": uid, "org_id": org_id, "username": name,
                              "display_name": f"{name} of bench-{i:03d}", "password_hash": None,
                              "email": None, "active": True, "created_at": BASE_TIME})
                role = {"focal": "focal_point", "analyst": "analyst",
                        "admin": "org_admin"}.get(name, "caseworker")
                roles.append({"id": uuid.uuid4(), "org_id": org_id, "subject": f"user:{uid}",
                              "role": role})
                if name == "caseworker":
                    world.caseworkers.append(f"user:{uid}")
        await w.put(_t(Organisation), orgs)
        await w.put(_t(User), users)
        await w.put(_t(RoleAssignment), roles)
        groups, members = [], []
        others = world.org_ids[1:]
        rng.shuffle(others)
        for g in range(ORGS // WG_SIZE):
            wg_id = uuid.uuid4()
            if g == 0:
                # The caller's group: it and four others; only base-size grants go to it.
                member_ids = [world.caller_org, *others[:WG_SIZE - 1]]
                world.caller_wg = wg_id
            else:
                member_ids = others[(g - 1) * WG_SIZE:g * WG_SIZE] or others[:WG_SIZE]
                world.wg_ids.append(wg_id)
            groups.append({"id": wg_id, "slug": f"bench-wg-{g:03d}", "name": f"Bench group {g}",
                           "convener_org_id": member_ids[0], "created_at": BASE_TIME})
            members += [{"id": uuid.uuid4(), "working_group_id": wg_id, "org_id": o,
                         "joined_at": BASE_TIME, "left_at": None} for o in member_ids]
        await w.put(_t(WorkingGroup), groups)
        await w.put(_t(WorkingGroupMember), members)
        # Every replica reloads role assignments when this version moves.
        result = await conn.execute(update(PolicyState).where(PolicyState.id == 1)
                                    .values(version=PolicyState.version + 1))
        if result.rowcount == 0:
            await conn.execute(PolicyState.__table__.insert(), [{"id": 1, "version": 1}])


async def load_world(db: Database) -> World:
    """Find the organisations of an existing bench database (to grow it)."""
    world = World()
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(Organisation.id, Organisation.slug)
                                   .where(Organisation.slug.like("bench-%"))
                                   .order_by(Organisation.slug))).all()
        world.org_ids = [r[0] for r in rows]
        for org_id in world.org_ids:
            uid = await conn.scalar(select(User.id).where(User.org_id == org_id,
                                                          User.username == "caseworker"))
            world.caseworkers.append(f"user:{uid}")
        wgs = (await conn.execute(select(WorkingGroup.id, WorkingGroup.slug)
                                  .where(WorkingGroup.slug.like("bench-wg-%"))
                                  .order_by(WorkingGroup.slug))).all()
        world.caller_wg = wgs[0][0]
        world.wg_ids = [r[0] for r in wgs[1:]]
        world.cases = int(await conn.scalar(select(text("count(*)")).select_from(_t(Case))) or 0)
        world.serial = int(await conn.scalar(select(text("count(*)")).select_from(_t(Peacebuilder))
                                             .where(Peacebuilder.pseudonym.like("pb-%"))) or 0)
    return world


def _case_rows(world: World, keks: crypto.KeyEncryptionKeys, n: int, rng: random.Random, *,
               caller: bool, wg: uuid.UUID | None, opened_from: datetime,
               span: timedelta) -> Iterator[dict[str, Any]]:
    """All rows of `n` cases as (table, row) dicts, tagged by table name."""
    for k in range(n):
        world.serial += 1
        lead_index = 0 if caller else 1 + (world.serial % (ORGS - 1))
        lead = world.org_ids[lead_index]
        pb, case_id, grant_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        opened = opened_from + span * (k / max(n, 1)) + timedelta(microseconds=rng.randrange(1000))
        data_key = crypto.new_data_key()
        version, wrapped = keks.wrap(data_key, str(pb))

        def sealed(org: uuid.UUID, table: str, record: uuid.UUID, name: str, value: str,
                   key: bytes = data_key) -> str:
            return crypto.seal(key, crypto.associated(org, table, record, name), value)

        yield {"_t": "peacebuilders", "id": pb, "pseudonym": f"pb-{world.serial:06d}",
               "preferred_language": "en", "registered_by_org_id": lead, "created_at": opened,
               "updated_at": opened}
        yield {"_t": "data_keys", "peacebuilder_id": pb, "kek_version": version,
               "wrapped": wrapped, "created_at": opened, "destroyed_at": None}
        for fname, cat, value in (("legal_name", "identity", f"Person {world.serial}"),
                                  ("region", "location_coarse", "Nairobi"),
                                  ("family_members", "family", "two children")):
            yield {"_t": "peacebuilder_data", "id": uuid.uuid4(), "peacebuilder_id": pb,
                   "category": cat, "field": fname,
                   "value": sealed(lead, "peacebuilder_data", pb, fname, value),
                   "lookup": None, "updated_at": opened}
        yield from _grant_rows(pb, grant_id, "organisation", lead, [lead], CATEGORIES, PURPOSES,
                               opened, None)
        if wg is not None:
            yield from _grant_rows(pb, uuid.uuid4(), "working_group", wg, None,
                                   ["incident_details"], ["protection"], opened, wg)
        yield {"_t": "cases", "id": case_id, "peacebuilder_id": pb, "lead_org_id": lead,
               "status": "open" if k % 10 else "on_hold",
               "risk_level": ("low", "medium", "high", "critical")[k % 4], "opened_at": opened,
               "closed_at": None, "opened_by": world.caseworkers[lead_index],
               "summary": sealed(lead, "cases", case_id, "summary", TEXT[: 60 + (k % 60)]),
               "updated_at": opened}
        yield {"_t": "case_team", "id": uuid.uuid4(), "case_id": case_id, "org_id": lead,
               "subject": world.caseworkers[lead_index], "assigned_by": world.caseworkers[lead_index],
               "assigned_at": opened, "removed_at": None}
        for j in range(INCIDENTS_PER_CASE):
            at = opened + timedelta(hours=j + 1)
            incident_id = uuid.uuid4()
            yield {"_t": "incidents", "id": incident_id, "case_id": case_id,
                   "type": ("threats", "online_harassment", "surveillance")[j],
                   "severity": ("low", "medium", "high", "critical")[(k + j) % 4],
                   "status": ("acknowledged", "responding", "resolved")[j], "occurred_at": at,
                   "location_coarse": sealed(lead, "incidents", incident_id, "location_coarse",
                                             "Nairobi"),
                   "location_precise": None,
                   "description": sealed(lead, "incidents", incident_id, "description",
                                         TEXT[: 40 + 20 * j]),
                   "alleged_source_as_reported": sealed(lead, "incidents", incident_id,
                                                        "alleged_source_as_reported", "unknown"),
                   "reported_by": "staff", "reported_via": "phone", "reporting_org_id": lead,
                   "recorded_by": world.caseworkers[lead_index], "reported_at": at,
                   "ack_deadline": at + timedelta(hours=4),
                   "acknowledged_at": at + timedelta(minutes=30),
                   "acknowledged_by": world.caseworkers[lead_index]}


def _grant_rows(pb: uuid.UUID, grant_id: uuid.UUID, rtype: str, recipient: uuid.UUID,
                covered: list[uuid.UUID] | None, cats: list[str], purposes: list[str],
                at: datetime, wg: uuid.UUID | None) -> Iterator[dict[str, Any]]:
    """A grant's event, its state and its flattened access rows, as consent.service writes them.
    For a working group, `covered` is filled in by the caller (`_members`)."""
    covered_ids = [str(o) for o in covered] if covered is not None else ["<members>"]
    common = {"peacebuilder_id": pb, "recipient_type": rtype, "recipient_id": recipient,
              "categories": cats, "purposes": purposes, "valid_from": at, "valid_until": None,
              "covered_org_ids": covered_ids, "obtained_via": "in_person"}
    yield {"_t": "consent_events", "id": uuid.uuid4(), "grant_id": grant_id, "version": 1,
           "kind": "grant", **common, "recorded_by": "system", "recorded_by_org_id": None,
           "acting_for_her": False, "note": None, "at": at, "awaiting": None}
    yield {"_t": "consent_grants", "id": grant_id, **common, "covered_at": at, "revoked_at": None,
           "created_at": at, "updated_at": at, "confirmed_at": at, "awaiting": None}
    yield {"_t": "consent_access", "_expand": True, "grant_id": grant_id, "peacebuilder_id": pb,
           "via_working_group_id": wg, "covered_at": at, "valid_from": at, "valid_until": None,
           "_orgs": covered, "_cats": cats, "_purposes": purposes}


TABLES = {"peacebuilders": Peacebuilder, "data_keys": DataKey, "peacebuilder_data": PeacebuilderDatum,
          "consent_events": ConsentEvent, "consent_grants": ConsentGrant,
          "consent_access": ConsentAccess, "cases": Case, "case_team": CaseTeamMember,
          "incidents": Incident}


async def add_cases(db: Database, world: World, n: int, *, seed: int) -> int:
    """Add `n` cases (with everything around them) to the database; returns rows written.

    On the first call the caller's cases and its working-group cases are created; all other
    cases are led by the 199 other organisations, a third of them shared with their groups."""
    rng = _rng(seed)
    keks = db.keys
    if keks is None:
        raise RuntimeError("set db.keys (the deployment's KEKs): her data is sealed with them")
    members = await _members(db)
    batches: list[Iterator[dict[str, Any]]] = []
    now = datetime.now(UTC)
    if world.cases == 0:
        # The caller's own cases are spread over the last 300 days among everyone else's (about
        # 1 in 200 of the newest cases); the cases it sees through its group are older than all
        # of them, so its first page is exactly its own 50 newest cases, as in the baselines.
        batches.append(_case_rows(world, keks, CALLER_CASES, rng, caller=True, wg=None,
                                  opened_from=now - timedelta(days=300), span=timedelta(days=299)))
        batches.append(_case_rows(world, keks, WG_CASES, rng, caller=False, wg=world.caller_wg,
                                  opened_from=now - timedelta(days=700), span=timedelta(days=350)))
        n -= CALLER_CASES + WG_CASES
    third = n // 3
    batches.append(_case_rows(world, keks, n - third, rng, caller=False, wg=None,
                              opened_from=now - timedelta(days=700), span=timedelta(days=690)))
    if third:
        wgs = world.wg_ids
        batches.append(_with_rotating_wg(world, keks, third, rng, wgs, now))
    buckets: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    written = 0
    async with db.engine.begin() as conn:
        await _fast_load(conn)
        w = Writer(conn, mac_key=keks.service_key(wall.CONSENT_KEY_NAME))
        for rows in batches:
            for row in rows:
                table = row.pop("_t")
                if table == "consent_access":
                    for expanded in _expand(row, members):
                        buckets[table].append(expanded)
                else:
                    if "covered_org_ids" in row and row["covered_org_ids"] == ["<members>"]:
                        row["covered_org_ids"] = [str(o) for o in members[row["recipient_id"]]]
                    buckets[table].append(row)
                if len(buckets[table]) >= 20_000:
                    await _drain(w, buckets, upto=table)
        await _drain(w, buckets)
        written = w.rows
    world.cases += n + (CALLER_CASES + WG_CASES if world.cases == 0 else 0)
    return written


async def _fast_load(conn: AsyncConnection) -> None:
    """On PostgreSQL as a superuser, skip foreign-key triggers for this bulk-load transaction
    (the generator writes parents first anyway)."""
    if conn.dialect.name != "postgresql":
        return
    if await conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
        await conn.execute(text("SET LOCAL session_replication_role = replica"))


async def _drain(w: Writer, buckets: dict[str, list[dict[str, Any]]],
                 upto: str | None = None) -> None:
    """Write buffered rows in foreign-key order (parents first)."""
    order = list(TABLES)
    last = order.index(upto) if upto else len(order) - 1
    for name in order[:last + 1]:
        if buckets[name]:
            await w.put(_t(TABLES[name]), buckets[name])
            buckets[name] = []


def _with_rotating_wg(world: World, keks: crypto.KeyEncryptionKeys, n: int, rng: random.Random,
                      wgs: list[uuid.UUID], now: datetime) -> Iterator[dict[str, Any]]:
    step = max(1, n // len(wgs))
    for i, wg in enumerate(wgs):
        count = step if i < len(wgs) - 1 else n - step * (len(wgs) - 1)
        if count > 0:
            yield from _case_rows(world, keks, count, rng, caller=False, wg=wg,
                                  opened_from=now - timedelta(days=700), span=timedelta(days=690))


def _expand(row: dict[str, Any], members: dict[uuid.UUID, list[uuid.UUID]]) -> Iterator[dict[str, Any]]:
    orgs = row.pop("_orgs")
    if orgs is None:
        orgs = members[row["via_working_group_id"]]
    cats, purposes = row.pop("_cats"), row.pop("_purposes")
    row.pop("_expand")
    for org in orgs:
        for cat in cats:
            for purpose in purposes:
                yield {"id": uuid.uuid4(), **row, "org_id": org, "category": cat,
                       "purpose": purpose}


async def _members(db: Database) -> dict[uuid.UUID, list[uuid.UUID]]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(WorkingGroupMember.working_group_id,
                                          WorkingGroupMember.org_id))).all()
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    for wg, org in rows:
        out.setdefault(wg, []).append(org)
    return out


async def append_log(db: Database, n: int) -> None:
    """Chain what is pending, then append `n` chained entries (bench/audit_verify.py's rows)."""
    await chain.chain_all(db)
    async with db.transaction() as session:
        head = await chain.head(session)
    await audit_verify.generate(db, n, after=head.size, prev=head.hash)


async def analyze(db: Database) -> None:
    """Fresh planner statistics after a bulk load (autovacuum would get there later)."""
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    else:
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))


def describe(world: World) -> str:
    return json.dumps({"organisations": len(world.org_ids), "cases": world.cases})
