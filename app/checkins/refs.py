"""Where the sealed values of check-ins, security assessments and consultations live (see
app/her/sealing.py): bound to the writing organisation, the table, the row and field."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from app.her.sealing import Ref


def ref(table: str, column: str) -> Callable[[Any, uuid.UUID], Ref]:
    def make(row: Any, pb_id: uuid.UUID) -> Ref:
        return Ref(pb_id, row.org_id, table, row.id, column)
    return make
