"""Her login's lifecycle: one-time codes, suspension, her second factor, duress, the reset hold.

Whoever issues her a code could sign in as her, so every path is limited
(docs/decisions/0027-her-account-threat-model.md):

- a code is issued by a focal point of a network she confirmed, or by her lead organisation
  under the two-person rule (the second person, who confirmed, is shown it); it is shown once,
  never emailed or logged, lives `code_hours`, works once, locks after `code_attempts` wrong
  tries counted in the database, and only an HMAC of it is stored (service key, not in the DB);
- redeeming it sets the password she chooses, ends all her sessions, and tells her network and
  her; for `hold_days` afterwards, consent her login widens waits for her network (or a second
  factor she enrolled before the code) to confirm it;
- her network, or her lead organisation under the two-person rule, suspends her login at once
  (checked in the database on every request); a lead organisation's suspension lapses after
  72 hours unless her network confirms it; nothing here stops her network revoking for her;
- her duress password signs in to an empty decoy and silently alerts whom she chose.

Her account rows and codes are the system's (row-level security): staff decisions are taken in
the request's transaction, and the account change itself is written in the system scope
(`_system`) once the decision is made and logged.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import crypto, tenancy
from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.auth import mfa, sessions, totp
from app.auth.passwords import hash_password, verify_password
from app.auth.principals import suspended
from app.confirmations import service as confirmations
from app.consent import service as consent_service
from app.errors import BadInput, Conflict, Forbidden, NotFound
from app.her.networks import networks_of
from app.her.notices import NoticeKind, tell_her
from app.notify import service as notify
from app.tables.cases import Case
from app.tables.confirmations import Confirmation, ConfirmationStatus
from app.tables.consent import HerCode, PeacebuilderAccount
from app.tables.peacebuilders import Peacebuilder

T = TypeVar("T")

CODE_ACTION = "her.code"
SUSPEND_ACTION = "her.suspend"
REINSTATE_ACTION = "her.reinstate"
LEAD_SUSPENSION = timedelta(hours=72)
# A lead organisation's suspensions start at most once in this window: chaining them (asking
# again as one lapses, or lifting and asking anew) would keep her out without her network.
LEAD_SUSPENSION_WINDOW = timedelta(days=7)
MIN_PASSWORD = 10

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
LOCATOR, SECRET, GROUP = 8, 20, 4
_LOOKALIKES = str.maketrans("ILO", "110")


class Via(enum.StrEnum):
    NETWORK = "network"
    LEAD = "lead"
    OPERATOR = "operator"


class CodePurpose(enum.StrEnum):
    ENROLMENT = "enrolment"  # she has no password yet
    RESET = "reset"  # a new password; her second factor stays
    RESET_ALL = "reset_all"  # a new password and her second factor removed (a lost phone)


class CodeStatus(enum.StrEnum):
    LIVE = "live"
    USED = "used"
    LOCKED = "locked"
    VOID = "void"


class DuressAlert(enum.StrEnum):
    NETWORK = "network"
    LEAD = "lead"
    BOTH = "both"


class CodeRefused(BadInput):
    """The code was unknown, wrong, expired, used or locked. The transaction is kept: it holds
    the counted try (and a lock)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="code")


class LoginTaken(CodeRefused):
    """Her chosen login name is taken. Counted on the code like a wrong try (kept, as a
    refused code is): otherwise one enrolment code would let its holder test any number of
    names and learn which women have a login."""

    def __init__(self) -> None:
        BadInput.__init__(self, "This login name is taken: choose another.", field="login")


@dataclass(frozen=True)
class IssuedHerCode:
    """A code in clear, returned once to the one person who may see it; never stored."""

    code: str
    expires_at: datetime
    peacebuilder_id: uuid.UUID
    purpose: str

    def __repr__(self) -> str:  # never in a traceback, a log line or a debugger's dump
        return (f"IssuedHerCode(code=[redacted], expires_at={self.expires_at!r}, "
                f"peacebuilder_id={self.peacebuilder_id}, purpose={self.purpose})")


