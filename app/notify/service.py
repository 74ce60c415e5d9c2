"""Creating inbox items for the people who must act, and emailing a link to them."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import uuid
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import ids
from app.access.context import AccessContext
from app.notify import choices, inbox
from app.notify.chain import active_with_roles
from app.tables.notify import AlertKind, InboxItem, OutboxEntry
from app.tables.orgs import User
from app.tenancy import as_system

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger("safety_net.notify")
ALERT_KINDS = frozenset(k.value for k in AlertKind)
# A request for help from a woman without a case is as urgent as an incident reported.
EMAILED_KINDS = {"escalation", "referral_received", "incident_reported", "task_due",
                 "help_request_received", "check_in_missed"}


async def focal_points(session: AsyncSession, org_id: uuid.UUID) -> list[str]:
    """The organisation's active focal points (a deactivated person is never a recipient)."""
    return await active_with_roles(session, org_id, ("focal_point",))


async def notify(ctx_or_session: AccessContext | AsyncSession, recipients: list[tuple[str, uuid.UUID]],
                 *, kind: str, subject_id: uuid.UUID | None, case_id: uuid.UUID | None,
                 payload: dict[str, Any], at: Any) -> list[InboxItem]:
    """Store one inbox item per recipient in the caller's transaction (IDs and codes only), each
    with its outbox row: the outbox worker publishes it once this transaction has committed."""
    if kind not in ALERT_KINDS:
        # A programming error, not bad input: an unknown kind would break every client that
        # reads InboxAlert.kind as the closed set it is declared as.
        raise ValueError(f"unknown alert kind {kind!r}")
    session = ctx_or_session.session if isinstance(ctx_or_session, AccessContext) else ctx_or_session
    items = []
    for subject, org_id in dict.fromkeys(recipients):
        item = InboxItem(recipient=subject, org_id=org_id, kind=kind, subject_id=subject_id,
                         case_id=case_id, payload=payload, created_at=at)
        session.add(item)
        items.append(item)
    await session.flush()
    session.add_all([OutboxEntry(item_id=i.id, recipient=i.recipient, org_id=i.org_id,
                                 created_at=i.created_at, attempts=0) for i in items])
    await session.flush()
    if isinstance(ctx_or_session, AccessContext):
        ctx_or_session.cache.setdefault("published", []).extend(
            (i.recipient, str(i.id)) for i in items)
    return items


class Mailer:
    """SMTP delivery of alert links. Configured by SAFETY_NET_SMTP_* settings; off when no host."""

    def __init__(self, host: str, port: int, sender: str, public_url: str) -> None:
        self.host, self.port, self.sender, self.public_url = host, port, sender, public_url

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def _send(self, to: str, item: InboxItem) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = f"Safety Net alert: {item.kind.replace('_', ' ')}"
        # A link only: no pseudonym, no case content, nothing about her.
        message.set_content(f"You have a new Safety Net alert ({item.kind}).\n"
                            f"Open it after signing in: {self.public_url}/alerts/"
                            f"{ids.encode('Alert', item.id)}\n")
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            smtp.send_message(message)

    async def deliver(self, runtime: Runtime, item_ids: list[str]) -> int:
        """Email the new items that warrant it, each only if its recipient may still see it
        (`inbox.deliverable`: the inbox's and the subscription's decision, made as her, now);
        marks them emailed. Returns how many were sent."""
        if not self.enabled or not item_ids:
            return 0
        sent = 0
        for item, address in await self._candidates(runtime.db, item_ids):
            if not await inbox.deliverable(runtime, item, f"mail-{uuid.uuid4().hex}"):
                continue
            try:
                await asyncio.to_thread(self._send, address, item)
            except OSError as exc:
                log.warning("email not sent: %s", type(exc).__name__)
                continue
            await self._mark_emailed(runtime.db, item)
            sent += 1
        return sent

    @as_system
    async def _candidates(self, db: Any, item_ids: list[str]) -> list[tuple[InboxItem, str]]:
        """New items of a kind worth an email, addressed to an active user with an address."""
        found = []
        async with db.transaction() as session:
            items = list(await session.scalars(select(InboxItem).where(
                InboxItem.id.in_([uuid.UUID(i) for i in item_ids]),
                InboxItem.emailed_at.is_(None), InboxItem.kind.in_(EMAILED_KINDS))))
            for item in items:
                if not item.recipient.startswith("user:"):
                    continue
                user = await session.get(User, uuid.UUID(item.recipient.split(":", 1)[1]))
                if user is None or not user.email or not user.active:
                    continue
                chosen = await choices.choice_for(session, user.id, choices.level_of(item))
                if chosen is not None and not chosen.email:
                    continue  # she chose no e-mail at this level
                found.append((item, user.email))
        return found

    @as_system
    async def _mark_emailed(self, db: Any, item: InboxItem) -> None:
        async with db.transaction() as session:
            await session.execute(update(InboxItem).where(InboxItem.id == item.id)
                                  .values(emailed_at=item.created_at))
