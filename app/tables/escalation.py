"""Who is on duty when: an organisation's rota, edited by its administrators."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class DutyShift(Base):
    """One person on duty for her organisation from `starts_at` until `ends_at`. Hand-over is
    the boundary between two shifts; overlapping shifts put both people on duty."""

    __tablename__ = "duty_shifts"
    __table_args__ = (Index("ix_duty_shifts_org_time", "org_id", "starts_at", "ends_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    subject: Mapped[str] = mapped_column(String(80))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
