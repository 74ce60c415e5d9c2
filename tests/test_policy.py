"""The compiled authorization sets must answer exactly as Casbin's enforce()."""

from __future__ import annotations

import itertools

from app.access.policy import PolicyEngine
from app.config import REPO_ROOT
from app.tables.orgs import Role


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


async def test_roles_loaded_from_rows_answer_as_casbin_with_every_line(env):
    """The service compiles role assignments straight from the rows on refresh (not through
    Casbin): its answers must equal an enforcer loaded with every grouping line."""
    import casbin
    from sqlalchemy import select

    from app.tables.orgs import RoleAssignment

    engine = PolicyEngine(REPO_ROOT / "policies")
    async with env.runtime.db.transaction() as session:
        await engine.refresh(session)
        rows = (await session.execute(select(RoleAssignment.subject, RoleAssignment.role,
                                             RoleAssignment.org_id))).all()
    full = casbin.Enforcer(str(REPO_ROOT / "policies" / "model.conf"),
                           str(REPO_ROOT / "policies" / "policy.csv"))
    full.add_named_grouping_policies("g", [[s, r, str(o)] for s, r, o in rows])
    subjects = [*sorted({s for s, _, _ in rows}), "user:none"]
    orgs = sorted({str(o) for _, _, o in rows})
    pairs = [*sorted({(obj, act) for _, obj, act in full.get_policy()}), ("unknown", "read")]
    checked = 0
    for subject, org in itertools.product(subjects, orgs):
        for obj, act in pairs:
            assert engine.allowed(subject, org, obj, act) == full.enforce(subject, org, obj, act)
            checked += 1
    assert len(rows) > 10 and checked > 1000
