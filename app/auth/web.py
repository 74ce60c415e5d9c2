"""The dashboard's browser sessions, server side (docs/decisions/0036-dashboard.md).

The browser holds one random secret in an HttpOnly, SameSite=Strict cookie; the row it names
(by SHA-256) holds the person's access and refresh tokens from the API's own sign-in, sealed
with a service key kept outside the database. Every page runs its GraphQL with that access
token, so admission, revocation, consent and the access log are the API's; the dashboard
refreshes the token through the API's refresh grant when it runs out. Rows are read and written
in the system scope only.

A session ends when the person signs out, when its `AuthSession` ends (the next page sees 401),
after `IDLE` without a page, or at the sign-in's own end (`SAFETY_NET_SESSION_MAX`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, or_, select, update

from app import tenancy
from app.tables.auth import WebSession

if TYPE_CHECKING:
    from app.runtime import Runtime

IDLE = timedelta(minutes=30)  # a shared or seized computer: an idle dashboard signs itself out
LANGUAGES = ("en", "fr", "es", "ar", "sw")


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str | None  # None: an enrolment-only token, which cannot be refreshed
    access_expires_at: datetime


@dataclass(frozen=True)
class Browser:
    id: str
    subject: str
    tokens: Tokens
    purpose: str | None
    language: str
    expires_at: datetime


def session_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(runtime: Runtime) -> AESGCM:
    return AESGCM(runtime.db.keys.service_key("web_session"))


def _seal(runtime: Runtime, sid: str, tokens: Tokens) -> str:
    raw = json.dumps({"a": tokens.access, "r": tokens.refresh,
                      "e": tokens.access_expires_at.isoformat()}).encode()
    nonce = secrets.token_bytes(12)
    return base64.b64encode(nonce + _key(runtime).encrypt(nonce, raw, sid.encode())).decode()


def _open(runtime: Runtime, sid: str, sealed: str) -> Tokens | None:
    try:
        raw = base64.b64decode(sealed)
        data = json.loads(_key(runtime).decrypt(raw[:12], raw[12:], sid.encode()))
        return Tokens(data["a"], data["r"], datetime.fromisoformat(data["e"]))
    except (InvalidTag, ValueError, KeyError, TypeError):
        return None  # altered, moved from another row, or sealed under another key


def csrf_token(runtime: Runtime, secret: str) -> str:
    """The form token of a browser session (synchronizer pattern, derived: nothing stored)."""
    mac = hmac.new(runtime.db.keys.service_key("web_csrf"), secret.encode(), hashlib.sha256)
    return mac.hexdigest()


def csrf_ok(runtime: Runtime, secret: str, sent: object) -> bool:
    """`sent` as it came (a form field may be a file part, or text no token ever holds)."""
    return isinstance(sent, str) and hmac.compare_digest(csrf_token(runtime, secret).encode(),
                                                         sent.encode(errors="replace"))


def flow_mac(runtime: Runtime, payload: bytes) -> str:
    """The seal of a sign-in flow's cookie (OIDC state, nonce, verifier: schema/web/oidc.py)."""
    return hmac.new(runtime.db.keys.service_key("web_oidc"), payload, hashlib.sha256).hexdigest()


async def open_browser(runtime: Runtime, *, subject: str, tokens: Tokens, language: str,
                       lifetime: timedelta) -> str:
    """A new browser session after a sign-in; answers the cookie's secret. The person's
    sessions that ended (idle or expired) go."""
    now = runtime.clock.now()
    secret = secrets.token_urlsafe(32)
    sid = session_id(secret)
    with tenancy.using(tenancy.SYSTEM):
        async with runtime.db.transaction() as session:
            await session.execute(delete(WebSession).where(
                WebSession.subject == subject,
                or_(WebSession.expires_at <= now, WebSession.last_seen_at <= now - IDLE))
                .execution_options(synchronize_session=False))
            session.add(WebSession(
                id=sid, subject=subject, tokens=_seal(runtime, sid, tokens), purpose=None,
                language=language if language in LANGUAGES else "en", created_at=now,
                last_seen_at=now, expires_at=now + lifetime))
    return secret


async def load(runtime: Runtime, secret: str | None, *, touch: bool = True) -> Browser | None:
    """The browser session of a cookie, or None (unknown, idle, expired, unreadable: the row
    goes). Each page moves its idle clock on; `touch=False` (what the page does by itself: its
    live stream, the refreshes that stream triggers) leaves it, so an open page never keeps an
    idle session alive."""
    if not secret or len(secret) > 100:
        return None
    sid = session_id(secret)
    now = runtime.clock.now()
    with tenancy.using(tenancy.SYSTEM):
        async with runtime.db.transaction() as session:
            row = await session.get(WebSession, sid)
            if row is None:
                return None
            tokens = _open(runtime, sid, row.tokens)
            if tokens is None or row.expires_at <= now or row.last_seen_at <= now - IDLE:
                await session.delete(row)
                return None
            if touch:
                row.last_seen_at = now
            return Browser(sid, row.subject, tokens, row.purpose, row.language, row.expires_at)


async def update_browser(runtime: Runtime, browser: Browser, *, tokens: Tokens | None = None,
                         purpose: str | bool | None = False, language: str | None = None) -> None:
    """Store new tokens (after a refresh), a declared purpose (`None` clears it) or a
    language. `purpose=False` leaves it as it is."""
    values: dict[str, object] = {}
    if tokens is not None:
        values["tokens"] = _seal(runtime, browser.id, tokens)
    if purpose is not False:
        values["purpose"] = purpose
    if language is not None and language in LANGUAGES:
        values["language"] = language
    if not values:
        return
    with tenancy.using(tenancy.SYSTEM):
        async with runtime.db.transaction() as session:
            await session.execute(update(WebSession).where(WebSession.id == browser.id)
                                  .values(**values).execution_options(synchronize_session=False))


async def close_browser(runtime: Runtime, browser_id: str) -> None:
    with tenancy.using(tenancy.SYSTEM):
        async with runtime.db.transaction() as session:
            await session.execute(delete(WebSession).where(WebSession.id == browser_id)
                                  .execution_options(synchronize_session=False))


async def live_browsers(runtime: Runtime, subject: str) -> int:
    """How many browser sessions of a person are stored (tests and the operator's view)."""
    with tenancy.using(tenancy.SYSTEM):
        async with runtime.db.transaction() as session:
            rows = await session.scalars(select(WebSession.id).where(WebSession.subject == subject))
            return len(list(rows))
