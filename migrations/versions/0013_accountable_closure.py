"""accountable closure: a case closes with a reason and a follow-up plan

Two nullable columns on `cases`: the closure reason (a code) and the follow-up plan (kinds,
dates and owner organisation IDs). Existing closed cases keep a null reason.

Revision ID: 0013
Revises: 0010
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('closure_reason', sa.String(length=30), nullable=True))
        batch.add_column(sa.Column('closure_plan', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cases') as batch:
        batch.drop_column('closure_plan')
        batch.drop_column('closure_reason')
