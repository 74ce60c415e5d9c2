"""Where the justice follow-up's sealed values live (see app/her/sealing.py): bound to
the organisation that wrote the record, its table, its ID and the field."""

from __future__ import annotations

import uuid
from typing import Any

from app.her.sealing import Ref


def hearing_ref(hearing: Any, pb_id: uuid.UUID) -> Ref:
    return Ref(pb_id, hearing.org_id, "hearings", hearing.id, "outcome")


def detention_ref(detention: Any, pb_id: uuid.UUID) -> Ref:
    return Ref(pb_id, detention.org_id, "detentions", detention.id, "place")


def visit_ref(visit: Any, pb_id: uuid.UUID) -> Ref:
    return Ref(pb_id, visit.org_id, "detention_visits", visit.id, "notes")
