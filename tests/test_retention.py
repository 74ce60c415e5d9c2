"""Issue 17, "accountable closure": the retention schedule of closed cases (decision 0025).

A closed case's data is erased `days` after closure (365 by default; `retention:` in tenants/),
the lead organisation's focal points warned 30 days before (content-free); erasure destroys her
data key when no other case of hers still holds data, and otherwise deletes this case's sealed
values only; reopening cancels it; the lead organisation extends it or holds it with a reason
code. Through GraphQL and the scheduler (claimed once across replicas), both databases, with
the controlled clock."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app import tenancy
from app.access.principal import SYSTEM
from app.clock import FrozenClock
from app.runtime import context_for
from app.scheduler import run_due
from app.tables.audit import AccessLogEntry
from app.tenants import schema as tenant_schema
from app.tenants import service as tenant_service
from schema import ids
from tests.conftest import BACKENDS, build_env, unique
from tests.test_consent import OPEN_CASE, new_peacebuilder
from tests.test_email import items_of

pytestmark = pytest.mark.anyio

CLOSE = """mutation($i: CloseCaseInput!) { closeCase(input: $i) {
  case { id status closedAt eraseAfter } userErrors { field message code } } }"""
REOPEN = """mutation($i: ReopenCaseInput!) { reopenCase(input: $i) {
  case { status eraseAfter } userErrors { field message code } } }"""
EXTEND = """mutation($i: ExtendRetentionInput!) { extendRetention(input: $i) {
  case { eraseAfter retentionHold } userErrors { field message code } } }"""
HOLD = """mutation($i: SetRetentionHoldInput!) { setRetentionHold(input: $i) {
  case { eraseAfter retentionHold } userErrors { field message code } } }"""
CASE = """query($id: ID!) { case(id: $id) { status summary eraseAfter retentionHold
  retentionErasedAt timeline { kind details } } }"""
INBOX = "{ inbox { kind payload } }"
HER_NOTICES = "{ me { notices { kind details } } }"


@pytest.fixture(scope="module", params=BACKENDS)
async def ret_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2037, 1, 5, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("retention"),
                                 clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def close_case(env, case: str, org: str = "fund") -> dict:
    due = (env.clock.now() + timedelta(days=30)).isoformat()
    body = await env.gql(CLOSE, {"i": {"caseId": case, "reason": "RISK_RESOLVED", "followUp": [
        {"kind": "PSYCHOSOCIAL_SUPPORT", "dueAt": due}]}}, as_=(org, "focal"))
    payload = body["data"]["closeCase"]
    assert payload["userErrors"] == [], payload
    return payload["case"]


async def case_of(env, case: str) -> dict:
    found = (await env.gql(CASE, {"id": case}, as_=("fund", "focal")))["data"]["case"]
    found["events"] = [(e["kind"], json.loads(e["details"] or "{}")) for e in found["timeline"]]
    return found


async def passes(env, n: int = 2) -> None:
    """Two replicas' schedulers at once, a few times (overdue follow-ups also fire)."""
    for _ in range(n):
        await asyncio.gather(run_due(env.runtime.db, env.clock),
                             run_due(env.runtime.db, env.clock))


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_warned_before_then_her_key_is_destroyed(ret_env):
    env = ret_env
    pb = await new_peacebuilder(env, "fund")
    closed = await close_case(env, pb["case"])
    assert at(closed["eraseAfter"]) - at(closed["closedAt"]) == timedelta(days=365)
    before = len(await items_of(env, "fund", "focal", "retention_warning"))

    env.clock.advance(days=334)
    await passes(env)
    assert len(await items_of(env, "fund", "focal", "retention_warning")) == before

    env.clock.advance(days=1, minutes=1)  # 30 days before: the lead's focal points, once
    await passes(env)
    warned = (await items_of(env, "fund", "focal", "retention_warning"))[before:]
    assert len(warned) == 1
    assert set(warned[0].payload) == {"case", "erase_after"}, "IDs and a date only"
    inbox = (await env.gql(INBOX, as_=("fund", "focal")))["data"]["inbox"]
    assert "retention_warning" in [a["kind"] for a in inbox]
    case = await case_of(env, pb["case"])
    assert case["summary"] == "Threatened after a radio interview."
    assert [k for k, _ in case["events"]].count("case.retention_warned") == 1

    env.clock.advance(days=30)
    await passes(env)
    case = await case_of(env, pb["case"])
    assert case["retentionErasedAt"] is not None
    assert ("case.retention_erased", {"how": "key_destroyed"}) in case["events"]
    body = await env.post(CASE, {"id": pb["case"]}, as_=("fund", "focal"))
    redacted = body.json().get("extensions", {}).get("redacted", [])
    assert case["summary"] is None and "ERASED" in json.dumps(redacted)
    her = await env.peacebuilder_token(pb["login"])
    told = (await env.gql(HER_NOTICES, token=her, purpose=None))["data"]["me"]["notices"]
    assert "case_data_erased" in [n["kind"] for n in told]
    async with env.runtime.db.transaction() as s:
        erased = list(await s.scalars(select(AccessLogEntry.action).where(
            AccessLogEntry.action.in_(["case.retention_erase", "peacebuilder.erase"]))))
    assert erased.count("case.retention_erase") == 1, "once across two replicas"


