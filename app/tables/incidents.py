"""Incidents on a case and the response to them: measures, referrals, investigations, detention
watch, her approvals for public acts, and the case timeline."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class IncidentType(enum.StrEnum):
    PHYSICAL_ATTACK = "physical_attack"
    ONLINE_HARASSMENT = "online_harassment"
    THREATS = "threats"
    LEGAL_ADMINISTRATIVE_HARASSMENT = "legal_administrative_harassment"
    CRIMINALISATION = "criminalisation"
    SURVEILLANCE = "surveillance"
    THREATS_TO_FAMILY_OR_COLLEAGUES = "threats_to_family_or_colleagues"
    DETENTION = "detention"
    SEXUAL_VIOLENCE = "sexual_violence"
    SMEAR_CAMPAIGN = "smear_campaign"
    OTHER = "other"


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class IncidentStatus(enum.StrEnum):
    REPORTED = "reported"
    ACKNOWLEDGED = "acknowledged"
    RESPONDING = "responding"
    RESOLVED = "resolved"


class MeasureKind(enum.StrEnum):
    ACCOMPANIMENT = "accompaniment"
    HOSTING_AT_PREMISES = "hosting_at_premises"
    SECURE_COMMUNICATION = "secure_communication"
    SECURE_TRANSPORT = "secure_transport"
    LEGAL_SUPPORT = "legal_support"
    DIPLOMATIC_DIALOGUE = "diplomatic_dialogue"
    PUBLIC_STATEMENT = "public_statement"
    GRANT = "grant"
    RELOCATION = "relocation"
    PSYCHOSOCIAL_SUPPORT = "psychosocial_support"
    MEDIA_CONTACT = "media_contact"
    RECOGNITION = "recognition"


class Reporter(enum.StrEnum):
    """Who reported an incident."""
    HERSELF = "herself"
    HER_NETWORK = "her_network"
    STAFF = "staff"
    WITNESS = "witness"
    FAMILY = "family"
    OTHER = "other"


class ReportChannel(enum.StrEnum):
    """How an incident reached the organisation."""
    IN_PERSON = "in_person"
    PHONE = "phone"
    SECURE_MESSENGER = "secure_messenger"
    EMAIL = "email"
    ONLINE_FORM = "online_form"
    OTHER = "other"


class MeasureStatus(enum.StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


class PublicAct(enum.StrEnum):
    """Her public acts: each needs her approval, for one organisation, once."""
    PUBLIC_STATEMENT = "public_statement"
    MEDIA_CONTACT = "media_contact"
    RECOGNITION = "recognition"


class ReferralAction(enum.StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    COMPLETE = "complete"
    REVOKE = "revoke"


class ProceedingKind(enum.StrEnum):
    INVESTIGATION = "investigation"
    DETENTION = "detention"


class ReferralStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    COMPLETED = "completed"
    REVOKED = "revoked"


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_case", "case_id", "reported_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    type: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Sensitive fields: categories in app/tables/categories.py INCIDENT_FIELDS.
    location_coarse: Mapped[str | None] = mapped_column(Text)
    location_precise: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    alleged_source_as_reported: Mapped[str | None] = mapped_column(Text)
    # Codes for monitoring (app/monitoring), chosen from declared lists as she reports, never
    # inferred: a coarse region (category location_coarse), an alleged-source category
    # (incident_details). In clear so they can be counted; only ever counted, never shown.
    region_code: Mapped[str | None] = mapped_column(String(20))
    source_category: Mapped[str | None] = mapped_column(String(40))
    reported_by: Mapped[str] = mapped_column(String(30))  # herself, her network, staff, witness…
    reported_via: Mapped[str] = mapped_column(String(30))  # in person, phone, secure messenger…
    # None: she reported it herself (it is filed with her case's lead organisation).
    reporting_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    recorded_by: Mapped[str] = mapped_column(String(80))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ack_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))


class AckPolicy(Base):
    """An organisation's own acknowledgement deadline for one severity (minutes)."""

    __tablename__ = "ack_policies"
    __table_args__ = (UniqueConstraint("org_id", "severity"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    severity: Mapped[str] = mapped_column(String(10))
    minutes: Mapped[int] = mapped_column(Integer)


class ScheduledStep(Base):
    """Work the scheduler must do at a time: escalation steps, task reminders. A replica claims a
    step by setting `done_at` where it is still null, so it never runs twice."""

    __tablename__ = "scheduled_steps"
    __table_args__ = (UniqueConstraint("subject_id", "kind", "step"),
                      Index("ix_scheduled_steps_due", "done_at", "due_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(30))  # escalation, task_reminder
    subject_id: Mapped[uuid.UUID] = mapped_column()  # incident or measure
    step: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(30))


class Approval(Base):
    """Her explicit approval of one public act: a statement, media contact or recognition."""

    __tablename__ = "approvals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    act: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(80))
    acting_for_her: Mapped[bool] = mapped_column(default=False)
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The one organisation she approved to perform the act (None: recorded before approvals
    # were bound, usable by nobody).
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    # The measure the approval is bound to, and when the act was carried out (the measure
    # marked done): until then she may withdraw it.
    used_by: Mapped[uuid.UUID | None] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Measure(Base):
    """A protection measure or task with an owner organisation and a due date."""

    __tablename__ = "measures"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    incident_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("incidents.id"))
    kind: Mapped[str] = mapped_column(String(30))
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    # A named person of the owner organisation: her reminders and the first level of the
    # overdue escalation (None: the organisation's chain alone).
    owner_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    description: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default="planned")
    # Not done (status cancelled): why, a MeasureNotDoneReason code — never free text.
    not_done_reason: Mapped[str | None] = mapped_column(String(30))
    approval_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("approvals.id"))
    # Her protection plan (app/risk, category risk_assessment): the threat it addresses, its
    # part of the plan, its cost (a decimal string) with currency and funding source (sealed),
    # and the family members she designated that it covers (sealed JSON list, her words).
    threat_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("risk_threats.id"))
    plan_kind: Mapped[str | None] = mapped_column(String(30))
    cost_amount: Mapped[str | None] = mapped_column(String(32))
    cost_currency: Mapped[str | None] = mapped_column(String(3))
    funding_source: Mapped[str | None] = mapped_column(Text)
    covered_family: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Referral(Base):
    """One organisation asks another to act on a case, under her consent to that recipient."""

    __tablename__ = "referrals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    from_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    to_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(30))
    request: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    outcome: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Accept or decline by then, or the recipient's chain is alerted (due item `referral`).
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Proceeding(Base):
    """Investigation/prosecution tracking, or detention watch, on a case (category `legal`)."""

    __tablename__ = "proceedings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # investigation, detention
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    next_hearing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CaseEvent(Base):
    """The case timeline: every state change, with actor and time. IDs and codes only."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case", "case_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    actor: Mapped[str] = mapped_column(String(80))
    org_id: Mapped[uuid.UUID | None] = mapped_column()
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Attachment(Base):
    """Evidence on an incident, encrypted at rest, in a data category."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    category: Mapped[str] = mapped_column(String(30))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(80))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Who added it (None: she did, herself) and the SHA-256 of the plaintext, computed at upload
    # (chain of custody; None for files uploaded before it was kept).
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    sha256: Mapped[str | None] = mapped_column(String(64))
