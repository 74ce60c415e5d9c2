"""hardening: second factor, persisted operations, per-organisation settings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisation_settings",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("only_registered_operations", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_organisation_settings_org_id_organisations")),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_organisation_settings")),
    )
    op.create_table(
        "registered_operations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"],
                                name=op.f("fk_registered_operations_org_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registered_operations")),
        sa.UniqueConstraint("org_id", "sha256",
                            name=op.f("uq_registered_operations_org_id_sha256")),
    )
    with op.batch_alter_table("registered_operations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registered_operations_org_id"), ["org_id"],
                              unique=False)
    op.create_table(
        "totp_credentials",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=True),
        sa.Column("pending_secret", sa.String(length=64), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_totp_credentials_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_totp_credentials")),
    )


def downgrade() -> None:
    op.drop_table("totp_credentials")
    with op.batch_alter_table("registered_operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registered_operations_org_id"))
    op.drop_table("registered_operations")
    op.drop_table("organisation_settings")
