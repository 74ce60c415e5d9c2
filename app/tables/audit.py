"""The access log: one row per access decision or change. Never holds sensitive values."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class Decision(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class AlertKind(enum.StrEnum):
    """Unusual access the log's watcher reports (app/audit/alerts.py)."""

    BULK_READ = "bulk_read"
    REPEATED_DENIALS = "repeated_denials"
    REPEATED_BREAK_GLASS = "repeated_break_glass"


class AccessLogEntry(Base):
    """Written by requests with no `seq`; the chainer then sets `seq`, `prev_hash` and `hash`
    exactly once (database triggers refuse any other update, and every delete)."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_org_at", "org_id", "at"),
                      Index("ix_access_log_pending", "seq", "at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(80))
    org_id: Mapped[uuid.UUID | None] = mapped_column()
    purpose: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Peacebuilder IDs the entry concerns, space-separated (for her history and auditors' filter).
    refs: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class Oversight(Base):
    """An organisation accepts that an oversight body (e.g. an NHRI) audits its access log."""

    __tablename__ = "oversight"
    __table_args__ = (UniqueConstraint("org_id", "overseer_org_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    overseer_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)


class Alert(Base):
    """Unusual access noticed in the log, for the organisation's focal points and auditors."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_org_at", "org_id", "created_at"),
                      UniqueConstraint("dedupe_key"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
