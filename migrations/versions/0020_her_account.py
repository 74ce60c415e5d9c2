"""her account: one-time codes, TOTP, duress password, suspension (docs/decisions/0027)

- `peacebuilder_codes`: one-time enrolment and reset codes for her login (a locator in clear,
  an HMAC of the secret, attempts counted here). Written and read in the system scope only.
- `peacebuilder_accounts`: when a code last set her password (`reset_at`), her TOTP factor,
  her duress password and whom it alerts, and a suspension (who, how, when it lapses).
- `auth_sessions.duress`: a session opened with her duress password.

Revision ID: 0020
Revises: 0022 (main's head when merged; first written on 0019)
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0020'
down_revision: Union[str, Sequence[str], None] = '0022'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ACCOUNT_COLUMNS = (
    ('reset_at', sa.DateTime(timezone=True)),
    ('totp_secret', sa.String(length=64)),
    ('totp_pending', sa.String(length=64)),
    ('totp_last_step', sa.BigInteger()),
    ('totp_enrolled_at', sa.DateTime(timezone=True)),
    ('duress_hash', sa.String(length=200)),
    ('duress_alert', sa.String(length=12)),
    ('suspended_at', sa.DateTime(timezone=True)),
    ('suspended_by', sa.String(length=80)),
    ('suspended_via', sa.String(length=12)),
    ('suspension_lapses_at', sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table(
        'peacebuilder_codes',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('peacebuilder_id', sa.Uuid(), nullable=False),
        sa.Column('locator', sa.String(length=16), nullable=False),
        sa.Column('code_hash', sa.String(length=80), nullable=False),
        sa.Column('purpose', sa.String(length=12), nullable=False),
        sa.Column('via', sa.String(length=12), nullable=False),
        sa.Column('issued_by', sa.String(length=80), nullable=False),
        sa.Column('issued_by_org_id', sa.Uuid(), nullable=True),
        sa.Column('confirmation_id', sa.Uuid(), nullable=True),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['peacebuilder_id'], ['peacebuilders.id'],
                                name=op.f('fk_peacebuilder_codes_peacebuilder_id_peacebuilders')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_peacebuilder_codes')),
        sa.UniqueConstraint('locator', name=op.f('uq_peacebuilder_codes_locator')),
        sa.UniqueConstraint('confirmation_id', name=op.f('uq_peacebuilder_codes_confirmation_id')),
    )
    with op.batch_alter_table('peacebuilder_codes', schema=None) as batch_op:
        batch_op.create_index('ix_peacebuilder_codes_pb_status', ['peacebuilder_id', 'status'],
                              unique=False)
    with op.batch_alter_table('peacebuilder_accounts', schema=None) as batch_op:
        for name, type_ in ACCOUNT_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('duress', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        # Codes are the system's alone: issued, redeemed and counted in the system scope.
        table, rule = "peacebuilder_codes", "(SELECT sn_system())"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_all ON {table} USING ({rule}) WITH CHECK ({rule})")


def downgrade() -> None:
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_column('duress')
    with op.batch_alter_table('peacebuilder_accounts', schema=None) as batch_op:
        for name, _ in reversed(ACCOUNT_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table('peacebuilder_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_peacebuilder_codes_pb_status')
    op.drop_table('peacebuilder_codes')
