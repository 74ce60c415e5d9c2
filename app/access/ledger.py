"""What a unit of work records in the access log: its changes in its own transaction; its
denials and reads afterwards, in a transaction of their own (they survive a rollback, and if
writing them fails, no data leaves).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.access import log as audit
from app.tables.audit import AccessLogEntry


@dataclass
class Ledger:
    actor: Callable[[], audit.Actor]  # who acts, for what purpose, in which request, now
    deferred: list[AccessLogEntry] = field(default_factory=list)
    # What the response carried and withheld, per peacebuilder: one entry each, at the end.
    reads: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    withheld: dict[uuid.UUID, set[str]] = field(default_factory=dict)

    def change(self, session: AsyncSession, action: str, *, target_type: str | None,
               target_id: uuid.UUID | str | None, decision: str, reason: str | None,
               details: dict[str, Any] | None) -> None:
        """An allowed change (or read) in the unit's own transaction: it stands or falls with it."""
        audit.add(session, self.actor(), action=action, target_type=target_type,
                  target_id=str(target_id) if target_id is not None else None,
                  decision=decision, reason=reason, details=details)

    def deny(self, action: str, *, target_type: str | None, target_id: uuid.UUID | str | None,
             reason: str, details: dict[str, Any] | None) -> None:
        """A denial, committed after the unit's transaction ends, on its own."""
        self.deferred.append(audit.entry(
            self.actor(), action=action, target_type=target_type,
            target_id=str(target_id) if target_id is not None else None, decision="deny",
            reason=reason, details=details))

    # Noted for each value a response carries (~200 on a page): no new set per call.
    def read(self, pb_id: uuid.UUID, category: str) -> None:
        found = self.reads.get(pb_id)
        if found is None:
            self.reads[pb_id] = {category}
        else:
            found.add(category)

    def withhold(self, pb_id: uuid.UUID, category: str) -> None:
        found = self.withheld.get(pb_id)
        if found is None:
            self.withheld[pb_id] = {category}
        else:
            found.add(category)

    def close_reads(self, reason: str) -> None:
        """One read entry and one withheld entry for the whole response (never values)."""
        if self.reads:
            self.deferred.append(audit.entry(
                self.actor(), action="data.read", target_type="Peacebuilder", target_id=None,
                decision="allow", reason=None,
                details={"records": {str(k): sorted(v) for k, v in self.reads.items()}}))
        if self.withheld:
            self.deferred.append(audit.entry(
                self.actor(), action="data.read", target_type="Peacebuilder", target_id=None,
                decision="deny", reason=reason,
                details={"records": {str(k): sorted(v) for k, v in self.withheld.items()}}))
        self.reads, self.withheld = {}, {}
