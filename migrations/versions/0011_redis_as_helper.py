"""redis as a helper: failed sign-ins counted here, an alert outbox, idempotency keys

Three tables, so that nothing that must hold depends on Redis (docs/decisions/0017):
`sign_in_counters` (failed sign-ins per account and per client address, keyed by a hash),
`alert_outbox` (alerts written in the request's own transaction, published later by a worker)
and `idempotency_keys` (the first answer of a mutation sent with an `Idempotency-Key`, sealed).

Revision ID: 0011
Revises: 0010
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('sign_in_counters',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_sign_in_counters'))
    )
    op.create_table('alert_outbox',
    sa.Column('item_id', sa.Uuid(), nullable=False),
    sa.Column('recipient', sa.String(length=80), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_alert_outbox'))
    )
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_alert_outbox_created', ['created_at'], unique=False)
    op.create_table('idempotency_keys',
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=True),
    sa.Column('peacebuilder_id', sa.Uuid(), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('subject', 'key_hash', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_expires', ['expires_at'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
DECLARED = "(SELECT sn_declared())"
POLICIES = {
    # Sign-in runs in the system scope, and nothing else touches these counters.
    "sign_in_counters": {"read": SYSTEM, "insert": SYSTEM, "update": SYSTEM, "delete": SYSTEM},
    # Whoever may deliver to an inbox writes its outbox entry (like `inbox`); only the worker,
    # in the system scope, reads and deletes them.
    "alert_outbox": {"read": SYSTEM, "insert": DECLARED, "update": SYSTEM, "delete": SYSTEM},
    # A caller's first answers: her organisation's, or hers as a peacebuilder.
    "idempotency_keys": dict.fromkeys(
        ("read", "insert", "update", "delete"),
        f"{SYSTEM} OR org_id = {ORG} OR (org_id IS NULL AND (SELECT sn_scope()) = "
        "'peacebuilder' AND peacebuilder_id IN (SELECT sn_peacebuilders()))"),
}


def _row_level_security() -> None:
    for table, rule in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({rule['read']})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT "
                   f"WITH CHECK ({rule['insert']})")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({rule['update']}) "
                   f"WITH CHECK ({rule['update']})")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({rule['delete']})")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_expires')
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_outbox_created')
    op.drop_table('alert_outbox')
    op.drop_table('sign_in_counters')
