"""One-time enrolment codes: nobody enrols a first second factor with a password alone.

A password is known to more than its owner (the admin who created or reset it, anyone who read
it over her shoulder). If the password alone let someone enrol an authenticator, whoever knew it
would own the account for good — and step-up, which trusts `acr: mfa`, with it. So enrolling a
first factor (or one after a reset) also takes a code that:

- is issued under the two-person rule (`app/confirmations`, action `mfa.enrolment_code`): an org
  admin or a focal point of the person's organisation asks; a *focal point* other than the one
  who asked, other than the person the code is for, and other than whoever last set her password
  confirms — or, for the very first people of a deployment, an operator issues it at the console
  (`safety-net users enrolment-code`);
- is shown exactly once, to the person who confirmed it (`claimEnrolmentCode`), never to the one
  who asked: the one who asked is typically the admin who set the password, so no one person
  ever holds both. It is handed over out of band (in person, by phone); the service never
  emails it and never logs it;
- has 100 random bits, lives 72 hours from confirmation, works once, and is locked after five
  wrong tries (counted in the database); only an HMAC of it is stored, under a service key kept
  with the KEKs, bound to the code's row and person;
- is voided when her factor or her password is reset, or a newer code is issued.

Replacing a confirmed factor needs no code: it needs a recent second factor (step-up).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import crypto
from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.auth.principals import user_in_scope
from app.confirmations import service as confirmations
from app.errors import BadInput, Conflict, Forbidden, NotFound
from app.tables.auth import EnrolmentCode, EnrolmentCodeStatus, TotpCredential
from app.tables.confirmations import Confirmation
from app.tables.orgs import User

ACTION = "mfa.enrolment_code"
# Who confirms, and so who receives the code: a focal point (the guidance's accountable person;
# by default unable to set passwords, which is an admin's right).
CONFIRMER_ROLE = "focal_point"
LIFETIME = timedelta(hours=72)
MAX_ATTEMPTS = 5
OPERATOR = "system"  # `issued_by` of a code an operator issued at the console

# Crockford's base32: no I, L, O or U, so a code read aloud or copied by hand survives.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 20  # 100 bits
GROUP = 5
_LOOKALIKES = str.maketrans("ILO", "110")
LIVE = (EnrolmentCodeStatus.ISSUED.value, EnrolmentCodeStatus.CLAIMED.value)


class CodeRefused(BadInput):
    """The code offered to start enrolment was missing, wrong, expired, used or locked.

    Unlike other input errors, the request's transaction is *kept*: it holds the counted
    attempt (and the lock), which must outlive the refusal."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="enrolmentCode")


@dataclass(frozen=True)
class IssuedCode:
    """A code in clear, returned once to the one person who may see it; never stored."""

    code: str
    expires_at: datetime
    user_id: uuid.UUID

    def __repr__(self) -> str:  # never in a traceback, a log line or a debugger's dump
        return f"IssuedCode(code=[redacted], expires_at={self.expires_at!r}, user_id={self.user_id})"


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i:i + GROUP] for i in range(0, LENGTH, GROUP))


def normalise(code: str) -> str:
    """What people type: any case, spaces or dashes, and the letters Crockford reads as digits."""
    text = code.upper().replace("-", "").replace(" ", "")
    return text.translate(_LOOKALIKES)


def digest(keks: crypto.KeyEncryptionKeys, row: EnrolmentCode, code: str) -> str:
    """HMAC-SHA256 under a service key that is not in the database, bound to the row and the
    person: a database dump alone cannot test guesses, and a hash cannot be moved to another."""
    message = f"{row.id}:{row.user_id}:{normalise(code)}".encode()
    return "h1:" + hmac.new(keks.service_key("enrolment"), message, hashlib.sha256).hexdigest()


def _keks(ctx: AccessContext) -> crypto.KeyEncryptionKeys:
    keks: crypto.KeyEncryptionKeys = ctx.db.keys
    return keks


