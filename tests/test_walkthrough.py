"""docs/demo/response_walkthrough.py stays true: the walk the issue-17 closing note quotes runs
against the API as it is, and says what the note says (SQLite; the chain itself is tested on both
databases in tests/test_escalation.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.anyio

WALK = Path(__file__).resolve().parents[1] / "docs" / "demo" / "response_walkthrough.py"


async def test_the_response_walkthrough_runs(capsys) -> None:
    spec = importlib.util.spec_from_file_location("response_walkthrough", WALK)
    assert spec and spec.loader
    walk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walk)
    await walk.main()
    out = capsys.readouterr().out
    assert "level 1 focal_points: escalated to 2 active person(s)" in out
    assert "level 2 on_duty: escalated to 1 active person(s)" in out
    assert "level 3 head_of_protection: escalation_skipped" in out
    assert "nhri/focal inbox: escalation_notice" in out
    assert "0 new alerts (the chain stopped)" in out
    assert "closeCase without a follow-up plan -> userErrors ['BAD_USER_INPUT']" in out
    assert "case still OPEN" in out and "case now CLOSED (RISK_RESOLVED)" in out
    assert "'case_closed'" in out
    assert "reopenCase(NEW_THREAT) -> OPEN" in out
