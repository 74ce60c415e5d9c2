"""signed tenancy, the background role's system scope, MACs on consent rows (PostgreSQL)

The wall of 0007 trusted the `safety_net.*` settings, which any role that may connect can set.
From here the database believes them only when the application signed them:

- `sn_private` (owned by the schema owner; no USAGE for anyone else) holds the database's copy
  of the application's keys (`safety-net migrate` installs them: app/storage.py install_wall)
  and the roles allowed the system scope (the background role);
- `sn_verified_scope()`, SECURITY DEFINER with a pinned search_path, verifies the HMAC over the
  settings and their expiry; the existing `sn_*` functions keep their names and read the scope
  as 'none' unless it verifies (and 'system' only for the background role or the owner), so
  every policy calling them, now or later, gets the verification. Policies call them as
  `(SELECT sn_...())`: an InitPlan, once per statement;
- consent events, grants, access rows, break-glass and networks get a `mac` column and a trigger
  refusing rows whose MAC does not verify (SQL generated from app/tables/integrity.py COVERED);
- the registering organisation no longer reaches her rows by having registered her: like every
  organisation, it reaches what the application decided (her live consent), and neither does a
  case's lead organisation (its access rests on her intake consent too).

Data migrations after this one that touch protected tables declare the system scope with
`SELECT sn_private.declare_system()` (the owner only). SQLite gets the `mac` columns only.

Revision ID: 0008
Revises: 0007
"""
import importlib.util
from pathlib import Path
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from app.tables import integrity

revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PRIVATE = [
    "CREATE SCHEMA sn_private",
    "REVOKE ALL ON SCHEMA sn_private FROM PUBLIC",
    # HMAC-SHA256 key blocks (key XOR ipad, key XOR opad): HMAC from the built-in sha256(), no
    # extension needed. `fingerprint` names the key without revealing it.
    """CREATE TABLE sn_private.keys (
         name text PRIMARY KEY,
         inner_key bytea NOT NULL CHECK (octet_length(inner_key) = 64),
         outer_key bytea NOT NULL CHECK (octet_length(outer_key) = 64),
         fingerprint text NOT NULL,
         installed_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE TABLE sn_private.system_roles (role name PRIMARY KEY)",
    "REVOKE ALL ON ALL TABLES IN SCHEMA sn_private FROM PUBLIC",
    """CREATE FUNCTION sn_private.hmac(key_name text, message text) RETURNS text
       LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
         SELECT encode(sha256(k.outer_key || sha256(k.inner_key || convert_to(message, 'UTF8'))),
                       'hex')
         FROM sn_private.keys k WHERE k.name = key_name $$""",
    "REVOKE ALL ON FUNCTION sn_private.hmac(text, text) FROM PUBLIC",
    # For data migrations and maintenance by the owner (who could lift RLS anyway): a signed
    # system scope for the rest of the transaction. Not SECURITY DEFINER: only the owner can
    # read the key it signs with.
    """CREATE FUNCTION sn_private.declare_system(ttl integer DEFAULT 3600) RETURNS void
       LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
       DECLARE
         digest text := encode(sha256(''::bytea), 'hex');
         expires text := (floor(extract(epoch FROM clock_timestamp()))::bigint + ttl)::text;
         mac text := sn_private.hmac('tenancy', concat_ws('|', 'v1', 'system', '', '', digest,
                                                          expires));
       BEGIN
         IF mac IS NULL THEN
           RAISE EXCEPTION 'no tenancy key in sn_private.keys: run safety-net migrate';
         END IF;
         PERFORM set_config('safety_net.scope', 'system', true),
                 set_config('safety_net.org', '', true),
                 set_config('safety_net.peacebuilders', '', true),
                 set_config('safety_net.log_orgs', '', true),
                 set_config('safety_net.peacebuilders_sha256', digest, true),
                 set_config('safety_net.expires', expires, true),
                 set_config('safety_net.mac', mac, true);
       END $$""",
    "REVOKE ALL ON FUNCTION sn_private.declare_system(integer) FROM PUBLIC",
]

# The one verification. `caller` is the role running the statement (`current_user` where the
# policies call `sn_scope()`); inside this function `current_user` is the owner. Any malformed,
# missing or forged value reads as 'none'; an authentic but expired signature is an error (a
# transaction that outlived it fails loudly rather than reading less).
VERIFY = """
CREATE FUNCTION sn_verified_scope(caller name) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  scope text := coalesce(current_setting('safety_net.scope', true), '');
  mac text := coalesce(current_setting('safety_net.mac', true), '');
  expires text := coalesce(current_setting('safety_net.expires', true), '');
  expected text;
BEGIN
  IF scope NOT IN ('org', 'peacebuilder', 'system') OR mac !~ '^[0-9a-f]{64}$'
     OR expires !~ '^[0-9]{1,12}$' THEN
    RETURN 'none';
  END IF;
  expected := sn_private.hmac('tenancy', concat_ws('|', 'v1', scope,
      coalesce(current_setting('safety_net.org', true), ''),
      coalesce(current_setting('safety_net.log_orgs', true), ''),
      coalesce(current_setting('safety_net.peacebuilders_sha256', true), ''), expires));
  IF expected IS NULL OR expected <> mac THEN
    RETURN 'none';
  END IF;
  IF expires::bigint <= extract(epoch FROM statement_timestamp()) THEN
    RAISE EXCEPTION 'the signed tenancy of this transaction has expired'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF scope = 'system' AND caller IS DISTINCT FROM current_user
     AND NOT EXISTS (SELECT 1 FROM sn_private.system_roles r WHERE r.role = caller) THEN
    RETURN 'none';
  END IF;
  RETURN scope;
END $$
"""

# The names every policy calls, same signatures, verified bodies. The peacebuilders list is
# signed through its SHA-256 (so the short checks need not hash it); the functions that read
# the list check it against that digest.
INTACT_LIST = ("encode(sha256(convert_to(coalesce(current_setting('safety_net.peacebuilders', "
               "true), ''), 'UTF8')), 'hex') = coalesce(current_setting("
               "'safety_net.peacebuilders_sha256', true), '')")
FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION sn_scope() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT sn_verified_scope(current_user) $$;
CREATE OR REPLACE FUNCTION sn_system() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT sn_scope() = 'system' $$;
CREATE OR REPLACE FUNCTION sn_declared() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT sn_scope() IN ('system', 'org', 'peacebuilder') $$;
CREATE OR REPLACE FUNCTION sn_org() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN sn_scope() = 'org'
              THEN nullif(current_setting('safety_net.org', true), '')::uuid END $$;
CREATE OR REPLACE FUNCTION sn_peacebuilders() RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE ROWS 100 AS $$
  SELECT unnest(string_to_array(nullif(current_setting('safety_net.peacebuilders', true), ''),
                                ','))::uuid
  WHERE sn_scope() IN ('org', 'peacebuilder') AND {INTACT_LIST} $$;
CREATE OR REPLACE FUNCTION sn_peacebuilder_ids() RETURNS uuid[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN sn_scope() IN ('org', 'peacebuilder') AND {INTACT_LIST}
              THEN coalesce(string_to_array(nullif(current_setting('safety_net.peacebuilders', true),
                                                   ''), ',')::uuid[], '{{}}')
              ELSE '{{}}' END $$;
CREATE OR REPLACE FUNCTION sn_log_orgs() RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE ROWS 5 AS $$
  SELECT unnest(string_to_array(nullif(current_setting('safety_net.log_orgs', true), ''),
                                ','))::uuid
  WHERE sn_scope() = 'org' $$
"""

# --- policies: her rows follow the decided set only (no "registered by", no "led by") ---------
SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
DECIDED = "(SELECT sn_peacebuilders())"
DECIDED_ARRAY = "(SELECT sn_peacebuilder_ids())::uuid[]"
VISIBLE_CASES = f"(SELECT id FROM cases WHERE peacebuilder_id = ANY ({DECIDED_ARRAY}))"


def her_record(table: str) -> str:
    return f"{SYSTEM} OR {table}.peacebuilder_id IN {DECIDED}"


def rules(read: str, *, insert: str | None = None, update: str | None = None,
          delete: str | None = None) -> dict[str, str]:
    return {"read": read, "insert": insert or read, "update": update or read,
            "delete": delete or read}


def owned(read: str, column: str, *, nullable: bool = False) -> dict[str, str]:
    match = f"{column} IS NOT DISTINCT FROM {ORG}" if nullable else f"{column} = {ORG}"
    return rules(read, insert=f"{SYSTEM} OR (({read}) AND {match})")


def case_child(table: str) -> str:
    return f"{SYSTEM} OR {table}.case_id IN {VISIBLE_CASES}"


POLICIES: dict[str, dict[str, str]] = {
    # Only the registering organisation creates her record; it reads it, like anyone, while the
    # application decided it may (the transaction that registers her reaches her new ID).
    "peacebuilders": rules(f"{SYSTEM} OR id IN {DECIDED}",
                           insert=f"{SYSTEM} OR registered_by_org_id = {ORG}"),
    **{t: rules(her_record(t)) for t in (
        "peacebuilder_data", "data_keys", "peacebuilder_notices", "peacebuilder_networks",
        "data_requests", "approvals", "consent_events", "consent_grants")},
    "consent_access": rules(her_record("consent_access") + f" OR org_id = {ORG}",
                            insert=her_record("consent_access"),
                            update=her_record("consent_access")),
    "break_glass": owned(her_record("break_glass") + f" OR org_id = {ORG}", "org_id"),
    "cases": rules(her_record("cases"),
                   insert=f"{SYSTEM} OR (lead_org_id = {ORG} AND ({her_record('cases')}))"),
    "incidents": owned(case_child("incidents"), "reporting_org_id", nullable=True),
    "referrals": owned(case_child("referrals"), "from_org_id"),
    "proceedings": owned(case_child("proceedings"), "org_id"),
    "case_team": owned(case_child("case_team"), "org_id"),
    "case_events": owned(case_child("case_events"), "org_id", nullable=True),
    "measures": rules(case_child("measures")),
    # Its internal notes never cross organisations (invariant 9), and are about her: they
    # follow the case's visibility too.
    "case_notes": rules(f"{SYSTEM} OR (org_id = {ORG} AND case_notes.case_id IN {VISIBLE_CASES})"),
}

COMMANDS = {"read": "SELECT", "insert": "INSERT", "update": "UPDATE", "delete": "DELETE"}


def _create_policies(policies: dict[str, dict[str, str]]) -> None:
    for table, by_command in policies.items():
        for name, command in COMMANDS.items():
            rule = by_command[name]
            if name == "insert":
                clause = f"WITH CHECK ({rule})"
            elif name == "update":
                clause = f"USING ({by_command['read']}) WITH CHECK ({rule})"
            elif name == "delete":
                clause = f"USING (({by_command['read']}) AND ({rule}))"
            else:
                clause = f"USING ({rule})"
            op.execute(f"DROP POLICY IF EXISTS {table}_{name} ON {table}")
            op.execute(f"CREATE POLICY {table}_{name} ON {table} FOR {command} {clause}")


def _previous() -> object:
    """0007, for the downgrade (its policies and function bodies)."""
    path = Path(__file__).with_name("0007_row_level_security.py")
    spec = importlib.util.spec_from_file_location("sn_migration_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    for table in integrity.COVERED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in PRIVATE:
        op.execute(statement)
    op.execute(VERIFY)
    for statement in FUNCTIONS.split(";\n"):
        if statement.strip():
            op.execute(statement)
    bind = op.get_bind()
    for table in integrity.COVERED:
        for statement in integrity.install_sql(table, integrity.column_types(bind, table)):
            op.execute(statement)
    _create_policies(POLICIES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        previous = _previous()
        _create_policies({t: previous.POLICIES[t] for t in POLICIES})  # type: ignore[attr-defined]
        for statement in previous.FUNCTIONS.split(";\n"):  # type: ignore[attr-defined]
            if statement.strip():
                op.execute(statement.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
        for table in integrity.COVERED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_mac ON {table}")
        op.execute("DROP FUNCTION IF EXISTS sn_verified_scope(name)")
        op.execute("DROP SCHEMA IF EXISTS sn_private CASCADE")
    for table in integrity.COVERED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("mac")
