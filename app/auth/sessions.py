"""People's sessions on the built-in issuer: rotating refresh tokens with reuse detection.

A sign-in (password, with her second factor if she has one) opens a session and answers an
access token and a refresh token. Exchanging the refresh token (`grant_type=refresh_token`)
spends it and answers a new pair; presenting a spent one again means two parties hold it (it was
stolen, or replayed): the whole session is revoked and both lose it. Sign-out, deactivation,
a password or factor reset revoke too. Access tokens carry the session id (`sid`) and admission
checks the session in the database on every request, so a revocation bites on every replica at
the next request (`principals.resolve`).

What a refreshed access token says about her sign-in does not grow with refreshes: `acr` and
`auth_time` are the sign-in's, so her second factor counts for the session's life at most
(`SAFETY_NET_SESSION_MAX`), and step-up actions, which want `auth_time` within
`SAFETY_NET_STEP_UP_SECONDS`, need a fresh sign-in once that has passed.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import tenancy
from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.auth.tokens import Issuer
from app.config import Settings
from app.errors import Forbidden
from app.tables.auth import AuthSession, RefreshToken
from app.tables.consent import PeacebuilderAccount
from app.tables.orgs import User

PREFIX = "snr_"  # recognisable in a secret scanner's rules and in logs that should not have it


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Refreshed:
    """The outcome of an exchange: `session` is set when it worked (with the new token)."""

    session: AuthSession | None
    refresh_token: str | None
    reason: str | None  # why it was refused: unknown, expired, revoked, reuse, inactive


async def open_session(db: AsyncSession, settings: Settings, *, subject: str,
                       org_id: uuid.UUID | None, acr: str, now: datetime,
                       duress: bool = False) -> tuple[AuthSession, str]:
    """A new session for a sign-in that just happened, and its first refresh token. Her sessions
    that ended more than `KEEP_ENDED` ago go (no background job: the table holds each person's
    live sessions and recently ended ones only)."""
    await _prune(db, subject, now)
    sess = AuthSession(id=uuid.uuid4(), subject=subject, org_id=org_id, acr=acr, auth_time=now,
                       created_at=now, duress=duress,
                       expires_at=now + timedelta(seconds=settings.session_max_seconds))
    db.add(sess)
    await db.flush()
    return sess, await _add_token(db, settings, sess, now)


KEEP_ENDED = timedelta(days=1)  # an ended session's tokens still answer "revoked" for a while


async def _prune(db: AsyncSession, subject: str, now: datetime) -> None:
    cutoff = now - KEEP_ENDED
    ended = select(AuthSession.id).where(
        AuthSession.subject == subject,
        or_(AuthSession.expires_at < cutoff, AuthSession.revoked_at < cutoff))
    await db.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(ended))
                     .execution_options(synchronize_session=False))
    await db.execute(delete(AuthSession).where(AuthSession.id.in_(ended))
                     .execution_options(synchronize_session=False))


async def _add_token(db: AsyncSession, settings: Settings, sess: AuthSession,
                     now: datetime) -> str:
    token = _new_token()
    expires = min(now + timedelta(seconds=settings.refresh_ttl_seconds), sess.expires_at)
    db.add(RefreshToken(session_id=sess.id, org_id=sess.org_id, token_hash=token_hash(token),
                        issued_at=now, expires_at=expires))
    await db.flush()
    return token


async def exchange(db: AsyncSession, settings: Settings, token: str, now: datetime) -> Refreshed:
    """Spend `token` for a new one. A spent token presented again revokes its session (the
    revocation is written whatever the caller does next: the transaction commits normally)."""
    row = (await db.execute(
        select(RefreshToken, AuthSession).join(AuthSession, AuthSession.id == RefreshToken.session_id)
        .where(RefreshToken.token_hash == token_hash(token)))).first()
    if row is None:
        return Refreshed(None, None, "unknown")
    found, sess = row[0], row[1]
    if sess.revoked_at is not None:
        return Refreshed(None, None, "revoked")
    if found.used_at is not None:
        await revoke(db, sess.id, "reuse", now)
        return Refreshed(None, None, "reuse")
    if found.expires_at <= now or sess.expires_at <= now:
        return Refreshed(None, None, "expired")
    # Conditional: of two exchanges racing with one token only one wins; the other is a reuse.
    spent = await db.execute(
        update(RefreshToken).where(RefreshToken.id == found.id, RefreshToken.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        await revoke(db, sess.id, "reuse", now)
        return Refreshed(None, None, "reuse")
    if not await _still_active(db, sess):
        await revoke(db, sess.id, "inactive", now)
        return Refreshed(None, None, "inactive")
    if settings.issuer == "oidc" and sess.subject.startswith("user:"):
        # Opened before the switch to OIDC mode: staff now sign in at the provider, and a
        # built-in token for them would be refused (`Runtime.verify_token`).
        await revoke(db, sess.id, "staff sign in at the provider", now)
        return Refreshed(None, None, "revoked")
    return Refreshed(sess, await _add_token(db, settings, sess, now), None)


async def _still_active(db: AsyncSession, sess: AuthSession) -> bool:
    kind, _, raw = sess.subject.partition(":")
    subject_id = uuid.UUID(raw)
    if kind == "user":
        user = await db.get(User, subject_id)
        return user is not None and user.active and user.org_id == sess.org_id
    if kind == "peacebuilder":
        account = await db.scalar(select(PeacebuilderAccount).where(
            PeacebuilderAccount.peacebuilder_id == subject_id))
        return account is not None and account.active
    return False


async def revoke(db: AsyncSession, session_id: uuid.UUID, reason: str, now: datetime) -> bool:
    """End one session (if still live); True if it was."""
    done = await db.execute(
        update(AuthSession).where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason).execution_options(synchronize_session=False))
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def revoke_subject(db: AsyncSession, subject: str, reason: str, now: datetime) -> int:
    """End every live session of a person (`user:<id>` or `peacebuilder:<id>`): deactivation,
    a password or factor reset, a sign-out everywhere, a suspended login. Returns how many."""
    done = await db.execute(
        update(AuthSession).where(AuthSession.subject == subject, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason).execution_options(synchronize_session=False))
    return int(done.rowcount)  # type: ignore[attr-defined]


async def revoke_by_token(db: AsyncSession, token: str, reason: str,
                          now: datetime) -> AuthSession | None:
    """Sign-out with a refresh token (spent or not): its session ends. None if unknown."""
    sess = await db.scalar(
        select(AuthSession).join(RefreshToken, RefreshToken.session_id == AuthSession.id)
        .where(RefreshToken.token_hash == token_hash(token)))
    if sess is not None:
        await revoke(db, sess.id, reason, now)
    return sess


def token_response(issuer: Issuer, sess: AuthSession, refresh_token: str, now: datetime,
                   **extra: Any) -> dict[str, Any]:
    """The OAuth token response for a session: an access token bound to it (`sid`) with the
    sign-in's `acr` and `auth_time`, expiring no later than the session, and the refresh token."""
    remaining = int((sess.expires_at - now).total_seconds())
    org = str(sess.org_id) if sess.org_id is not None else None
    access, ttl = issuer.issue(subject=sess.subject, org_id=org, acr=sess.acr,
                               auth_time=int(sess.auth_time.timestamp()),
                               session_id=str(sess.id), max_ttl=max(remaining, 1))
    return {"access_token": access, "token_type": "Bearer", "expires_in": ttl,
            "refresh_token": refresh_token, **extra}


