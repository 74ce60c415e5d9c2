"""Where the risk assessments' sealed values live (see app/her/sealing.py): bound to
the lead organisation that wrote the assessment, its table, its ID and the field. A threat's
text is bound to the assessment's organisation too."""

from __future__ import annotations

import uuid
from typing import Any

from app.her.sealing import Ref


def assessment_ref(row: Any, pb_id: uuid.UUID, field: str) -> Ref:
    return Ref(pb_id, row.org_id, "risk_assessments", row.id, field)


def threat_ref(row: Any, pb_id: uuid.UUID, field: str) -> Ref:
    # The threat row has no organisation column: its assessment's organisation owns it, bound
    # through the assessment's ID (fixed for the row's life).
    return Ref(pb_id, row.assessment_id, "risk_threats", row.id, field)


def plan_ref(row: Any, pb_id: uuid.UUID, field: str) -> Ref:
    return Ref(pb_id, row.owner_org_id, "measures", row.id, field)
