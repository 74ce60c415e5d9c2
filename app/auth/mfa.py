"""The TOTP second factor on the built-in issuer: enrolment, login check, admin reset.

Who must have one is a setting (`SAFETY_NET_MFA_ROLES`: focal points, org admins and auditors by
default). Such a person signing in with a password only gets a token that can do nothing but
enrol (see `principals.resolve`); once enrolled, login needs a valid code and the token says
`acr: "mfa"`. Step-up checks (`AccessContext.require_recent_mfa`) read that claim.

Enrolling a first factor (anyone's, and again after a reset) also takes a one-time enrolment
code issued by two people (`app.auth.enrolment`): the password alone, or one admin, never
enrols an authenticator. Replacing a confirmed factor takes a recent second factor instead.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import crypto
from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.auth import totp
from app.auth.principals import user_in_scope
from app.config import Settings
from app.errors import BadInput, Forbidden, NotFound
from app.tables.auth import TotpCredential
from app.tables.orgs import User

ISSUER_NAME = "Safety Net"


def mfa_roles(settings: Settings) -> frozenset[str]:
    """Roles that need a second factor: TOTP on the built-in issuer; in OIDC mode the
    provider's, read from its `acr`/`amr` (`OIDCVerifier.second_factor`)."""
    return frozenset(settings.mfa_roles)


def step_up(settings: Settings) -> dict[str, Any]:
    """AccessContext keyword arguments for the step-up check."""
    return {"step_up_acr": frozenset(settings.step_up_acr),
            "step_up_seconds": settings.step_up_seconds}


# TOTP seeds are staff data, not hers: sealed with a service key kept with the KEKs (never in
# the database), bound to the user and the column. Compact form so it fits the String(64)
# columns: "t1:" + base85(nonce 12 + the seed's 20 bytes + tag 16) = 63 characters.
SEAL_PREFIX = "t1:"


def seal_secret(keks: crypto.KeyEncryptionKeys, org_id: uuid.UUID | None, user_id: uuid.UUID,
                field: str, secret: str) -> str:
    raw = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(keks.service_key("totp")).encrypt(
        nonce, raw, crypto.associated(org_id, "totp_credentials", user_id, field))
    return SEAL_PREFIX + base64.b85encode(nonce + sealed).decode()


def open_secret(keks: crypto.KeyEncryptionKeys, org_id: uuid.UUID | None, user_id: uuid.UUID,
                field: str, stored: str | None) -> str | None:
    """The base32 seed, or None if absent or unreadable (altered, moved, or stored in clear:
    a code never matches, so the person asks her admin for a reset)."""
    if stored is None or not stored.startswith(SEAL_PREFIX):
        return None
    try:
        raw = base64.b85decode(stored[len(SEAL_PREFIX):])
        seed = AESGCM(keks.service_key("totp")).decrypt(
            raw[:12], raw[12:], crypto.associated(org_id, "totp_credentials", user_id, field))
    except (InvalidTag, ValueError):
        return None
    return base64.b32encode(seed).decode().rstrip("=")


def _keks(ctx: AccessContext) -> crypto.KeyEncryptionKeys:
    keks: crypto.KeyEncryptionKeys = ctx.db.keys
    return keks


@dataclass(frozen=True)
class Enrolment:
    """A new secret, shown once: as text and as an otpauth:// URI for a QR code."""

    secret: str
    uri: str


async def _credential(session: AsyncSession, user_id: uuid.UUID) -> TotpCredential | None:
    return await session.get(TotpCredential, user_id)


async def enrolled(session: AsyncSession, user_id: uuid.UUID) -> bool:
    cred = await _credential(session, user_id)
    return cred is not None and cred.secret is not None


def _own_user_id(ctx: AccessContext) -> uuid.UUID:
    if ctx.principal.kind is not PrincipalKind.USER:
        raise Forbidden("Only people signed in with the built-in issuer have a second factor here.")
    return ctx.principal.id


