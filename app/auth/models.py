"""A person's TOTP second factor (built-in issuer)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


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
