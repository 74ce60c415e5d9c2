"""The protected person: a pseudonymous record, with her sensitive data stored apart."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class ErasureVia(enum.StrEnum):
    """Who asked for an erasure of her data."""

    HERSELF = "herself"
    NETWORK = "network"
    ORGANISATION = "organisation"


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
    # Whether she can sign in herself: then only she (or her network) confirms consent that
    # staff recorded (app/consent/rules.py). Set with her account (peacebuilder_accounts).
    has_login: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PeacebuilderNetwork(Base):
    """A network (organisation) she belongs to, which may act for her."""

    __tablename__ = "peacebuilder_networks"
    __table_args__ = (UniqueConstraint("peacebuilder_id", "org_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    # A network acts for her only once she confirmed it (or, before she has a login, two
    # people of her lead organisation did): until then it is only named.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_by: Mapped[str | None] = mapped_column(String(80))
    # A network acts for her: its row carries the application's MAC too (app/tables/integrity.py).
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


class Erasure(Base):
    """A request to erase her data: at once when she asks; otherwise told to her and her network
    first and carried out after a delay she can stop (docs/decisions/0013-consent-integrity.md)."""

    __tablename__ = "erasures"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peacebuilder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peacebuilders.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(80))
    requested_by_org_id: Mapped[uuid.UUID | None] = mapped_column()
    via: Mapped[str] = mapped_column(String(20))  # herself, network, organisation
    reason: Mapped[str | None] = mapped_column(Text)  # sealed with her key
    # awaiting_confirmation, scheduled, stopped, declined, done
    status: Mapped[str] = mapped_column(String(24))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    stopped_by: Mapped[str | None] = mapped_column(String(80))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
