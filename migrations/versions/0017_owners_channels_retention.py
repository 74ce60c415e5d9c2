"""owners who can act, channels per level, retention of closed cases (issue 17)

`measures.owner_user_id`: a named person of the owner organisation (null: the organisation's
chain alone). `alert_channel_choices`: per person and escalation level, which of her channels
(e-mail, her webhook channels) carry alerts of that level (no row: today's behaviour);
row-level security: her own organisation's rows, of its own people. `cases.erase_after`,
`cases.retention_hold`, `cases.retention_erased_at`: when a closed case's sealed data is
erased by the retention schedule, a legal hold (a reason code) that stops it, and when it was
done. `organisation_settings.retention`: the period declared in tenants/ (null: the default).

Revision ID: 0017
Revises: 0016
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0017'
down_revision: Union[str, Sequence[str], None] = '0016'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('measures') as batch:
        batch.add_column(sa.Column('owner_user_id', sa.Uuid(), nullable=True))
        batch.create_foreign_key('fk_measures_owner_user_id_users', 'users',
                                 ['owner_user_id'], ['id'])
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('erase_after', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('retention_hold', sa.String(length=30), nullable=True))
        batch.add_column(sa.Column('retention_erased_at', sa.DateTime(timezone=True),
                                   nullable=True))
    with op.batch_alter_table('organisation_settings') as batch:
        batch.add_column(sa.Column('retention', sa.JSON(), nullable=True))
    op.create_table('alert_channel_choices',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('email', sa.Boolean(), nullable=False),
    sa.Column('webhooks', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_alert_channel_choices_org_id_organisations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_alert_channel_choices_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_channel_choices')),
    sa.UniqueConstraint('user_id', 'level', name=op.f('uq_alert_channel_choices_user_id_level'))
    )
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
# A person's choices are her organisation's rows (and only those of a person of it).
RULE = (f"{SYSTEM} OR (org_id = {ORG} AND "
        f"user_id IN (SELECT id FROM users WHERE org_id = {ORG}))")


def _row_level_security() -> None:
    table = "alert_channel_choices"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({RULE})")
    op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({RULE})")
    op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({RULE}) "
               f"WITH CHECK ({RULE})")
    op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({RULE})")
    op.execute(f"CREATE TRIGGER {table}_fixed BEFORE UPDATE ON {table} "
               f"FOR EACH ROW EXECUTE FUNCTION sn_immutable('org_id', 'user_id')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS alert_channel_choices_fixed ON alert_channel_choices")
    op.drop_table('alert_channel_choices')
    with op.batch_alter_table('organisation_settings') as batch:
        batch.drop_column('retention')
    with op.batch_alter_table('cases') as batch:
        batch.drop_column('retention_erased_at')
        batch.drop_column('retention_hold')
        batch.drop_column('erase_after')
    with op.batch_alter_table('measures') as batch:
        batch.drop_constraint('fk_measures_owner_user_id_users', type_='foreignkey')
        batch.drop_column('owner_user_id')
