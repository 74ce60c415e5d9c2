"""The service directory (what each organisation offers), requests for help from women with no
case, and the timeline of due items that have no case (a help request's escalation)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class ServiceKind(enum.StrEnum):
    """What an organisation offers (the protection guidance's kinds of support)."""

    LEGAL_AID = "legal_aid"
    PSYCHOSOCIAL_SUPPORT = "psychosocial_support"
    RELOCATION = "relocation"
    SECURITY_PROTECTION = "security_protection"
    MEDICAL = "medical"
    DIGITAL_SECURITY = "digital_security"
    EMERGENCY_GRANTS = "emergency_grants"
    ADVOCACY = "advocacy"
    SHELTER = "shelter"
    DETENTION_MONITORING = "detention_monitoring"


class HelpRequestStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ERASED = "erased"


class ServiceEntry(Base):
    """One organisation's directory entry: not personal data, readable by every member's staff;
    the one source of whether it accepts requests for help from women without a case."""

    __tablename__ = "service_directory"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    services: Mapped[list[str]] = mapped_column(JSON)
    languages: Mapped[list[str]] = mapped_column(JSON)  # ISO 639-1 codes
    regions: Mapped[list[str]] = mapped_column(JSON)
    accepts_help_requests: Mapped[bool] = mapped_column(Boolean, default=False)
    # How long it has to accept or decline a referral before its chain is alerted.
    referral_response_hours: Mapped[int] = mapped_column(Integer, default=72)
    # "|s:<kind>|l:<code>|r:<region>|…": the filters' one portable index (LIKE on both engines).
    search: Mapped[str] = mapped_column(Text, default="|")
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HelpRequest(Base):
    """A request for help from a woman with no case, to one organisation. Her message and how
    to reach her are sealed with this request's own data key (wrapped by the KEK): erasing the
    request destroys the key, and both become unreadable everywhere at once."""

    __tablename__ = "help_requests"
    __table_args__ = (Index("ix_help_requests_org", "org_id", "received_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    message: Mapped[str] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open, acknowledged, erased
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ack_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    key_version: Mapped[int | None] = mapped_column(Integer)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DueEvent(Base):
    """What happened to a due item that has no case (escalated, skipped, overseers told): the
    timeline such items would otherwise lack. IDs and codes only."""

    __tablename__ = "due_events"
    __table_args__ = (Index("ix_due_events_subject", "subject_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    subject_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(50))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
