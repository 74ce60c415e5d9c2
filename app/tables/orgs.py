"""Organisations (tenants), their people and machine clients, roles and working groups."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class OrgKind(enum.StrEnum):
    MINISTRY = "ministry"
    EMBASSY_MISSION = "embassy_mission"
    UN_PROTECTION_CLUSTER = "un_protection_cluster"
    OHCHR_OFFICE = "ohchr_office"
    NHRI = "nhri"
    LAW_ENFORCEMENT_LIAISON = "law_enforcement_liaison"
    PEACEBUILDERS_NETWORK = "peacebuilders_network"
    FUND = "fund"


class Role(enum.StrEnum):
    ORG_ADMIN = "org_admin"
    FOCAL_POINT = "focal_point"
    CASEWORKER = "caseworker"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    MACHINE_CLIENT = "machine_client"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class User(Base):
    """A person working for one organisation."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org_id", "username"),
                      UniqueConstraint("oidc_issuer", "oidc_subject"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # Who last set that password (`user:<id>` of an admin; None: an operator, or never set).
    # The person who knows it never also receives her enrolment code (app/auth/enrolment.py).
    password_set_by: Mapped[str | None] = mapped_column(String(80))
    # Where alerts are emailed (a link only, never personal data of a peacebuilder).
    email: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # OIDC mode: the provider's account she is, bound once by an org admin (linkUserIdentity):
    # its issuer and `sub`, never a name the token carries.
    oidc_issuer: Mapped[str | None] = mapped_column(String(255))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))

    @property
    def subject(self) -> str:
        return self.subject_of(self.id)

    @staticmethod
    def subject_of(user_id: uuid.UUID) -> str:
        """The policy's (and tokens') name for the user with this ID."""
        return f"user:{user_id}"


class Client(Base):
    """A partner agency's system calling the API with OAuth2 client credentials."""

    __tablename__ = "clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(200))
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def subject(self) -> str:
        return self.subject_of(self.id)

    @staticmethod
    def subject_of(client_id: uuid.UUID) -> str:
        """The policy's (and tokens') name for the client with this ID."""
        return f"client:{client_id}"


class RoleAssignment(Base):
    """Casbin grouping policy (`g, subject, role, organisation`) kept as data in our own table."""

    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("org_id", "subject", "role"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    subject: Mapped[str] = mapped_column(String(80), index=True)
    role: Mapped[str] = mapped_column(String(40))


class PolicyState(Base):
    """A version bumped by every role change so each replica reloads before its next decision."""

    __tablename__ = "policy_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class WorkingGroup(Base):
    __tablename__ = "working_groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    convener_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkingGroupMember(Base):
    """A membership period; `left_at` is set when an organisation leaves (history is kept)."""

    __tablename__ = "working_group_members"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    working_group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("working_groups.id"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
