"""web sessions: the server side of the dashboard's session cookie

- `web_sessions`: one row per signed-in browser, found by the SHA-256 of its cookie; the
  person's access and refresh tokens sealed with a service key, her declared purpose and
  language. Read and written in the system scope only (PostgreSQL: forced row-level security
  allows nothing else): no organisation reads another browser's session, nor its own.

Revision ID: 0025
Revises: 0021
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0025'
down_revision: Union[str, Sequence[str], None] = '0021'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

RULE = "(SELECT sn_system())"


def upgrade() -> None:
    op.create_table(
        'web_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.String(length=80), nullable=False),
        sa.Column('tokens', sa.String(length=4000), nullable=False),
        sa.Column('purpose', sa.String(length=40), nullable=True),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions')),
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_web_sessions_subject', ['subject'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE web_sessions ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE web_sessions FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY web_sessions_all ON web_sessions USING ({RULE}) "
                   f"WITH CHECK ({RULE})")


def downgrade() -> None:
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_web_sessions_subject')
    op.drop_table('web_sessions')
