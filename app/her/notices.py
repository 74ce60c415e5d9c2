"""Telling her: one function, `tell_her`, for every change that concerns her (docs/decisions/0029).

A notice is kind, date, case reference and IDs or codes: nothing that would endanger her if
someone else read her screen, never her name, never free text. `tell_her` enforces it (allowed
detail keys, each with its kind of value) and raises `UnsafeNotice` — a programming error, never
a user's — otherwise. Her own login reads notices in her language (`render`); a woman without a
working login (none yet, or suspended) is told through her networks' focal points: a
content-free inbox alert (`notice_for_her`, IDs and codes only). Each notice is published to her
subscription through the alert outbox, like any alert (at least once, de-duplicated by ID).

Two notices are not raised by a request but by the scheduler, once across replicas (a claimed
`scheduled_steps` row): a grant about to expire (`EXPIRY_WARNING` before its end) and a
break-glass that ended on its own.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import AccessContext
from app.auth.principals import suspended
from app.db import new_id
from app.her.networks import networks_of
from app.notify import service as notify
from app.tables.cases import ClosureReason, ReopenReason
from app.tables.consent import BreakGlass, ConsentGrant, Notice, PeacebuilderAccount
from app.tables.incidents import IncidentStatus, ScheduledStep, Severity
from app.tables.notify import OutboxEntry


class NoticeKind(enum.StrEnum):
    """Every change she is told about. The values are stored and returned as `kind`."""

    INCIDENT_ACKNOWLEDGED = "incident_acknowledged"
    INCIDENT_ESCALATED = "incident_escalated"
    INCIDENT_STATUS_CHANGED = "incident_status_changed"
    MEASURE_DONE = "measure_done"
    MEASURE_NOT_DONE = "measure_not_done"
    REFERRAL_ACCEPTED = "referral_accepted"
    REFERRAL_DECLINED = "referral_declined"
    CASE_CLOSED = "case_closed"
    CASE_REOPENED = "case_reopened"
    CONSENT_GRANTED_BY_OTHERS = "consent_granted_by_others"
    CONSENT_CONFIRMED_BY_OTHERS = "consent_confirmed_by_others"
    CONSENT_EXTENDED_BY_OTHERS = "consent_extended_by_others"
    CONSENT_AWAITS_CONFIRMATION = "consent_awaits_confirmation"
    GRANT_EXPIRING = "grant_expiring"
    WORKING_GROUP_NEW_MEMBER = "working_group_new_member"
    APPROVAL_USED = "approval_used"
    BREAK_GLASS_OPENED = "break_glass_opened"
    BREAK_GLASS_CONFIRMED = "break_glass_confirmed"
    BREAK_GLASS_ENDED = "break_glass_ended"
    NETWORK_CONFIRMED = "network_confirmed"
    ERASURE_SCHEDULED = "erasure_scheduled"
    # Raised by the account and corrections work (their branches call tell_her).
    ENROLMENT_CODE_ISSUED = "enrolment_code_issued"
    PASSWORD_RESET = "password_reset"  # noqa: S105  (a notice kind, not a password)
    LOGIN_SUSPENDED = "login_suspended"
    CORRECTION_ANSWERED = "correction_answered"
    # A closed case's retention ran out (app/incidents/retention.py).
    CASE_DATA_ERASED = "case_data_erased"
    # A joint risk assessment waits for her answer; one became current (app/risk).
    RISK_ASSESSMENT_SHARED = "risk_assessment_shared"
    RISK_ASSESSMENT_CURRENT = "risk_assessment_current"
    # A check-in of hers was missed: the lead organisation was alerted (app/checkins).
    CHECK_IN_MISSED = "check_in_missed"


class MeasureNotDoneReason(enum.StrEnum):
    """Why a measure for her was not done (cancelled): a code, never free text."""

    NO_LONGER_NEEDED = "no_longer_needed"
    SHE_DECLINED = "she_declined"
    NOT_FEASIBLE = "not_feasible"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    REPLACED = "replaced"
    OTHER = "other"


class BreakGlassEnd(enum.StrEnum):
    CLOSED = "closed"
    EXPIRED = "expired"


class ErasedHow(enum.StrEnum):
    KEY_DESTROYED = "key_destroyed"
    CASE_DATA_DELETED = "case_data_deleted"


class CorrectionAnswer(enum.StrEnum):
    CORRECTED = "corrected"
    DECLINED = "declined"


K = NoticeKind
# The key her notice stores `subject_id` under, by kind (a global ID of that type on the way out).
SUBJECT_KEY: dict[NoticeKind, str] = {
    K.INCIDENT_ACKNOWLEDGED: "incident", K.INCIDENT_ESCALATED: "incident",
    K.INCIDENT_STATUS_CHANGED: "incident", K.MEASURE_DONE: "measure",
    K.MEASURE_NOT_DONE: "measure", K.REFERRAL_ACCEPTED: "referral",
    K.REFERRAL_DECLINED: "referral", K.CONSENT_GRANTED_BY_OTHERS: "grant",
    K.CONSENT_CONFIRMED_BY_OTHERS: "grant", K.CONSENT_EXTENDED_BY_OTHERS: "grant",
    K.CONSENT_AWAITS_CONFIRMATION: "grant", K.GRANT_EXPIRING: "grant",
    K.WORKING_GROUP_NEW_MEMBER: "grant", K.APPROVAL_USED: "approval",
    K.BREAK_GLASS_OPENED: "break_glass", K.BREAK_GLASS_CONFIRMED: "break_glass",
    K.BREAK_GLASS_ENDED: "break_glass", K.NETWORK_CONFIRMED: "network",
    K.ERASURE_SCHEDULED: "erasure", K.CORRECTION_ANSWERED: "data_request",
    K.RISK_ASSESSMENT_SHARED: "risk_assessment", K.RISK_ASSESSMENT_CURRENT: "risk_assessment",
    K.CHECK_IN_MISSED: "check_in",
}

# Reason codes, per kind: the closed set each accepts (other branches add theirs here).
REASONS: dict[NoticeKind, frozenset[str]] = {
    K.CASE_CLOSED: frozenset(ClosureReason), K.CASE_REOPENED: frozenset(ReopenReason),
    K.MEASURE_NOT_DONE: frozenset(MeasureNotDoneReason),
    K.BREAK_GLASS_ENDED: frozenset(BreakGlassEnd),
    K.CORRECTION_ANSWERED: frozenset(CorrectionAnswer),
    K.CASE_DATA_ERASED: frozenset(ErasedHow),
}

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SUBJECT = re.compile(r"^(user|client|peacebuilder):[0-9a-f-]{36}$|^system$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _id(value: Any) -> bool:
    return isinstance(value, uuid.UUID) or (isinstance(value, str) and bool(_UUID.match(value)))


def _date(value: Any) -> bool:
    if isinstance(value, datetime):
        return True
    try:
        return isinstance(value, str) and datetime.fromisoformat(value) is not None
    except ValueError:
        return False


def _code(value: Any) -> bool:
    return isinstance(value, str) and bool(_CODE.match(value))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 100_000


def _in(values: frozenset[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in values


# Every key a notice's `codes` may carry, and what its value must be. Nothing else is stored.
ALLOWED: dict[str, Callable[[Any], bool]] = {
    "organisation": _id, "working_group": _id, "network": _id, "confirmation": _id,
    "by": lambda v: isinstance(v, str) and bool(_SUBJECT.match(v)),
    "due_at": _date, "expires_at": _date, "valid_until": _date,
    "status": _in(frozenset(IncidentStatus) | {"planned", "in_progress", "done", "cancelled"}),
    "severity": _in(frozenset(Severity)),
    "act": _in(frozenset({"public_statement", "media_contact", "recognition",
                          "media", "public_recognition"})),
    "awaiting": _code, "via": _code, "reason": _code,
    "level": _count, "hours": _count, "steps": _count,
    "acting_for_her": lambda v: isinstance(v, bool),
}


class UnsafeNotice(ValueError):
    """A notice would carry something other than IDs and codes: a bug in the caller."""


class Published(NamedTuple):
    """What the caller hands to the outbox worker after commit (like an inbox item)."""

    recipient: str
    id: uuid.UUID


@dataclass
class Told:
    notice: Notice
    published: list[Published] = field(default_factory=list)


def details_of(kind: NoticeKind, *, case_id: uuid.UUID | None, subject_id: uuid.UUID | None,
               codes: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored details, checked: allowed keys only, each with a value of its kind."""
    kind = NoticeKind(kind)
    details: dict[str, Any] = {}
    if case_id is not None:
        details["case"] = str(case_id)
    if subject_id is not None:
        key = SUBJECT_KEY.get(kind)
        if key is None:
            raise UnsafeNotice(f"{kind} names no subject")
        details[key] = str(subject_id)
    for key, value in (codes or {}).items():
        check = ALLOWED.get(key)
        if check is None:
            raise UnsafeNotice(f"notice detail {key!r} is not allowed")
        if not check(value):
            raise UnsafeNotice(f"notice detail {key!r} is not an ID, a date or a code")
        if key == "reason" and kind in REASONS and value not in REASONS[kind]:
            raise UnsafeNotice(f"unknown reason code for {kind}")
        if key == "reason" and kind not in REASONS:
            raise UnsafeNotice(f"{kind} takes no reason")
        details[key] = (value.isoformat() if isinstance(value, datetime)
                        else str(value) if isinstance(value, uuid.UUID) else value)
    return details