# --- helpers ----------------------------------------------------------------------------------

async def _system(ctx: AccessContext, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Her account and codes are the system's rows: on PostgreSQL written in the system scope
    (a transaction of its own, after the decision was taken and logged in the request's)."""
    if ctx.db.dialect != "postgresql" or tenancy.effective(ctx.session.info).scope \
            is tenancy.Scope.SYSTEM:
        return await fn(ctx.session)
    with tenancy.using(tenancy.SYSTEM):
        async with ctx.db.transaction() as session:
            return await fn(session)


def _new_code() -> tuple[str, str, str]:
    locator = "".join(secrets.choice(ALPHABET) for _ in range(LOCATOR))
    secret = "".join(secrets.choice(ALPHABET) for _ in range(SECRET))
    raw = locator + secret
    return "-".join(raw[i:i + GROUP] for i in range(0, len(raw), GROUP)), locator, secret


def _normalise(code: str) -> str:
    return code.upper().replace("-", "").replace(" ", "").translate(_LOOKALIKES)


def _digest(keks: crypto.KeyEncryptionKeys, code_id: uuid.UUID, pb_id: uuid.UUID,
            secret: str) -> str:
    """HMAC under a service key outside the database, bound to the row and to her."""
    message = f"{code_id}:{pb_id}:{secret}".encode()
    return "h1:" + hmac.new(keks.service_key("her_code"), message, hashlib.sha256).hexdigest()


def _keks(ctx: AccessContext) -> crypto.KeyEncryptionKeys:
    keks: crypto.KeyEncryptionKeys = ctx.db.keys
    return keks


def _by(ctx: AccessContext) -> str:
    """Who did it, as her notice names them (the console is `system`)."""
    return "system" if ctx.principal.kind is PrincipalKind.SYSTEM else ctx.principal.subject


async def _account(session: AsyncSession, pb_id: uuid.UUID) -> PeacebuilderAccount | None:
    return await session.scalar(select(PeacebuilderAccount).where(
        PeacebuilderAccount.peacebuilder_id == pb_id))


async def _standing(ctx: AccessContext, pb_id: uuid.UUID, action: str) -> Via:
    """A focal point of a network she confirmed, or of her lead organisation (the one that
    registered her, or leads a case of hers); anyone else: not found, and logged."""
    p = ctx.principal
    if p.kind is PrincipalKind.USER and "focal_point" in p.roles and ctx.org_id is not None:
        async with ctx.peek([pb_id]):  # the facts of the decision: IDs of relations only
            networks = (await networks_of(ctx.session, [pb_id]))[pb_id]
            pb = await ctx.session.get(Peacebuilder, pb_id)
            leads = await ctx.session.scalar(select(Case.id).where(
                Case.peacebuilder_id == pb_id, Case.lead_org_id == ctx.org_id).limit(1))
        if ctx.org_id in networks:
            return Via.NETWORK
        if pb is not None and (pb.registered_by_org_id == ctx.org_id or leads is not None):
            return Via.LEAD
    ctx.deny(action, target_type="Peacebuilder", target_id=pb_id,
             reason="only her network's focal points, or her lead organisation's (two people)")
    raise NotFound()


async def _alert_networks(ctx: AccessContext, pb_id: uuid.UUID, kind: str,
                          payload: dict[str, str]) -> None:
    """Her networks' focal points are told (IDs and codes only), the caller excepted."""
    networks = (await networks_of(ctx.session, [pb_id]))[pb_id]
    recipients = [(s, org) for org in sorted(networks)
                  for s in await notify.focal_points(ctx.session, org)
                  if s != ctx.principal.subject]
    if recipients:
        await notify.notify(ctx, recipients, kind=kind, subject_id=pb_id, case_id=None,
                            at=ctx.clock.now(), payload={"peacebuilder": str(pb_id), **payload})


# --- codes ------------------------------------------------------------------------------------

async def issue_code(ctx: AccessContext, pb_id: uuid.UUID, *,
                     confirmation_id: uuid.UUID | None = None,
                     reset_factor: bool = False) -> tuple[IssuedHerCode | None, Confirmation | None]:
    """Her network's focal point: a code now, shown once. Her lead organisation: a first focal
    point asks (a Confirmation), a second confirms (confirmTwoPerson) and then receives the code
    here with `confirmation_id`. Logged; her network and she are told."""
    via = await _standing(ctx, pb_id, CODE_ACTION)
    ctx.require_recent_mfa(CODE_ACTION, target_type="Peacebuilder", target_id=pb_id)
    if via is Via.NETWORK:
        return await _issue(ctx, pb_id, via, None, reset_factor), None
    if confirmation_id is None:
        if await confirmations.pending_of(ctx, action=CODE_ACTION, target_id=pb_id) is not None:
            raise Conflict("A code for her is already waiting for a second focal point.")
        asked = await confirmations.request(ctx, action=CODE_ACTION, target_id=pb_id,
                                            peacebuilder_id=pb_id)
        ctx.record(f"{CODE_ACTION}.request", target_type="Peacebuilder", target_id=pb_id,
                   details={"confirmation": str(asked.id)})
        return None, asked
    c = await ctx.session.get(Confirmation, confirmation_id)
    if c is None or c.org_id != ctx.org_id or c.action != CODE_ACTION or c.target_id != pb_id:
        raise NotFound()
    if c.status != ConfirmationStatus.CONFIRMED.value:
        raise Conflict("This request is not confirmed by a second focal point (yet).")
    if c.decided_by != ctx.principal.subject:
        ctx.deny(f"{CODE_ACTION}.claim", target_type="Peacebuilder", target_id=pb_id,
                 reason="only the second person, who confirmed it, receives the code",
                 details={"confirmation": str(c.id)})
        raise Forbidden("Only the focal point who confirmed this request receives the code.")
    return await _issue(ctx, pb_id, via, c.id, reset_factor), None


@confirmations.on_confirmed(CODE_ACTION)
async def _code_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    """Confirmed: the confirmer now receives the code with issueHerCode (shown once)."""
    ctx.record(f"{CODE_ACTION}.confirmed", target_type="Peacebuilder", target_id=c.target_id,
               details={"confirmation": str(c.id)})


async def _issue(ctx: AccessContext, pb_id: uuid.UUID, via: Via,
                 confirmation_id: uuid.UUID | None, reset_factor: bool) -> IssuedHerCode:
    now = ctx.clock.now()
    expires = now + timedelta(hours=ctx.her_account["code_hours"])
    code, locator, secret = _new_code()
    code_id = uuid.uuid4()
    keks = _keks(ctx)

    async def write(session: AsyncSession) -> tuple[str, int]:
        if confirmation_id is not None and await session.scalar(select(HerCode.id).where(
                HerCode.confirmation_id == confirmation_id)) is not None:
            raise Conflict("The code of this request was already shown (it is shown once).")
        account = await _account(session, pb_id)
        purpose = (CodePurpose.ENROLMENT if account is None or account.password_hash is None
                   else CodePurpose.RESET_ALL if reset_factor else CodePurpose.RESET)
        voided = await session.execute(
            update(HerCode).where(HerCode.peacebuilder_id == pb_id,
                                  HerCode.status == CodeStatus.LIVE.value)
            .values(status=CodeStatus.VOID.value, ended_at=now)
            .execution_options(synchronize_session=False))
        session.add(HerCode(id=code_id, peacebuilder_id=pb_id, locator=locator,
                            code_hash=_digest(keks, code_id, pb_id, secret),
                            purpose=purpose.value, via=via.value,
                            issued_by=ctx.principal.subject, issued_by_org_id=ctx.org_id,
                            confirmation_id=confirmation_id, issued_at=now, expires_at=expires,
                            attempts=0, status=CodeStatus.LIVE.value))
        await session.flush()
        return purpose.value, int(voided.rowcount)  # type: ignore[attr-defined]

    purpose, voided = await _system(ctx, write)
    await ctx.reach([pb_id])  # decided (her network, or two people): tell her and her network
    ctx.record(f"{CODE_ACTION}.issue", target_type="Peacebuilder", target_id=pb_id,
               details={"code": str(code_id), "via": via.value, "purpose": purpose,
                        "voided": voided})
    await tell_her(ctx, pb_id, NoticeKind.ENROLMENT_CODE_ISSUED,
                   codes={"by": _by(ctx), "via": via.value, "expires_at": expires})
    await _alert_networks(ctx, pb_id, "her_code_issued", {"via": via.value, "purpose": purpose})
    return IssuedHerCode(code=code, expires_at=expires, peacebuilder_id=pb_id, purpose=purpose)


async def issue_by_operator(ctx: AccessContext, pb_id: uuid.UUID, *,
                            reset_factor: bool = False) -> IssuedHerCode:
    """The console (`safety-net her issue-code`): an operator, who holds the database and the
    keys already, issues a code for a pilot. Logged; her network and she are told."""
    if ctx.principal.kind is not PrincipalKind.SYSTEM:
        raise Forbidden()
    if await ctx.session.get(Peacebuilder, pb_id) is None:
        raise NotFound()
    return await _issue(ctx, pb_id, Via.OPERATOR, None, reset_factor)


async def suspend_by_operator(ctx: AccessContext, pb_id: uuid.UUID) -> None:
    """The console: suspend until reinstated (as her network would)."""
    if ctx.principal.kind is not PrincipalKind.SYSTEM:
        raise Forbidden()
    await _suspend(ctx, pb_id, Via.OPERATOR)


async def reinstate_by_operator(ctx: AccessContext, pb_id: uuid.UUID) -> None:
    if ctx.principal.kind is not PrincipalKind.SYSTEM:
        raise Forbidden()
    await _reinstate(ctx, pb_id)


@dataclass(frozen=True)
class Redeemed:
    peacebuilder_id: uuid.UUID
    login: str
    purpose: str
    sessions_ended: int


async def _count_try(ctx: AccessContext, row: HerCode, now: datetime, reason: str) -> None:
    """One more try on this code, counted in the database; the last locks it."""
    attempts = row.attempts + 1
    locked = attempts >= ctx.her_account["code_attempts"]
    await ctx.session.execute(
        update(HerCode).where(HerCode.id == row.id)
        .values(attempts=HerCode.attempts + 1,
                **({"status": CodeStatus.LOCKED.value, "ended_at": now} if locked else {}))
        .execution_options(synchronize_session=False))
    ctx.deny(f"{CODE_ACTION}.redeem", target_type="Peacebuilder", target_id=row.peacebuilder_id,
             reason="code locked" if locked else reason,
             details={"code": str(row.id), "attempts": attempts})


async def redeem(ctx: AccessContext, code: str, password: str,
                 login: str | None = None) -> Redeemed:
    """Spend a code and set the password she chose (and, for an enrolment, her login name).
    Runs in the system scope (nobody is signed in). Every wrong try is counted on the code's
    row; the last locks it. All her sessions end; her network and she are told."""
    action = f"{CODE_ACTION}.redeem"
    text = _normalise(code or "")
    generic = ("This code is not valid: it may be mistyped, used, expired, locked or "
               "replaced. Ask whoever issued it for a new one.")
    if len(text) != LOCATOR + SECRET:
        ctx.deny(action, reason="malformed code")
        raise CodeRefused(generic)
    row = await ctx.session.scalar(select(HerCode).where(
        HerCode.locator == text[:LOCATOR]).with_for_update())
    now = ctx.clock.now()
    if row is None or row.status != CodeStatus.LIVE.value:
        ctx.deny(action, target_type="Peacebuilder", target_id=row.peacebuilder_id if row else None,
                 reason="no such live code", details={"code": str(row.id)} if row else None)
        raise CodeRefused(generic)
    if now >= row.expires_at:
        ctx.deny(action, target_type="Peacebuilder", target_id=row.peacebuilder_id,
                 reason="code expired", details={"code": str(row.id)})
        raise CodeRefused(generic)
    if not hmac.compare_digest(row.code_hash, _digest(_keks(ctx), row.id, row.peacebuilder_id,
                                                      text[LOCATOR:])):
        await _count_try(ctx, row, now, "wrong code")
        raise CodeRefused(generic)
    if len(password or "") < MIN_PASSWORD:
        raise BadInput(f"Choose a password of at least {MIN_PASSWORD} characters.",
                       field="password")
    pb_id = row.peacebuilder_id
    account = await _account(ctx.session, pb_id)
    if account is None:
        login = (login or "").strip()
        if not 3 <= len(login) <= 80 or not login.isprintable():
            raise BadInput("Choose a login name of 3 to 80 characters.", field="login")
        if await ctx.session.scalar(select(PeacebuilderAccount.id).where(
                PeacebuilderAccount.login == login)) is not None:
            await _count_try(ctx, row, now, "login name taken")
            raise LoginTaken()
        account = PeacebuilderAccount(peacebuilder_id=pb_id, login=login, active=True,
                                      created_at=now)
        ctx.session.add(account)
    if account.duress_hash is not None and verify_password(account.duress_hash, password):
        raise BadInput("Choose a password different from your duress password.",
                       field="password")
    account.password_hash = hash_password(password)
    account.reset_at = now
    if row.purpose == CodePurpose.RESET_ALL.value:
        account.totp_secret = account.totp_pending = None
        account.totp_enrolled_at = account.totp_last_step = None
    spent = await ctx.session.execute(
        update(HerCode).where(HerCode.id == row.id, HerCode.status == CodeStatus.LIVE.value)
        .values(status=CodeStatus.USED.value, ended_at=now)
        .execution_options(synchronize_session=False))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise CodeRefused(generic)
    await ctx.session.execute(update(Peacebuilder).where(Peacebuilder.id == pb_id)
                              .values(has_login=True).execution_options(synchronize_session=False))
    await ctx.session.flush()
    ended = await sessions.revoke_subject(ctx.session, f"peacebuilder:{pb_id}",
                                          "code redeemed", now)
    ctx.record(action, target_type="Peacebuilder", target_id=pb_id,
               details={"code": str(row.id), "purpose": row.purpose, "sessions": ended})
    if row.purpose != CodePurpose.ENROLMENT.value:
        await tell_her(ctx, pb_id, NoticeKind.PASSWORD_RESET, codes={"via": row.via})
    await _alert_networks(ctx, pb_id, "her_password_set", {"purpose": row.purpose})
    return Redeemed(pb_id, account.login, row.purpose, ended)


# --- suspension -------------------------------------------------------------------------------

async def suspend(ctx: AccessContext, pb_id: uuid.UUID) -> tuple[bool, Confirmation | None]:
    """Her network's focal point suspends at once (until reinstated). Her lead organisation
    asks, and a second focal point's confirmation suspends (lapsing after 72 hours unless her
    network confirms it by suspending too). Returns (suspended now, the request)."""
    via = await _standing(ctx, pb_id, SUSPEND_ACTION)
    ctx.require_recent_mfa(SUSPEND_ACTION, target_type="Peacebuilder", target_id=pb_id)
    if via is Via.NETWORK:
        await _suspend(ctx, pb_id, via)
        return True, None
    if await confirmations.pending_of(ctx, action=SUSPEND_ACTION, target_id=pb_id) is not None:
        raise Conflict("A suspension of her login is already waiting for a second focal point.")
    now = ctx.clock.now()
    if await _system(ctx, lambda s: _lead_suspended_lately(s, pb_id, now, None)):
        _refuse_chained(ctx, pb_id)
    asked = await confirmations.request(ctx, action=SUSPEND_ACTION, target_id=pb_id,
                                        peacebuilder_id=pb_id)
    ctx.record(f"{SUSPEND_ACTION}.request", target_type="Peacebuilder", target_id=pb_id,
               details={"confirmation": str(asked.id)})
    return False, asked


async def _lead_suspended_lately(session: AsyncSession, pb_id: uuid.UUID, now: datetime,
                                 exclude: uuid.UUID | None) -> bool:
    """Whether any lead organisation of hers (read in the system scope: two lead organisations
    could take turns) had a suspension of her login confirmed within the window."""
    return await session.scalar(select(Confirmation.id).where(
        Confirmation.action == SUSPEND_ACTION, Confirmation.target_id == pb_id,
        Confirmation.status == ConfirmationStatus.CONFIRMED.value,
        Confirmation.decided_at > now - LEAD_SUSPENSION_WINDOW,
        *([Confirmation.id != exclude] if exclude is not None else [])).limit(1)) is not None


def _refuse_chained(ctx: AccessContext, pb_id: uuid.UUID) -> NoReturn:
    ctx.deny(SUSPEND_ACTION, target_type="Peacebuilder", target_id=pb_id,
             reason="a lead organisation suspended her login within the last 7 days")
    raise Conflict("Her lead organisation suspended her login less than 7 days ago: only her "
                   "network can suspend it again now.")


@confirmations.on_confirmed(SUSPEND_ACTION)
async def _suspension_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    await _suspend(ctx, c.target_id, Via.LEAD, confirmation_id=c.id)


async def _suspend(ctx: AccessContext, pb_id: uuid.UUID, via: Via, *,
                   confirmation_id: uuid.UUID | None = None) -> None:
    now = ctx.clock.now()
    lapses = now + LEAD_SUSPENSION if via is Via.LEAD else None

    async def write(session: AsyncSession) -> int:
        account = await _account(session, pb_id)
        if account is None:
            raise BadInput("She has no login to suspend.", field="peacebuilderId")
        if via is Via.LEAD and await _lead_suspended_lately(session, pb_id, now,
                                                            confirmation_id):
            return -2  # a request asked before an earlier one was confirmed: not chained
        if suspended(account, now) and account.suspension_lapses_at is None:
            return -1  # already suspended for good: nothing to widen or shorten
        if via is not Via.NETWORK and suspended(account, now):
            return -1  # a lead organisation never shortens a suspension in force
        account.suspended_at, account.suspended_by = now, ctx.principal.subject
        account.suspended_via, account.suspension_lapses_at = via.value, lapses
        await session.flush()
        return await sessions.revoke_subject(session, f"peacebuilder:{pb_id}", "suspended", now)

    ended = await _system(ctx, write)
    if ended == -2:
        _refuse_chained(ctx, pb_id)
    if ended < 0:
        raise Conflict("Her login is already suspended.")
    await ctx.reach([pb_id])  # decided: tell her and her network
    ctx.record(SUSPEND_ACTION, target_type="Peacebuilder", target_id=pb_id,
               details={"via": via.value, "sessions": ended,
                        **({"lapses_at": lapses.isoformat()} if lapses else {})})
    await tell_her(ctx, pb_id, NoticeKind.LOGIN_SUSPENDED,
                   codes={"by": _by(ctx), "via": via.value})
    await _alert_networks(ctx, pb_id, "her_login_suspended", {"via": via.value})


async def reinstate(ctx: AccessContext, pb_id: uuid.UUID) -> tuple[bool, Confirmation | None]:
    """Lift a suspension: her network's focal point at once; her lead organisation under the
    two-person rule. Her sessions stay ended: she signs in again."""
    via = await _standing(ctx, pb_id, REINSTATE_ACTION)
    ctx.require_recent_mfa(REINSTATE_ACTION, target_type="Peacebuilder", target_id=pb_id)
    if via is Via.NETWORK:
        await _reinstate(ctx, pb_id)
        return True, None
    if await confirmations.pending_of(ctx, action=REINSTATE_ACTION, target_id=pb_id) is not None:
        raise Conflict("A reinstatement is already waiting for a second focal point.")
    asked = await confirmations.request(ctx, action=REINSTATE_ACTION, target_id=pb_id,
                                        peacebuilder_id=pb_id)
    return False, asked


@confirmations.on_confirmed(REINSTATE_ACTION)
async def _reinstatement_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    await _reinstate(ctx, c.target_id)


async def _reinstate(ctx: AccessContext, pb_id: uuid.UUID) -> None:
    now = ctx.clock.now()

    async def write(session: AsyncSession) -> bool:
        account = await _account(session, pb_id)
        if account is None or not suspended(account, now):
            return False
        account.suspended_at = account.suspended_by = None
        account.suspended_via = account.suspension_lapses_at = None
        await session.flush()
        return True

    if not await _system(ctx, write):
        raise Conflict("Her login is not suspended.")
    await ctx.reach([pb_id])
    ctx.record(REINSTATE_ACTION, target_type="Peacebuilder", target_id=pb_id)
    await _alert_networks(ctx, pb_id, "her_login_reinstated", {})


# --- her own settings: second factor, duress password, sign out everywhere ---------------------

def _her_id(ctx: AccessContext) -> uuid.UUID:
    p = ctx.principal
    if p.kind is not PrincipalKind.PEACEBUILDER:
        raise Forbidden("Only she, signed in herself, can do this.")
    return p.id


async def _own_account(ctx: AccessContext) -> PeacebuilderAccount:
    account = await _account(ctx.session, _her_id(ctx))
    if account is None:
        raise NotFound()
    return account


async def start_totp(ctx: AccessContext) -> mfa.Enrolment:
    """A new pending TOTP secret for her; replacing a confirmed one needs her current factor."""
    account = await _own_account(ctx)
    if account.totp_secret is not None:
        ctx.require_recent_mfa("her.totp.enrol", target_type="Peacebuilder",
                               target_id=account.peacebuilder_id)
    secret = totp.new_secret()
    account.totp_pending = mfa.seal_secret(_keks(ctx), None, account.peacebuilder_id,
                                           "totp_pending", secret)
    await ctx.session.flush()
    ctx.record("her.totp.enrol_start", target_type="Peacebuilder",
               target_id=account.peacebuilder_id)
    return mfa.Enrolment(secret=secret, uri=totp.provisioning_uri(
        secret, account=account.login, issuer=mfa.ISSUER_NAME))


async def confirm_totp(ctx: AccessContext, code: str) -> None:
    """Her pending secret becomes her factor, given a current code: then sign-in needs it."""
    account = await _own_account(ctx)
    pending = mfa.open_secret(_keks(ctx), None, account.peacebuilder_id, "totp_pending",
                              account.totp_pending)
    if pending is None:
        raise BadInput("Start enrolment first.", field="code")
    step = totp.matching_step(pending, code, time.time())
    if step is None:
        ctx.deny("her.totp.enrol", target_type="Peacebuilder",
                 target_id=account.peacebuilder_id, reason="wrong code")
        raise BadInput("The code does not match; check the time on your device.", field="code")
    account.totp_secret = mfa.seal_secret(_keks(ctx), None, account.peacebuilder_id,
                                          "totp_secret", pending)
    account.totp_pending, account.totp_last_step = None, step
    account.totp_enrolled_at = ctx.clock.now()
    await ctx.session.flush()
    ctx.record("her.totp.enrol", target_type="Peacebuilder", target_id=account.peacebuilder_id)


async def login_acr(session: AsyncSession, account: PeacebuilderAccount, code: str | None,
                    keks: crypto.KeyEncryptionKeys) -> str | None:
    """'mfa' for a valid unused code of hers, 'pwd' without a factor, None otherwise."""
    if account.totp_secret is None:
        return "pwd"
    secret = mfa.open_secret(keks, None, account.peacebuilder_id, "totp_secret",
                             account.totp_secret)
    step = totp.matching_step(secret, code or "", time.time()) if secret else None
    if step is None:
        return None
    used = await session.execute(
        update(PeacebuilderAccount)
        .where(PeacebuilderAccount.id == account.id,
               (PeacebuilderAccount.totp_last_step.is_(None))
               | (PeacebuilderAccount.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False))
    return "mfa" if used.rowcount == 1 else None  # type: ignore[attr-defined]


async def set_duress(ctx: AccessContext, password: str, alert: DuressAlert) -> None:
    """Her duress password, and whom it silently alerts. Only she sets it (never a decoy
    session: that would let a coercer change what alerts her people; it is answered as if
    set, and ignored)."""
    if len(password or "") < MIN_PASSWORD:
        raise BadInput(f"Choose a duress password of at least {MIN_PASSWORD} characters.",
                       field="password")
    if ctx.principal.duress_of is not None:
        # Answered as a normal session is (a refusal would tell a coercer this session is the
        # decoy), and nothing changes. Logged as duress, under her ID, for auditors.
        ctx.record("her.duress.set.duress", target_type="Peacebuilder",
                   target_id=ctx.principal.duress_of, decision="deny",
                   reason="duress session: nothing changed")
        return
    account = await _own_account(ctx)
    if verify_password(account.password_hash, password):
        raise BadInput("Your duress password must differ from your password.", field="password")
    account.duress_hash, account.duress_alert = hash_password(password), alert.value
    await ctx.session.flush()
    ctx.record("her.duress.set", target_type="Peacebuilder", target_id=account.peacebuilder_id,
               details={"alert": alert.value})


async def sign_out_everywhere(ctx: AccessContext) -> int:
    """End all her sessions and refresh tokens (a quick exit), on every replica at once."""
    return await sessions.sign_out(ctx, everywhere=True)


# --- sign-in: duress, and the hold after a reset ------------------------------------------------

async def duress_alert(session: AsyncSession, account: PeacebuilderAccount,
                       at: datetime) -> list[str]:
    """Silently alert whom she chose (her networks' focal points, her lead organisation's, or
    both): IDs only. Returns the recipients (for the access log)."""
    pb_id = account.peacebuilder_id
    targets: set[tuple[str, uuid.UUID]] = set()
    choice = account.duress_alert or DuressAlert.BOTH.value
    if choice in (DuressAlert.NETWORK.value, DuressAlert.BOTH.value):
        for org in (await networks_of(session, [pb_id]))[pb_id]:
            targets |= {(s, org) for s in await notify.focal_points(session, org)}
    if choice in (DuressAlert.LEAD.value, DuressAlert.BOTH.value):
        pb = await session.get(Peacebuilder, pb_id)
        leads = set(await session.scalars(select(Case.lead_org_id).where(
            Case.peacebuilder_id == pb_id, Case.closed_at.is_(None))))
        if pb is not None:
            leads.add(pb.registered_by_org_id)
        for org in leads:
            targets |= {(s, org) for s in await notify.focal_points(session, org)}
    await notify.notify(session, sorted(targets, key=str), kind="her_duress_sign_in",
                        subject_id=pb_id, case_id=None, at=at,
                        payload={"peacebuilder": str(pb_id)})
    return sorted(s for s, _ in targets)


async def held(ctx: AccessContext) -> bool:
    """Whether consent she widens now must wait: signed in herself within `hold_days` of a
    redeemed code, and not with a second factor she enrolled before it."""
    p = ctx.principal
    if p.kind is not PrincipalKind.PEACEBUILDER or ctx.her_account["hold_days"] <= 0:
        return False
    account = await _account(ctx.session, p.id)
    if account is None or account.reset_at is None:
        return False
    if ctx.clock.now() >= account.reset_at + timedelta(days=ctx.her_account["hold_days"]):
        return False
    earlier_factor = (account.totp_enrolled_at is not None
                      and account.totp_enrolled_at < account.reset_at)
    return not (earlier_factor and p.acr == "mfa")


async def alert_held(ctx: AccessContext, pb_id: uuid.UUID, grant_id: uuid.UUID) -> None:
    """Her networks are asked to confirm (confirmConsent) a widening the hold keeps pending."""
    ctx.record("consent.held", target_type="Peacebuilder", target_id=pb_id,
               details={"grant": str(grant_id), "why": "after a code reset her password"})
    await _alert_networks(ctx, pb_id, "her_consent_held", {"grant": str(grant_id)})


consent_service.on_her_hold(held, alert_held)