async def sign_out(ctx: AccessContext, *, everywhere: bool = False) -> int:
    """The caller ends the session her token belongs to, or all of hers (`everywhere`).
    Returns how many sessions ended. Her access tokens stop working at their next request."""
    p = ctx.principal
    if p.kind not in (PrincipalKind.USER, PrincipalKind.PEACEBUILDER):
        raise Forbidden("Only people have sessions to sign out of; a machine client's tokens "
                        "simply expire.")
    now = ctx.clock.now()

    async def end(db: AsyncSession) -> int:
        # A duress session stands for a decoy: its sessions are hers (`duress_of`).
        subject = f"peacebuilder:{p.duress_of}" if p.duress_of is not None else p.subject
        if everywhere:
            return await revoke_subject(db, subject, "sign-out everywhere", now)
        if p.session_id is not None:
            return int(await revoke(db, p.session_id, "sign-out", now))
        return 0

    if p.duress_of is not None and ctx.db.dialect == "postgresql":
        # Row-level security shows a decoy none of her sessions: ended in the system scope.
        with tenancy.using(tenancy.SYSTEM):
            async with ctx.db.transaction() as db:
                ended = await end(db)
    else:
        ended = await end(ctx.session)
    ctx.record("auth.logout", target_type="Session", target_id=p.session_id,
               details={"everywhere": everywhere, "sessions": ended})
    return ended
