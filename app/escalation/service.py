"""One primitive for "a due item that escalates along a chain": incidents, overdue tasks, and
every later kind of due item (referrals, hearings, detention checks, reviews, check-ins) — a
kind registers how to read its item, and the chain does the rest.

At the item's deadline the first level of its organisation's chain is alerted; each level has
its minutes to act before the next. A level that names nobody active now is skipped and recorded
as skipped (never as delivered); past the last level, the last level that reaches someone is
alerted again and again until the item is resolved; if nobody at all can be reached that is
recorded too. Once the chain has run out, the organisation's overseers (e.g. its NHRI) and the
conveners of working groups she granted receive a content-free notice (IDs and codes: which
levels missed their deadlines) so they can hold it to account; it gives them no access to her.

Steps live in `scheduled_steps`; a replica claims a step with a conditional UPDATE (the
scheduler), so each level fires once across replicas.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.visibility import org_holds_consent
from app.her.notices import NoticeKind, tell_her
from app.notify import service as notify
from app.notify.chain import active_with_roles, chain_of, recipients
from app.tables.audit import Oversight
from app.tables.consent import ConsentGrant
from app.tables.directory import DueEvent
from app.tables.incidents import CaseEvent, ScheduledStep
from app.tables.notify import InboxItem
from app.tables.orgs import User, WorkingGroup


@dataclass(frozen=True)
class Due:
    """An unresolved item: what it is (the prefix of its timeline events), its case, whose
    chain it follows, and the IDs and codes its in-organisation alerts carry. An item with no
    case (a request for help from a woman with no case) has no case and no peacebuilder: its
    events go to `due_events`, and no working group's convener is told."""

    what: str
    case_id: uuid.UUID | None
    org_id: uuid.UUID
    peacebuilder_id: uuid.UUID | None
    payload: dict[str, Any] = field(default_factory=dict)
    # A named person of `org_id` who owns the item (a task's owner): the chain starts with her
    # while she is active, then goes on with the organisation's own levels.
    owner: uuid.UUID | None = None
    # The data category the item belongs to (a hearing, a detention check: `legal`). Its
    # alerts carry its IDs and codes only to an organisation her consent releases it to: the
    # chain is that of the first of `org_id`, then `alternates` (who else recorded or leads
    # it), still covered; if none is, `org_id`'s chain is told only that an item on the case
    # needs attention (docs/decisions/0024).
    category: str | None = None
    alternates: tuple[uuid.UUID, ...] = ()


def content_free(case_id: uuid.UUID | None) -> dict[str, Any]:
    """All an alert says about an item to an organisation not covered for its category."""
    return {"case": str(case_id), "attention": "needed"} if case_id else {"attention": "needed"}


async def _covered(session: AsyncSession, due: Due, org_id: uuid.UUID, now: datetime) -> bool:
    if due.category is None:
        return True
    if due.peacebuilder_id is None:
        return False
    return await org_holds_consent(session, org_id, due.peacebuilder_id, now,
                                   category=due.category)


async def _routed(session: AsyncSession, due: Due, now: datetime) -> Due:
    """The item as its chain may hear of it now (see `Due.category`)."""
    if due.category is None:
        return due
    orgs = list(dict.fromkeys((due.org_id, *due.alternates)))
    covered = [org for org in orgs if await _covered(session, due, org, now)]
    # An organisation still covered whose chain reaches someone now; else one not covered that
    # can hear (told only that something needs attention); never nobody if anyone can hear.
    for org in covered:
        if await _reachable(session, org, now):
            return replace(due, org_id=org, owner=due.owner if org == due.org_id else None)
    for org in orgs:
        if org not in covered and await _reachable(session, org, now):
            return replace(due, org_id=org, payload=content_free(due.case_id), owner=None)
    if covered:
        return replace(due, org_id=covered[0],
                       owner=due.owner if covered[0] == due.org_id else None)
    return replace(due, payload=content_free(due.case_id), owner=None)


