"""The one place access decisions are made and recorded.

Every service takes an `AccessContext`. Role permissions come from Casbin (`PolicyEngine`);
which organisations' records a caller reaches is an `OrgScope`, a type only this module mints,
so a repository query cannot be written without going through the access decision.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, NewType

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.policy import PolicyEngine
from app.access.principal import Principal, PrincipalKind
from app.audit import service as audit
from app.audit.models import AccessLogEntry
from app.clock import Clock
from app.db import Database
from app.errors import Forbidden

OrgScope = NewType("OrgScope", frozenset[uuid.UUID])


@dataclass
class AccessContext:
    principal: Principal
    session: AsyncSession
    db: Database
    policy: PolicyEngine
    clock: Clock
    request_id: str
    purpose: str | None = None
    cache: dict[Any, Any] = field(default_factory=dict)
    deferred: list[AccessLogEntry] = field(default_factory=list)

    @property
    def org_id(self) -> uuid.UUID | None:
        return self.principal.org_id

    def can(self, obj: str, act: str) -> bool:
        """Whether the caller's roles in its own organisation allow `act` on `obj` at all."""
        if self.principal.kind is PrincipalKind.SYSTEM:
            return True
        if self.principal.org_id is None:
            return False
        return self.policy.role_allows(self.principal.roles, obj, act)

    async def require(
        self, obj: str, act: str, *, target_type: str | None = None, target_id: str | None = None
    ) -> None:
        """Raise Forbidden, and log the denial, unless `can()`."""
        if self.can(obj, act):
            return
        self.deny(f"{obj}.{act}", target_type=target_type, target_id=target_id,
                  reason="role does not permit")
        raise Forbidden()

    def deny(
        self,
        action: str,
        *,
        target_type: str | None = None,
        target_id: uuid.UUID | str | None = None,
        reason: str,
    ) -> None:
        """Queue a denial; it is committed in its own transaction after the request's ends,
        so it survives a rollback and never waits on the request's own write lock."""
        self.deferred.append(audit.entry(
            self.audit_fields(), action=action, target_type=target_type,
            target_id=str(target_id) if target_id is not None else None, decision="deny",
            reason=reason, details=None,
        ))

    def own_scope(self) -> OrgScope:
        """The organisations whose own records the caller reaches: its own, or none."""
        if self.principal.org_id is None:
            return OrgScope(frozenset())
        return OrgScope(frozenset({self.principal.org_id}))

    def audit_fields(self) -> audit.Actor:
        return audit.Actor(
            subject=self.principal.subject,
            org_id=self.principal.org_id,
            purpose=self.purpose,
            request_id=self.request_id,
            at=self.clock.now(),
        )

    def record(
        self,
        action: str,
        *,
        target_type: str | None = None,
        target_id: uuid.UUID | str | None = None,
        decision: str = "allow",
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Log an allowed change or read in the request's own transaction."""
        audit.add(
            self.session, self.audit_fields(), action=action, target_type=target_type,
            target_id=str(target_id) if target_id is not None else None, decision=decision,
            reason=reason, details=details,
        )
