"""her plan's measures not done say why; consultation follow-ups are their owners' tasks

- `measures.not_done_reason`: the reason code of a measure not done (status cancelled), kept on
  the measure (it was only on the timeline and in her notice).

Revision ID: 0026
Revises: 0025
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0026'
down_revision: Union[str, Sequence[str], None] = '0025'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('measures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_done_reason', sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('measures', schema=None) as batch_op:
        batch_op.drop_column('not_done_reason')
