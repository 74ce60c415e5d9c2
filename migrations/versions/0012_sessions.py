"""sessions: people's sign-ins and their rotating refresh tokens; users bound to an OIDC sub

A session per sign-in (staff or peacebuilder) and its refresh tokens, stored as SHA-256 only.
Access tokens carry the session id; admission checks it is not revoked
(docs/decisions/0020-sessions-and-oidc.md). In OIDC mode a user is the provider account bound
to her by issuer + `sub` (two new columns of users, unique together).

Revision ID: 0012
Revises: 0010
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('auth_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=True),
    sa.Column('acr', sa.String(length=16), nullable=False),
    sa.Column('auth_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_auth_sessions_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_sessions'))
    )
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_auth_sessions_subject', ['subject'], unique=False)

    op.create_table('refresh_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_refresh_tokens_org_id_organisations')),
    sa.ForeignKeyConstraint(['session_id'], ['auth_sessions.id'], name=op.f('fk_refresh_tokens_session_id_auth_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refresh_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_refresh_tokens_token_hash'))
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_refresh_tokens_session_id', ['session_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oidc_issuer', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('oidc_subject', sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_users_oidc_issuer_oidc_subject'),
                                          ['oidc_issuer', 'oidc_subject'])

    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


SYSTEM = "(SELECT sn_system())"
ORG = "(SELECT sn_org())"
# Sign-in, refresh and admission run in the system scope; an organisation reaches its own
# people's sessions (an admin deactivating one of them revokes them); a peacebuilder reaches
# her own (signing out), no organisation ever does.
ORG_RULE = f"{SYSTEM} OR (org_id IS NOT NULL AND org_id = {ORG})"
HERS = ("((SELECT sn_scope()) = 'peacebuilder' AND org_id IS NULL AND subject IN "
        "(SELECT 'peacebuilder:' || p::text FROM sn_peacebuilders() AS p))")
RULES = {"auth_sessions": f"{ORG_RULE} OR {HERS}", "refresh_tokens": ORG_RULE}
IMMUTABLE = {"auth_sessions": ("subject", "org_id", "acr", "auth_time", "created_at",
                               "expires_at"),
             "refresh_tokens": ("session_id", "org_id", "token_hash", "issued_at",
                                "expires_at")}


def _row_level_security() -> None:
    for table, fixed in IMMUTABLE.items():
        RULE = RULES[table]
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({RULE})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({RULE})")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({RULE}) "
                   f"WITH CHECK ({RULE})")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({RULE})")
        args = ", ".join(f"'{c}'" for c in fixed)
        op.execute(f"CREATE TRIGGER {table}_owner_fixed BEFORE UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION sn_immutable({args})")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        for table in IMMUTABLE:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_owner_fixed ON {table}")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_oidc_issuer_oidc_subject'), type_='unique')
        batch_op.drop_column('oidc_subject')
        batch_op.drop_column('oidc_issuer')
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_refresh_tokens_session_id')
    op.drop_table('refresh_tokens')
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_auth_sessions_subject')
    op.drop_table('auth_sessions')
