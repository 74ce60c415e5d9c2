"""Issue 17: the response never stops at nobody — escalation chains through GraphQL and the
scheduler, on both databases, with the controlled clock.

- the default chain: focal points at the deadline, then the person on duty, then the head of
  protection; empty levels are skipped and recorded as skipped, never as delivered; the last
  level that reaches someone repeats until the incident is acknowledged;
- once the chain has run out, the organisation's overseer (its NHRI) and the convener of a
  working group she granted get a content-free notice, once;
- deactivated focal points are never recipients; a rota and a declared head of protection are
  alerted at their levels; an organisation without an active focal point is reported;
- an overdue task escalates along its owner's chain, once across two scheduler instances.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.access.principal import SYSTEM
from app.clock import FrozenClock
from app.runtime import context_for
from app.scheduler import run_due
from app.tables.notify import InboxItem
from app.tenants import schema as tenant_schema
from app.tenants import service as tenant_service
from schema import ids
from tests.conftest import BACKENDS, build_env, unique
from tests.test_auth import DEACTIVATE_USER, new_user
from tests.test_consent import grant, new_peacebuilder, org_id, wg_id
from tests.test_incidents import REPORT, inbox_of, incident_input

pytestmark = pytest.mark.anyio

ACK = "mutation($id: ID!) { acknowledgeIncident(id: $id) { incident { status } } }"
TIMELINE = "query($id: ID!) { case(id: $id) { timeline { kind details } } }"
ADD_SHIFT = """mutation($i: AddDutyShiftInput!) { addDutyShift(input: $i) {
  shift { id userId startsAt endsAt } userErrors { field message code } } }"""


@pytest.fixture(scope="module", params=BACKENDS)
async def chain_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2034, 1, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("chain"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def timeline(env, case_id: str, org: str) -> list[dict]:
    body = await env.gql(TIMELINE, {"id": case_id}, as_=(org, "focal"))
    return [{"kind": e["kind"], **json.loads(e["details"] or "{}")}
            for e in body["data"]["case"]["timeline"]]


async def report(env, pb: dict, org: str) -> str:
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=(org, "caseworker"))
    return body["data"]["reportIncident"]["incident"]["id"]


async def test_default_chain_skips_empty_levels_repeats_and_tells_the_overseers(chain_env):
    env = chain_env
    pb = await new_peacebuilder(env, "mofa")
    # She grants the Joint Action Group (convened by unpc); mofa is overseen by the NHRI.
    await grant(env, pb, as_=("mofa", "focal"), to_wg=await wg_id(env))
    incident = await report(env, pb, "mofa")
    before = {who: len(await inbox_of(env, *who)) for who in
              (("mofa", "focal"), ("nhri", "focal"), ("unpc", "focal"))}
    env.clock.advance(minutes=60)  # critical: acknowledgement deadline
    await run_due(env.runtime.db, env.clock)
    mofa = (await inbox_of(env, "mofa", "focal"))[before[("mofa", "focal")]:]
    assert [(i.kind, i.payload["level"], i.payload["to"]) for i in mofa] == [
        ("escalation", 1, "focal_points")]
    assert len(await inbox_of(env, "nhri", "focal")) == before[("nhri", "focal")]

    env.clock.advance(minutes=60)  # level 1's time is up: on duty, head of protection
    await run_due(env.runtime.db, env.clock)
    events = await timeline(env, pb["case"], "mofa")
    skipped = [(e["level"], e["to"]) for e in events if e["kind"] == "incident.escalation_skipped"]
    assert sorted(skipped) == [(2, "on_duty"), (3, "head_of_protection")]
    escalated = [e for e in events if e["kind"] == "incident.escalated"]
    assert [(e["level"], e["to"]) for e in escalated] == [(1, "focal_points"), (1, "focal_points")]
    assert all(e["recipients"] > 0 for e in escalated), "never recorded as delivered to nobody"
    for org in ("nhri", "unpc"):
        notices = [i for i in (await inbox_of(env, org, "focal"))[before[(org, "focal")]:]]
        assert [i.kind for i in notices] == ["escalation_notice"], org
        notice = notices[0]
        assert notice.case_id is None and "case" not in notice.payload
        assert notice.payload["missed"] == ["focal_points", "on_duty", "head_of_protection"]
    # The NHRI's notice opens nothing: the case stays behind her consent.
    hidden = await env.post("query($id: ID!) { case(id: $id) { id } }", {"id": pb["case"]},
                            as_=("nhri", "focal"))
    assert hidden.json()["data"]["case"] is None

    env.clock.advance(minutes=60)  # repeats at the last level reaching someone, notices once
    await run_due(env.runtime.db, env.clock)
    mofa = (await inbox_of(env, "mofa", "focal"))[before[("mofa", "focal")]:]
    assert [i.kind for i in mofa].count("escalation") == 3
    assert [i.kind for i in (await inbox_of(env, "nhri", "focal"))[before[("nhri", "focal")]:]
            ] == ["escalation_notice"]
    events = await timeline(env, pb["case"], "mofa")
    assert [e["kind"] for e in events].count("incident.escalation_skipped") == 2

    acked = await env.gql(ACK, {"id": incident}, as_=("mofa", "focal"))
    assert acked["data"]["acknowledgeIncident"]["incident"]["status"] == "ACKNOWLEDGED"
    env.clock.advance(minutes=120)
    await run_due(env.runtime.db, env.clock)
    mofa = (await inbox_of(env, "mofa", "focal"))[before[("mofa", "focal")]:]
    assert [i.kind for i in mofa].count("escalation") == 3, "acknowledged: the chain stops"


async def test_deactivated_focal_points_are_never_recipients(chain_env):
    env = chain_env
    extra_id, _name, _ = await new_user(env, "fund", ["FOCAL_POINT"])
    off = await env.gql(DEACTIVATE_USER, {"id": extra_id}, as_=("fund", "admin"))
    assert off["data"]["deactivateUser"]["user"]["active"] is False
    pb = await new_peacebuilder(env, "fund")
    await report(env, pb, "fund")
    env.clock.advance(minutes=60)
    await run_due(env.runtime.db, env.clock)
    subject = f"user:{ids.decode(extra_id, 'User')}"
    async with env.runtime.db.transaction() as s:
        to_him = list(await s.scalars(select(InboxItem).where(InboxItem.recipient == subject)))
    assert to_him == []
    assert [i.kind for i in await inbox_of(env, "fund", "focal")].count("escalation") >= 1


async def test_rota_and_head_of_protection_are_alerted_at_their_levels(chain_env, tmp_path):
    env = chain_env
    slug = unique("org").replace("-", "")[:20]
    (tmp_path / f"{slug}.yaml").write_text(f"""slug: {slug}