async def test_reopening_cancels_the_schedule(ret_env):
    env = ret_env
    pb = await new_peacebuilder(env, "fund")
    await close_case(env, pb["case"])
    reopened = await env.gql(REOPEN, {"i": {"caseId": pb["case"], "reason": "NEW_THREAT"}},
                             as_=("fund", "focal"))
    assert reopened["data"]["reopenCase"]["case"] == {"status": "OPEN", "eraseAfter": None}
    env.clock.advance(days=366)
    await passes(env)
    case = await case_of(env, pb["case"])
    assert case["summary"] == "Threatened after a radio interview."
    kinds = [k for k, _ in case["events"]]
    assert "case.retention_cancelled" in kinds and "case.retention_erased" not in kinds
    assert "case.retention_warned" not in kinds


async def test_extension_and_legal_hold_by_the_lead_organisation(ret_env):
    env = ret_env
    pb = await new_peacebuilder(env, "fund")
    closed = await close_case(env, pb["case"])
    later = at(closed["eraseAfter"]) + timedelta(days=60)
    foreign = await env.post(EXTEND, {"i": {"caseId": pb["case"], "until": later.isoformat(),
                                            "reason": "LEGAL_PROCEEDINGS"}}, as_=("mofa", "focal"))
    assert foreign.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    sooner = await env.gql(EXTEND, {"i": {"caseId": pb["case"], "until": closed["closedAt"],
                                          "reason": "LEGAL_PROCEEDINGS"}}, as_=("fund", "focal"))
    assert sooner["data"]["extendRetention"]["userErrors"][0]["field"] == ["input", "until"]
    extended = await env.gql(EXTEND, {"i": {"caseId": pb["case"], "until": later.isoformat(),
                                            "reason": "LEGAL_PROCEEDINGS"}}, as_=("fund", "focal"))
    assert at(extended["data"]["extendRetention"]["case"]["eraseAfter"]) == later

    env.clock.advance(days=366)  # the first date has passed: superseded, nothing erased
    await passes(env)
    case = await case_of(env, pb["case"])
    assert case["retentionErasedAt"] is None and case["summary"] is not None

    held = await env.gql(HOLD, {"i": {"caseId": pb["case"], "hold": True,
                                      "reason": "INVESTIGATION"}}, as_=("fund", "focal"))
    assert held["data"]["setRetentionHold"]["case"]["retentionHold"] == "INVESTIGATION"
    env.clock.advance(days=60)  # past the extended date: held, so kept
    await passes(env)
    case = await case_of(env, pb["case"])
    assert case["retentionErasedAt"] is None and case["summary"] is not None
    assert ("case.retention_held", {"reason": "investigation", "step": "retention_erasure"}
            ) in case["events"]

    released = await env.gql(HOLD, {"i": {"caseId": pb["case"], "hold": False}},
                             as_=("fund", "focal"))
    after = released["data"]["setRetentionHold"]["case"]
    assert after["retentionHold"] is None
    assert at(after["eraseAfter"]) == env.clock.now() + timedelta(days=30), "a fresh warning"
    env.clock.advance(days=30, minutes=1)
    await passes(env)
    case = await case_of(env, pb["case"])
    assert case["retentionErasedAt"] is not None
    async with env.runtime.db.transaction() as s:
        logged = list(await s.execute(select(AccessLogEntry.action, AccessLogEntry.details).where(
            AccessLogEntry.action.like("case.retention%"))))
    actions = [a for a, _ in logged]
    assert {"case.retention_extend", "case.retention_hold", "case.retention_release"} <= set(
        actions)
    assert any(d and d.get("reason") == "legal_proceedings" for a, d in logged
               if a == "case.retention_extend")


async def test_another_open_case_keeps_her_key_and_only_this_case_goes(ret_env):
    env = ret_env
    pb = await new_peacebuilder(env, "fund")
    other = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": pb["id"],
                                                "summary": "A second file, still open."}},
                          as_=("fund", "caseworker"))
    other_id = other["data"]["openCase"]["case"]["id"]
    await close_case(env, pb["case"])
    env.clock.advance(days=366)
    await passes(env)
    case = await case_of(env, pb["case"])
    assert ("case.retention_erased", {"how": "case_data_deleted"}) in case["events"]
    assert case["summary"] is None
    still = await case_of(env, other_id)
    assert still["summary"] == "A second file, still open.", "her key lives for the open case"


