"""her own channel: she reports, uploads evidence, withdraws approvals, her corrections answered

- `incidents.reporting_org_id` becomes nullable: an incident she reports herself carries no
  organisation (row-level security already expects NULL for her own writes).
- `attachments.org_id` (null: she added it herself) and `attachments.sha256` (of the plaintext,
  computed at upload: chain of custody; null for files uploaded before this revision). Neither
  changes once written (trigger).
- `approvals.used_at`: when the act she approved was carried out (its measure marked done);
  until then she may withdraw it.
- `data_requests`: the organisation that must answer her correction request, the case it
  escalates on, its deadline, and the answer (outcome, sealed reason, who, when).
- `organisation_settings.correction_days`: an organisation's deadline for answering a
  correction request (null: 30 days).

Revision ID: 0019
Revises: 0017
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0019'
down_revision: Union[str, Sequence[str], None] = '0017'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CUSTODY = ("org_id", "sha256", "uploaded_by", "uploaded_at", "size", "content_type")


def upgrade() -> None:
    with op.batch_alter_table('incidents') as batch:
        batch.alter_column('reporting_org_id', existing_type=sa.Uuid(), nullable=True)
    with op.batch_alter_table('attachments') as batch:
        batch.add_column(sa.Column('org_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('sha256', sa.String(length=64), nullable=True))
        batch.create_foreign_key('fk_attachments_org_id_organisations', 'organisations',
                                 ['org_id'], ['id'])
    with op.batch_alter_table('approvals') as batch:
        batch.add_column(sa.Column('used_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('data_requests') as batch:
        batch.add_column(sa.Column('org_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('case_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('answer_reason', sa.Text(), nullable=True))
        batch.add_column(sa.Column('answered_by', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_data_requests_org_status', ['org_id', 'status'], unique=False)
    with op.batch_alter_table('organisation_settings') as batch:
        batch.add_column(sa.Column('correction_days', sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        args = ", ".join(f"'{c}'" for c in CUSTODY)
        op.execute("CREATE TRIGGER attachments_custody_fixed BEFORE UPDATE ON attachments "
                   f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS attachments_custody_fixed ON attachments")
    with op.batch_alter_table('organisation_settings') as batch:
        batch.drop_column('correction_days')
    with op.batch_alter_table('data_requests') as batch:
        batch.drop_index('ix_data_requests_org_status')
        for column in ('answered_at', 'answered_by', 'answer_reason', 'due_at', 'case_id',
                       'org_id'):
            batch.drop_column(column)
    with op.batch_alter_table('approvals') as batch:
        batch.drop_column('used_at')
    with op.batch_alter_table('attachments') as batch:
        batch.drop_constraint('fk_attachments_org_id_organisations', type_='foreignkey')
        batch.drop_column('sha256')
        batch.drop_column('org_id')
    with op.batch_alter_table('incidents') as batch:
        batch.alter_column('reporting_org_id', existing_type=sa.Uuid(), nullable=False)
