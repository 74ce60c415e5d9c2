"""row-level security (PostgreSQL only)

Every table holding organisation-owned data gets RLS enabled and FORCED (the owner too), with
policies that only check membership in what the application decided for this transaction
(`app/access/tenancy.py`): its organisation, the peacebuilders it may reach, the organisations
whose access-log entries it may read, or the system scope of background work. No consent logic
lives here. SQLite has no RLS; this migration does nothing there.

Revision ID: 0007
Revises: 0006
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FUNCTIONS = """
CREATE FUNCTION sn_scope() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(nullif(current_setting('safety_net.scope', true), ''), 'none') $$;
CREATE FUNCTION sn_system() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT sn_scope() = 'system' $$;
CREATE FUNCTION sn_declared() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT sn_scope() IN ('system', 'org', 'peacebuilder') $$;
CREATE FUNCTION sn_org() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN sn_scope() = 'org'
              THEN nullif(current_setting('safety_net.org', true), '')::uuid END $$;
CREATE FUNCTION sn_peacebuilders() RETURNS SETOF uuid LANGUAGE sql STABLE PARALLEL SAFE ROWS 100 AS $$
  SELECT unnest(string_to_array(nullif(current_setting('safety_net.peacebuilders', true), ''),
                                ','))::uuid
  WHERE sn_scope() IN ('org', 'peacebuilder') $$;
CREATE FUNCTION sn_peacebuilder_ids() RETURNS uuid[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN sn_scope() IN ('org', 'peacebuilder')
              THEN coalesce(string_to_array(nullif(current_setting('safety_net.peacebuilders', true),
                                                   ''), ',')::uuid[], '{}')
              ELSE '{}' END $$;
CREATE FUNCTION sn_log_orgs() RETURNS SETOF uuid LANGUAGE sql STABLE PARALLEL SAFE ROWS 5 AS $$
  SELECT unnest(string_to_array(nullif(current_setting('safety_net.log_orgs', true), ''),
                                ','))::uuid
  WHERE sn_scope() = 'org' $$
"""

# Settings are read once per statement: a scalar sub-select is an InitPlan, `IN (SELECT ...)` a
# hashed subplan built once (an O(1) probe per row), and `= ANY (array)` against an InitPlan array
# can drive an index. Subqueries into other tables carry their own indexable conditions, so a
# policy costs in proportion to what the caller may see, never to the size of the table (bench/).
SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
OWN_ORG = f"{SYSTEM} OR org_id = {ORG}"
DECIDED = "(SELECT sn_peacebuilders())"
DECIDED_ARRAY = "(SELECT sn_peacebuilder_ids())::uuid[]"  # a cast: an expression, not a sub-select
REGISTERED = f"(SELECT id FROM peacebuilders WHERE registered_by_org_id = {ORG})"
# Three index-driven parts rather than one OR (which no index serves: a scan of every case).
VISIBLE_CASES = (f"(SELECT id FROM cases WHERE lead_org_id = {ORG} "
                 f"UNION ALL SELECT id FROM cases WHERE peacebuilder_id = ANY ({DECIDED_ARRAY}) "
                 f"UNION ALL SELECT id FROM cases WHERE peacebuilder_id = ANY (ARRAY{REGISTERED}))")


def her_record(table: str) -> str:
    """Rows about her: in the decided set, or registered by the caller's organisation."""
    return (f"{SYSTEM} OR {table}.peacebuilder_id IN {DECIDED} "
            f"OR {table}.peacebuilder_id IN {REGISTERED}")


# table -> (USING for every command, WITH CHECK for writes; None = same as USING)
SAME: dict[str, tuple[str, str | None]] = {
    # The organisation's own staff, machines and settings.
    "users": (OWN_ORG, None),
    "clients": (OWN_ORG, None),
    "organisation_settings": (OWN_ORG, None),
    "registered_operations": (OWN_ORG, None),
    "ack_policies": (OWN_ORG, None),
    "case_notes": (OWN_ORG, None),  # internal notes never cross organisations (invariant 9)
    "totp_credentials": (f"{SYSTEM} OR user_id IN (SELECT id FROM users WHERE org_id = {ORG})", None),
    # Her record: reachable while it is in the decided set, or registered by the caller's org.
    "peacebuilders": (f"{SYSTEM} OR registered_by_org_id = {ORG} OR id IN {DECIDED}", None),
    **{t: (her_record(t), None) for t in (
        "peacebuilder_data", "data_keys", "peacebuilder_accounts", "peacebuilder_networks",
        "peacebuilder_notices", "data_requests", "approvals", "consent_events", "consent_grants")},
    "consent_access": (her_record("consent_access") + f" OR org_id = {ORG}", None),
    "break_glass": (her_record("break_glass") + f" OR org_id = {ORG}", None),
    "cases": (her_record("cases") + f" OR lead_org_id = {ORG}", None),
    **{t: (f"{SYSTEM} OR {t}.case_id IN {VISIBLE_CASES}", None) for t in (
        "case_events", "case_team", "incidents", "proceedings", "referrals", "measures")},
    "attachments": (f"{SYSTEM} OR EXISTS (SELECT 1 FROM incidents i "
                    "WHERE i.id = attachments.incident_id)", None),
}

# Tables read across organisations by design, written only by their own organisation.
SPLIT: dict[str, dict[str, str]] = {
    # The compiled policy and the focal points to notify come from every organisation's rows.
    "role_assignments": {"read": "(SELECT sn_declared())", "write": OWN_ORG},
    # Anyone may deliver to an organisation's inbox or alert it; only it reads them.
    "inbox": {"read": OWN_ORG, "insert": "(SELECT sn_declared())", "write": OWN_ORG},
    "alerts": {"read": OWN_ORG, "insert": "(SELECT sn_declared())", "write": OWN_ORG},
    # The log: its own entries, those of organisations accepting its oversight, and for her
    # the entries naming her; appended by whoever acts (no organisation = NULL), chained by the
    # system (triggers forbid every other UPDATE and any DELETE).
    "access_log": {
        "read": (f"{SYSTEM} OR org_id IN (SELECT sn_log_orgs()) OR ((SELECT sn_scope()) = "
                 "'peacebuilder' AND EXISTS (SELECT 1 FROM sn_peacebuilders() p "
                 "WHERE refs LIKE '%' || p::text || '%'))"),
        "insert": f"{SYSTEM} OR org_id = {ORG} OR (org_id IS NULL AND (SELECT sn_declared()))",
        "write": SYSTEM,
    },
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in FUNCTIONS.split(";\n"):
        if statement.strip():
            op.execute(statement)
    for table, (using, check) in SAME.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_tenancy ON {table} USING ({using}) "
                   f"WITH CHECK ({check or using})")
    for table, rules in SPLIT.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({rules['read']})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT "
                   f"WITH CHECK ({rules.get('insert', rules['write'])})")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE "
                   f"USING ({rules['write']}) WITH CHECK ({rules['write']})")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({rules['write']})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in SAME:
        op.execute(f"DROP POLICY IF EXISTS {table}_tenancy ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in SPLIT:
        for suffix in ("read", "insert", "update", "delete"):
            op.execute(f"DROP POLICY IF EXISTS {table}_{suffix} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION IF EXISTS sn_log_orgs(), sn_peacebuilder_ids(), sn_peacebuilders(), "
               "sn_org(), sn_declared(), "
               "sn_system(), sn_scope()")
