"""Every release of a monitoring table: what was published, to whom, for which period."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class MonitoringRelease(Base):
    """The published figures (rounded counts, null where suppressed) of one table for one
    period, released once to one organisation: asking again returns this record, so two
    releases of the same period can never be subtracted."""

    __tablename__ = "monitoring_releases"
    __table_args__ = (UniqueConstraint("org_id", "table_name", "period",
                                       name="uq_monitoring_releases_period"),
                      Index("ix_monitoring_releases_org", "org_id", "released_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    table_name: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(10))
    # {"rows": [...], "cols": [...], "cells": [[row, col, value|null], ...], "k": 5, "base": 5}
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    released_by: Mapped[str] = mapped_column(String(80))
    released_at: Mapped[datetime] = mapped_column(UTCDateTime())