async def _reachable(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> bool:
    """Whether some level of the organisation's chain names an active person now."""
    levels, head = await chain_of(session, org_id)
    for level in levels:
        if await recipients(session, org_id, level["to"], head, now):
            return True
    return False


OWNER_LEVEL = "owner"


async def _named_owner(session: AsyncSession, due: Due) -> list[str]:
    """The item's named owner, if she is still an active person of its organisation."""
    if due.owner is None:
        return []
    user = await session.get(User, due.owner)
    return [user.subject] if user is not None and user.active and user.org_id == due.org_id else []


async def _level_recipients(session: AsyncSession, due: Due, level: str, head: str | None,
                            now: datetime) -> list[str]:
    if level == OWNER_LEVEL:
        return await _named_owner(session, due)
    return await recipients(session, due.org_id, level, head, now)


# kind -> how to read the item now (None: resolved or gone, nothing more to do).
Reader = Callable[[AsyncSession, uuid.UUID], Awaitable[Due | None]]
_KINDS: dict[str, Reader] = {}


def due_item(kind: str) -> Callable[[Reader], Reader]:
    """Register a kind of due item (its scheduled steps carry `kind`)."""
    def register(fn: Reader) -> Reader:
        _KINDS[kind] = fn
        return fn
    return register


def handles(kind: str) -> bool:
    return kind in _KINDS


def start(session: AsyncSession, kind: str, subject_id: uuid.UUID, due_at: datetime) -> None:
    """The item falls due at `due_at`: the chain starts then, unless it is resolved first."""
    if kind not in _KINDS:
        raise ValueError(f"no due-item kind {kind!r}")
    session.add(ScheduledStep(kind=kind, subject_id=subject_id, step=1, due_at=due_at))


def _event(session: AsyncSession, due: Due, kind: str, subject_id: uuid.UUID,
           details: dict[str, Any], now: datetime) -> None:
    if due.case_id is None:
        session.add(DueEvent(org_id=due.org_id, kind=f"{due.what}.{kind}", subject_id=subject_id,
                             details=details, at=now))
        return
    session.add(CaseEvent(case_id=due.case_id, kind=f"{due.what}.{kind}", subject_id=subject_id,
                          actor="system", org_id=None, details=details, at=now))


async def fire(session: AsyncSession, step: ScheduledStep, now: datetime) -> list[InboxItem]:
    """Alert the level this step stands for (claimed by the caller); schedule the next one."""
    due = await _KINDS[step.kind](session, step.subject_id)
    if due is None:
        return []
    due = await _routed(session, due, now)
    levels, head = await chain_of(session, due.org_id)
    if due.owner is not None:  # the named owner first, with the first level's time to act
        levels = [{"to": OWNER_LEVEL, "minutes": levels[0]["minutes"]}, *levels]
    last = len(levels) - 1
    index = step.step - 1
    repeating = index > last
    reached: tuple[int, list[str]] | None = None
    for i in range(min(index, last), last + 1):
        who = await _level_recipients(session, due, levels[i]["to"], head, now)
        if who:
            reached = (i, who)
            break
        if not repeating:
            _event(session, due, "escalation_skipped", step.subject_id,
                   {"level": i + 1, "to": levels[i]["to"]}, now)
    # The chain has run out: past its last level, or nobody from here to the end.
    ran_out = repeating or reached is None or reached[0] == last
    if reached is None:  # the last level that reaches someone repeats until it is resolved
        for i in range(last, -1, -1):
            who = await _level_recipients(session, due, levels[i]["to"], head, now)
            if who:
                reached = (i, who)
                break
    items: list[InboxItem] = []
    if reached is None:
        _event(session, due, "escalation_unreachable", step.subject_id,
               {"step": step.step}, now)
        at_level = last
    else:
        at_level, who = reached
        _event(session, due, "escalated", step.subject_id,
               {"level": at_level + 1, "to": levels[at_level]["to"], "recipients": len(who),
                "step": step.step}, now)
        items += await notify.notify(
            session, [(s, due.org_id) for s in who], kind="escalation",
            subject_id=step.subject_id, case_id=due.case_id, at=now,
            payload={**due.payload, "level": at_level + 1, "to": levels[at_level]["to"],
                     # Lets the named owner receive it (app/notify/inbox.entitled).
                     **({"owner_person": str(due.owner)}
                        if levels[at_level]["to"] == OWNER_LEVEL else {})})
        if due.what == "incident" and not repeating and due.peacebuilder_id is not None:
            # Each new level, not every repeat.
            # Her notice's outbox row is in this transaction: the alerts above wake the worker.
            await tell_her(session, due.peacebuilder_id, NoticeKind.INCIDENT_ESCALATED,
                           case_id=due.case_id, subject_id=step.subject_id,
                           codes={"level": at_level + 1}, at=now)
    if ran_out:
        items += await _notify_oversight(session, due, step.subject_id,
                                         [lv["to"] for lv in levels], now)
    next_step = max(step.step + 1, (last + 2) if ran_out else (at_level + 2))
    session.add(ScheduledStep(
        kind=step.kind, subject_id=step.subject_id, step=next_step,
        due_at=now + timedelta(minutes=int(levels[at_level]["minutes"]))))
    return items


async def _notify_oversight(session: AsyncSession, due: Due, subject_id: uuid.UUID,
                            missed: list[str], now: datetime) -> list[InboxItem]:
    """Once per item: the overseers and the conveners of groups she granted are told, with IDs
    and codes only (no case ID: the notice opens nothing)."""
    timeline = CaseEvent if due.case_id is not None else DueEvent
    told = await session.scalar(select(timeline.id).where(
        timeline.kind == f"{due.what}.oversight_notified", timeline.subject_id == subject_id))
    if told is not None:
        return []
    overseers = set(await session.scalars(select(Oversight.overseer_org_id).where(
        Oversight.org_id == due.org_id)))
    granted_groups = set(await session.scalars(select(ConsentGrant.recipient_id).where(
        ConsentGrant.peacebuilder_id == due.peacebuilder_id,
        ConsentGrant.recipient_type == "working_group", ConsentGrant.revoked_at.is_(None),
        ConsentGrant.confirmed_at.is_not(None)))) if due.peacebuilder_id else set()
    # (in force: a pending grant is not hers yet)
    conveners = set(await session.scalars(select(WorkingGroup.convener_org_id).where(
        WorkingGroup.id.in_(granted_groups)))) if granted_groups else set()
    orgs = sorted((overseers | conveners) - {due.org_id})
    _event(session, due, "oversight_notified", subject_id,
           {"organisations": [str(o) for o in orgs], "missed": missed}, now)
    items: list[InboxItem] = []
    for org in orgs:
        # What the item is (a detention check…) only to an overseer her consent covers for
        # its category; to others, that an item is overdue.
        what = due.what if await _covered(session, due, org, now) else "item"
        items += await notify.notify(
            session, [(s, org) for s in await active_with_roles(session, org, ("focal_point",))],
            kind="escalation_notice", subject_id=subject_id, case_id=None, at=now,
            payload={"what": what, "subject": str(subject_id),
                     "organisation": str(due.org_id), "missed": missed})
    return items
