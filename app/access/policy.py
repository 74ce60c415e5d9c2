"""The Casbin policy, loaded from `policies/` and the role assignments table, compiled to sets.

Casbin is the source of truth for what a role may do; `allowed()` answers from sets compiled
from the enforcer whenever the policy changes, so a decision costs a few set lookups however
many organisations there are. A test checks the compiled answer equals `enforce()`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import casbin
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.tables.orgs import PolicyState, RoleAssignment

Permission = tuple[str, str]  # (object, action)


class PolicyEngine:
    def __init__(self, policy_dir: Path) -> None:
        self._model = str(policy_dir / "model.conf")
        self._policy = str(policy_dir / "policy.csv")
        self.enforcer = casbin.Enforcer(self._model, self._policy)
        self.version = -1
        self._role_perms: dict[str, frozenset[Permission]] = {}
        self._subject_roles: dict[tuple[str, str], frozenset[str]] = {}
        self._lock = asyncio.Lock()
        self._compile()

    @property
    def known_roles(self) -> frozenset[str]:
        return frozenset(self._role_perms)

    @staticmethod
    def version_column() -> Any:
        """The policy version as a column, to read it in the same statement as the caller."""
        return (select(PolicyState.version).where(PolicyState.id == 1).scalar_subquery()
                .label("policy_version"))

    async def refresh(self, session: AsyncSession, version: int | None = None) -> None:
        """Reload role assignments if another process (or request) changed them (`version`:
        the current one, when it was read already)."""
        current = version if version is not None else await session.scalar(
            select(PolicyState.version).where(PolicyState.id == 1))
        current = current or 0
        if current == self.version:
            return
        async with self._lock:
            if current == self.version:
                return
            rows = (await session.execute(
                select(RoleAssignment.subject, RoleAssignment.role, RoleAssignment.org_id)
            )).all()
            # Grouping lines go straight from rows to the lookup: feeding 10k of them through
            # Casbin took seconds (bench/) and blocked the request that noticed the change.
            roles: dict[tuple[str, str], set[str]] = defaultdict(set)
            for subject, role, org_id in rows:
                roles[(subject, str(org_id))].add(role)
            self._subject_roles = {k: frozenset(v) for k, v in roles.items()}
            self.version = current

    def _compile(self) -> None:
        perms: dict[str, set[Permission]] = defaultdict(set)
        for role, obj, act in self.enforcer.get_policy():
            perms[role].add((obj, act))
        roles: dict[tuple[str, str], set[str]] = defaultdict(set)
        for subject, role, domain in self.enforcer.get_named_grouping_policy("g"):
            roles[(subject, domain)].add(role)
        self._role_perms = {r: frozenset(p) for r, p in perms.items()}
        self._subject_roles = {k: frozenset(v) for k, v in roles.items()}

    def roles_of(self, subject: str, org_id: str) -> frozenset[str]:
        return self._subject_roles.get((subject, org_id), frozenset())

    def role_allows(self, roles: frozenset[str], obj: str, act: str) -> bool:
        return any((obj, act) in self._role_perms.get(role, ()) for role in roles)

    def allowed(self, subject: str, org_id: str, obj: str, act: str) -> bool:
        return self.role_allows(self.roles_of(subject, org_id), obj, act)