name: Chain test organisation
kind: peacebuilders_network
country: "KE"
accepts_oversight_from: [nhri]
users:
  - {{username: admin, name: Administrator, roles: [org_admin]}}
  - {{username: focal, name: Focal point, roles: [focal_point]}}
  - {{username: focal2, name: Second focal point, roles: [focal_point]}}
  - {{username: duty, name: Duty officer, roles: [focal_point]}}
  - {{username: head, name: Head of protection, roles: [org_admin]}}
  - {{username: caseworker, name: Case worker, roles: [caseworker]}}
escalation:
  head_of_protection: head
  levels:
    - {{to: focal_points, minutes: 20}}
    - {{to: on_duty, minutes: 10}}
    - {{to: head_of_protection, minutes: 15}}
""")
    async with env.runtime.db.transaction() as session:
        ctx = context_for(env.runtime, session, SYSTEM, request_id="test-tenants")
        applied = await tenant_service.apply(ctx, tenant_schema.load_dir(tmp_path))
    assert applied.warnings == []
    users = await env.gql("{ users(first: 20) { edges { node { id username } } } }",
                          as_=(slug, "admin"))
    by_name = {e["node"]["username"]: e["node"]["id"] for e in users["data"]["users"]["edges"]}
    now = env.clock.now()
    shift = await env.gql(ADD_SHIFT, {"i": {"userId": by_name["duty"],
                                            "startsAt": now.isoformat(),
                                            "endsAt": (now + timedelta(hours=8)).isoformat()}},
                          as_=(slug, "admin"))
    assert shift["data"]["addDutyShift"]["userErrors"] == []
    refused = await env.gql(ADD_SHIFT, {"i": {"userId": by_name["caseworker"],
                                              "startsAt": now.isoformat(),
                                              "endsAt": (now + timedelta(hours=8)).isoformat()}},
                            as_=(slug, "admin"))
    assert refused["data"]["addDutyShift"]["userErrors"][0]["field"] == ["input", "userId"]
    not_admin = await env.post(ADD_SHIFT, {"i": {"userId": by_name["duty"],
                                                 "startsAt": now.isoformat(),
                                                 "endsAt": (now + timedelta(hours=1)).isoformat()}},
                               as_=(slug, "focal"))
    assert not_admin.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    pb = await new_peacebuilder(env, slug)
    await report(env, pb, slug)
    seen = {}
    for minutes in (60, 20, 10, 15):  # deadline, then each level's minutes
        env.clock.advance(minutes=minutes)
        await run_due(env.runtime.db, env.clock)
    for who in ("focal", "duty", "head"):
        seen[who] = [(i.payload["level"], i.payload["to"]) for i in
                     await inbox_of(env, slug, who) if i.kind == "escalation"]
    assert (1, "focal_points") in seen["focal"] and (1, "focal_points") in seen["duty"]
    assert (2, "on_duty") in seen["duty"] and (2, "on_duty") not in seen["focal"]
    assert (3, "head_of_protection") in seen["head"]
    # Past the last level the head of protection is alerted again, and the NHRI is told.
    assert seen["head"].count((3, "head_of_protection")) == 2
    events = await timeline(env, pb["case"], slug)
    assert not [e for e in events if e["kind"] == "incident.escalation_skipped"]
    nhri = [i for i in await inbox_of(env, "nhri", "focal") if i.kind == "escalation_notice"
            and i.payload["organisation"] == str(ids.decode(await org_id(env, slug),
                                                               "Organisation"))]
    assert len(nhri) == 1


async def test_an_organisation_without_an_active_focal_point_is_reported(chain_env, tmp_path):
    env = chain_env
    slug = unique("bare").replace("-", "")[:20]
    (tmp_path / f"{slug}.yaml").write_text(f"""slug: {slug}
