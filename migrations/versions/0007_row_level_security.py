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
CREATE FUNCTION sn_peacebuilders() RETURNS SETOF uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT unnest(string_to_array(nullif(current_setting('safety_net.peacebuilders', true), ''),
                                ','))::uuid
  WHERE sn_scope() IN ('org', 'peacebuilder') $$;
CREATE FUNCTION sn_log_orgs() RETURNS SETOF uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT unnest(string_to_array(nullif(current_setting('safety_net.log_orgs', true), ''),
                                ','))::uuid
  WHERE sn_scope() = 'org' $$
"""

OWN_ORG = "sn_system() OR org_id = sn_org()"
HER_RECORD = "sn_system() OR peacebuilder_id IN (SELECT id FROM peacebuilders)"
ON_VISIBLE_CASE = "sn_system() OR case_id IN (SELECT id FROM cases)"

# table -> (USING for every command, WITH CHECK for writes; None = same as USING)
SAME: dict[str, tuple[str, str | None]] = {
    # The organisation's own staff, machines and settings.
    "users": (OWN_ORG, None),
    "clients": (OWN_ORG, None),
    "organisation_settings": (OWN_ORG, None),
    "registered_operations": (OWN_ORG, None),
    "ack_policies": (OWN_ORG, None),
    "case_notes": (OWN_ORG, None),  # internal notes never cross organisations (invariant 9)
    "totp_credentials": ("sn_system() OR user_id IN (SELECT id FROM users)", None),
    # Her record: reachable while it is in the decided set, or registered by the caller's org.
    "peacebuilders": ("sn_system() OR registered_by_org_id = sn_org() "
                      "OR id IN (SELECT sn_peacebuilders())", None),
    "peacebuilder_data": (HER_RECORD, None),
    "data_keys": (HER_RECORD, None),
    "peacebuilder_accounts": (HER_RECORD, None),
    "peacebuilder_networks": (HER_RECORD, None),
    "peacebuilder_notices": (HER_RECORD, None),
    "data_requests": (HER_RECORD, None),
    "approvals": (HER_RECORD, None),
    "consent_events": (HER_RECORD, None),
    "consent_grants": (HER_RECORD, None),
    "consent_access": (HER_RECORD + " OR org_id = sn_org()", None),
    "break_glass": (HER_RECORD + " OR org_id = sn_org()", None),
    "cases": ("sn_system() OR lead_org_id = sn_org() OR peacebuilder_id IN (SELECT id FROM peacebuilders)",
              None),
    "case_events": (ON_VISIBLE_CASE, None),
    "case_team": (ON_VISIBLE_CASE, None),
    "incidents": (ON_VISIBLE_CASE, None),
    "proceedings": (ON_VISIBLE_CASE, None),
    "referrals": (ON_VISIBLE_CASE, None),
    "measures": (ON_VISIBLE_CASE, None),
    "attachments": ("sn_system() OR incident_id IN (SELECT id FROM incidents)", None),
}

# Tables read across organisations by design, written only by their own organisation.
SPLIT: dict[str, dict[str, str]] = {
    # The compiled policy and the focal points to notify come from every organisation's rows.
    "role_assignments": {"read": "sn_declared()", "write": OWN_ORG},
    # Anyone may deliver to an organisation's inbox or alert it; only it reads them.
    "inbox": {"read": OWN_ORG, "insert": "sn_declared()", "write": OWN_ORG},
    "alerts": {"read": OWN_ORG, "insert": "sn_declared()", "write": OWN_ORG},
    # The log: its own entries, those of organisations accepting its oversight, and for her
    # the entries naming her; appended by whoever acts (no organisation = NULL), chained by the
    # system (triggers forbid every other UPDATE and any DELETE).
    "access_log": {
        "read": ("sn_system() OR org_id IN (SELECT sn_log_orgs()) OR (sn_scope() = 'peacebuilder' "
                 "AND EXISTS (SELECT 1 FROM sn_peacebuilders() p WHERE refs LIKE '%' || p::text || '%'))"),
        "insert": "sn_system() OR org_id = sn_org() OR (org_id IS NULL AND sn_declared())",
        "write": "sn_system()",
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
    op.execute("DROP FUNCTION IF EXISTS sn_log_orgs(), sn_peacebuilders(), sn_org(), sn_declared(), "
               "sn_system(), sn_scope()")
