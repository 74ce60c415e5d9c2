"""What security costs, measured in isolation: authorization decisions (compiled sets vs
Casbin's enforce()), policy reload, token verification, one access-log append, and the rate of
`safety-net audit verify`."""

from __future__ import annotations

import os
import random
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import casbin
from sqlalchemy import select

from app.access import log as audit
from app.access.policy import PolicyEngine
from app.auth.tokens import Issuer
from app.config import REPO_ROOT, Settings
from app.db import Database
from app.tables.orgs import RoleAssignment
from bench.harness import VENV_BIN

OBJECTS_ACTIONS = [("case", "read"), ("case", "update"), ("case_note", "create"),
                   ("peacebuilder", "read"), ("audit_log", "read"), ("user", "manage"),
                   ("consent", "grant"), ("incident", "report")]


def _per_call(fn: Callable[[], Any], budget_s: float, max_calls: int) -> tuple[float, int]:
    """Mean seconds per call of `fn`, run in batches until the time budget or count is spent."""
    calls, spent = 0, 0.0
    while spent < budget_s and calls < max_calls:
        t0 = time.perf_counter()
        for _ in range(100):
            fn()
        spent += time.perf_counter() - t0
        calls += 100
    return spent / calls, calls


def _reload_alternatives(triples: list[tuple[str, str, str]]) -> tuple[dict[str, float], Any]:
    """What a reload could cost: Casbin's batch add, and compiling subject -> roles directly
    from the rows (what `allowed()` answers from; the role -> permission sets need only the
    ~80 lines of policy.csv)."""
    policy_dir = REPO_ROOT / "policies"
    t0 = time.perf_counter()
    enforcer = casbin.Enforcer(str(policy_dir / "model.conf"), str(policy_dir / "policy.csv"))
    enforcer.add_named_grouping_policies("g", [list(t) for t in triples])
    batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    roles: dict[tuple[str, str], set[str]] = defaultdict(set)
    for subject, role, org in triples:
        roles[(subject, org)].add(role)
    compiled = {k: frozenset(v) for k, v in roles.items()}
    direct = time.perf_counter() - t0
    assert len(compiled) <= len(triples)
    # The enforcer with every line: what `allowed()` must agree with, and what Casbin costs.
    return {"reload_batch_ms": batch * 1000, "reload_direct_ms": direct * 1000}, enforcer


async def policy(db: Database, budget_s: float = 2.0) -> dict[str, Any]:
    """Decision time with every role assignment of the bench database loaded (10k lines)."""
    engine = PolicyEngine(REPO_ROOT / "policies")
    async with db.sessionmaker() as session:
        t0 = time.perf_counter()
        await engine.refresh(session)
        reload_ms = (time.perf_counter() - t0) * 1000
        triples = [(s, r, str(o)) for s, r, o in (await session.execute(
            select(RoleAssignment.subject, RoleAssignment.role, RoleAssignment.org_id))).all()]
    rows = [(s, o) for s, _, o in triples]
    alternatives, full = _reload_alternatives(triples)
    orgs = sorted({str(o) for _, o in rows})
    rng = random.Random(8)  # noqa: S311 - sampling, not secrets
    # Half the questions about the subject's own organisation, half about another one.
    questions = []
    for i in range(4096):
        subject, org = rows[rng.randrange(len(rows))]
        obj, act = OBJECTS_ACTIONS[i % len(OBJECTS_ACTIONS)]
        questions.append((subject, str(org) if i % 2 else rng.choice(orgs), obj, act))
    # The service's enforcer holds policy.csv only (grouping lines are compiled from the rows),
    # so the reference is a Casbin enforcer loaded with every line.
    mismatches = sum(engine.allowed(*q) != full.enforce(*q) for q in questions[:500])
    it = iter(range(1 << 62))

    def compiled() -> None:
        engine.allowed(*questions[next(it) & 4095])

    def casbin() -> None:
        full.enforce(*questions[next(it) & 4095])

    subject0, org0 = rows[0]
    principal_roles = engine.roles_of(subject0, str(org0))

    def per_request() -> None:
        engine.role_allows(principal_roles, "case", "read")

    allowed_s, n_allowed = _per_call(compiled, budget_s, 2_000_000)
    enforce_s, n_enforce = _per_call(casbin, budget_s, 200_000)
    role_s, _ = _per_call(per_request, budget_s / 2, 2_000_000)
    return {"lines": len(full.get_named_grouping_policy("g")) + len(full.get_policy()),
            "organisations": len(orgs), "reload_ms": reload_ms, **alternatives,
            "allowed_us": allowed_s * 1e6, "enforce_us": enforce_s * 1e6,
            "role_allows_us": role_s * 1e6, "calls": n_allowed + n_enforce,
            "mismatches": mismatches}


def token_verify(data_dir: Path, budget_s: float = 1.0) -> float:
    """Microseconds to verify one built-in (Ed25519) access token."""
    issuer = Issuer(replace(Settings(), data_dir=data_dir))
    token = issuer.issue(subject="user:00000000-0000-0000-0000-000000000000", org_id="x")[0]
    seconds, _ = _per_call(lambda: issuer.verify(token), budget_s, 50_000)
    return seconds * 1e6


async def log_append(db: Database, n: int = 200) -> float:
    """Milliseconds for one deferred access-log write (its own transaction), as every read
    request does after its own transaction."""
    actor = audit.Actor(subject="user:bench", org_id=None, purpose="protection",
                        request_id="bench", at=_now())
    times = []
    for i in range(n):
        entry = audit.entry(actor, action="data.read", target_type="Peacebuilder",
                            target_id=None, decision="allow", reason=None,
                            details={"records": {f"{i:032x}": ["identity"]}})
        t0 = time.perf_counter()
        await audit.write_deferred(db, [entry])
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def audit_verify(env: dict[str, str], timeout: float = 900) -> dict[str, Any]:
    """Chain what is pending and sign a checkpoint (`audit chain`), then time the real
    `safety-net audit verify`."""
    cli = str(VENV_BIN / "safety-net")
    state = Path(env["SAFETY_NET_DATA_DIR"]) / "bench-verify-state.json"
    if state.exists():
        state.unlink()
    subprocess.run([cli, "audit", "chain"], env=env, capture_output=True, timeout=timeout,
                   check=True)
    t0 = time.perf_counter()
    done = subprocess.run([cli, "audit", "verify", "--no-progress", "--state", str(state)],
                          env={**env, "SAFETY_NET_PROGRESS": ""}, capture_output=True, text=True,
                          timeout=timeout, check=False)
    seconds = time.perf_counter() - t0
    m = re.search(r"entries: (\d+) chained", done.stdout)
    entries = int(m.group(1)) if m else 0
    own = re.search(r"; ([\d.]+)s \(([\d,]+) entries/s\)", done.stdout)
    rate = float(own.group(2).replace(",", "")) if own else (entries / seconds if seconds else 0)
    return {"entries": entries, "seconds": float(own.group(1)) if own else seconds,
            "wall_seconds": seconds, "rate": rate, "ok": done.returncode == 0,
            "output": done.stdout.strip()[-300:]}


def cli_env(url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFETY_NET_", "DATABASE_"))}
    env.update({"DATABASE_URL": url, "SAFETY_NET_DATA_DIR": str(data_dir)})
    return env
