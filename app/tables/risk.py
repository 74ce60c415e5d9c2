"""Joint risk assessments (issue 19): risk = threats x vulnerabilities / capacities, with her own
analysis as a first-class part, current only once she (or her network's focal point for her, or
where she can be reached by neither, two people of the lead organisation with a record of how she
was consulted) has agreed to it or contested it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class AssessmentStatus(enum.StrEnum):
    DRAFT = "draft"
    SHARED_WITH_HER = "shared_with_her"
    AGREED = "agreed"
    CONTESTED = "contested"
    SUPERSEDED = "superseded"


# An assessment in one of these states is (or was) current: her answer is on it.
ANSWERED = (AssessmentStatus.AGREED.value, AssessmentStatus.CONTESTED.value)


class AnsweredBy(enum.StrEnum):
    """Who answered for her: she herself, her network's focal point for her, or — she has no
    account and no network — two people of the lead organisation after consulting her."""

    HERSELF = "herself"
    NETWORK_FOCAL_POINT = "network_focal_point"
    TWO_PERSON = "two_person"


class ConsultedHow(enum.StrEnum):
    """How she was consulted when the two-person rule answers for her."""

    IN_PERSON = "in_person"
    PHONE = "phone"
    SECURE_MESSENGER = "secure_messenger"
    THROUGH_TRUSTED_INTERMEDIARY = "through_trusted_intermediary"


class Rating(enum.StrEnum):
    """Likelihood and impact of a threat (the same four steps as the overall level)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class PlanKind(enum.StrEnum):
    """Which part of her protection plan a measure belongs to."""

    DAY_TO_DAY = "day_to_day"
    PREVENTIVE_PROTOCOL = "preventive_protocol"
    EMERGENCY_PROTOCOL = "emergency_protocol"


class RiskAssessment(Base):
    """One assessment of a case by its lead organisation, shared with her. The free text is
    sealed with her data key (category risk_assessment, app/consent/categories.RISK_FIELDS)."""

    __tablename__ = "risk_assessments"
    __table_args__ = (Index("ix_risk_assessments_case", "case_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    status: Mapped[str] = mapped_column(String(20), default=AssessmentStatus.DRAFT.value)
    level: Mapped[str] = mapped_column(String(20))
    review_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Why it was started: "manual", or "incident" (a new high or critical incident).
    trigger: Mapped[str] = mapped_column(String(20), default="manual")
    trigger_incident_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("incidents.id"))
    vulnerabilities: Mapped[str | None] = mapped_column(Text)
    capacities: Mapped[str | None] = mapped_column(Text)
    reasoning: Mapped[str | None] = mapped_column(Text)
    context_notes: Mapped[str | None] = mapped_column(Text)
    her_analysis: Mapped[str | None] = mapped_column(Text)
    # Her view where she contests the organisation's: kept beside it, never replacing it.
    her_view: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(30))
    answered_by_subject: Mapped[str | None] = mapped_column(String(80))
    consulted_how: Mapped[str | None] = mapped_column(String(40))
    confirmation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("confirmations.id"))
    shared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    superseded_by: Mapped[uuid.UUID | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RiskThreat(Base):
    """One threat of an assessment: facts, pattern, objective, the source as she reports it,
    feasibility (sealed), likelihood and impact. Plan measures point at it."""

    __tablename__ = "risk_threats"
    __table_args__ = (Index("ix_risk_threats_case", "case_id", "assessment_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    assessment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("risk_assessments.id"))
    position: Mapped[int] = mapped_column(Integer)
    likelihood: Mapped[str] = mapped_column(String(20))
    impact: Mapped[str] = mapped_column(String(20))
    facts: Mapped[str | None] = mapped_column(Text)
    pattern: Mapped[str | None] = mapped_column(Text)
    objective: Mapped[str | None] = mapped_column(Text)
    source_as_reported: Mapped[str | None] = mapped_column(Text)
    feasibility: Mapped[str | None] = mapped_column(Text)