async def tell_her(where: AccessContext | AsyncSession, peacebuilder_id: uuid.UUID,
                   kind: NoticeKind, *, case_id: uuid.UUID | None = None,
                   subject_id: uuid.UUID | None = None, codes: Mapping[str, Any] | None = None,
                   at: datetime | None = None) -> Told:
    """Tell her of a change (in the caller's transaction): a notice in her inbox, pushed to her
    subscription after commit; without a working login of hers, her networks' focal points get
    a content-free alert instead. `where` is the request's context, or a session (the scheduler,
    which passes `at` and publishes what is returned)."""
    ctx = where if isinstance(where, AccessContext) else None
    session = where.session if isinstance(where, AccessContext) else where
    if at is None:
        if ctx is None:
            raise ValueError("a session alone needs `at`")
        at = ctx.clock.now()
    notice = Notice(id=new_id(), peacebuilder_id=peacebuilder_id, kind=NoticeKind(kind).value,
                    details=details_of(kind, case_id=case_id, subject_id=subject_id, codes=codes),
                    created_at=at)
    session.add(notice)
    await session.flush()
    her = f"peacebuilder:{peacebuilder_id}"
    session.add(OutboxEntry(item_id=notice.id, recipient=her, org_id=uuid.UUID(int=0),
                            created_at=at, attempts=0))
    published = [Published(her, notice.id)]
    account = await session.scalar(select(PeacebuilderAccount).where(
        PeacebuilderAccount.peacebuilder_id == peacebuilder_id))
    if account is None or not account.active or suspended(account, at):
        networks = (await networks_of(session, [peacebuilder_id]))[peacebuilder_id]
        recipients = [(s, org) for org in sorted(networks)
                      for s in await notify.focal_points(session, org)]
        payload: dict[str, Any] = {"notice": str(notice.id), "kind": notice.kind,
                                   "peacebuilder": str(peacebuilder_id)}
        if case_id is not None:
            payload["case"] = str(case_id)
        items = await notify.notify(session, recipients, kind="notice_for_her",
                                    subject_id=notice.id, case_id=None, payload=payload, at=at)
        published += [Published(i.recipient, i.id) for i in items]
    await session.flush()
    if ctx is not None:
        ctx.cache.setdefault("published", []).extend((p.recipient, str(p.id)) for p in published)
    return Told(notice, published)