name: No focal point yet
kind: peacebuilders_network
country: "KE"
users:
  - {{username: admin, name: Administrator, roles: [org_admin]}}
""")
    async with env.runtime.db.transaction() as session:
        ctx = context_for(env.runtime, session, SYSTEM, request_id="test-tenants")
        applied = await tenant_service.apply(ctx, tenant_schema.load_dir(tmp_path))
    assert [w for w in applied.warnings if slug in w and "no active focal point" in w]
    alerts = [i.kind for i in await inbox_of(env, slug, "admin")]
    assert "no_active_focal_point" in alerts
    metrics = await env.client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    line = next(row for row in metrics.text.splitlines()
                if row.startswith("safety_net_organisations_without_focal_point "))
    assert float(line.split()[1]) >= 1


@pytest.mark.parametrize("bad, message", [
    ("escalation: {levels: []}", "at least one level"),
    ("escalation: {levels: [{to: somebody, minutes: 5}]}", "unknown value"),
    ("escalation: {levels: [{to: on_duty, minutes: 0}]}", "whole minutes"),
    ("escalation: {levels: [{to: head_of_protection, minutes: 5}]}", "needs escalation.head"),
    ("escalation: {head_of_protection: ghost, levels: [{to: on_duty, minutes: 5}]}",
     "not one of this file's users"),
])
def test_chain_declarations_are_validated(tmp_path: Path, bad: str, message: str):
    path = tmp_path / "x.yaml"
    path.write_text("slug: xorg\nname: X\nkind: fund\ncountry: \"KE\"\nusers:\n"
                    "  - {username: admin, name: A, roles: [org_admin]}\n" + bad + "\n")
    with pytest.raises(tenant_schema.TenantFileError) as err:
        tenant_schema.parse_file(path)
    assert message in str(err.value) and "x.yaml:" in str(err.value)


async def test_overdue_task_escalates_once_across_two_scheduler_instances(chain_env):
    env = chain_env
    pb = await new_peacebuilder(env, "fund")
    due = env.clock.now() + timedelta(days=2)
    made = await env.gql("""mutation($c: ID!, $d: DateTime) { addMeasure(input: {caseId: $c,
        kind: ACCOMPANIMENT, dueAt: $d}) { measure { id } userErrors { message } } }""",
                         {"c": pb["case"], "d": due.isoformat()}, as_=("fund", "focal"))
    measure = made["data"]["addMeasure"]["measure"]["id"]
    env.clock.advance(days=2, minutes=1)
    # Two replicas' schedulers run the same pass at once: the level fires once.
    await asyncio.gather(run_due(env.runtime.db, env.clock), run_due(env.runtime.db, env.clock))
    raw = str(ids.decode(measure, "Measure"))
    items = [i for i in await inbox_of(env, "fund", "focal")
             if i.kind == "escalation" and i.payload.get("measure") == raw]
    assert len(items) == 1 and items[0].payload["level"] == 1
