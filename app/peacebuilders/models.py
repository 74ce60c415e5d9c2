"""The protected person: a pseudonymous record, with her sensitive data stored apart."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class Peacebuilder(Base):
    # Pseudonyms are unique per registering organisation only: a global uniqueness check would
    # tell another organisation that a pseudonym exists.
    __tablename__ = "peacebuilders"
    __table_args__ = (UniqueConstraint("registered_by_org_id", "pseudonym"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    pseudonym: Mapped[str] = mapped_column(String(64), index=True)
    preferred_language: Mapped[str] = mapped_column(String(16), default="en")
    registered_by_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PeacebuilderNetwork(Base):
    """A network (organisation) she belongs to, which may act for her."""

    __tablename__ = "peacebuilder_networks"
    __table_args__ = (UniqueConstraint("peacebuilder_id", "org_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    # A network acts for her: its row carries the application's MAC too (app/consent/integrity.py).
    mac: Mapped[str | None] = mapped_column(String(64))


class PeacebuilderDatum(Base):
    """One sensitive field of hers, tagged with its data category so consent can gate it."""

    __tablename__ = "peacebuilder_data"
    __table_args__ = (UniqueConstraint("peacebuilder_id", "field"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    category: Mapped[str] = mapped_column(String(40))
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)  # sealed with her data key (app/crypto.py)
    # Blind index for equality filters; cleared when her data is erased.
    lookup: Mapped[str | None] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DataKey(Base):
    """Her data key, wrapped by a key-encryption key kept outside the database. Destroying it
    (erasure) makes every field sealed with it unreadable."""

    __tablename__ = "data_keys"

    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"),
                                                       primary_key=True)
    kek_version: Mapped[int | None] = mapped_column(Integer)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
