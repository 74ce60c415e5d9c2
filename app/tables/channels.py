"""A person's own alert channels beyond the inbox and e-mail (webhooks for SMS gateways, Signal
bridges, pagers), and the deliveries owed to them. Content-free: a delivery row holds IDs,
counters and times only."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class NotifyChannel(Base):
    __tablename__ = "notify_channels"
    __table_args__ = (Index("ix_notify_channels_user", "user_id", "active"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))  # webhook
    url: Mapped[str] = mapped_column(String(500))
    # The signing secret, sealed with a service key (never in clear in the database).
    secret: Mapped[str] = mapped_column(String(200))
    # The escalation level from which this channel is used; 0 = every alert worth waking for.
    min_level: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """One alert owed to one channel: retried with backoff until delivered, withheld (she may no
    longer see it, or the channel was removed) or given up after a bounded number of attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("channel_id", "inbox_id"),
                      Index("ix_webhook_deliveries_due", "state", "next_attempt_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notify_channels.id"))
    inbox_id: Mapped[uuid.UUID] = mapped_column()  # no FK: an erased alert is simply withheld
    # pending, delivered, withheld, failed
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set by the replica sending it (a lease: a claim older than CLAIM_LEASE is taken over).
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[str | None] = mapped_column(String(40))  # "http 503", "timeout", …
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertChannelChoice(Base):
    """Which of her channels a person wants for alerts of one escalation level (0: alerts that
    are not escalations). The inbox always receives them; no row for a level: the defaults
    (e-mail when she has an address, webhooks from their `min_level`)."""

    __tablename__ = "alert_channel_choices"
    __table_args__ = (UniqueConstraint("user_id", "level"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    level: Mapped[int] = mapped_column(Integer)
    email: Mapped[bool] = mapped_column(Boolean)
    webhooks: Mapped[list[str]] = mapped_column(JSON)  # IDs of her own channels
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
