"""The scheduler: escalations, task reminders and her scheduled notices, run in the service
(not only when someone looks). Steps live in the database, so they survive restarts; a replica
claims a step with an UPDATE ... WHERE done_at IS NULL, so across replicas a step fires exactly
once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import suppress
from typing import Any

from sqlalchemy import select, update

from app.access.context import AccessContext
from app.access.principal import SYSTEM
from app.checkins import service as checkins  # registers the check-in and follow-up kinds
from app.clock import Clock
from app.confirmations import service as confirmations
from app.consent import break_glass  # noqa: F401  (registers its two-person handlers)
from app.consent import service as consent
from app.consultations import service as consultations  # noqa: F401  (its follow-ups' kind)
from app.corrections import service as corrections  # noqa: F401  (the correction-request kind)
from app.db import Database, background_task
from app.directory import help as help_requests  # noqa: F401  (registers the help-request kind)
from app.escalation import service as escalation
from app.her import notices
from app.incidents import (
    response,  # noqa: F401  (registers the overdue-task kind)
    retention,
)
from app.incidents import service as incidents  # noqa: F401  (registers the incident kind)
from app.justice import service as justice  # registers the hearing and detention-check kinds
from app.notify import service as notify
from app.peacebuilders import (
    account,  # noqa: F401  (registers her post-reset hold with consent)
    erasure,
    networks,  # noqa: F401  (registers its two-person handlers)
)
from app.risk import service as risk  # the review task's step
from app.tables.incidents import Measure, ScheduledStep
from app.tables.orgs import User
from app.tenancy import as_system

log = logging.getLogger("safety_net.scheduler")


async def _maintenance(db: Database, clock: Clock, now: Any) -> list[tuple[str, str]]:
    """Two-person requests past their window lapse; erasures past their delay are carried out;
    grants past their end get their `expire` event. Logged as the system."""
    async with db.transaction() as session:
        ctx = AccessContext(principal=SYSTEM, session=session, db=db, policy=None,  # type: ignore[arg-type]
                            clock=clock, request_id=f"scheduler-{uuid.uuid4().hex}")
        await confirmations.lapse_due(ctx, now)
        await erasure.run_due(ctx, now)
        await consent.expire_due(ctx)
        published: list[tuple[str, str]] = ctx.cache.get("published", [])
    return published


@as_system
async def run_due(db: Database, clock: Clock) -> list[tuple[str, str]]:
    """Fire every due step this replica can claim; returns (recipient, inbox id) to publish."""
    now = clock.now()
    published: list[tuple[str, str]] = await _maintenance(db, clock, now)
    async with db.transaction() as session:
        due = list(await session.scalars(select(ScheduledStep).where(
            ScheduledStep.done_at.is_(None), ScheduledStep.due_at <= now)
            .order_by(ScheduledStep.due_at).limit(200)))
    for step in due:
        async with db.transaction() as session:
            claimed = await session.execute(
                update(ScheduledStep).where(ScheduledStep.id == step.id,
                                            ScheduledStep.done_at.is_(None))
                .values(done_at=now, outcome="claimed"))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another replica took it
            items: list[Any]  # alerts and her notices: each has a recipient and an ID
            if escalation.handles(step.kind):
                items = await escalation.fire(session, step, now)
            elif retention.handles(step.kind):
                items = await retention.fire(db, clock, session, step, now)
            elif step.kind in notices.STEPS:
                items = await notices.STEPS[step.kind](session, step, now)
            else:
                items = await REMINDERS.get(step.kind, _remind)(session, step, now)
            await session.execute(update(ScheduledStep).where(ScheduledStep.id == step.id)
                                  .values(outcome="fired" if items else "not_needed"))
            published += [(i.recipient, str(i.id)) for i in items]
    return published


async def _remind(session: Any, step: ScheduledStep, now: Any) -> list[Any]:
    measure = await session.get(Measure, step.subject_id)
    if measure is None or measure.status in ("done", "cancelled"):
        return []
    payload = {"measure": str(measure.id), "case": str(measure.case_id),
               "due_at": measure.due_at.isoformat() if measure.due_at else None}
    owner = await session.get(User, measure.owner_user_id) if measure.owner_user_id else None
    if owner is not None and owner.active and owner.org_id == measure.owner_org_id:
        # Her task: the reminder is hers (deactivated: back to the organisation's focal points).
        recipients = [(owner.subject, measure.owner_org_id)]
        payload["owner_person"] = str(owner.id)
    else:
        recipients = [(s, measure.owner_org_id)
                      for s in await notify.focal_points(session, measure.owner_org_id)]
    return await notify.notify(session, recipients, kind="task_due", subject_id=measure.id,
                               case_id=measure.case_id, at=now, payload=payload)


# Reminders by kind (a step of any other kind is a task's reminder).
REMINDERS = {justice.HEARING_REMINDER: justice.remind_hearing,
             checkins.CHECK_IN_MISSED: checkins.missed,
             risk.RISK_REVIEW_TASK: risk.review_task}


class Scheduler:
    """Runs `run_due` every few seconds in each replica and hands new items to the broker."""

    def __init__(self, db: Database, clock: Clock, after: Any) -> None:
        self.db, self.clock, self.after = db, clock, after
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> list[tuple[str, str]]:
        published = await run_due(self.db, self.clock)
        if published:
            await self.after(published)
        return published

    async def _run(self, interval: float) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # never stop escalating because one pass failed
                log.error("scheduler pass failed: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    def start(self, interval: float = 5.0) -> None:
        self._task = background_task(self._run(interval), "scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
