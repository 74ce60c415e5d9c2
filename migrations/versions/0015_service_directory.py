"""service directory, requests for help, the timeline of due items without a case

`service_directory`: per organisation, what it offers (service kinds, ISO 639-1 languages,
regions), whether it accepts requests for help from women without a case, and how many hours it
has to answer a referral. Not personal data: every organisation's staff read it; only the
organisation itself writes its row.
`help_requests`: a request for help from a woman with no case, to one organisation; message and
contact sealed with the request's own wrapped data key (erasure destroys it).
`due_events`: escalation events of due items that have no case (help requests).
`referrals.respond_by`: when the recipient must have accepted or declined (null: made before).

Revision ID: 0015
Revises: 0014
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0015'
down_revision: Union[str, Sequence[str], None] = '0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('service_directory',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('services', sa.JSON(), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('regions', sa.JSON(), nullable=False),
    sa.Column('accepts_help_requests', sa.Boolean(), nullable=False),
    sa.Column('referral_response_hours', sa.Integer(), nullable=False),
    sa.Column('search', sa.Text(), nullable=False),
    sa.Column('updated_by', sa.String(length=80), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_service_directory_org_id_organisations')),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_service_directory'))
    )
    op.create_table('help_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('contact', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ack_deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=80), nullable=True),
    sa.Column('key_version', sa.Integer(), nullable=True),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=True),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_help_requests_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_help_requests'))
    )
    with op.batch_alter_table('help_requests') as batch:
        batch.create_index('ix_help_requests_org', ['org_id', 'received_at'], unique=False)
    op.create_table('due_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_due_events_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_due_events'))
    )
    with op.batch_alter_table('due_events') as batch:
        batch.create_index('ix_due_events_subject', ['subject_id', 'at'], unique=False)
    with op.batch_alter_table('referrals') as batch:
        batch.add_column(sa.Column('respond_by', sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
OWN_ORG = f"{SYSTEM} OR org_id = {ORG}"
# The directory is not personal data: any organisation's staff read every entry.
ANY_ORG = f"{SYSTEM} OR (SELECT sn_scope()) = 'org'"
RULES = {
    "service_directory": {"read": ANY_ORG, "insert": OWN_ORG, "update": OWN_ORG,
                          "delete": OWN_ORG},
    "help_requests": dict.fromkeys(("read", "insert", "update", "delete"), OWN_ORG),
    "due_events": dict.fromkeys(("read", "insert", "update", "delete"), OWN_ORG),
}
IMMUTABLE = {"service_directory": ("org_id",),
             "help_requests": ("org_id", "received_at", "ack_deadline"),
             "due_events": ("org_id", "subject_id", "kind", "details", "at")}


def _row_level_security() -> None:
    for table, rules in RULES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({rules['read']})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT "
                   f"WITH CHECK ({rules['insert']})")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({rules['update']}) "
                   f"WITH CHECK ({rules['update']})")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({rules['delete']})")
        args = ", ".join(f"'{c}'" for c in IMMUTABLE[table])
        op.execute(f"CREATE TRIGGER {table}_fixed BEFORE UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in RULES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_fixed ON {table}")
    with op.batch_alter_table('due_events') as batch:
        batch.drop_index('ix_due_events_subject')
    op.drop_table('due_events')
    with op.batch_alter_table('help_requests') as batch:
        batch.drop_index('ix_help_requests_org')
    op.drop_table('help_requests')
    op.drop_table('service_directory')
    with op.batch_alter_table('referrals') as batch:
        batch.drop_column('respond_by')