async def _has_factor(session: AsyncSession, user_id: uuid.UUID) -> bool:
    cred = await session.get(TotpCredential, user_id)
    return cred is not None and cred.secret is not None


# --- issuing: two people, or an operator --------------------------------------------------------

async def request(ctx: AccessContext, user_id: uuid.UUID) -> Confirmation:
    """An org admin or a focal point asks for a code for a person of the same organisation; a
    second person (a focal point) must confirm it. Logged."""
    await ctx.require("enrolment_code", "request", target_type="User", target_id=str(user_id))
    if ctx.principal.kind is not PrincipalKind.USER:
        raise Forbidden("Only a person of the organisation can do this.")
    ctx.require_recent_mfa(ACTION, target_type="User", target_id=user_id)
    user = await user_in_scope(ctx.session, ctx.own_scope(), user_id)
    if user is None:
        raise NotFound()
    if user.id == ctx.principal.id:
        raise BadInput("You cannot ask for your own enrolment code.", field="userId")
    if not user.active:
        raise BadInput("This account is deactivated: reactivate it first.", field="userId")
    if await _has_factor(ctx.session, user.id):
        raise Conflict("This person already has a second factor. If it is lost, an "
                       "administrator resets it first (resetUserTotp).")
    if await confirmations.pending_of(ctx, action=ACTION, target_id=user.id) is not None:
        raise Conflict("A code for this person is already waiting for a second person.")
    assert ctx.org_id is not None
    excluded = {ctx.principal.subject, user.subject, user.password_set_by}
    eligible = [s for s in await confirmations.holders(ctx, ctx.org_id, CONFIRMER_ROLE)
                if s not in excluded]
    if not eligible:
        raise BadInput(
            "An enrolment code needs a focal point of your organisation to confirm it and "
            "receive it (two-person rule): not you, not the person it is for, and not whoever "
            "set their password. Your organisation has no such focal point. An operator can "
            "issue the first codes (`safety-net users enrolment-code`).", field="userId")
    found = await confirmations.request(ctx, action=ACTION, target_id=user.id,
                                        peacebuilder_id=None, required_role=CONFIRMER_ROLE,
                                        any_staff_may_ask=True)
    ctx.record(f"{ACTION}.request", target_type="User", target_id=user.id,
               details={"confirmation": str(found.id)})
    return found


@confirmations.on_confirmed(ACTION)
async def _confirmed(ctx: AccessContext, c: Confirmation) -> None:
    """The second person confirmed: a code now exists (not yet shown) that only she may claim."""
    user = await ctx.session.get(User, c.target_id)
    if user is None or user.org_id != c.org_id:
        raise NotFound()
    if ctx.principal.id == user.id:
        ctx.deny("two_person.confirm", target_type="Confirmation", target_id=c.id,
                 reason="two-person rule: the person the code is for cannot confirm it")
        raise Forbidden("The person the code is for cannot confirm it: another focal point must.")
    if user.password_set_by is not None and ctx.principal.subject == user.password_set_by:
        ctx.deny("two_person.confirm", target_type="Confirmation", target_id=c.id,
                 reason="two-person rule: who set the password cannot receive the code")
        raise Forbidden("You set this person's password, so you cannot also receive their "
                        "enrolment code: another focal point must confirm it.")
    if not user.active:
        raise Conflict("This account was deactivated meanwhile: nothing was issued.")
    if await _has_factor(ctx.session, user.id):
        raise Conflict("This person enrolled a second factor meanwhile: nothing was issued.")
    now = ctx.clock.now()
    await void(ctx, user.id, why="replaced")
    row = EnrolmentCode(id=uuid.uuid4(), org_id=c.org_id, user_id=user.id, confirmation_id=c.id,
                        requested_by=c.requested_by, issued_by=ctx.principal.subject,
                        issued_at=now, expires_at=now + LIFETIME, attempts=0,
                        status=EnrolmentCodeStatus.ISSUED.value)
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.record(f"{ACTION}.issue", target_type="User", target_id=user.id,
               details={"enrolment_code": str(row.id), "confirmation": str(c.id)})


