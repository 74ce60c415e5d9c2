"""Integrity of the rows that decide who may see her: the application's MAC on each of them.

Consent events (the record of what she decided), the grants they project to, the flattened
`consent_access` rows every access decision reads, break-glass openings, and her networks (which
act for her) carry `mac`: HMAC-SHA256 with the service key `consent` (app/crypto.py, kept with
the KEKs) over a canonical text of the row's covered columns (COVERED). Mapper events stamp it
whenever the ORM inserts or updates such a row, so no service deals with it.

- On PostgreSQL a trigger per table (SECURITY DEFINER, owned by the schema owner, its copy of the
  key in `sn_private` where the service and background roles cannot read it) refuses any INSERT
  or UPDATE whose MAC does not verify: a row written with a database password alone is refused.
  The SQL that builds the canonical text is generated from COVERED (`install_sql`), so covering
  a new column means adding it here and, in the migration that adds the column, running
  `change_sql(table, column_types(op.get_bind(), table))` (it re-stamps the rows that verified).
- Admission checks the MAC of every `consent_access`, `break_glass` and network row it relies on
  for the decided set row-level security enforces (`verified_org_level_ids`), so a woman reached
  only through a row that got past the trigger (a superuser, a restore with triggers off) stays
  out of reach. The page's own decision (`released_mask`, in SQL) does not re-check each row:
  decision 0015 says why, and what that leaves.

What this does not cover is listed in docs/decisions/0015-signed-tenancy.md (replayed rows,
the projection's other inputs).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import operator
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Column, Table, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, Session, object_session

from app.db import Base, canonical_json
from app.tables.consent import BreakGlass, ConsentAccess, ConsentEvent, ConsentGrant
from app.tables.peacebuilders import PeacebuilderNetwork
from app.wall import CONSENT_KEY_NAME, Wall

log = logging.getLogger("safety_net.integrity")

# The one list of covered columns per table (the migration's SQL is generated from it).
COVERED: dict[str, tuple[str, ...]] = {
    "consent_events": (
        "id", "grant_id", "version", "peacebuilder_id", "kind", "recipient_type", "recipient_id",
        "categories", "purposes", "valid_from", "valid_until", "covered_org_ids", "obtained_via",
        "recorded_by", "recorded_by_org_id", "acting_for_her", "note", "at", "awaiting"),
    "consent_grants": (
        "id", "peacebuilder_id", "recipient_type", "recipient_id", "categories", "purposes",
        "valid_from", "valid_until", "covered_org_ids", "covered_at", "obtained_via", "revoked_at",
        "created_at", "updated_at", "confirmed_at", "awaiting"),
    "consent_access": (
        "id", "grant_id", "peacebuilder_id", "org_id", "via_working_group_id", "covered_at",
        "category", "purpose", "valid_from", "valid_until"),
    "break_glass": (
        "id", "peacebuilder_id", "org_id", "opened_by", "reason", "opened_at", "expires_at",
        "closed_at", "requested_hours", "confirmed_at"),
    "peacebuilder_networks": ("id", "peacebuilder_id", "org_id", "confirmed_at", "confirmed_by"),
}
MODELS: dict[str, type[Base]] = {
    "consent_events": ConsentEvent, "consent_grants": ConsentGrant,
    "consent_access": ConsentAccess, "break_glass": BreakGlass,
    "peacebuilder_networks": PeacebuilderNetwork,
}

NULL = "~"


def _text(value: Any) -> str | None:
    """One value as canonical text; the SQL in `_sql_text` must produce the same."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a covered column")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return canonical_json(value)  # what the engine stores (Database's json_serializer)
    raise TypeError(f"no canonical text for {type(value).__name__}")


def canonical(table: str, values: Mapping[Any, Any]) -> str:
    """`safety-net/<table>/v1`, then one line per covered column: `name=<bytes>:<text>` or
    `name=~` for NULL (length-prefixed, so no value can imitate another's boundary)."""
    lines = [f"safety-net/{table}/v1"]
    for column in COVERED[table]:
        text = _text(values[column])
        lines.append(f"{column}={NULL}" if text is None else f"{column}={len(text.encode())}:{text}")
    return "\n".join(lines)


def compute(key: bytes, table: str, values: Mapping[Any, Any]) -> str:
    return hmac.new(key, canonical(table, values).encode(), hashlib.sha256).hexdigest()


# --- stamping: mapper events -----------------------------------------------------------------

def _wall(session: Session | None) -> Wall | None:
    wall = session.info.get("wall") if session is not None else None
    return wall if isinstance(wall, Wall) else None


