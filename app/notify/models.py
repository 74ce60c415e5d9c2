"""Per-user inboxes: alerts are stored before they are pushed, so nothing is lost when pub/sub
drops a message; a client that reconnects replays from its cursor."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class InboxItem(Base):
    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_recipient", "recipient", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    recipient: Mapped[str] = mapped_column(String(80))  # user:<id> or client:<id>
    org_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(40))  # incident_reported, escalation, task_due, …
    subject_id: Mapped[uuid.UUID | None] = mapped_column()  # incident, measure or referral
    case_id: Mapped[uuid.UUID | None] = mapped_column()
    # IDs and codes only, never personal data.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutboxEntry(Base):
    """An alert to publish to live subscribers (`app/notify/outbox.py`): written with its inbox
    item, in the same transaction, and deleted once published. IDs only."""

    __tablename__ = "alert_outbox"
    __table_args__ = (Index("ix_alert_outbox_created", "created_at"),)

    item_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the inbox item
    recipient: Mapped[str] = mapped_column(String(80))
    org_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A worker that claimed it (SQLite; PostgreSQL locks the row instead) until then.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
