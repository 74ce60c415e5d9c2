"""Per-user inboxes: alerts are stored before they are pushed, so nothing is lost when pub/sub
drops a message; a client that reconnects replays from its cursor."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class AlertKind(enum.StrEnum):
    """Every kind of alert (`notify` refuses any other): the one closed set, also the API's."""

    INCIDENT_REPORTED = "incident_reported"
    ESCALATION = "escalation"
    ESCALATION_NOTICE = "escalation_notice"
    TASK_DUE = "task_due"
    TASK_OWNER_UNCOVERED = "task_owner_uncovered"
    REFERRAL_RECEIVED = "referral_received"
    HEARING_DUE = "hearing_due"
    HELP_REQUEST_RECEIVED = "help_request_received"
    EVIDENCE_ADDED = "evidence_added"
    APPROVAL_WITHDRAWN = "approval_withdrawn"
    BREAK_GLASS_OPENED = "break_glass_opened"
    CONFIRMATION_REQUESTED = "confirmation_requested"
    CONSENT_CONFIRMED = "consent_confirmed"
    CORRECTION_REQUESTED = "correction_requested"
    ERASURE_SCHEDULED = "erasure_scheduled"
    NETWORK_CONFIRMED = "network_confirmed"
    NOTICE_FOR_HER = "notice_for_her"
    NO_ACTIVE_FOCAL_POINT = "no_active_focal_point"
    RETENTION_WARNING = "retention_warning"
    # A high or critical incident started a reassessment of her risk (app/risk).
    RISK_REASSESSMENT_DUE = "risk_reassessment_due"
    # The review of her current risk assessment falls due: the lead's task (app/risk).
    RISK_REVIEW_DUE = "risk_review_due"
    CHECK_IN_MISSED = "check_in_missed"
    # Her account (app/peacebuilders/account.py, docs/decisions/0027).
    HER_CODE_ISSUED = "her_code_issued"
    HER_PASSWORD_SET = "her_password_set"  # noqa: S105 (an alert kind, not a password)
    HER_LOGIN_SUSPENDED = "her_login_suspended"
    HER_LOGIN_REINSTATED = "her_login_reinstated"
    HER_CONSENT_HELD = "her_consent_held"
    HER_DURESS_SIGN_IN = "her_duress_sign_in"


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
