"""The walkthroughs of docs/demo stay true (response: issue 17; her account: 18; risk: 19): each
runs against the API as it is, and says what the closing notes quote (SQLite; the behaviour
itself is tested on both databases in tests/test_escalation.py, test_her_account.py,
test_risk.py and test_checkins.py)."""

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


def _run(script: str) -> str:
    """Run a walkthrough as a user does (its own process, from the repository root)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(WALK.parent / script)], cwd=WALK.parents[2],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_her_walkthrough_runs() -> None:
    out = _run("her_walkthrough.py")
    assert "unpc/focal: confirmNetwork(wpn); unpc/focal2: confirmTwoPerson -> CONFIRMED" in out
    shown = [line for line in out.splitlines() if "(shown this once)" in line]
    assert len(shown) == 1 and "wpn/focal: issueHerCode -> enrolment code " in shown[0]
    code = shown[0].split("enrolment code ")[1].split(" ")[0]
    assert out.count(code) == 1, "the code is masked after it is shown"
    assert "POST /auth/redeem-code(" in out and "-> 200 enrolment" in out
    assert "again -> 400 invalid_grant (single use)" in out
    assert "she: POST /auth/login(amina-demo) -> 200" in out
    assert "she: reportIncident(her case, HIGH) -> REPORTED" in out
    assert "unpc/focal: acknowledgeIncident -> ACKNOWLEDGED" in out
    told = next(line for line in out.splitlines() if line.startswith("she: me.notices -> "))
    assert "'incident_acknowledged'" in told and "'enrolment_code_issued'" in told


def test_risk_walkthrough_runs() -> None:
    out = _run("risk_walkthrough.py")
    assert "case riskLevel before: HIGH" in out
    assert "she: answerRiskAssessment(agree) -> AGREED, current True" in out
    assert "case riskLevel now: CRITICAL (the agreed assessment's level)" in out
    assert "setMeasurePlan -> PREVENTIVE_PROTOCOL against threat 2" in out
    assert "agreeCheckInSchedule(every 60 min, SECURE_MESSENGER, if missed CALL_HER) -> ACTIVE" in out
    assert "mofa/focal live alert: check_in_missed" in out and "action call_her" in out
    assert "the check-in is now MISSED" in out
    assert "she is told: True (1 check_in_missed notice)" in out
