"""A person's TOTP second factor (built-in issuer) and the one-time codes to enrol it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class TotpCredential(Base):
    """One per user: the confirmed secret, and a pending one while (re-)enrolling.

    The secrets are sealed with a service key kept with the KEKs, outside the database
    (`app.auth.mfa.seal_secret`), so a database dump alone does not hold them. `last_step`
    refuses a code that was already used.
    """

    __tablename__ = "totp_credentials"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    secret: Mapped[str | None] = mapped_column(String(64))
    pending_secret: Mapped[str | None] = mapped_column(String(64))
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EnrolmentCodeStatus(enum.StrEnum):
    ISSUED = "issued"  # confirmed by a second person; not shown to anyone yet
    CLAIMED = "claimed"  # shown once (to the person who confirmed it, or the operator): usable
    USED = "used"  # a second factor enrolment was started with it
    LOCKED = "locked"  # too many wrong tries
    VOID = "void"  # replaced by a newer code, or her factor or password was reset


class EnrolmentCode(Base):
    """A one-time code with which one person starts enrolling her first second factor.

    Issued under the two-person rule (or by an operator at the console, for the very first
    people), shown once, handed over out of band. Only an HMAC of it is stored, under a service
    key kept with the KEKs (`app.auth.enrolment`); wrong tries are counted here, so a lock holds
    across replicas and restarts.
    """

    __tablename__ = "enrolment_codes"
    __table_args__ = (Index("ix_enrolment_codes_user_status", "user_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    # The two-person request it came from (None when an operator issued it at the console).
    confirmation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("confirmations.id"))
    requested_by: Mapped[str] = mapped_column(String(80))
    # Who may see it: the second person, who confirmed it ("system" for the console).
    issued_by: Mapped[str] = mapped_column(String(80))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    code_hash: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default=EnrolmentCodeStatus.ISSUED.value)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuthSession(Base):
    """One sign-in of a person (a staff user or a peacebuilder): the family of her rotating
    refresh tokens. Access tokens issued in it carry its id (`sid`), and every request checks
    here that it is not revoked, so a sign-out, a deactivation or a detected token reuse ends it
    on every replica at the next request (docs/decisions/0020-sessions-and-oidc.md).

    `acr` and `auth_time` are those of the sign-in itself: refreshing never renews them, so the
    second factor lasts the session at most and step-up expires `step_up_seconds` after sign-in.
    """

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_subject", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject: Mapped[str] = mapped_column(String(80))  # "user:<id>" or "peacebuilder:<id>"
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    acr: Mapped[str] = mapped_column(String(16))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    # Opened with her duress password: admission swaps her for an empty decoy (docs/decisions/0027).
    duress: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class RefreshToken(Base):
    """One refresh token of a session; only its SHA-256 is stored (256 random bits: a fast hash
    is enough). `used_at` is set when it is exchanged: presenting it again revokes the session."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_session_id", "session_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("auth_sessions.id"))
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignInCounter(Base):
    """Failed sign-ins in a fixed window, per account and per client address, counted in the
    database so the limit holds when Redis fails open (`app/auth/attempts.py`). The key is a
    SHA-256 of what it counts (never the account name or the address itself)."""

    __tablename__ = "sign_in_counters"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer)


class WebSession(Base):
    """A browser's session on the dashboard: the server side of its cookie.

    The cookie holds only a random secret; this row is found by its SHA-256 (`id`), so a
    database dump gives no usable cookie. The row holds the access and refresh tokens of the
    person's `AuthSession`, sealed with a service key (`app.auth.web`), so the dashboard rides
    the API's own token, refresh and revocation machinery: a sign-out everywhere, a
    deactivation or a suspension ends it on the next request. The declared purpose of work
    and the chosen language live here, never in the browser.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_subject", "subject"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(80))
    tokens: Mapped[str] = mapped_column(String(4000))
    purpose: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
