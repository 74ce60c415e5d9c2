"""safety check-ins, digital security assessments and the consultations log

`check_in_schedules`: a schedule agreed with her (interval, channel, sealed safety contact, the
agreed action if missed, sealed notes); `check_ins`: one row per period (pending, done, missed,
late, resolved, ended); `security_assessments`: assets, vulnerabilities and recommendations
(sealed), a follow-up date; `consultations`: meetings with her or her network (organisations
present as IDs; topics, risks raised and follow-ups sealed). All below a case: rows follow the
case's visibility; each is written by its own organisation (check-in periods by whoever may see
the case: she herself, the scheduler).

Revision ID: 0022
Revises: 0023 (numbered 0022 when main's head was 0019; chained after monitoring on merge)
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0022'
down_revision: Union[str, Sequence[str], None] = '0023'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'],
                                   name=op.f(f'fk_{table}_{column}_{target}'))


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('check_in_schedules',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('interval_minutes', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('agreed_via', sa.String(length=30), nullable=False),
    sa.Column('safety_contact', sa.Text(), nullable=True),
    sa.Column('missed_action', sa.String(length=30), nullable=False),
    sa.Column('missed_action_notes', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _fk('check_in_schedules', 'case_id', 'cases'),
    _fk('check_in_schedules', 'org_id', 'organisations'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_in_schedules'))
    )
    with op.batch_alter_table('check_in_schedules', schema=None) as batch_op:
        batch_op.create_index('ix_check_in_schedules_case', ['case_id', 'created_at'],
                              unique=False)

    op.create_table('check_ins',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('schedule_id', sa.Uuid(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_in_by', sa.String(length=20), nullable=True),
    sa.Column('recorded_by', sa.String(length=80), nullable=True),
    sa.Column('missed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.String(length=30), nullable=True),
    sa.Column('resolved_by', sa.String(length=80), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _fk('check_ins', 'case_id', 'cases'),
    _fk('check_ins', 'schedule_id', 'check_in_schedules'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_ins'))
    )
    with op.batch_alter_table('check_ins', schema=None) as batch_op:
        batch_op.create_index('ix_check_ins_case', ['case_id', 'due_at'], unique=False)
        batch_op.create_index('ix_check_ins_schedule', ['schedule_id', 'status'], unique=False)

    op.create_table('security_assessments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('subject', sa.String(length=20), nullable=False),
    sa.Column('assessed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assets', sa.Text(), nullable=True),
    sa.Column('vulnerabilities', sa.Text(), nullable=True),
    sa.Column('recommendations', sa.Text(), nullable=True),
    sa.Column('follow_up_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('followed_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    _fk('security_assessments', 'case_id', 'cases'),
    _fk('security_assessments', 'org_id', 'organisations'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_security_assessments'))
    )
    with op.batch_alter_table('security_assessments', schema=None) as batch_op:
        batch_op.create_index('ix_security_assessments_case', ['case_id', 'assessed_at'],
                              unique=False)

    op.create_table('consultations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('held_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consulted', sa.String(length=20), nullable=False),
    sa.Column('organisations', sa.JSON(), nullable=False),
    sa.Column('topics', sa.Text(), nullable=True),
    sa.Column('risks_raised', sa.Text(), nullable=True),
    sa.Column('follow_ups', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    _fk('consultations', 'case_id', 'cases'),
    _fk('consultations', 'org_id', 'organisations'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consultations'))
    )
    with op.batch_alter_table('consultations', schema=None) as batch_op:
        batch_op.create_index('ix_consultations_case', ['case_id', 'held_at'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
VISIBLE_CASES = ("(SELECT id FROM cases WHERE peacebuilder_id = ANY "
                 "((SELECT sn_peacebuilder_ids())::uuid[]))")
# table -> whether inserts must also be the request's own organisation's rows
OWNED = {"check_in_schedules": True, "check_ins": False, "security_assessments": True,
         "consultations": True}
IMMUTABLE = {"check_in_schedules": ("case_id", "org_id", "created_by", "created_at"),
             "check_ins": ("case_id", "schedule_id", "due_at", "created_at"),
             "security_assessments": ("case_id", "org_id", "created_by", "created_at"),
             "consultations": ("case_id", "org_id", "recorded_by", "created_at")}


def _row_level_security() -> None:
    for table, owned in OWNED.items():
        read = f"{SYSTEM} OR {table}.case_id IN {VISIBLE_CASES}"
        insert = f"{SYSTEM} OR (({read}) AND org_id = {ORG})" if owned else read
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({read})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({insert})")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({read}) "
                   f"WITH CHECK ({read})")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({read})")
        args = ", ".join(f"'{c}'" for c in IMMUTABLE[table])
        op.execute(f"CREATE TRIGGER {table}_fixed BEFORE UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        for table in OWNED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_fixed ON {table}")
    for table, indexes in (("consultations", ["ix_consultations_case"]),
                           ("security_assessments", ["ix_security_assessments_case"]),
                           ("check_ins", ["ix_check_ins_schedule", "ix_check_ins_case"]),
                           ("check_in_schedules", ["ix_check_in_schedules_case"])):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
