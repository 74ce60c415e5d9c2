"""The compiled authorization sets must answer exactly as Casbin's enforce()."""

from __future__ import annotations

import itertools

from app.access.policy import PolicyEngine
from app.config import REPO_ROOT
from app.orgs.models import Role


def test_compiled_decisions_equal_enforce():
    engine = PolicyEngine(REPO_ROOT / "policies")
    orgs = ["org-a", "org-b"]
    subjects = [f"user:{i}" for i in range(len(Role))]
    for (subject, role), org in zip(zip(subjects, Role, strict=True), itertools.cycle(orgs),
                                    strict=False):
        engine.enforcer.add_named_grouping_policy("g", subject, role.value, org)
    engine.enforcer.add_named_grouping_policy("g", "user:0", Role.ANALYST.value, "org-b")
    engine._compile()
    objects = {obj for _, obj, _ in engine.enforcer.get_policy()} | {"unknown"}
    actions = {act for _, _, act in engine.enforcer.get_policy()} | {"unknown"}
    checked = 0
    for subject, org, obj, act in itertools.product([*subjects, "user:none"], orgs, objects, actions):
        assert engine.allowed(subject, org, obj, act) == engine.enforcer.enforce(subject, org, obj, act)
        checked += 1
    assert checked > 500


def test_default_deny():
    engine = PolicyEngine(REPO_ROOT / "policies")
    assert not engine.allowed("user:x", "org", "case", "read")
    assert not engine.role_allows(frozenset({"no-such-role"}), "case", "read")
    assert not engine.role_allows(frozenset(), "case", "read")
    # Auditors see the log, not case content; analysts never write.
    assert engine.role_allows(frozenset({"auditor"}), "audit_log", "read")
    assert not engine.role_allows(frozenset({"auditor"}), "case", "read")
    assert not engine.role_allows(frozenset({"analyst"}), "case", "create")
