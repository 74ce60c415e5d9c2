"""Safety check-ins and digital security assessments, below a case.

A check-in schedule is agreed with her (interval, channel, safety contact, what is done when a
check-in is missed); each period is one `CheckIn` row, pending until she (or her safety contact,
through her network's focal point) checks in; a period past its deadline is missed: the lead
organisation's focal points are alerted at once and the chain escalates until someone acts.
A digital security assessment lists her (or her organisation's) assets, vulnerabilities and
recommendations, and owes a follow-up by its date (a due item). Free text is sealed with her key.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class Channel(enum.StrEnum):
    """How she checks in (what was agreed with her)."""

    APP = "app"  # her own login
    PHONE_CALL = "phone_call"
    SMS = "sms"
    SECURE_MESSENGER = "secure_messenger"
    IN_PERSON = "in_person"
    NETWORK = "network"  # through her network's focal point


class MissedAction(enum.StrEnum):
    """What was agreed with her to do when a check-in is missed (a code: shown in the alert)."""

    CALL_HER = "call_her"
    CALL_SAFETY_CONTACT = "call_safety_contact"
    CONTACT_NETWORK = "contact_network"
    VISIT = "visit"
    EMERGENCY_PROTOCOL = "emergency_protocol"
    OTHER = "other"  # see the sealed notes


class AgreedVia(enum.StrEnum):
    """How the schedule was agreed with her (never set over her head)."""

    IN_PERSON = "in_person"
    PHONE = "phone"
    SECURE_MESSAGE = "secure_message"
    NETWORK_FOCAL_POINT = "network_focal_point"


class ScheduleStatus(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class AssessmentStatus(enum.StrEnum):
    OPEN = "open"  # its follow-up is owed
    FOLLOWED_UP = "followed_up"


class CheckInBy(enum.StrEnum):
    HER = "her"
    SAFETY_CONTACT = "safety_contact"


class CheckInStatus(enum.StrEnum):
    PENDING = "pending"  # the current period
    DONE = "done"  # checked in before the deadline
    MISSED = "missed"  # past the deadline: alerted and escalating
    LATE = "late"  # missed, then she checked in
    RESOLVED = "resolved"  # missed, then a focal point acted (resolution code)
    ENDED = "ended"  # the schedule ended during the period


class Resolution(enum.StrEnum):
    """What a focal point found when acting on a missed check-in."""

    REACHED_SAFE = "reached_safe"
    SAFETY_CONTACT_REACHED = "safety_contact_reached"
    EMERGENCY_RESPONSE_STARTED = "emergency_response_started"


class AssessmentSubject(enum.StrEnum):
    HER = "her"
    HER_ORGANISATION = "her_organisation"


class Difficulty(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class CheckInSchedule(Base):
    __tablename__ = "check_in_schedules"
    __table_args__ = (Index("ix_check_in_schedules_case", "case_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    interval_minutes: Mapped[int] = mapped_column()
    channel: Mapped[str] = mapped_column(String(20))
    agreed_via: Mapped[str] = mapped_column(String(30))
    safety_contact: Mapped[str | None] = mapped_column(Text)  # sealed (contact)
    missed_action: Mapped[str] = mapped_column(String(30))
    missed_action_notes: Mapped[str | None] = mapped_column(Text)  # sealed (risk_assessment)
    status: Mapped[str] = mapped_column(String(20))  # active, ended
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CheckIn(Base):
    __tablename__ = "check_ins"
    __table_args__ = (Index("ix_check_ins_case", "case_id", "due_at"),
                      Index("ix_check_ins_schedule", "schedule_id", "status"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    schedule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("check_in_schedules.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_in_by: Mapped[str | None] = mapped_column(String(20))  # her, safety_contact
    recorded_by: Mapped[str | None] = mapped_column(String(80))
    missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(String(30))
    resolved_by: Mapped[str | None] = mapped_column(String(80))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SecurityAssessment(Base):
    """A digital security assessment of her, or of her organisation's practice."""

    __tablename__ = "security_assessments"
    __table_args__ = (Index("ix_security_assessments_case", "case_id", "assessed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    subject: Mapped[str] = mapped_column(String(20))
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    assets: Mapped[str | None] = mapped_column(Text)  # sealed (risk_assessment)
    vulnerabilities: Mapped[str | None] = mapped_column(Text)  # sealed (risk_assessment)
    # Sealed JSON list of {text, difficulty, resources} (risk_assessment).
    recommendations: Mapped[str | None] = mapped_column(Text)
    follow_up_at: Mapped[datetime] = mapped_column(UTCDateTime())
    followed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))  # open, followed_up
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
