"""enrolment codes: a first second factor needs a one-time code issued by two people

A new table of one-time enrolment codes (only an HMAC of each is stored), and who last set each
person's password (`users.password_set_by`: whoever knows it never also receives the code).
Enrolments of a first factor that were started with a password alone and never confirmed are
dropped: they would otherwise still complete without a code. Confirmed factors stay.

Revision ID: 0010
Revises: 0009
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('enrolment_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('confirmation_id', sa.Uuid(), nullable=True),
    sa.Column('requested_by', sa.String(length=80), nullable=False),
    sa.Column('issued_by', sa.String(length=80), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('code_hash', sa.String(length=80), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['confirmation_id'], ['confirmations.id'], name=op.f('fk_enrolment_codes_confirmation_id_confirmations')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_enrolment_codes_org_id_organisations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_enrolment_codes_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrolment_codes'))
    )
    with op.batch_alter_table('enrolment_codes', schema=None) as batch_op:
        batch_op.create_index('ix_enrolment_codes_user_status', ['user_id', 'status'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_set_by', sa.String(length=80), nullable=True))

    _drop_codeless_pending_enrolments()
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


def _drop_codeless_pending_enrolments() -> None:
    """A pending seed without a confirmed one was started with a password alone (there were no
    codes): drop it, so finishing it needs a code like any first enrolment."""
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # FORCE applies to the owner too: lift it for this transaction only
        op.execute("ALTER TABLE totp_credentials NO FORCE ROW LEVEL SECURITY")
    op.execute("DELETE FROM totp_credentials WHERE secret IS NULL")
    if postgres:
        op.execute("ALTER TABLE totp_credentials FORCE ROW LEVEL SECURITY")


SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
# A person's codes belong to her organisation alone (and only to a person of it).
RULE = (f"{SYSTEM} OR (org_id = {ORG} AND "
        f"user_id IN (SELECT id FROM users WHERE org_id = {ORG}))")
IMMUTABLE = ("org_id", "user_id", "confirmation_id", "requested_by", "issued_by", "issued_at",
             "expires_at")


def _row_level_security() -> None:
    table = "enrolment_codes"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({RULE})")
    op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({RULE})")
    op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({RULE}) "
               f"WITH CHECK ({RULE})")
    op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({RULE})")
    args = ", ".join(f"'{c}'" for c in IMMUTABLE)
    op.execute(f"CREATE TRIGGER {table}_owner_fixed BEFORE UPDATE ON {table} "
               f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS enrolment_codes_owner_fixed ON enrolment_codes")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('password_set_by')

    with op.batch_alter_table('enrolment_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_enrolment_codes_user_status')

    op.drop_table('enrolment_codes')
