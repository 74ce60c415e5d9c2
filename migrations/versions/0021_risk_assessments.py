"""joint risk assessments and her protection plan (issue 19)

`risk_assessments`: one per assessment of a case (draft, shared with her, agreed or contested,
superseded), its free text sealed with her key; `risk_threats`: the threats of an assessment;
`measures` gain the plan fields (threat, part of the plan, cost with currency, funding source and
covered family sealed); `organisation_settings.risk_max_age_days`: how old a current assessment
may be for the gates. Rows below a case follow the case's visibility; a reassessment started by
her own report of a serious incident is written in her request, so inserts are not tied to the
writing organisation (the service checks the lead organisation).

Revision ID: 0021
Revises: 0020 (main's head when merged; 0019 when written)
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0021'
down_revision: Union[str, Sequence[str], None] = '0020'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('risk_assessments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('review_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('trigger_incident_id', sa.Uuid(), nullable=True),
    sa.Column('vulnerabilities', sa.Text(), nullable=True),
    sa.Column('capacities', sa.Text(), nullable=True),
    sa.Column('reasoning', sa.Text(), nullable=True),
    sa.Column('context_notes', sa.Text(), nullable=True),
    sa.Column('her_analysis', sa.Text(), nullable=True),
    sa.Column('her_view', sa.Text(), nullable=True),
    sa.Column('answered_by', sa.String(length=30), nullable=True),
    sa.Column('answered_by_subject', sa.String(length=80), nullable=True),
    sa.Column('consulted_how', sa.String(length=40), nullable=True),
    sa.Column('confirmation_id', sa.Uuid(), nullable=True),
    sa.Column('shared_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('superseded_by', sa.Uuid(), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_risk_assessments_case_id_cases')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_risk_assessments_org_id_organisations')),
    sa.ForeignKeyConstraint(['trigger_incident_id'], ['incidents.id'], name=op.f('fk_risk_assessments_trigger_incident_id_incidents')),
    sa.ForeignKeyConstraint(['confirmation_id'], ['confirmations.id'], name=op.f('fk_risk_assessments_confirmation_id_confirmations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_assessments'))
    )
    with op.batch_alter_table('risk_assessments', schema=None) as batch_op:
        batch_op.create_index('ix_risk_assessments_case', ['case_id', 'created_at'], unique=False)

    op.create_table('risk_threats',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('assessment_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('likelihood', sa.String(length=20), nullable=False),
    sa.Column('impact', sa.String(length=20), nullable=False),
    sa.Column('facts', sa.Text(), nullable=True),
    sa.Column('pattern', sa.Text(), nullable=True),
    sa.Column('objective', sa.Text(), nullable=True),
    sa.Column('source_as_reported', sa.Text(), nullable=True),
    sa.Column('feasibility', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_risk_threats_case_id_cases')),
    sa.ForeignKeyConstraint(['assessment_id'], ['risk_assessments.id'], name=op.f('fk_risk_threats_assessment_id_risk_assessments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_threats'))
    )
    with op.batch_alter_table('risk_threats', schema=None) as batch_op:
        batch_op.create_index('ix_risk_threats_case', ['case_id', 'assessment_id', 'position'], unique=False)

    with op.batch_alter_table('measures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('threat_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('plan_kind', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('cost_amount', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('cost_currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('funding_source', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('covered_family', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_measures_threat_id_risk_threats'), 'risk_threats', ['threat_id'], ['id'])

    with op.batch_alter_table('organisation_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_max_age_days', sa.Integer(), nullable=True))

    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


SYSTEM = "(SELECT sn_system())"
VISIBLE_CASES = ("(SELECT id FROM cases WHERE peacebuilder_id = ANY "
                 "((SELECT sn_peacebuilder_ids())::uuid[]))")
IMMUTABLE = {"risk_assessments": ("case_id", "org_id", "created_by", "created_at"),
             "risk_threats": ("case_id", "assessment_id")}


def _row_level_security() -> None:
    for table, fixed in IMMUTABLE.items():
        read = f"{SYSTEM} OR {table}.case_id IN {VISIBLE_CASES}"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({read})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({read})")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({read}) "
                   f"WITH CHECK ({read})")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({read})")
        args = ", ".join(f"'{c}'" for c in fixed)
        op.execute(f"CREATE TRIGGER {table}_fixed BEFORE UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        for table in IMMUTABLE:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_fixed ON {table}")
    with op.batch_alter_table('organisation_settings', schema=None) as batch_op:
        batch_op.drop_column('risk_max_age_days')
    with op.batch_alter_table('measures', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_measures_threat_id_risk_threats'), type_='foreignkey')
        batch_op.drop_column('covered_family')
        batch_op.drop_column('funding_source')
        batch_op.drop_column('cost_currency')
        batch_op.drop_column('cost_amount')
        batch_op.drop_column('plan_kind')
        batch_op.drop_column('threat_id')
    with op.batch_alter_table('risk_threats', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_threats_case')
    op.drop_table('risk_threats')
    with op.batch_alter_table('risk_assessments', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_assessments_case')
    op.drop_table('risk_assessments')
