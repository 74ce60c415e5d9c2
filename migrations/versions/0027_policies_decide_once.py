"""row-level security: the same rows, fewer verifications and no materialised visible cases

Issue 14 ("decide once per page"). What every policy admits is unchanged; what one statement
costs PostgreSQL goes down (docs/decisions/0014-decide-once-per-page.md, addendum):

- `sn_system()` and `sn_org()` skip the HMAC verification when the claimed scope is another
  one and the signature cannot have expired at this statement: `sn_verified_scope()` returns
  the claimed scope or 'none' and raises only for an expired authentic signature, so a claim
  of 'org' can never verify to 'system' (nor 'peacebuilder' to 'org'). Every policy starts
  with `(SELECT sn_system())`: on the service role each of those InitPlans cost a full
  verification (plpgsql, HMAC) and now costs a comparison. Expired, absent, malformed and
  system claims still go through the verification, so an expired signature still raises.
- `sn_peacebuilders()` (the decided list every her-record policy hashes) keeps its body but is
  PL/pgSQL: as a SQL function called in a select list it went through the SQL-function
  executor, which parses and plans the body anew at every occurrence in every statement;
  PL/pgSQL keeps its plans for the session. Still opaque to the planner (ROWS 100), so the
  sub-plan stays hashed whatever the list's length.
- Policies `system OR peacebuilder_id IN decided OR org_id = sn_org()` (consent_access,
  break_glass) test the organisation before the list: OR is evaluated left to right and an
  InitPlan runs only when first needed, so a statement reading its own organisation's rows no
  longer builds the decided set. OR is commutative: the same rows.
- The tables below a case (`case_id IN (SELECT id FROM cases WHERE peacebuilder_id = ANY
  (decided))`: incidents, referrals, measures, case notes, the justice, risk, check-in and
  consultation tables...) test their own row's case, `EXISTS (SELECT 1 FROM cases WHERE
  id = row.case_id AND peacebuilder_id = ANY (decided))`, instead of building the set of every
  visible case: the same condition asked of one case (a key lookup per row read; when the
  planner hashes it instead, the list inside keeps that an index scan of the visible cases, not
  of every case). The cases table's own read policy applies inside the sub-select as before.
  `attachments` already reached incidents this way.

The policies are rewritten where they stand (`ALTER POLICY` on the definitions PostgreSQL
holds), so every table carrying one of these shapes is covered, whichever migration created
it; the upgrade fails if any remains. The downgrade applies the inverse rewrite and restores
0008's function bodies (a round trip gives back identical pg_policies and functions). SQLite has no row-level security: nothing to do there.

Revision ID: 0027
Revises: 0026
"""
import re
from collections.abc import Callable
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0027'
down_revision: Union[str, Sequence[str], None] = '0026'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The claimed scope, when its signature cannot be expired at this statement (NULL otherwise).
# Same parsing as sn_verified_scope(): its raise condition is `expires <= now`, this one's NULL.
# PL/pgSQL rather than an inlined SQL body: the planner would parse it again at every
# occurrence of sn_system() / sn_org() in every statement.
UNEXPIRED_CLAIM = """
CREATE FUNCTION sn_unexpired_claim() RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  expires text := coalesce(current_setting('safety_net.expires', true), '');
BEGIN
  IF expires !~ '^[0-9]{1,12}$' THEN
    RETURN NULL;
  END IF;
  IF expires::bigint <= extract(epoch FROM statement_timestamp()) THEN
    RETURN NULL;
  END IF;
  RETURN coalesce(current_setting('safety_net.scope', true), '');
END $$
"""

# 0008's: the list is signed through its SHA-256.
INTACT_LIST = ("encode(sha256(convert_to(coalesce(current_setting('safety_net.peacebuilders', "
               "true), ''), 'UTF8')), 'hex') = coalesce(current_setting("
               "'safety_net.peacebuilders_sha256', true), '')")

FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION sn_system() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN sn_unexpired_claim() <> 'system' THEN false
              ELSE sn_scope() = 'system' END $$""",
    """CREATE OR REPLACE FUNCTION sn_org() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN sn_unexpired_claim() <> 'org' THEN NULL::uuid
              WHEN sn_scope() = 'org'
              THEN nullif(current_setting('safety_net.org', true), '')::uuid END $$""",
]

# The decided list, same body, in PL/pgSQL: policies call it as `x IN (SELECT sn_peacebuilders())`
# (a hashed sub-plan, built once per occurrence), where a SQL function is run by the
# SQL-function executor, which parses and plans its body again in every statement, at every
# occurrence; PL/pgSQL keeps its plans for the session. Same rows: none unless the verified
# scope is 'org' or 'peacebuilder' and the list matches its signed digest, then the list's
# UUIDs (an entry that is no UUID is an error, as before). Kept opaque (not inlined) on
# purpose: a fixed ROWS estimate keeps the sub-plan hashed however long the list.
FUNCTIONS.append(f"""CREATE OR REPLACE FUNCTION sn_peacebuilders() RETURNS SETOF uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 100 AS $$
BEGIN
  IF sn_scope() IN ('org', 'peacebuilder') AND {INTACT_LIST} THEN
    RETURN QUERY SELECT unnest(string_to_array(
        nullif(current_setting('safety_net.peacebuilders', true), ''), ','))::uuid;
  END IF;