def _stamp(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    table = target.__table__.name
    # Python-side defaults (IDs, flags) are applied after this event: apply them now, so the MAC
    # covers the values that will be stored.
    for name in COVERED[table]:
        column: Column[Any] = target.__table__.c[name]
        if getattr(target, name) is None and column.default is not None:
            default = column.default
            if default.is_callable:
                setattr(target, name, default.arg(None))  # type: ignore[attr-defined]
            elif default.is_scalar:
                setattr(target, name, default.arg)  # type: ignore[attr-defined]
    wall = _wall(object_session(target))
    key = wall.key(CONSENT_KEY_NAME) if wall is not None else None
    # Without the key the row carries no MAC: PostgreSQL refuses it, and it would release nothing.
    target.mac = (compute(key, table, {c: getattr(target, c) for c in COVERED[table]})
                  if key is not None else None)


for _model in MODELS.values():
    event.listen(_model, "before_insert", _stamp)
    event.listen(_model, "before_update", _stamp)


# --- checking on the read path ---------------------------------------------------------------

def key_of(session: AsyncSession | Session) -> bytes | None:
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    wall = _wall(sync)
    return wall.key(CONSENT_KEY_NAME) if wall is not None else None


def table_of(name: str) -> Table:
    return cast(Table, MODELS[name].__table__)


def columns(table: str) -> list[Column[Any]]:
    """The covered columns and the MAC, to select rows that `intact()` can check."""
    t = table_of(table)
    return [t.c[name] for name in COVERED[table]] + [t.c["mac"]]


def position(table: str, column: str) -> int:
    """Where `column` is in a row selected with `columns(table)`."""
    return COVERED[table].index(column)


def _check(key: bytes, table: str, values: tuple[Any, ...], mac: str) -> bool:
    ok = hmac.compare_digest(compute(key, table, dict(zip(COVERED[table], values, strict=True))),
                             mac)
    if not ok:
        # Once per row content (the verdict is cached); the row's own ID only, never her ID,
        # the values or the MAC.
        log.warning("a %s row whose integrity code does not verify is ignored", table,
                    extra={"row": str(values[COVERED[table].index("id")])})
    return ok


_cached_check = functools.lru_cache(maxsize=20_000)(_check)
# The covered values of a row as one tuple, in COVERED's order (admission checks a row per woman
# it reaches on every request: a getter in C rather than a generator per row).
_COVERED_VALUES = {table: operator.itemgetter(*columns) for table, columns in COVERED.items()}


def intact(key: bytes | None, table: str, row: Any) -> bool:
    """Whether a row selected with `columns(table)` carries a MAC that verifies. Verdicts are
    cached by the row's whole content (values and MAC), never by its ID alone."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    mac = mapping["mac"]
    if key is None or not isinstance(mac, str):
        return False
    values = _COVERED_VALUES[table](mapping)
    try:
        return _cached_check(key, table, values, mac)
    except TypeError:  # an unhashable value (JSON): checked without the cache
        return _check(key, table, values, mac)


def intact_selected(key: bytes | None, table: str, row: Any) -> bool:
    """`intact()` for a row selected with exactly `columns(table)` (covered values in COVERED's
    order, then the MAC): read by position, without building the row's mapping. Admission
    checks one such row per woman an organisation reaches, on every request.

    A row seen before with exactly these values, this MAC, table and key verified then: found
    by its MAC and compared value by value (no hash of each UUID and timestamp of a row that
    arrived as new objects, which the content-keyed cache below pays on every request); any
    difference goes through the full check."""
    mac = row[-1]
    if key is None or not isinstance(mac, str):
        return False
    values = tuple(row[:-1])
    known = _VERIFIED.get(mac)
    if known is not None and known[0] == key and known[1] == table and known[2] == values:
        return True
    try:
        ok = _cached_check(key, table, values, mac)
    except TypeError:  # an unhashable value (JSON): checked without the cache
        return _check(key, table, values, mac)
    if ok:
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[mac] = (key, table, values)
    return ok


# MAC -> (key, table, covered values) of a row whose MAC verified: only verified rows, each
# found again only with all of the same.
_VERIFIED: dict[str, tuple[bytes, str, tuple[Any, ...]]] = {}
_VERIFIED_MAX = 20_000  # as the content-keyed cache: the same rows, mostly the same tuples


# --- the same canonical text in SQL (PostgreSQL) ---------------------------------------------

def _sql_text(ref: str, data_type: str) -> str:
    """SQL giving `_text()` of a column of this PostgreSQL type (information_schema.data_type)."""
    if data_type == "uuid" or data_type in ("integer", "bigint", "smallint"):
        return f"({ref})::text"
    if data_type == "timestamp with time zone":
        return f"""to_char(({ref}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    if data_type == "boolean":
        return f"CASE WHEN {ref} THEN 'true' ELSE 'false' END"
    if data_type == "json":
        return f"({ref})::text"  # json keeps the text the engine stored (canonical_json)
    if data_type in ("character varying", "text"):
        return f"({ref})"
    raise ValueError(f"no canonical SQL text for {data_type}: add it to integrity._sql_text")


def canonical_sql(table: str, types: Mapping[str, str], ref: str = "r") -> str:
    """SQL building `canonical()` of the row `ref`, from COVERED and the columns' types.
    Columns not in `types` (added by a later migration) are left out: that migration
    reinstalls the functions (`install_sql`) once they exist."""
    parts = [f"'safety-net/{table}/v1'"]
    for column in COVERED[table]:
        if column not in types:
            continue
        value = _sql_text(f"{ref}.{column}", types[column])
        parts.append(f"CASE WHEN {ref}.{column} IS NULL THEN '{column}={NULL}' "
                     f"ELSE '{column}=' || octet_length({value})::text || ':' || {value} END")
    return "concat_ws(E'\\n', " + ", ".join(parts) + ")"


def column_types(connection: Any, table: str) -> dict[str, str]:
    """information_schema's data types of a table's columns (a sync connection: migrations)."""
    from sqlalchemy import text

    rows = connection.execute(text(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = :t"), {"t": table})
    return {name: data_type for name, data_type in rows}


def install_sql(table: str, types: Mapping[str, str]) -> list[str]:
    """The statements (PostgreSQL, as the schema owner) that make `table`'s canonical text,
    its check and its trigger: idempotent, so a migration changing COVERED for a table runs them
    again (and `restamp_sql` for the rows already there)."""
    return [
        f"CREATE OR REPLACE FUNCTION sn_private.canonical_{table}(r public.{table}) RETURNS text "
        "LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$ "
        f"SELECT {canonical_sql(table, types)} $$",
        f"CREATE OR REPLACE FUNCTION sn_private.check_mac_{table}() RETURNS trigger "
        "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$\n"
        "BEGIN\n"
        f"  IF NEW.mac IS NULL OR NEW.mac IS DISTINCT FROM "
        f"sn_private.hmac('{CONSENT_KEY_NAME}', sn_private.canonical_{table}(NEW)) THEN\n"
        f"    RAISE EXCEPTION 'the integrity code of this {table} row does not verify'\n"
        "      USING ERRCODE = 'insufficient_privilege';\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END $$",
        f"REVOKE ALL ON FUNCTION sn_private.canonical_{table}(public.{table}) FROM PUBLIC",
        f"REVOKE ALL ON FUNCTION sn_private.check_mac_{table}() FROM PUBLIC",
        f"DROP TRIGGER IF EXISTS {table}_mac ON public.{table}",
        f"CREATE TRIGGER {table}_mac BEFORE INSERT OR UPDATE ON public.{table} "
        f"FOR EACH ROW EXECUTE FUNCTION sn_private.check_mac_{table}()",
    ]


def change_sql(table: str, types: Mapping[str, str]) -> list[str]:
    """For a later migration that changes a table's covered columns (after adding them to the
    table and to COVERED), as the schema owner: the rows whose MAC verifies under the current
    canonical text get the MAC of the new one, then the new text, check and trigger replace the
    old. Rows that did not verify before still do not. (SQLite: set that table's `mac` to NULL
    instead; `safety-net migrate` stamps rows without one.)"""
    return [
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM sn_private.keys WHERE name = 'tenancy') THEN "
        "PERFORM sn_private.declare_system(); END IF; END $$",
        f"CREATE TEMPORARY TABLE sn_verified_{table} ON COMMIT DROP AS SELECT r.id FROM "  # noqa: S608
        f"public.{table} r WHERE r.mac = sn_private.hmac('{CONSENT_KEY_NAME}', "
        f"sn_private.canonical_{table}(r))",
        *install_sql(table, types),
        restamp_sql(table, where=f"r.id IN (SELECT id FROM sn_verified_{table})"),  # noqa: S608
    ]


def restamp_sql(table: str, *, where: str) -> str:
    """UPDATE giving the rows of `table` (alias r) matching `where` the MAC under the current
    `consent` key; run by the schema owner in the system scope (the trigger then verifies the
    new MAC like any other). Table names come from COVERED, never from input."""
    return (f"UPDATE public.{table} AS r SET mac = sn_private.hmac('{CONSENT_KEY_NAME}', "  # noqa: S608
            f"sn_private.canonical_{table}(r)) WHERE {where}")
