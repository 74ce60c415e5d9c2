"""Webhook channels: a person's own way to be woken at night (an SMS gateway, a Signal bridge, a
paging service), besides the inbox, the subscription and e-mail.

Content-free: the POST says which kind of alert, its opaque ID, its escalation level, when, and a
link to sign in and read it; never a name, a pseudonym or anything of a case. Signed with the
channel's own secret (`Safety-Net-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`).
Decided as the recipient at delivery time (`inbox.deliverable`, like e-mail). Retried with
backoff from stored state (`webhook_deliveries`): at-least-once, bounded, claimed by one replica
at a time. See docs/decisions/0021-webhook-channel.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import crypto
from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.db import background_task
from app.errors import BadInput, Forbidden, MfaEnrolmentRequired, NotFound
from app.notify import choices, inbox
from app.tables.channels import NotifyChannel, WebhookDelivery
from app.tables.notify import InboxItem
from app.tenancy import as_system

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger("safety_net.notify")

# The kinds worth waking someone for (the e-mailed kinds).
WAKING_KINDS = frozenset({"escalation", "referral_received", "incident_reported", "task_due",
                         "help_request_received", "check_in_missed"})
KINDS = ("webhook",)
MAX_CHANNELS = 5
MAX_LEVEL = 10
MAX_URL = 500
# Attempt 1 at once, then after 1, 3, 8 and 18 minutes: five attempts over ~30 minutes.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=3), timedelta(minutes=8),
           timedelta(minutes=18))
MAX_ATTEMPTS = len(BACKOFF) + 1
# A claim older than this is taken over (the replica that made it died mid-send); far longer
# than a send can take (TIMEOUT), so two live replicas never send the same delivery at once.
CLAIM_LEASE = timedelta(minutes=2)
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
# Deliveries sent at once by one pass: a hanging receiver holds up one slot, not the others.
PARALLEL = 4
SIGNATURE_HEADER = "Safety-Net-Signature"
SEAL_PREFIX = "w1:"
LOOPBACK_NAMES = {"localhost"}
# How far back the periodic pass looks for alerts that were never queued (a crash in between).
SWEEP_WINDOW = timedelta(minutes=15)


# --- the signing secret, sealed with a service key ---------------------------------------

def _aad(org_id: uuid.UUID, channel_id: uuid.UUID) -> bytes:
    return crypto.associated(org_id, "notify_channels", channel_id, "secret")


def seal_secret(keks: crypto.KeyEncryptionKeys, org_id: uuid.UUID, channel_id: uuid.UUID,
                secret: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(keks.service_key("webhook")).encrypt(nonce, secret.encode(),
                                                          _aad(org_id, channel_id))
    return SEAL_PREFIX + base64.b64encode(nonce + sealed).decode()


def open_secret(keks: crypto.KeyEncryptionKeys, org_id: uuid.UUID, channel_id: uuid.UUID,
                stored: str) -> str | None:
    """The secret, or None if unreadable (altered or moved to another row): nothing is sent."""
    if not stored.startswith(SEAL_PREFIX):
        return None
    try:
        raw = base64.b64decode(stored[len(SEAL_PREFIX):])
        return AESGCM(keks.service_key("webhook")).decrypt(
            raw[:12], raw[12:], _aad(org_id, channel_id)).decode()
    except (InvalidTag, ValueError):
        return None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value: `t=<unix>,v1=<hex HMAC-SHA256 over "<t>.<body>" keyed by the secret>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: float | None = None,
           tolerance: int = 300) -> bool:
    """What a receiver does (documented in the README): recompute, compare in constant time,
    refuse a timestamp more than `tolerance` seconds away (replays)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# --- a person's own channels ---------------------------------------------------------------