async def start_enrolment(ctx: AccessContext, enrolment_code: str | None = None) -> Enrolment:
    """A new pending secret for the caller. A first factor (none confirmed) needs her valid
    one-time enrolment code, spent here (`enrolment.CodeRefused` keeps the transaction, so a
    wrong try stays counted); replacing a confirmed one needs a recent step-up."""
    from app.auth import enrolment  # it sits on app.confirmations, which reaches this module

    user_id = _own_user_id(ctx)
    cred = await _credential(ctx.session, user_id)
    if cred is not None and cred.secret is not None:
        ctx.require_recent_mfa("mfa.enrol", target_type="User", target_id=user_id)
    else:
        await enrolment.use(ctx, user_id, enrolment_code)
    secret = totp.new_secret()
    if cred is None:
        cred = TotpCredential(user_id=user_id)
        ctx.session.add(cred)
    cred.pending_secret = seal_secret(_keks(ctx), ctx.principal.org_id, user_id,
                                      "pending_secret", secret)
    cred.updated_at = ctx.clock.now()
    await ctx.session.flush()
    ctx.record("mfa.enrol_start", target_type="User", target_id=user_id)
    account = f"{ctx.principal.org_slug}/{ctx.principal.name}"
    return Enrolment(secret=secret, uri=totp.provisioning_uri(secret, account=account,
                                                              issuer=ISSUER_NAME))


async def confirm_enrolment(ctx: AccessContext, code: str) -> None:
    """Make the pending secret the caller's second factor, given a current code from it."""
    from app.auth import enrolment

    user_id = _own_user_id(ctx)
    cred = await _credential(ctx.session, user_id)
    pending = open_secret(_keks(ctx), ctx.principal.org_id, user_id, "pending_secret",
                          cred.pending_secret if cred else None)
    if cred is None or pending is None:
        raise BadInput("Start enrolment first.", field="code")
    if cred.secret is None and not await enrolment.still_open(ctx, user_id):
        raise BadInput("Your enrolment code has expired since you started: ask for a new one.",
                       field="code")
    step = totp.matching_step(pending, code, time.time())
    if step is None:
        ctx.deny("mfa.enrol", target_type="User", target_id=user_id, reason="wrong code")
        raise BadInput("The code does not match; check the time on your device.", field="code")
    cred.secret = seal_secret(_keks(ctx), ctx.principal.org_id, user_id, "secret", pending)
    cred.pending_secret = None
    cred.enrolled_at = cred.updated_at = ctx.clock.now()
    cred.last_step = step
    await ctx.session.flush()
    ctx.record("mfa.enrol", target_type="User", target_id=user_id)


async def reset(ctx: AccessContext, user_id: uuid.UUID) -> User:
    """An org admin removes a person's second factor (a lost phone). She enrols again only with
    a new enrolment code, which takes two people: one admin alone cannot re-open her account."""
    await ctx.require("user", "manage")
    ctx.require_recent_mfa("mfa.reset", target_type="User", target_id=user_id)
    user = await user_in_scope(ctx.session, ctx.own_scope(), user_id)
    if user is None:
        raise NotFound()
    await remove_factor(ctx, user_id)
    return user


async def remove_factor(ctx: AccessContext, user_id: uuid.UUID, *, via: str | None = None) -> None:
    """Remove her factor (and a pending one) and void her unused enrolment codes. Logged."""
    from app.auth import enrolment, sessions

    cred = await _credential(ctx.session, user_id)
    if cred is not None:
        await ctx.session.delete(cred)
        await ctx.session.flush()
    await enrolment.void(ctx, user_id, why="factor reset")
    # Sessions opened with the removed factor end with it.
    await sessions.revoke_subject(ctx.session, f"user:{user_id}", "factor reset", ctx.clock.now())
    ctx.record("mfa.reset", target_type="User", target_id=user_id,
               details={"via": via} if via else None)


async def login_acr(session: AsyncSession, user: User, code: str | None,
                    keks: crypto.KeyEncryptionKeys) -> str | None:
    """'mfa' for a valid unused code of an enrolled person, 'pwd' when she has no second
    factor, None when the code is missing, wrong or replayed (or the seed is unreadable)."""
    cred = await _credential(session, user.id)
    if cred is None or cred.secret is None:
        return "pwd"
    secret = open_secret(keks, user.org_id, user.id, "secret", cred.secret)
    if secret is None:
        return None
    step = totp.matching_step(secret, code or "", time.time())
    if step is None:
        return None
    # Conditional update: of two sign-ins racing with one code, only one wins.
    used = await session.execute(
        update(TotpCredential)
        .where(TotpCredential.user_id == user.id,
               or_(TotpCredential.last_step.is_(None), TotpCredential.last_step < step))
        .values(last_step=step).execution_options(synchronize_session=False))
    return "mfa" if used.rowcount == 1 else None  # type: ignore[attr-defined]
