"""Consent as an append-only event log, with a projection the access check reads."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class ConsentEventKind(enum.StrEnum):
    """The steps of a grant's history (append-only events)."""

    GRANT = "grant"
    CONFIRM = "confirm"
    NARROW = "narrow"
    EXTEND = "extend"
    REVOKE = "revoke"
    EXPIRE = "expire"


class DataRequestKind(enum.StrEnum):
    CORRECTION = "correction"


class DataRequestStatus(enum.StrEnum):
    OPEN = "open"
    CORRECTED = "corrected"
    DECLINED = "declined"


class ConsentEvent(Base):
    """One thing that happened to a grant: grant, narrow, extend, revoke or expire. Never edited."""

    __tablename__ = "consent_events"
    # (grant_id, version) orders a grant's history and makes concurrent changes conflict
    # instead of interleaving.
    __table_args__ = (UniqueConstraint("grant_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    grant_id: Mapped[uuid.UUID] = mapped_column()
    version: Mapped[int] = mapped_column(Integer)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    recipient_type: Mapped[str] = mapped_column(String(20))
    recipient_id: Mapped[uuid.UUID] = mapped_column()
    # The grant's full terms after this event (so any event can be read on its own).
    categories: Mapped[list[str]] = mapped_column(JSON)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Working-group grants cover the members at the time of the grant (or of an extension).
    covered_org_ids: Mapped[list[str]] = mapped_column(JSON)
    obtained_via: Mapped[str | None] = mapped_column(String(30))
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_by_org_id: Mapped[uuid.UUID | None] = mapped_column()
    acting_for_her: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A grant recorded by staff waits for her (or her network, or a second person) to confirm
    # it: who it awaits ("her", "second_person") on its `grant` event; a `confirm` event makes
    # it live. None: in force as recorded.
    awaiting: Mapped[str | None] = mapped_column(String(20))
    # HMAC by the application over the row (app/tables/integrity.py); PostgreSQL refuses a row
    # whose MAC does not verify.
    mac: Mapped[str | None] = mapped_column(String(64))


class ConsentGrant(Base):
    """Current state of a grant, derived from its events (see service.replay)."""

    __tablename__ = "consent_grants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    recipient_type: Mapped[str] = mapped_column(String(20))
    recipient_id: Mapped[uuid.UUID] = mapped_column()
    categories: Mapped[list[str]] = mapped_column(JSON)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    covered_org_ids: Mapped[list[str]] = mapped_column(JSON)
    # When that coverage was set (grant or last extension): later joiners are not covered.
    covered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    obtained_via: Mapped[str | None] = mapped_column(String(30))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Null while pending: a pending grant releases nothing (no consent_access rows).
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who may still make it live: "her" (her login or her network), "second_person".
    awaiting: Mapped[str | None] = mapped_column(String(20))
    # HMAC by the application over the row (app/tables/integrity.py); PostgreSQL refuses a row
    # whose MAC does not verify.
    mac: Mapped[str | None] = mapped_column(String(64))


class ConsentAccess(Base):
    """Flattened live terms: one row per covered organisation x category x purpose.

    Rows exist only while the grant is not revoked; validity and working-group membership are
    checked at read time, so expiry and leaving a group bite at the boundary second.
    """

    __tablename__ = "consent_access"
    __table_args__ = (
        Index("ix_consent_access_lookup", "org_id", "purpose", "peacebuilder_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    grant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent_grants.id"), index=True)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column()
    org_id: Mapped[uuid.UUID] = mapped_column()
    via_working_group_id: Mapped[uuid.UUID | None] = mapped_column()
    covered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    category: Mapped[str] = mapped_column(String(30))
    purpose: Mapped[str] = mapped_column(String(30))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # HMAC by the application over the row (app/tables/integrity.py); PostgreSQL refuses a row
    # whose MAC does not verify.
    mac: Mapped[str | None] = mapped_column(String(64))


class CaseTeamMember(Base):
    """Need-to-know inside an organisation: who of its staff works on a case."""

    __tablename__ = "case_team"
    __table_args__ = (Index("ix_case_team_subject", "org_id", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    subject: Mapped[str] = mapped_column(String(80))
    assigned_by: Mapped[str] = mapped_column(String(80))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BreakGlass(Base):
    """Access without consent in her vital interest: emergency response only, at most 72 hours."""

    __tablename__ = "break_glass"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    opened_by: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # It opens for one hour; the hours asked for apply once a second focal point confirms.
    requested_hours: Mapped[int | None] = mapped_column(Integer)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # HMAC by the application over the row (app/tables/integrity.py); PostgreSQL refuses a row
    # whose MAC does not verify.
    mac: Mapped[str | None] = mapped_column(String(64))


class PeacebuilderAccount(Base):
    """Her own login on the built-in issuer."""

    __tablename__ = "peacebuilder_accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), unique=True)
    login: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When a one-time code last set her password (enrolment or reset): consent her login widens
    # in the days after is held (app/peacebuilders/account.py, docs/decisions/0027).
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Her TOTP second factor (sealed like staff seeds, app/auth/mfa.py): needed at sign-in once
    # enrolled; one enrolled before a reset releases what the reset holds.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_pending: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Her duress password (hashed like her password) and whom it silently alerts.
    duress_hash: Mapped[str | None] = mapped_column(String(200))
    duress_alert: Mapped[str | None] = mapped_column(String(12))  # network, lead, both
    # A suspended login (a seized phone): refused at sign-in and on every request until
    # reinstated, or until `suspension_lapses_at` (a lead organisation's, unconfirmed).
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    suspended_by: Mapped[str | None] = mapped_column(String(80))
    suspended_via: Mapped[str | None] = mapped_column(String(12))  # network, lead, operator
    suspension_lapses_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class HerCode(Base):
    """A one-time enrolment or reset code for her login. `locator` (in clear) finds the row;
    only an HMAC of the secret part is stored, under a service key kept with the KEKs. Wrong
    tries are counted here, so a lock holds across replicas and restarts."""

    __tablename__ = "peacebuilder_codes"
    __table_args__ = (Index("ix_peacebuilder_codes_pb_status", "peacebuilder_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"))
    locator: Mapped[str] = mapped_column(String(16), unique=True)
    code_hash: Mapped[str] = mapped_column(String(80))
    purpose: Mapped[str] = mapped_column(String(12))  # enrolment, reset
    via: Mapped[str] = mapped_column(String(12))  # network, lead, operator
    issued_by: Mapped[str] = mapped_column(String(80))
    issued_by_org_id: Mapped[uuid.UUID | None] = mapped_column()
    confirmation_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12))  # live, used, locked, void
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Notice(Base):
    """Something she is told about (a new working-group member, a break-glass, ...). IDs only."""

    __tablename__ = "peacebuilder_notices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DataRequest(Base):
    """Her request for a copy of her data or a correction."""

    __tablename__ = "data_requests"
    __table_args__ = (Index("ix_data_requests_org_status", "org_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    field: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A correction is a task of one organisation (her case's lead, else whoever registered her),
    # due by `due_at`, escalating on `case_id` (app/corrections/service.py).
    org_id: Mapped[uuid.UUID | None] = mapped_column()
    case_id: Mapped[uuid.UUID | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answer_reason: Mapped[str | None] = mapped_column(Text)  # sealed with her key
    answered_by: Mapped[str | None] = mapped_column(String(80))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
