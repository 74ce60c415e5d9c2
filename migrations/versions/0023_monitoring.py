"""monitoring: coarse region and alleged-source category on incidents, the release record

- `incidents.region_code`: a code from the deployment's declared coarse regions (category
  location_coarse), chosen when the incident is reported; null when none was given.
- `incidents.source_category`: the alleged-source category the reporter chose from the
  declared list (never inferred); null when not reported.
- `monitoring_releases`: every release of a monitoring table (organisation, table, period, the
  published figures), once per organisation, table and period. Rows are never changed or
  deleted (PostgreSQL: no update or delete policy under forced row-level security).

Revision ID: 0023
Revises: 0019
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0023'
down_revision: Union[str, Sequence[str], None] = '0019'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

RULE = "(SELECT sn_system()) OR org_id = (SELECT sn_org())"


def upgrade() -> None:
    with op.batch_alter_table('incidents') as batch:
        batch.add_column(sa.Column('region_code', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('source_category', sa.String(length=40), nullable=True))
    op.create_table(
        'monitoring_releases',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.Column('table_name', sa.String(length=40), nullable=False),
        sa.Column('period', sa.String(length=10), nullable=False),
        sa.Column('figures', sa.JSON(), nullable=False),
        sa.Column('released_by', sa.String(length=80), nullable=False),
        sa.Column('released_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organisations.id'],
                                name=op.f('fk_monitoring_releases_org_id_organisations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_monitoring_releases')),
        sa.UniqueConstraint('org_id', 'table_name', 'period', name='uq_monitoring_releases_period'),
    )
    op.create_index('ix_monitoring_releases_org', 'monitoring_releases', ['org_id', 'released_at'])
    if op.get_bind().dialect.name == "postgresql":
        table = "monitoring_releases"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({RULE})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({RULE})")


def downgrade() -> None:
    op.drop_index('ix_monitoring_releases_org', table_name='monitoring_releases')
    op.drop_table('monitoring_releases')
    with op.batch_alter_table('incidents') as batch:
        batch.drop_column('source_category')
        batch.drop_column('region_code')
