"""row-level security (PostgreSQL only)

Every table holding organisation-owned data gets RLS enabled and FORCED (the owner too), with
policies that only check membership in what the application decided for this transaction
(`app/tenancy.py`): its organisation, the peacebuilders it may reach, the organisations
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



def rules(read: str, *, insert: str | None = None, update: str | None = None,
          delete: str | None = None) -> dict[str, str]:
    """Per-command policies: what a caller may see (and so update or delete), and what a row
    it writes must satisfy. Writes default to the read rule."""
    return {"read": read, "insert": insert or read, "update": update or read,
            "delete": delete or read}


def owned(read: str, column: str, *, nullable: bool = False) -> dict[str, str]:
    """Rows written by an organisation carry it: a caller may not attribute a row to another
    (NULL where her own actions carry no organisation)."""
    match = f"{column} IS NOT DISTINCT FROM {ORG}" if nullable else f"{column} = {ORG}"
    # Updates by others who see the row (a referral's recipient accepting it) stay allowed:
    # the owner column itself is fixed by the trigger below.
    return rules(read, insert=f"{SYSTEM} OR (({read}) AND {match})")


def case_child(table: str) -> str:
    return f"{SYSTEM} OR {table}.case_id IN {VISIBLE_CASES}"


DECLARED = "(SELECT sn_declared())"

POLICIES: dict[str, dict[str, str]] = {
    # The organisation's own staff, machines and settings.
    "users": rules(OWN_ORG),
    "clients": rules(OWN_ORG),
    "organisation_settings": rules(OWN_ORG),
    "registered_operations": rules(OWN_ORG),
    "ack_policies": rules(OWN_ORG),
    "case_notes": rules(OWN_ORG),  # internal notes never cross organisations (invariant 9)
    "totp_credentials": rules(f"{SYSTEM} OR user_id IN (SELECT id FROM users WHERE org_id = {ORG})"),
    # Her record: reachable while it is in the decided set, or registered by the caller's org;
    # only the registering organisation creates it.
    "peacebuilders": rules(f"{SYSTEM} OR registered_by_org_id = {ORG} OR id IN {DECIDED}",
                           insert=f"{SYSTEM} OR registered_by_org_id = {ORG}"),
    **{t: rules(her_record(t)) for t in (
        "peacebuilder_data", "data_keys", "peacebuilder_notices", "peacebuilder_networks",
        "data_requests", "approvals", "consent_events", "consent_grants")},
    # Her sign-in: the system (sign-in, demo) and herself only.
    "peacebuilder_accounts": rules(f"{SYSTEM} OR ((SELECT sn_scope()) = 'peacebuilder' "
                                   f"AND peacebuilder_id IN {DECIDED})"),
    # What her consent releases to an organisation: it sees its own rows, but only a caller who
    # may act on her record writes them (an organisation cannot grant itself access).
    "consent_access": rules(her_record("consent_access") + f" OR org_id = {ORG}",
                            insert=her_record("consent_access"),
                            update=her_record("consent_access")),
    "break_glass": owned(her_record("break_glass") + f" OR org_id = {ORG}", "org_id"),
    "cases": rules(her_record("cases") + f" OR lead_org_id = {ORG}",
                   insert=f"{SYSTEM} OR (lead_org_id = {ORG} AND ({her_record('cases')}))"),
    "incidents": owned(case_child("incidents"), "reporting_org_id", nullable=True),
    "referrals": owned(case_child("referrals"), "from_org_id"),
    "proceedings": owned(case_child("proceedings"), "org_id"),
    "case_team": owned(case_child("case_team"), "org_id"),
    "case_events": owned(case_child("case_events"), "org_id", nullable=True),
    "measures": rules(case_child("measures")),
    "attachments": rules(f"{SYSTEM} OR EXISTS (SELECT 1 FROM incidents i "
                         "WHERE i.id = attachments.incident_id)"),
    # Read across organisations by design, written only by their own organisation: the
    # compiled policy and the focal points to notify come from every organisation's rows.
    "role_assignments": rules(DECLARED, insert=OWN_ORG, update=OWN_ORG, delete=OWN_ORG),
    # Anyone may deliver to an organisation's inbox or alert it; only it reads them.
    "inbox": rules(OWN_ORG, insert=DECLARED),
    "alerts": rules(OWN_ORG, insert=DECLARED),
    # The directories: read by every tenant, written by the system (`tenants apply`) — and
    # working-group membership by the group's convener.
    "organisations": rules(DECLARED, insert=SYSTEM, update=SYSTEM, delete=SYSTEM),
    "working_groups": rules(DECLARED, insert=SYSTEM, update=SYSTEM, delete=SYSTEM),
    "oversight": rules(DECLARED, insert=SYSTEM, update=SYSTEM, delete=SYSTEM),
    "working_group_members": rules(
        DECLARED, delete=SYSTEM,
        insert=f"{SYSTEM} OR EXISTS (SELECT 1 FROM working_groups w WHERE w.id = "
               f"working_group_members.working_group_id AND w.convener_org_id = {ORG})",
        update=f"{SYSTEM} OR EXISTS (SELECT 1 FROM working_groups w WHERE w.id = "
               f"working_group_members.working_group_id AND w.convener_org_id = {ORG})"),
    # Escalation steps: planned by the request that reports, fired only by the scheduler.
    "scheduled_steps": rules(DECLARED, update=SYSTEM, delete=SYSTEM),
    # The log: its own entries, those of organisations accepting its oversight, and for her
    # the entries naming her; appended by whoever acts (no organisation = NULL), chained by the
    # system (triggers forbid every other UPDATE and any DELETE).
    "access_log": rules(
        f"{SYSTEM} OR org_id IN (SELECT sn_log_orgs()) OR ((SELECT sn_scope()) = 'peacebuilder' "
        "AND EXISTS (SELECT 1 FROM sn_peacebuilders() p WHERE refs LIKE '%' || p::text || '%'))",
        insert=f"{SYSTEM} OR org_id = {ORG} OR (org_id IS NULL AND {DECLARED})",
        update=SYSTEM, delete=SYSTEM),
}

# Who a row belongs to never changes after it is written (not even by a caller allowed to
# update the row): a trigger, since a policy cannot compare the old row with the new one.
IMMUTABLE: dict[str, tuple[str, ...]] = {
    "peacebuilders": ("registered_by_org_id",),
    **{t: ("peacebuilder_id",) for t in (
        "peacebuilder_data", "data_keys", "peacebuilder_notices", "peacebuilder_networks",
        "data_requests", "approvals", "consent_events", "consent_grants", "peacebuilder_accounts")},
    "consent_access": ("peacebuilder_id", "org_id"),
    "break_glass": ("peacebuilder_id", "org_id"),
    "cases": ("peacebuilder_id", "lead_org_id"),
    "incidents": ("case_id", "reporting_org_id"),
    "referrals": ("case_id", "from_org_id", "to_org_id"),
    "proceedings": ("case_id", "org_id"),
    "case_team": ("case_id", "org_id"),
    "case_events": ("case_id", "org_id"),
    "case_notes": ("case_id", "org_id"),
    "measures": ("case_id",),
    "attachments": ("incident_id",),
    "users": ("org_id",),
    "clients": ("org_id",),
    "role_assignments": ("org_id",),
    "working_group_members": ("working_group_id", "org_id"),
}

IMMUTABLE_FUNCTION = """
CREATE FUNCTION sn_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  col text;
BEGIN
  FOREACH col IN ARRAY TG_ARGV LOOP
    IF (to_jsonb(OLD) -> col) IS DISTINCT FROM (to_jsonb(NEW) -> col) THEN
      RAISE EXCEPTION 'who %.% belongs to cannot be changed', TG_TABLE_NAME, col
        USING ERRCODE = 'check_violation';
    END IF;
  END LOOP;
  RETURN NEW;
END $$
"""

COMMANDS = {"read": "SELECT", "insert": "INSERT", "update": "UPDATE", "delete": "DELETE"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in FUNCTIONS.split(";\n"):
        if statement.strip():
            op.execute(statement)
    op.execute(IMMUTABLE_FUNCTION)
    for table, by_command in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
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
            op.execute(f"CREATE POLICY {table}_{name} ON {table} FOR {command} {clause}")
    for table, columns in IMMUTABLE.items():
        args = ", ".join(f"'{c}'" for c in columns)
        op.execute(f"CREATE TRIGGER {table}_owner_fixed BEFORE UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in IMMUTABLE:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_owner_fixed ON {table}")
    for table in POLICIES:
        for name in COMMANDS:
            op.execute(f"DROP POLICY IF EXISTS {table}_{name} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION IF EXISTS sn_immutable(), sn_log_orgs(), sn_peacebuilder_ids(), "
               "sn_peacebuilders(), sn_org(), sn_declared(), sn_system(), sn_scope()")
