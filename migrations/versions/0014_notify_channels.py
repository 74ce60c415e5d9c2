"""notify channels: a person's own webhook channels, and the deliveries owed to them

`notify_channels`: per person, a signed webhook (SMS gateway, Signal bridge, pager) used from
an escalation level on; its signing secret is sealed with a service key. `webhook_deliveries`:
one row per alert owed to a channel, with attempts and the next attempt's time, claimed by one
replica at a time. Both content-free (IDs, counters, times).

Revision ID: 0014
Revises: 0013
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0014'
down_revision: Union[str, Sequence[str], None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('notify_channels',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('min_level', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_notify_channels_org_id_organisations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notify_channels_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_channels'))
    )
    with op.batch_alter_table('notify_channels', schema=None) as batch_op:
        batch_op.create_index('ix_notify_channels_user', ['user_id', 'active'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('channel_id', sa.Uuid(), nullable=False),
    sa.Column('inbox_id', sa.Uuid(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['notify_channels.id'], name=op.f('fk_webhook_deliveries_channel_id_notify_channels')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_webhook_deliveries_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('channel_id', 'inbox_id', name=op.f('uq_webhook_deliveries_channel_id_inbox_id'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_due', ['state', 'next_attempt_at'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
# A person's channels are her organisation's rows (and only those of a person of it).
CHANNEL_RULE = (f"{SYSTEM} OR (org_id = {ORG} AND "
                f"user_id IN (SELECT id FROM users WHERE org_id = {ORG}))")
# Deliveries are the delivery worker's alone (the system scope); no request reads them.
DELIVERY_RULE = SYSTEM
IMMUTABLE = {"notify_channels": ("org_id", "user_id", "kind", "url", "secret", "created_at"),
             "webhook_deliveries": ("org_id", "channel_id", "inbox_id", "created_at")}


def _row_level_security() -> None:
    for table, rule in (("notify_channels", CHANNEL_RULE), ("webhook_deliveries", DELIVERY_RULE)):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({rule})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({rule})")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({rule}) "
                   f"WITH CHECK ({rule})")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({rule})")
        args = ", ".join(f"'{c}'" for c in IMMUTABLE[table])
        op.execute(f"CREATE TRIGGER {table}_fixed BEFORE UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        for table in ("webhook_deliveries", "notify_channels"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_fixed ON {table}")
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_due')
    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('notify_channels', schema=None) as batch_op:
        batch_op.drop_index('ix_notify_channels_user')
    op.drop_table('notify_channels')