def checked_url(url: str, *, production: bool) -> str:
    """https to a named host; plain http only to this machine, outside production (tests, a
    bridge on the same host in development). No credentials in the URL, no link-local hosts."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise BadInput(f"A URL of at most {MAX_URL} characters is needed.", field="url")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError as exc:
        raise BadInput("Not a valid URL.", field="url") from exc
    if not host or parts.username or parts.password or parts.fragment:
        raise BadInput("A URL with a host, without credentials or fragment, is needed.",
                       field="url")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    loopback = host in LOOPBACK_NAMES or (address is not None and address.is_loopback)
    if address is not None and (address.is_link_local or address.is_multicast
                                or address.is_unspecified):
        raise BadInput("That address cannot receive alerts.", field="url")
    if parts.scheme == "https" and not loopback:
        return url
    if parts.scheme == "http" and loopback and not production:
        return url
    raise BadInput("The URL must use https (plain http only to this machine, in development).",
                   field="url")


def _own_user(ctx: AccessContext) -> uuid.UUID:
    if ctx.principal.kind is not PrincipalKind.USER or ctx.principal.org_id is None:
        ctx.deny("notify.channel", reason="not a person of an organisation")
        raise Forbidden("Only people of an organisation have alert channels.")
    if ctx.principal.mfa_pending:
        ctx.deny("notify.channel", reason="second factor required")
        raise MfaEnrolmentRequired()
    return ctx.principal.id


@dataclass(frozen=True)
class AddedChannel:
    channel: NotifyChannel
    secret: str  # shown once, never again


async def my_channels(ctx: AccessContext) -> list[NotifyChannel]:
    user_id = _own_user(ctx)
    return list(await ctx.session.scalars(select(NotifyChannel).where(
        NotifyChannel.user_id == user_id, NotifyChannel.active.is_(True))
        .order_by(NotifyChannel.created_at, NotifyChannel.id)))


async def add_channel(ctx: AccessContext, *, kind: str, url: str, min_level: int,
                      production: bool) -> AddedChannel:
    """A new channel for the caller, with a new signing secret returned once. Needs a recent
    second factor: a channel receives notice of every alert she gets. Logged (not the URL)."""
    user_id = _own_user(ctx)
    if kind not in KINDS:
        raise BadInput("Unknown channel kind.", field="kind")
    if not 0 <= min_level <= MAX_LEVEL:
        raise BadInput(f"The level is between 0 and {MAX_LEVEL}.", field="minLevel")
    checked = checked_url(url, production=production)
    ctx.require_recent_mfa("notify.channel_add", target_type="User", target_id=user_id)
    count = await ctx.session.scalar(select(func.count()).select_from(NotifyChannel).where(
        NotifyChannel.user_id == user_id, NotifyChannel.active.is_(True)))
    if (count or 0) >= MAX_CHANNELS:
        raise BadInput(f"At most {MAX_CHANNELS} channels per person: remove one first.",
                       field="url")
    secret = "whsec_" + secrets.token_urlsafe(32)
    channel = NotifyChannel(id=uuid.uuid4(), org_id=ctx.principal.org_id, user_id=user_id,
                            kind=kind, url=checked, min_level=min_level, active=True,
                            created_at=ctx.clock.now())
    channel.secret = seal_secret(ctx.db.keys, channel.org_id, channel.id, secret)
    ctx.session.add(channel)
    await ctx.session.flush()
    ctx.record("notify.channel_add", target_type="NotifyChannel", target_id=channel.id,
               details={"kind": kind, "min_level": min_level})
    return AddedChannel(channel=channel, secret=secret)


async def remove_channel(ctx: AccessContext, channel_id: uuid.UUID) -> NotifyChannel:
    """Stop using one of the caller's channels (deliveries still owed to it are withheld)."""
    user_id = _own_user(ctx)
    channel = await ctx.session.get(NotifyChannel, channel_id)
    if channel is None or channel.user_id != user_id or not channel.active:
        ctx.deny("notify.channel_remove", target_type="NotifyChannel", target_id=channel_id,
                 reason="not the caller's channel")
        raise NotFound()
    channel.active = False
    channel.removed_at = ctx.clock.now()
    await ctx.session.flush()
    ctx.record("notify.channel_remove", target_type="NotifyChannel", target_id=channel.id)
    return channel


# --- delivery ----------------------------------------------------------------------------

level_of = choices.level_of


def body_of(item: InboxItem, public_url: str) -> bytes:
    """The whole message: no name, pseudonym or case content, only what lets her sign in."""
    return json.dumps({"kind": item.kind, "alertId": str(item.id), "level": level_of(item),
                       "at": item.created_at.isoformat(),
                       "link": f"{public_url}/alerts/{item.id}"},
                      separators=(",", ":"), sort_keys=True).encode()


