"""The protection file for one peacebuilder, and organisations' internal notes on it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    ON_HOLD = "on_hold"
    CLOSED = "closed"


class ClosureReason(enum.StrEnum):
    """Why a case was closed."""

    RISK_RESOLVED = "risk_resolved"
    SHE_ASKED = "she_asked"
    RELOCATED_SAFELY = "relocated_safely"
    TRANSFERRED = "transferred"
    LOST_CONTACT = "lost_contact"
    OTHER = "other"


class ReopenReason(enum.StrEnum):
    """Why a closed case was opened again."""

    NEW_THREAT = "new_threat"
    SHE_ASKED = "she_asked"
    FOLLOW_UP_FOUND_RISK = "follow_up_found_risk"
    CLOSED_IN_ERROR = "closed_in_error"


class RiskLevel(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_lead_opened", "lead_org_id", "opened_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    lead_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    status: Mapped[str] = mapped_column(String(20), default=CaseStatus.OPEN.value)
    risk_level: Mapped[str] = mapped_column(String(20), default=RiskLevel.MEDIUM.value)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why it was closed (a ClosureReason code) and its follow-up plan (kinds, dates, owner
    # organisation IDs: codes only). Set when a closure is asked for; the status changes once
    # it is in force (for high or critical risk, when a second focal point confirmed it).
    closure_reason: Mapped[str | None] = mapped_column(String(30))
    closure_plan: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    # The retention schedule of a closed case (app/incidents/retention.py): when its sealed data
    # is erased, a legal hold stopping it (a reason code), and when it was erased.
    erase_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retention_hold: Mapped[str | None] = mapped_column(String(30))
    retention_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opened_by: Mapped[str] = mapped_column(String(80))
    # Incident details category (see app/tables/categories.py CASE_FIELDS).
    summary: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CaseNote(Base):
    """Internal to the organisation that wrote it, whatever consent she has given."""

    __tablename__ = "case_notes"
    __table_args__ = (Index("ix_case_notes_case_org", "case_id", "org_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    author: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
