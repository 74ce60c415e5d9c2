"""her plan's measures not done say why; consultation follow-ups are their owners' tasks

- `measures.not_done_reason`: the reason code of a measure not done (status cancelled), kept on
  the measure (it was only on the timeline and in her notice).
- `consultation_follow_ups`: each follow-up agreed at a consultation as a task — owner
  organisation, named person, due date, status — in clear (IDs, dates, codes) so it falls due
  and escalates; what is to be done stays sealed in the consultation. Rows follow the case's
  visibility (PostgreSQL row-level security, as the other tables below a case).

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

TABLE = "consultation_follow_ups"
SYSTEM = "(SELECT sn_system())"
VISIBLE_CASES = ("(SELECT id FROM cases WHERE peacebuilder_id = ANY "
                 "((SELECT sn_peacebuilder_ids())::uuid[]))")
IMMUTABLE = ("case_id", "consultation_id", "position", "owner_org_id", "created_at")


def _fk(column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'],
                                   name=op.f(f'fk_{TABLE}_{column}_{target}'))


def upgrade() -> None:
    with op.batch_alter_table('measures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_done_reason', sa.String(length=30), nullable=True))
    op.create_table(TABLE,
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('consultation_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('owner_org_id', sa.Uuid(), nullable=False),
    sa.Column('owner_user_id', sa.Uuid(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(length=80), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _fk('case_id', 'cases'),
    _fk('consultation_id', 'consultations'),
    _fk('owner_org_id', 'organisations'),
    _fk('owner_user_id', 'users'),
    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{TABLE}'))
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index('ix_consultation_follow_ups_case', ['case_id', 'created_at'],
                              unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # Whoever sees the case (her consent decides the rest in the app): the recording
        # organisation writes them, the owner marks them done, the scheduler reads them.
        read = f"{SYSTEM} OR {TABLE}.case_id IN {VISIBLE_CASES}"
        op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {TABLE}_read ON {TABLE} FOR SELECT USING ({read})")
        op.execute(f"CREATE POLICY {TABLE}_insert ON {TABLE} FOR INSERT WITH CHECK ({read})")
        op.execute(f"CREATE POLICY {TABLE}_update ON {TABLE} FOR UPDATE USING ({read}) "
                   f"WITH CHECK ({read})")
        op.execute(f"CREATE POLICY {TABLE}_delete ON {TABLE} FOR DELETE USING ({read})")
        args = ", ".join(f"'{c}'" for c in IMMUTABLE)
        op.execute(f"CREATE TRIGGER {TABLE}_fixed BEFORE UPDATE ON {TABLE} "
                   f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_fixed ON {TABLE}")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index('ix_consultation_follow_ups_case')
    op.drop_table(TABLE)
    with op.batch_alter_table('measures', schema=None) as batch_op:
        batch_op.drop_column('not_done_reason')
