"""The consultations log (guidance 1, "regular bilateral consultations"): meetings with her or her
network — when, which organisations were present, the topics, the risks she raised, and the
follow-ups with their owners and due dates. Below a case; free text sealed with her key."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class ConsultedWith(enum.StrEnum):
    HER = "her"
    HER_NETWORK = "her_network"
    HER_AND_NETWORK = "her_and_network"


class Consultation(Base):
    __tablename__ = "consultations"
    __table_args__ = (Index("ix_consultations_case", "case_id", "held_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consulted: Mapped[str] = mapped_column(String(20))
    # Organisation IDs present (IDs only; listed under her consent like the rest).
    organisations: Mapped[list[Any]] = mapped_column(JSON)
    topics: Mapped[str | None] = mapped_column(Text)  # sealed (risk_assessment)
    risks_raised: Mapped[str | None] = mapped_column(Text)  # sealed (risk_assessment)
    # Sealed JSON list of {action, owner_organisation, due_at} (risk_assessment).
    follow_ups: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FollowUpStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    WITHDRAWN = "withdrawn"  # the consultation was amended: replaced by its new follow-ups


class ConsultationFollowUp(Base):
    """A follow-up agreed at a consultation, as its owner's task: owner organisation, named
    person, due date and status, in clear (IDs, dates, codes) so it can fall due and escalate
    like other overdue items. What is to be done stays sealed in the consultation's
    `follow_ups` (item `position`), her words under `risk_assessment`."""

    __tablename__ = "consultation_follow_ups"
    __table_args__ = (Index("ix_consultation_follow_ups_case", "case_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    consultation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultations.id"))
    position: Mapped[int] = mapped_column(Integer)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    owner_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