END $$""")

# 0008's bodies, for the downgrade.
PREVIOUS_FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION sn_system() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT sn_scope() = 'system' $$""",
    """CREATE OR REPLACE FUNCTION sn_org() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN sn_scope() = 'org'
              THEN nullif(current_setting('safety_net.org', true), '')::uuid END $$""",
    f"""CREATE OR REPLACE FUNCTION sn_peacebuilders() RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE ROWS 100 AS $$
  SELECT unnest(string_to_array(nullif(current_setting('safety_net.peacebuilders', true), ''),
                                ','))::uuid
  WHERE sn_scope() IN ('org', 'peacebuilder') AND {INTACT_LIST} $$""",
]

# The policy shapes, as PostgreSQL prints them (pg_policies), and what replaces them. `{table}`
# is the policy's table. Whitespace in the printed form is matched loosely.
VISIBLE_CASES_IN = re.compile(
    r"\b(\w+) IN \( SELECT cases\.id" + r"\s+FROM cases\s+WHERE "
    r"\(cases\.peacebuilder_id = ANY \(\( SELECT sn_peacebuilder_ids\(\) AS "
    r"sn_peacebuilder_ids\)::uuid\[\]\)\)\)")
OWN_CASE = ("EXISTS (SELECT 1 FROM cases sn_case WHERE sn_case.id = {table}.{column} "
            "AND sn_case.peacebuilder_id = ANY ((SELECT sn_peacebuilder_ids())::uuid[]))")
OWN_CASE_PRINTED = re.compile(
    r"EXISTS \( SELECT 1\s+FROM cases sn_case\s+WHERE \(\(sn_case\.id = (\w+)\.(\w+)\) AND "
    r"\(sn_case\.peacebuilder_id = ANY \(\( SELECT sn_peacebuilder_ids\(\) AS "
    r"sn_peacebuilder_ids\)::uuid\[\]\)\)\)\)")
VISIBLE_CASES = ("{column} IN (SELECT cases.id FROM cases WHERE cases.peacebuilder_id = ANY "
                 "((SELECT sn_peacebuilder_ids())::uuid[]))")
LIST_THEN_ORG = re.compile(
    r"\((\w+) IN \( SELECT sn_peacebuilders\(\) AS sn_peacebuilders\)\) OR "
    r"\((\w+) = \( SELECT sn_org\(\) AS sn_org\)\)")
ORG_THEN_LIST = re.compile(
    r"\((\w+) = \( SELECT sn_org\(\) AS sn_org\)\) OR "
    r"\((\w+) IN \( SELECT sn_peacebuilders\(\) AS sn_peacebuilders\)\)")
# consent_access and break_glass: the two policies whose list and organisation tests sit in
# one OR (idempotency keys and sessions already test the organisation first).
ORG_FIRST_TABLES = ("consent_access", "break_glass")


def upgraded(table: str, expression: str) -> str:
    expression = VISIBLE_CASES_IN.sub(
        lambda m: OWN_CASE.format(table=table, column=m.group(1)), expression)
    if table in ORG_FIRST_TABLES:
        expression = LIST_THEN_ORG.sub(
            lambda m: f"({m.group(2)} = ( SELECT sn_org() AS sn_org)) OR "
                      f"({m.group(1)} IN ( SELECT sn_peacebuilders() AS sn_peacebuilders))",
            expression)
    return expression


def downgraded(table: str, expression: str) -> str:
    expression = OWN_CASE_PRINTED.sub(
        lambda m: VISIBLE_CASES.format(column=m.group(2)) if m.group(1) == table else m.group(0),
        expression)
    if table in ORG_FIRST_TABLES:
        expression = ORG_THEN_LIST.sub(
            lambda m: f"({m.group(2)} IN ( SELECT sn_peacebuilders() AS sn_peacebuilders)) OR "
                      f"({m.group(1)} = ( SELECT sn_org() AS sn_org))",
            expression)
    return expression


POLICIES = sa.text("SELECT tablename, policyname, qual, with_check FROM pg_policies "
                   "WHERE schemaname = current_schema() ORDER BY tablename, policyname")


def _rewrite(change: Callable[[str, str], str]) -> int:
    """ALTER every policy whose printed expressions `change` rewrites; how many it altered."""
    altered = 0
    for table, name, qual, check in op.get_bind().execute(POLICIES).all():
        new_qual = change(table, qual) if qual else qual
        new_check = change(table, check) if check else check
        if (new_qual, new_check) == (qual, check):
            continue
        clauses = ([f"USING ({new_qual})"] if qual else []) + (
            [f"WITH CHECK ({new_check})"] if check else [])
        op.execute(f"ALTER POLICY {name} ON {table} {' '.join(clauses)}")
        altered += 1
    return altered


def _remaining() -> list[str]:
    """Policies still building the visible cases or testing the list before the organisation."""
    left = []
    for table, name, qual, check in op.get_bind().execute(POLICIES).all():
        text = f"{qual or ''} {check or ''}"
        if VISIBLE_CASES_IN.search(text) or (table in ORG_FIRST_TABLES
                                             and LIST_THEN_ORG.search(text)):
            left.append(name)
    return left


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(UNEXPIRED_CLAIM)
    for statement in FUNCTIONS:
        op.execute(statement)
    _rewrite(upgraded)
    left = _remaining()
    if left:
        raise RuntimeError(f"policies not rewritten: {', '.join(left)}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _rewrite(downgraded)
    for statement in PREVIOUS_FUNCTIONS:
        op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS sn_unexpired_claim()")