async def claim(ctx: AccessContext, confirmation_id: uuid.UUID) -> IssuedCode:
    """The code in clear, once, to the person who confirmed it (recent second factor)."""
    if ctx.principal.kind is not PrincipalKind.USER or ctx.org_id is None:
        raise Forbidden("Only the person who confirmed it receives the code.")
    ctx.require_recent_mfa(f"{ACTION}.claim", target_type="Confirmation",
                           target_id=confirmation_id)
    row = await ctx.session.scalar(select(EnrolmentCode).where(
        EnrolmentCode.confirmation_id == confirmation_id, EnrolmentCode.org_id == ctx.org_id))
    if row is None:
        raise NotFound()
    if row.issued_by != ctx.principal.subject:
        ctx.deny(f"{ACTION}.claim", target_type="User", target_id=row.user_id,
                 reason="only the person who confirmed it receives the code",
                 details={"enrolment_code": str(row.id)})
        raise Forbidden("Only the person who confirmed it receives the code.")
    now = ctx.clock.now()
    if row.status != EnrolmentCodeStatus.ISSUED.value:
        raise Conflict("This code was already shown (it is shown once) or is no longer valid. "
                       "Ask for a new one if it was lost.")
    if now >= row.expires_at:
        raise Conflict("This code expired before it was shown. Ask for a new one.")
    user = await ctx.session.get(User, row.user_id)
    if user is None or (user.password_set_by is not None
                        and user.password_set_by == ctx.principal.subject):
        raise Forbidden("You set this person's password, so you cannot also receive their "
                        "enrolment code.")
    code = new_code()
    # Conditional: of two claims racing, only one is ever shown a code.
    shown = await ctx.session.execute(
        update(EnrolmentCode)
        .where(EnrolmentCode.id == row.id,
               EnrolmentCode.status == EnrolmentCodeStatus.ISSUED.value)
        .values(status=EnrolmentCodeStatus.CLAIMED.value, claimed_at=now,
                code_hash=digest(_keks(ctx), row, code))
        .execution_options(synchronize_session=False))
    if shown.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("This code was already shown (it is shown once).")
    ctx.record(f"{ACTION}.claim", target_type="User", target_id=row.user_id,
               details={"enrolment_code": str(row.id)})
    return IssuedCode(code=code, expires_at=row.expires_at, user_id=row.user_id)


async def issue_by_operator(ctx: AccessContext, user: User) -> IssuedCode:
    """The console's bootstrap: an operator (who holds the database and the keys already)
    issues a code directly, shown to her once. Logged; the caller refuses a person who has a
    factor unless told to reset it."""
    now = ctx.clock.now()
    await void(ctx, user.id, why="replaced")
    row = EnrolmentCode(id=uuid.uuid4(), org_id=user.org_id, user_id=user.id,
                        confirmation_id=None, requested_by=OPERATOR, issued_by=OPERATOR,
                        issued_at=now, expires_at=now + LIFETIME, attempts=0,
                        status=EnrolmentCodeStatus.CLAIMED.value, claimed_at=now)
    code = new_code()
    row.code_hash = digest(_keks(ctx), row, code)
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.record(f"{ACTION}.issue", target_type="User", target_id=user.id,
               details={"enrolment_code": str(row.id), "via": "cli"})
    return IssuedCode(code=code, expires_at=row.expires_at, user_id=user.id)


async def void(ctx: AccessContext, user_id: uuid.UUID, *, why: str) -> int:
    """End every code of this person not yet used (logged, IDs only): her factor or password
    was reset, she was deactivated, or a newer code replaces them."""
    live = list(await ctx.session.scalars(select(EnrolmentCode).where(
        EnrolmentCode.user_id == user_id, EnrolmentCode.status.in_(LIVE))))
    now = ctx.clock.now()
    for row in live:
        row.status, row.ended_at = EnrolmentCodeStatus.VOID.value, now
        ctx.record(f"{ACTION}.void", target_type="User", target_id=user_id,
                   details={"enrolment_code": str(row.id), "why": why})
    if live:
        await ctx.session.flush()
    return len(live)