async def test_an_organisation_declares_its_retention_in_tenants(ret_env, tmp_path):
    env = ret_env
    slug = unique("ret").replace("-", "")[:20]
    (tmp_path / f"{slug}.yaml").write_text(f"""slug: {slug}
name: Retention test organisation
kind: peacebuilders_network
country: "KE"
users:
  - {{username: admin, name: Administrator, roles: [org_admin]}}
  - {{username: focal, name: Focal point, roles: [focal_point]}}
  - {{username: caseworker, name: Case worker, roles: [caseworker]}}
retention: {{days: 90, warn_days: 10}}
""")
    async with env.runtime.db.transaction() as session:
        ctx = context_for(env.runtime, session, SYSTEM, request_id="test-tenants")
        applied = await tenant_service.apply(ctx, tenant_schema.load_dir(tmp_path))
    assert any("retention" in change for change in applied.changes)
    pb = await new_peacebuilder(env, slug)
    closed = await close_case(env, pb["case"], slug)
    assert at(closed["eraseAfter"]) - at(closed["closedAt"]) == timedelta(days=90)
    env.clock.advance(days=80, minutes=1)
    await passes(env)
    assert len(await items_of(env, slug, "focal", "retention_warning")) == 1


def test_retention_declarations_are_validated(tmp_path: Path):
    base = "slug: xorg\nname: X\nkind: fund\ncountry: KE\n"
    good = tmp_path / "good.yaml"
    good.write_text(base + "retention: {days: 730, warn_days: 60}\n")
    assert tenant_schema.parse_file(good).retention == {"days": 730, "warn_days": 60}
    for bad, message in (("retention: {days: 10}", "whole days from 30"),
                         ("retention: {days: 90, warn_days: 90}", "whole days from 1 to 89"),
                         ("retention: {weeks: 3}", "")):
        path = tmp_path / "bad.yaml"
        path.write_text(base + bad + "\n")
        with pytest.raises(tenant_schema.TenantFileError) as exc:
            tenant_schema.parse_file(path)
        assert message in str(exc.value)


async def test_this_cases_justice_values_go_too(ret_env):
    """Insider review: with her key kept for another case, a closed case's detention place,
    visit notes and hearing outcome stayed readable after its retention ran out."""
    from app.tables.justice import Detention, DetentionVisit, Hearing
    from tests.test_justice import DETAIN, OUTCOME, VISIT, proceeding, schedule

    env = ret_env
    pb = await new_peacebuilder(env, "fund")
    other = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": pb["id"],
                                                "summary": "Second file."}},
                          as_=("fund", "caseworker"))
    assert other["data"]["openCase"]["userErrors"] == [], other
    hearing = await schedule(env, await proceeding(env, pb), env.clock.now() + timedelta(hours=2))
    det = (await env.gql(DETAIN, {"i": {"caseId": pb["case"],
                                        "detainedAt": env.clock.now().isoformat(),
                                        "place": "Qz place"}}, as_=("fund", "caseworker")))
    detention = det["data"]["recordDetention"]["detention"]["id"]
    await env.gql(VISIT, {"i": {"detentionId": detention, "visitor": "LAWYER",
                                "visitedAt": env.clock.now().isoformat(), "notes": "Qz notes"}},
                  as_=("fund", "caseworker"))
    env.clock.advance(hours=3)
    await env.gql(OUTCOME, {"i": {"hearingId": hearing["id"], "outcome": "ADJOURNED",
                                  "notes": "Qz outcome"}}, as_=("fund", "caseworker"))
    await close_case(env, pb["case"])
    env.clock.advance(days=400)
    await passes(env)
    body = await env.gql("""query($id: ID!) { case(id: $id) { retentionErasedAt
        hearings { outcome } detentions { place } detentionVisits { notes } } }""",
                         {"id": pb["case"]}, as_=("fund", "focal"))
    assert body["data"]["case"]["retentionErasedAt"], body
    assert "Qz" not in json.dumps(body), body
    case_id = ids.decode(pb["case"], "Case")
    with tenancy.using(tenancy.SYSTEM):
        async with env.runtime.db.transaction() as s:
            assert [h.outcome for h in await s.scalars(
                select(Hearing).where(Hearing.case_id == case_id))] == [None]
            assert [d.place for d in await s.scalars(
                select(Detention).where(Detention.case_id == case_id))] == [None]
            assert [v.notes for v in await s.scalars(
                select(DetentionVisit).where(DetentionVisit.case_id == case_id))] == [None]
