"""Justice follow-up: hearings as dated events on a proceeding, and detention watch (a
detention on a case, its due checks — lawyer access, family visit, medical access — and the
visit log). All rows sit below a case and are listed under her consent for `legal`; their
free text (a hearing's outcome, the place of detention, a visit's notes) is sealed with her key.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class HearingStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"  # outcome recorded: it took place
    ADJOURNED = "adjourned"  # outcome recorded: it opened and was adjourned
    NOT_HELD = "not_held"  # outcome recorded: it did not take place
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"  # replaced by the hearing `rescheduled_to`


OUTCOMES = (HearingStatus.HELD, HearingStatus.ADJOURNED, HearingStatus.NOT_HELD)


class CheckKind(enum.StrEnum):
    LAWYER_ACCESS = "lawyer_access"
    FAMILY_VISIT = "family_visit"
    MEDICAL_ACCESS = "medical_access"


class DetentionStatus(enum.StrEnum):
    DETAINED = "detained"
    RELEASED = "released"


class CheckStatus(enum.StrEnum):
    PENDING = "pending"
    SATISFIED = "satisfied"  # by a visit of its kind
    ENDED = "ended"  # she was released first


class VisitorCategory(enum.StrEnum):
    LAWYER = "lawyer"
    FAMILY = "family"
    MEDICAL = "medical"
    CONSULAR = "consular"
    NHRI = "nhri"
    INTERNATIONAL_OBSERVER = "international_observer"
    OTHER = "other"


# Which visitor satisfies which check (a consular visit, say, satisfies none of them).
SATISFIES: dict[VisitorCategory, CheckKind] = {
    VisitorCategory.LAWYER: CheckKind.LAWYER_ACCESS,
    VisitorCategory.FAMILY: CheckKind.FAMILY_VISIT,
    VisitorCategory.MEDICAL: CheckKind.MEDICAL_ACCESS,
}


class Hearing(Base):
    """One dated hearing of a proceeding. `org_id` is the organisation that scheduled it: it is
    reminded before and owes the outcome after (along its escalation chain)."""

    __tablename__ = "hearings"
    __table_args__ = (Index("ix_hearings_case", "case_id", "scheduled_at"),
                      Index("ix_hearings_proceeding", "proceeding_id", "status", "scheduled_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    proceeding_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("proceedings.id"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    # A named owner inside the organisation (subject), reminded instead of its focal points.
    owner: Mapped[str | None] = mapped_column(String(80))
    outcome: Mapped[str | None] = mapped_column(Text)  # sealed (category legal)
    outcome_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rescheduled_from: Mapped[uuid.UUID | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Detention(Base):
    """She is detained: since when, where (sealed), and whether she has been released. Its
    checks escalate along the case's lead organisation's chain."""

    __tablename__ = "detentions"
    __table_args__ = (Index("ix_detentions_case", "case_id", "detained_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    proceeding_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("proceedings.id"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    detained_at: Mapped[datetime] = mapped_column(UTCDateTime())
    place: Mapped[str | None] = mapped_column(Text)  # sealed (category legal)
    status: Mapped[str] = mapped_column(String(20))  # detained, released
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DetentionCheck(Base):
    """A due check of a detention: satisfied by a visit of the right kind before `due_at`, or
    escalated; ended by her release."""

    __tablename__ = "detention_checks"
    __table_args__ = (UniqueConstraint("detention_id", "kind"),
                      Index("ix_detention_checks_case", "case_id", "due_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    detention_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("detentions.id"))
    kind: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))  # pending, satisfied, ended
    satisfied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    visit_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DetentionVisit(Base):
    """One visit to her in detention: by whom (a category, never a name), when, which check it
    satisfies, and notes (sealed)."""

    __tablename__ = "detention_visits"
    __table_args__ = (Index("ix_detention_visits_case", "case_id", "visited_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    detention_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("detentions.id"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    visitor: Mapped[str] = mapped_column(String(30))
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime())
    satisfies: Mapped[str | None] = mapped_column(String(20))
    notes: Mapped[str | None] = mapped_column(Text)  # sealed (category legal)
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