# --- using one ------------------------------------------------------------------------------

async def use(ctx: AccessContext, user_id: uuid.UUID, code: str | None) -> EnrolmentCode:
    """Spend her code to start enrolling; raise CodeRefused (transaction kept) otherwise.

    Each wrong try is counted on the code's row and logged; the fifth locks it."""
    action = f"{ACTION}.use"
    if not code or not code.strip():
        ctx.deny(action, target_type="User", target_id=user_id, reason="no enrolment code")
        raise CodeRefused("Enrolling a second factor needs the one-time enrolment code your "
                          "organisation issued for you (two people: ask your administrator or "
                          "focal point). Enter it with `enrolmentCode`.")
    # Locked for the rest of the transaction: parallel guesses are counted one after another.
    row = await ctx.session.scalar(
        select(EnrolmentCode)
        .where(EnrolmentCode.user_id == user_id,
               EnrolmentCode.status == EnrolmentCodeStatus.CLAIMED.value)
        .order_by(EnrolmentCode.issued_at.desc()).limit(1).with_for_update())
    if row is None or row.code_hash is None:
        ctx.deny(action, target_type="User", target_id=user_id,
                 reason="no valid enrolment code")
        raise CodeRefused("There is no valid enrolment code for you (never issued, already "
                          "used, locked after wrong tries, or replaced). Ask for a new one.")
    now = ctx.clock.now()
    if now >= row.expires_at:
        ctx.deny(action, target_type="User", target_id=user_id, reason="enrolment code expired",
                 details={"enrolment_code": str(row.id)})
        raise CodeRefused("Your enrolment code has expired. Ask for a new one.")
    if not hmac.compare_digest(row.code_hash, digest(_keks(ctx), row, code)):
        attempts = row.attempts + 1
        locked = attempts >= MAX_ATTEMPTS
        await ctx.session.execute(
            update(EnrolmentCode).where(EnrolmentCode.id == row.id)
            .values(attempts=EnrolmentCode.attempts + 1,
                    **({"status": EnrolmentCodeStatus.LOCKED.value, "ended_at": now}
                       if locked else {}))
            .execution_options(synchronize_session=False))
        ctx.deny(action, target_type="User", target_id=user_id,
                 reason="enrolment code locked" if locked else "wrong enrolment code",
                 details={"enrolment_code": str(row.id), "attempts": attempts})
        if locked:
            raise CodeRefused("Wrong enrolment code. It is now locked after too many wrong "
                              "tries: ask for a new one.")
        left = MAX_ATTEMPTS - attempts
        raise CodeRefused(f"Wrong enrolment code ({left} {'try' if left == 1 else 'tries'} "
                          "left before it locks).")
    spent = await ctx.session.execute(
        update(EnrolmentCode)
        .where(EnrolmentCode.id == row.id,
               EnrolmentCode.status == EnrolmentCodeStatus.CLAIMED.value)
        .values(status=EnrolmentCodeStatus.USED.value, ended_at=now)
        .execution_options(synchronize_session=False))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise CodeRefused("This enrolment code was just used. Ask for a new one.")
    ctx.record(action, target_type="User", target_id=user_id,
               details={"enrolment_code": str(row.id)})
    return row


async def still_open(ctx: AccessContext, user_id: uuid.UUID) -> bool:
    """Whether a first enrolment started with a code may still be confirmed: the code used
    for it has not expired (a pending seed does not wait for ever)."""
    row = await ctx.session.scalar(
        select(EnrolmentCode)
        .where(EnrolmentCode.user_id == user_id,
               EnrolmentCode.status == EnrolmentCodeStatus.USED.value)
        .order_by(EnrolmentCode.ended_at.desc()).limit(1))
    return row is not None and ctx.clock.now() < row.expires_at
