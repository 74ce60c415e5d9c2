"""Who is calling and why, decided once at the edge: frozen, no session, nothing to query.

`can()` answers from the policy compiled from Casbin (app/access/policy.py); `mode` is the
caller's need-to-know; `care_scope()` is what the decision (app/access/visibility.py) needs to
know about the caller at a given moment.
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from app.access.policy import PolicyEngine
from app.access.principal import Principal, PrincipalKind
from app.access.visibility import AGGREGATE_ONLY, CareScope, Mode, Redaction


@dataclass(frozen=True)
class Caller:
    principal: Principal
    purpose: str | None
    policy: PolicyEngine
    # Step-up: which `acr` values count as a second factor, and for how long after sign-in.
    step_up_acr: frozenset[str] = frozenset({"mfa"})
    step_up_seconds: int = 900

    @property
    def org_id(self) -> uuid.UUID | None:
        return self.principal.org_id

    @property
    def subject(self) -> str:
        return self.principal.subject

    def can(self, obj: str, act: str) -> bool:
        """Whether the caller's roles in its own organisation allow `act` on `obj` at all."""
        p = self.principal
        if p.kind is PrincipalKind.SYSTEM:
            return True
        if p.org_id is None and p.kind is not PrincipalKind.PEACEBUILDER:
            return False
        return self.policy.role_allows(p.roles, obj, act)

    @property
    def must_declare_purpose(self) -> bool:
        """Staff and machine clients read her records only for a declared purpose (she reads
        her own without one; the system needs none)."""
        return self.purpose is None and self.principal.kind in (PrincipalKind.USER,
                                                                PrincipalKind.CLIENT)

    def has_recent_second_factor(self) -> bool:
        """Signed in with a second factor within `step_up_seconds` (wall-clock time, like the
        token's own expiry)."""
        p = self.principal
        if p.kind is PrincipalKind.SYSTEM:
            return True
        age = time.time() - p.auth_time.timestamp() if p.auth_time else None
        return p.acr in self.step_up_acr and age is not None and age <= self.step_up_seconds

    @functools.cached_property
    def mode(self) -> Mode:
        """The caller's need-to-know, from its frozen principal (computed once: the read path
        asks for it per row)."""
        p = self.principal
        if p.kind is PrincipalKind.PEACEBUILDER:
            return Mode.SELF
        roles = p.roles
        if "focal_point" in roles:
            return Mode.FOCAL
        if roles & {"caseworker", "machine_client"}:
            return Mode.TEAM
        if "analyst" in roles:
            return Mode.ANALYST
        return Mode.NONE

    def care_scope(self, now: datetime) -> CareScope:
        """What of peacebuilders' records this caller may reach, at `now`."""
        p = self.principal
        return CareScope(org_id=p.org_id, subject=p.subject, purpose=self.purpose, now=now,
                         mode=self.mode,
                         self_peacebuilder_id=p.id if p.kind is PrincipalKind.PEACEBUILDER else None)

    def org_care_scope(self, now: datetime) -> CareScope:
        """The caller judged as its organisation (any staff role that handles cases, or its
        admin managing teams): used to open cases and assign teams, never to read content."""
        scope = self.care_scope(now)
        if self.principal.roles & {"focal_point", "caseworker", "machine_client", "org_admin"}:
            return replace(scope, mode=Mode.FOCAL)
        return scope

    def aggregate_scope(self, now: datetime) -> CareScope:
        """For aggregate reports: what her consent releases to the caller's organisation as a
        whole (counted, never shown one by one; app/monitoring/statistics.py)."""
        return replace(self.care_scope(now), mode=Mode.FOCAL, aggregate=True)

    def granting_scope(self, now: datetime) -> CareScope | None:
        """The scope whose live consent (and break-glass) admission turns into the decided set
        row-level security enforces; None when none can release a record to this caller. An
        aggregate purpose shows no record; its counting query still reads the rows of the women
        who agreed to be counted (the app never returns them one by one)."""
        aggregate = (self.purpose in AGGREGATE_ONLY and self.can("statistics", "read"))
        scope = self.aggregate_scope(now) if aggregate else self.org_care_scope(now)
        if scope.mode is Mode.NONE or not scope.releases_records:
            return None
        return scope

    def reads_log(self) -> bool:
        """Whether admission decides whose access log entries it may read beyond its own."""
        return self.can("audit_log", "read")

    def redaction_reason(self) -> Redaction:
        if self.mode is not Mode.SELF and self.purpose is None:
            return Redaction.NO_PURPOSE
        if self.mode in (Mode.ANALYST, Mode.NONE):
            return Redaction.NEED_TO_KNOW
        return Redaction.NOT_COVERED