class Webhooks:
    """Queues and sends webhook deliveries. `after_commit` runs where e-mail is sent (new inbox
    items, once durable); `start` runs a periodic pass for retries in every replica."""

    def __init__(self, public_url: str, keys: crypto.KeyEncryptionKeys) -> None:
        self.public_url, self.keys = public_url.rstrip("/"), keys
        self._task: asyncio.Task[None] | None = None

    async def after_commit(self, runtime: Runtime, item_ids: list[str]) -> int:
        """Queue and send at once. Never fails the request whose alerts these are (they are
        committed already): what is not queued here, the periodic pass's sweep queues."""
        if not item_ids:
            return 0
        try:
            queued = await self.enqueue(runtime, item_ids)
            return await self.run_due(runtime) if queued else 0
        except Exception as exc:
            log.error("webhook delivery after commit failed: %s", type(exc).__name__)
            return 0

    async def tick(self, runtime: Runtime) -> int:
        """The periodic pass: queue what a crash between commit and queueing left out, then
        send every due delivery (first attempts and retries)."""
        await self.sweep(runtime)
        return await self.run_due(runtime)

    @as_system
    async def sweep(self, runtime: Runtime) -> int:
        """Recent waking alerts (SWEEP_WINDOW) of people with an active channel that have no
        delivery yet: queued now (`enqueue` is idempotent and skips what does not match)."""
        since = runtime.clock.now() - SWEEP_WINDOW
        async with runtime.db.transaction() as session:
            users = set(await session.scalars(select(NotifyChannel.user_id).where(
                NotifyChannel.active.is_(True))))
            if not users:
                return 0
            queued = select(WebhookDelivery.inbox_id).where(
                WebhookDelivery.created_at >= since)
            missing = list(await session.scalars(select(InboxItem.id).where(
                InboxItem.recipient.in_([f"user:{u}" for u in users]),
                InboxItem.kind.in_(WAKING_KINDS), InboxItem.created_at >= since,
                InboxItem.id.not_in(queued))))
        return await self.enqueue(runtime, [str(i) for i in missing]) if missing else 0

    @as_system
    async def enqueue(self, runtime: Runtime, item_ids: list[str]) -> int:
        """One pending delivery per (new waking item, matching active channel of its recipient).
        Whether she may still see it is decided later, at each attempt."""
        now = runtime.clock.now()
        queued = 0
        async with runtime.db.transaction() as session:
            items = list(await session.scalars(select(InboxItem).where(
                InboxItem.id.in_([uuid.UUID(i) for i in item_ids]),
                InboxItem.kind.in_(WAKING_KINDS))))
            for item in items:
                kind, _, raw = item.recipient.partition(":")
                if kind != "user":
                    continue
                # Her choice for this level names its channels; none: from their minLevel.
                chosen = await choices.choice_for(session, uuid.UUID(raw), level_of(item))
                which = (NotifyChannel.id.in_([uuid.UUID(w) for w in chosen.webhooks])
                         if chosen is not None else NotifyChannel.min_level <= level_of(item))
                channels = await session.scalars(select(NotifyChannel).where(
                    NotifyChannel.user_id == uuid.UUID(raw), NotifyChannel.active.is_(True),
                    which,
                    # Not alerts from before the channel existed (the sweep looks back).
                    NotifyChannel.created_at <= item.created_at))
                for channel in channels:
                    exists = await session.scalar(select(WebhookDelivery.id).where(
                        WebhookDelivery.channel_id == channel.id,
                        WebhookDelivery.inbox_id == item.id))
                    if exists is not None:
                        continue
                    try:  # two replicas' sweeps may queue the same one: the unique pair decides
                        async with session.begin_nested():
                            session.add(WebhookDelivery(
                                org_id=channel.org_id, channel_id=channel.id, inbox_id=item.id,
                                state="pending", attempts=0, next_attempt_at=now,
                                created_at=now))
                        queued += 1
                    except IntegrityError:
                        continue
        return queued

    async def run_due(self, runtime: Runtime, limit: int = 100) -> int:
        """Attempt every due delivery this replica can claim; returns how many were delivered."""
        gate = asyncio.Semaphore(PARALLEL)

        async def one(client: httpx.AsyncClient, delivery_id: uuid.UUID) -> int:
            async with gate:
                claimed = await self._claim(runtime, delivery_id)
                if claimed is None:
                    return 0  # another replica has it
                return await self._attempt(runtime, client, *claimed)

        due = await self._due(runtime, limit)
        if not due:
            return 0  # no client: building one (its TLS context) cost ~12 ms each idle second
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            return sum(await asyncio.gather(*(one(client, d) for d in due)))

    @as_system
    async def _due(self, runtime: Runtime, limit: int) -> list[uuid.UUID]:
        now = runtime.clock.now()
        async with runtime.db.transaction() as session:
            return list(await session.scalars(select(WebhookDelivery.id).where(
                WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.claimed_at.is_(None),
                    WebhookDelivery.claimed_at < now - CLAIM_LEASE))
                .order_by(WebhookDelivery.next_attempt_at).limit(limit)))

    @as_system
    async def _claim(self, runtime: Runtime, delivery_id: uuid.UUID
                     ) -> tuple[WebhookDelivery, NotifyChannel, InboxItem | None] | None:
        """UPDATE … WHERE unclaimed (or the lease ran out): one replica wins, the others skip."""
        now = runtime.clock.now()
        async with runtime.db.transaction() as session:
            won = await session.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.state == "pending",
                or_(WebhookDelivery.claimed_at.is_(None),
                    WebhookDelivery.claimed_at < now - CLAIM_LEASE))
                .values(claimed_at=now))
            if won.rowcount != 1:  # type: ignore[attr-defined]
                return None
            delivery = await session.get(WebhookDelivery, delivery_id)
            assert delivery is not None
            channel = await session.get(NotifyChannel, delivery.channel_id)
            assert channel is not None
            item = await session.get(InboxItem, delivery.inbox_id)
            return delivery, channel, item

    async def _attempt(self, runtime: Runtime, client: httpx.AsyncClient,
                       delivery: WebhookDelivery, channel: NotifyChannel,
                       item: InboxItem | None) -> int:
        if item is None or not channel.active:
            await self._finish(runtime, delivery.id, "withheld", "channel or alert gone")
            return 0
        if not await inbox.deliverable(runtime, item, f"webhook-{uuid.uuid4().hex}"):
            await self._finish(runtime, delivery.id, "withheld", "not deliverable")
            return 0
        secret = open_secret(self.keys, channel.org_id, channel.id, channel.secret)
        if secret is None:
            await self._finish(runtime, delivery.id, "failed", "secret unreadable")
            return 0
        body = body_of(item, self.public_url)
        headers = {"content-type": "application/json",
                   SIGNATURE_HEADER: sign(secret, int(time.time()), body),
                   # The same on every attempt: receivers drop duplicates (at-least-once).
                   "Safety-Net-Delivery": str(delivery.id)}
        try:
            response = await client.post(channel.url, content=body, headers=headers)
            status = f"http {response.status_code}"
            ok = 200 <= response.status_code < 300
        except httpx.TimeoutException:
            status, ok = "timeout", False
        except httpx.HTTPError as exc:
            status, ok = type(exc).__name__[:40], False
        if ok:
            await self._finish(runtime, delivery.id, "delivered", status, attempts=1)
            return 1
        log.warning("webhook not delivered: %s", status)
        await self._retry_or_fail(runtime, delivery, status)
        return 0

    @as_system
    async def _finish(self, runtime: Runtime, delivery_id: uuid.UUID, state: str, status: str,
                      attempts: int = 0) -> None:
        async with runtime.db.transaction() as session:
            await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                                  .values(state=state, last_status=status,
                                          attempts=WebhookDelivery.attempts + attempts,
                                          finished_at=runtime.clock.now(), claimed_at=None))

    @as_system
    async def _retry_or_fail(self, runtime: Runtime, delivery: WebhookDelivery,
                             status: str) -> None:
        attempts = delivery.attempts + 1
        now = runtime.clock.now()
        values: dict[str, Any] = {"attempts": attempts, "last_status": status, "claimed_at": None}
        if attempts >= MAX_ATTEMPTS:
            values.update(state="failed", finished_at=now)
        else:
            values["next_attempt_at"] = now + BACKOFF[attempts - 1]
        async with runtime.db.transaction() as session:
            await session.execute(update(WebhookDelivery)
                                  .where(WebhookDelivery.id == delivery.id).values(**values))

    # --- the periodic pass ----------------------------------------------------------------

    async def _run(self, runtime: Runtime, interval: float) -> None:
        while True:
            try:
                await self.tick(runtime)
            except Exception as exc:  # never stop retrying because one pass failed
                log.error("webhook pass failed: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    def start(self, runtime: Runtime, interval: float = 15.0) -> None:
        self._task = background_task(self._run(runtime, interval), "webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