# --- scheduled notices ------------------------------------------------------------------------
EXPIRY_WARNING = timedelta(days=7)
GRANT_EXPIRY_STEP = "grant_expiry_warning"
BREAK_GLASS_END_STEP = "break_glass_end"


async def _schedule(session: AsyncSession, kind: str, subject_id: uuid.UUID,
                    due_at: datetime) -> None:
    last = await session.scalar(select(func.max(ScheduledStep.step)).where(
        ScheduledStep.subject_id == subject_id, ScheduledStep.kind == kind))
    session.add(ScheduledStep(kind=kind, subject_id=subject_id, step=(last or 0) + 1,
                              due_at=due_at))


async def watch_grant(session: AsyncSession, grant: ConsentGrant, now: datetime) -> None:
    """A grant in force with an end: she is warned `EXPIRY_WARNING` before it (or at once)."""
    if grant.valid_until is None or grant.revoked_at is not None or grant.confirmed_at is None:
        return
    if grant.valid_until <= now:
        return
    await _schedule(session, GRANT_EXPIRY_STEP, grant.id,
                    max(grant.valid_until - EXPIRY_WARNING, now))


async def watch_break_glass(session: AsyncSession, glass: BreakGlass) -> None:
    """A break-glass that ends on its own: she is told when it does."""
    await _schedule(session, BREAK_GLASS_END_STEP, glass.id, glass.expires_at)


async def _grant_expiring(session: AsyncSession, step: ScheduledStep,
                          now: datetime) -> list[Published]:
    grant = await session.get(ConsentGrant, step.subject_id)
    if (grant is None or grant.valid_until is None or grant.revoked_at is not None
            or grant.confirmed_at is None or grant.valid_until <= now):
        return []
    if grant.valid_until - EXPIRY_WARNING > now:  # extended since: warn before the new end
        await _schedule(session, GRANT_EXPIRY_STEP, grant.id, grant.valid_until - EXPIRY_WARNING)
        return []
    until = grant.valid_until.isoformat()
    told = await session.scalars(select(Notice.details).where(
        Notice.peacebuilder_id == grant.peacebuilder_id,
        Notice.kind == NoticeKind.GRANT_EXPIRING.value))
    if any(d.get("grant") == str(grant.id) and d.get("valid_until") == until for d in told):
        return []  # already warned of this end (a second step, after a narrowing)
    done = await tell_her(session, grant.peacebuilder_id, NoticeKind.GRANT_EXPIRING,
                          subject_id=grant.id, codes={"valid_until": grant.valid_until}, at=now)
    return done.published


async def _break_glass_ended(session: AsyncSession, step: ScheduledStep,
                             now: datetime) -> list[Published]:
    glass = await session.get(BreakGlass, step.subject_id)
    if glass is None or glass.closed_at is not None:
        return []  # closed by hand: she was told then
    if glass.expires_at > now:  # confirmed and lengthened since
        await watch_break_glass(session, glass)
        return []
    done = await tell_her(session, glass.peacebuilder_id, NoticeKind.BREAK_GLASS_ENDED,
                          subject_id=glass.id,
                          codes={"organisation": glass.org_id, "reason": BreakGlassEnd.EXPIRED},
                          at=now)
    return done.published


StepHandler = Callable[[AsyncSession, ScheduledStep, datetime], Awaitable[list[Published]]]
STEPS: dict[str, StepHandler] = {GRANT_EXPIRY_STEP: _grant_expiring,
                                 BREAK_GLASS_END_STEP: _break_glass_ended}
