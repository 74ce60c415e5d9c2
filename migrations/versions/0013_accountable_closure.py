"""the response never stops at nobody: accountable closure, escalation chains, duty rotas

Two nullable columns on `cases`: the closure reason (a code) and the follow-up plan (kinds,
dates, owner organisation and measure IDs). Existing closed cases keep a null reason.
`organisation_settings.escalation`: the chain declared in tenants/ (null: the default).
`duty_shifts`: who is on duty when, per organisation (row-level security: its own rows only).
Escalation steps already scheduled as level 2 of the old two-level scheme are dropped: the
chain schedules its own next levels.

Revision ID: 0013
Revises: 0012
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('closure_reason', sa.String(length=30), nullable=True))
        batch.add_column(sa.Column('closure_plan', sa.JSON(), nullable=True))
    with op.batch_alter_table('organisation_settings') as batch:
        batch.add_column(sa.Column('escalation', sa.JSON(), nullable=True))
    op.create_table('duty_shifts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_duty_shifts_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duty_shifts'))
    )
    with op.batch_alter_table('duty_shifts') as batch:
        batch.create_index('ix_duty_shifts_org_time', ['org_id', 'starts_at', 'ends_at'],
                           unique=False)
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # FORCE applies to the owner too: lift it for this transaction only
        op.execute("ALTER TABLE scheduled_steps NO FORCE ROW LEVEL SECURITY")
    op.execute("DELETE FROM scheduled_steps WHERE kind = 'escalation' AND step = 2 "
               "AND done_at IS NULL")
    if postgres:
        op.execute("ALTER TABLE scheduled_steps FORCE ROW LEVEL SECURITY")
        _row_level_security()


SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
RULE = f"{SYSTEM} OR org_id = {ORG}"


def _row_level_security() -> None:
    table = "duty_shifts"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({RULE})")
    op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({RULE})")
    op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({RULE}) "
               f"WITH CHECK ({RULE})")
    op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({RULE})")
    op.execute(f"CREATE TRIGGER {table}_owner_fixed BEFORE UPDATE ON {table} "
               f"FOR EACH ROW EXECUTE FUNCTION sn_immutable('org_id', 'subject', 'created_by')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS duty_shifts_owner_fixed ON duty_shifts")
    with op.batch_alter_table('duty_shifts') as batch:
        batch.drop_index('ix_duty_shifts_org_time')
    op.drop_table('duty_shifts')
    with op.batch_alter_table('organisation_settings') as batch:
        batch.drop_column('escalation')
    with op.batch_alter_table('cases') as batch:
        batch.drop_column('closure_plan')
        batch.drop_column('closure_reason')
