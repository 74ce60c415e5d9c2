"""A second person's confirmation of an action one person of an organisation started."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class ConfirmationStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"  # the second person said no
    LAPSED = "lapsed"  # nobody confirmed within the window
    CANCELLED = "cancelled"  # withdrawn by the first person, or overtaken (she decided herself)


class Confirmation(Base):
    """One two-person decision: who asked, for what, who confirmed (or why it ended)."""

    __tablename__ = "confirmations"
    __table_args__ = (Index("ix_confirmations_org_status", "org_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    action: Mapped[str] = mapped_column(String(40))
    # What the action is about: a grant, a network link, an erasure, a break-glass, a user.
    target_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # Whose record it concerns (None for staff matters such as an enrolment code).
    peacebuilder_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("peacebuilders.id"))
    required_role: Mapped[str] = mapped_column(String(40))
    requested_by: Mapped[str] = mapped_column(String(80))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Free text that may name her: sealed with her data key by the domain that asks.
    reason: Mapped[str | None] = mapped_column(Text)
    evidence_kind: Mapped[str | None] = mapped_column(String(30))
    evidence: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=ConfirmationStatus.PENDING.value)
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
