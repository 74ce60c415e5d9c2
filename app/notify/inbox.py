"""Reading one's inbox, and deciding at delivery time whether an alert may still be delivered.

`entitled` is the one decision, whatever the channel: the inbox query and the subscription make
it as the caller, in the caller's request; email makes it as the recipient (`deliverable`).
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select

from app.access.context import AccessContext
from app.access.visibility import org_holds_consent, visible_peacebuilders
from app.errors import BadInput, Unauthenticated
from app.notify.chain import ESCALATION_ROLES
from app.tables.cases import Case
from app.tables.categories import DataCategory, Purpose
from app.tables.notify import InboxItem

if TYPE_CHECKING:
    from app.runtime import Runtime

# The purposes an alert serves, for a channel where the recipient declares none (email): the
# protection work alerts are about, and emergency response (a case seen under break-glass).
DELIVERY_PURPOSES = (Purpose.PROTECTION.value, Purpose.EMERGENCY_RESPONSE.value)


# Alerts a task's named owner receives as its owner (app/incidents/response.py).
OWNER_KINDS = frozenset({"escalation", "task_due"})


# A duty of the people its organisation names (IDs only): an escalation, the warning that a
# closed case's data is about to be erased (app/incidents/retention.py).
# A missed check-in is the lead organisation's focal points' duty at once (app/checkins).
DUTY_KINDS = frozenset({"escalation", "retention_warning", "check_in_missed"})


# Alerts about a justice item (a hearing, a detention and its checks): they tell when she is in
# court or that she is detained, so they carry their IDs and codes only while her consent
# releases `legal` to the recipient's organisation (docs/decisions/0024).
LEGAL_KINDS = frozenset({"hearing_due"})
LEGAL_KEYS = frozenset({"hearing", "detention", "detention_check", "check", "scheduled_at",
                        "proceeding"})
# What stays of such an alert otherwise: the case and the chain's codes.
CONTENT_FREE_KEYS = ("case", "level", "to", "owner_person")


# Alerts about a check-in or a security assessment (app/checkins): that she missed a check-in,
# and what was agreed to do, is her risk picture — shown while her consent releases
# `risk_assessment` to the recipient's organisation, content-free otherwise (decision 0032).
RISK_KINDS = frozenset({"check_in_missed"})
RISK_KEYS = frozenset({"check_in", "schedule", "action", "security_assessment",
                       "follow_up_at", "follow_up", "consultation"})


def about_legal(item: InboxItem) -> bool:
    return item.kind in LEGAL_KINDS or bool(LEGAL_KEYS & set(item.payload or {}))


def about_risk(item: InboxItem) -> bool:
    return item.kind in RISK_KINDS or bool(RISK_KEYS & set(item.payload or {}))


async def _legal_released(ctx: AccessContext, item: InboxItem,
                          category: str = DataCategory.LEGAL.value) -> bool:
    """Whether a live grant of hers releases `legal` to the caller's organisation now, for any
    purpose (the decision the chain made when it sent the alert; a case row the caller cannot
    read at all: no)."""
    if item.case_id is None or ctx.principal.org_id is None:
        return False
    pb = await ctx.session.scalar(select(Case.peacebuilder_id).where(Case.id == item.case_id))
    if pb is None:
        return False
    return await org_holds_consent(ctx.session, ctx.principal.org_id, pb, ctx.clock.now(),
                                   category=category)


def _content_free(item: InboxItem) -> InboxItem:
    """A copy (never attached to the session, so nothing is written) saying only that an item on
    the case needs attention."""
    payload = {k: v for k, v in (item.payload or {}).items() if k in CONTENT_FREE_KEYS}
    return InboxItem(id=item.id, recipient=item.recipient, org_id=item.org_id, kind=item.kind,
                     subject_id=None, case_id=item.case_id,
                     payload={**payload, "attention": "needed"}, created_at=item.created_at,
                     emailed_at=item.emailed_at)


async def shown(ctx: AccessContext, item: InboxItem) -> InboxItem:
    """The alert as the caller may read it now: a justice alert to an organisation her consent
    no longer releases `legal` to says only that an item on the case needs attention."""
    if about_legal(item) and not await _legal_released(ctx, item):
        return _content_free(item)
    if about_risk(item) and not await _legal_released(
            ctx, item, DataCategory.RISK_ASSESSMENT.value):
        return _content_free(item)
    return item


def cursor_of(item: InboxItem) -> str:
    return base64.urlsafe_b64encode(f"{item.created_at.isoformat()}|{item.id}".encode()).decode()


def cursor_before(at: datetime) -> str:
    """A cursor just before every item created at or after `at`."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{uuid.UUID(int=0)}".encode()).decode()


def parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, _, id_ = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), uuid.UUID(id_)
    except ValueError as exc:
        raise BadInput("Invalid cursor.", field="after") from exc


async def entitled(ctx: AccessContext, item: InboxItem) -> bool:
    """Whether the recipient may still receive this alert now (case still visible to them)."""
    if item.recipient != ctx.principal.subject:
        return False
    if ctx.principal.mfa_pending:
        # A password alone (her role needs a second factor she has not used): no roles, and
        # no alert either (a duress sign-in, a break-glass are told to focal points).
        return False
    if item.kind in LEGAL_KINDS and not await _legal_released(ctx, item):
        # A hearing reminder stops once her consent no longer releases `legal` to it.
        return False
    if (item.kind in OWNER_KINDS and ctx.principal.org_id == item.org_id
            and (item.payload or {}).get("owner_person") == str(ctx.principal.id)):
        # The task's named owner: its reminders and the first level of its escalation are her
        # duty, like a focal point's (IDs only; the case itself stays behind consent).
        return True
    if item.kind in DUTY_KINDS:
        # An escalation is a duty of the people its organisation's chain names (focal points,
        # who is on duty, its head of protection: each holds one of ESCALATION_ROLES), consent
        # or not: it carries IDs only, and the case itself stays behind consent.
        return (bool(set(ESCALATION_ROLES) & set(ctx.principal.roles))
                and ctx.principal.org_id == item.org_id)
    if item.kind == "help_request_received":
        # Only its organisation's focal points read requests for help (help_request:read).
        return ctx.can("help_request", "read") and ctx.principal.org_id == item.org_id
    if item.case_id is None:
        return True
    # The recipient's own need-to-know: taken off the team, no more alerts about the case.
    return await ctx.session.scalar(select(Case.id).where(
        Case.id == item.case_id,
        Case.peacebuilder_id.in_(visible_peacebuilders(ctx.care_scope())))) is not None


async def deliverable(runtime: Runtime, item: InboxItem, request_id: str) -> bool:
    """Whether `item` may still go to its recipient by a channel she did not ask on (email):
    `entitled`, decided as her, now (still active, her roles, her organisation's consent and her
    case teams, under row-level security on PostgreSQL), for one of `DELIVERY_PURPOSES`."""
    for purpose in DELIVERY_PURPOSES:
        try:
            async with runtime.as_recipient(item.recipient, purpose, request_id) as access:
                if await entitled(access, item):
                    return True
        except Unauthenticated:
            return False  # deactivated, or not a person
    return False


async def items(ctx: AccessContext, after: str | None, limit: int = 100) -> list[InboxItem]:
    """The caller's alerts after a cursor, oldest first, only those still deliverable."""
    q = select(InboxItem).where(InboxItem.recipient == ctx.principal.subject)
    if after:
        at, id_ = parse_cursor(after)
        q = q.where(or_(InboxItem.created_at > at, and_(InboxItem.created_at == at, InboxItem.id > id_)))
    rows = list(await ctx.session.scalars(q.order_by(InboxItem.created_at, InboxItem.id).limit(limit)))
    return [await shown(ctx, r) for r in rows if await entitled(ctx, r)]


async def item(ctx: AccessContext, item_id: uuid.UUID) -> InboxItem | None:
    found = await ctx.session.get(InboxItem, item_id)
    return await shown(ctx, found) if found is not None and await entitled(ctx, found) else None
