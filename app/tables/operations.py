"""Operations partner agencies register by the SHA-256 of their document, per organisation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class RegisteredOperation(Base):
    __tablename__ = "registered_operations"
    __table_args__ = (UniqueConstraint("org_id", "sha256"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(120))
    document: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrganisationSettings(Base):
    """Per-organisation API settings; no row means the defaults."""

    __tablename__ = "organisation_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    only_registered_operations: Mapped[bool] = mapped_column(Boolean, default=False)
    # The two-person rule's window (app/confirmations); null: the default, 24 hours.
    two_person_hours: Mapped[int | None] = mapped_column(Integer)
    # The escalation chain declared in tenants/ (app/notify/chain.py); null: the default.
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The retention of closed cases declared in tenants/ ({"days", "warn_days"}); null: default.
    retention: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Hours each detention check is due after a detention (app/justice), declared in tenants/
    # (`detention_checks:`); null or a missing kind: the default.
    detention_checks: Mapped[dict[str, int] | None] = mapped_column(JSON)
    # Days to answer her correction requests (app/corrections/service.py); null: 30.
    correction_days: Mapped[int | None] = mapped_column(Integer)
    # Days a current risk assessment stays valid for the gates (app/access/risk_gates.py), declared in
    # tenants/ (`risk_assessment_max_age_days:`); null: 90.
    risk_max_age_days: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
