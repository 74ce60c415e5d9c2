"""justice follow-up: hearings on proceedings, detention watch with due checks and a visit log

`hearings`: dated hearings of a proceeding (reminders before, the outcome owed after);
`detentions`: she is detained (place sealed), until released; `detention_checks`: lawyer access,
family visit, medical access, each due a time after the detention; `detention_visits`: who
visited (a category), when, which check it satisfies, notes sealed. All below a case: rows
follow the case's visibility; each is written by its own organisation.
`organisation_settings.detention_checks`: an organisation's own check deadlines (hours).

Revision ID: 0016
Revises: 0015
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0016'
down_revision: Union[str, Sequence[str], None] = '0015'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('detentions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('proceeding_id', sa.Uuid(), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('detained_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('place', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_detentions_case_id_cases')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_detentions_org_id_organisations')),
    sa.ForeignKeyConstraint(['proceeding_id'], ['proceedings.id'], name=op.f('fk_detentions_proceeding_id_proceedings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_detentions'))
    )
    with op.batch_alter_table('detentions', schema=None) as batch_op:
        batch_op.create_index('ix_detentions_case', ['case_id', 'detained_at'], unique=False)

    op.create_table('hearings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('proceeding_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('owner', sa.String(length=80), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('outcome_recorded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rescheduled_from', sa.Uuid(), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_hearings_case_id_cases')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_hearings_org_id_organisations')),
    sa.ForeignKeyConstraint(['proceeding_id'], ['proceedings.id'], name=op.f('fk_hearings_proceeding_id_proceedings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hearings'))
    )
    with op.batch_alter_table('hearings', schema=None) as batch_op:
        batch_op.create_index('ix_hearings_case', ['case_id', 'scheduled_at'], unique=False)
        batch_op.create_index('ix_hearings_proceeding', ['proceeding_id', 'status', 'scheduled_at'], unique=False)

    op.create_table('detention_checks',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('detention_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('satisfied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('visit_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_detention_checks_case_id_cases')),
    sa.ForeignKeyConstraint(['detention_id'], ['detentions.id'], name=op.f('fk_detention_checks_detention_id_detentions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_detention_checks')),
    sa.UniqueConstraint('detention_id', 'kind', name=op.f('uq_detention_checks_detention_id_kind'))
    )
    with op.batch_alter_table('detention_checks', schema=None) as batch_op:
        batch_op.create_index('ix_detention_checks_case', ['case_id', 'due_at'], unique=False)

    op.create_table('detention_visits',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('detention_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('visitor', sa.String(length=30), nullable=False),
    sa.Column('visited_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('satisfies', sa.String(length=20), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.String(length=80), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_detention_visits_case_id_cases')),
    sa.ForeignKeyConstraint(['detention_id'], ['detentions.id'], name=op.f('fk_detention_visits_detention_id_detentions')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_detention_visits_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_detention_visits'))
    )
    with op.batch_alter_table('detention_visits', schema=None) as batch_op:
        batch_op.create_index('ix_detention_visits_case', ['case_id', 'visited_at'], unique=False)

    with op.batch_alter_table('organisation_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detention_checks', sa.JSON(), nullable=True))

    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
VISIBLE_CASES = ("(SELECT id FROM cases WHERE peacebuilder_id = ANY "
                 "((SELECT sn_peacebuilder_ids())::uuid[]))")
# table -> (who reads/updates: rows below a case the request may see; who inserts: also its
# own organisation's rows, where the table has one)
OWNED = {"hearings": True, "detentions": True, "detention_checks": False,
         "detention_visits": True}
IMMUTABLE = {"hearings": ("case_id", "proceeding_id", "org_id", "created_by", "created_at"),
             "detentions": ("case_id", "org_id", "detained_at", "created_by", "created_at"),
             "detention_checks": ("case_id", "detention_id", "kind", "due_at", "created_at"),
             "detention_visits": ("case_id", "detention_id", "org_id", "visitor", "visited_at",
                                  "recorded_by", "recorded_at")}


def _row_level_security() -> None:
    for table, owned in OWNED.items():
        read = f"{SYSTEM} OR {table}.case_id IN {VISIBLE_CASES}"
        insert = f"{SYSTEM} OR (({read}) AND org_id = {ORG})" if owned else read
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({read})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({insert})")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({read}) "
                   f"WITH CHECK ({read})")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({read})")
        args = ", ".join(f"'{c}'" for c in IMMUTABLE[table])
        op.execute(f"CREATE TRIGGER {table}_fixed BEFORE UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        for table in OWNED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_fixed ON {table}")
    with op.batch_alter_table('organisation_settings', schema=None) as batch_op:
        batch_op.drop_column('detention_checks')
    with op.batch_alter_table('detention_visits', schema=None) as batch_op:
        batch_op.drop_index('ix_detention_visits_case')

    op.drop_table('detention_visits')
    with op.batch_alter_table('detention_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_detention_checks_case')

    op.drop_table('detention_checks')
    with op.batch_alter_table('hearings', schema=None) as batch_op:
        batch_op.drop_index('ix_hearings_proceeding')
        batch_op.drop_index('ix_hearings_case')

    op.drop_table('hearings')
    with op.batch_alter_table('detentions', schema=None) as batch_op:
        batch_op.drop_index('ix_detentions_case')

    op.drop_table('detentions')
