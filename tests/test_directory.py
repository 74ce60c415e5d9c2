"""Issue 17: the service directory and referral acceptance deadlines — through GraphQL, on both
databases, with the controlled clock.

- an organisation's admins edit its own entry; another organisation's admin cannot (NOT_FOUND),
  nor can its focal point (FORBIDDEN); staff of any organisation query every entry, filtered;
- a referral's recipient has its declared hours to accept or decline: unanswered, it escalates
  along the recipient's chain and the case timeline shows it; accepted, nothing follows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.clock import FrozenClock
from app.scheduler import run_due
from app.tables.audit import AccessLogEntry
from tests.conftest import BACKENDS, build_env
from tests.factories import current_assessment
from tests.test_consent import grant, new_peacebuilder, org_id
from tests.test_incidents import inbox_of, inbox_since

pytestmark = pytest.mark.anyio

SET = """mutation($i: SetServiceDirectoryEntryInput!) { setServiceDirectoryEntry(input: $i) {
  entry { organisationId services languages regions acceptsHelpRequests referralResponseHours
          organisation { slug } }
  userErrors { field message code } } }"""
LIST = """query($s: ServiceKind, $l: String, $r: String, $a: Boolean, $first: Int, $after: String) {
  serviceDirectory(service: $s, language: $l, region: $r, acceptsHelpRequests: $a,
                   first: $first, after: $after) {
    edges { node { organisation { slug } services languages regions acceptsHelpRequests } }
    pageInfo { hasNextPage endCursor } } }"""
ONE = """query($o: ID!) { serviceDirectoryEntry(organisationId: $o) {
  services acceptsHelpRequests } }"""
REFER = """mutation($c: ID!, $o: ID!) { referCase(input: {caseId: $c, toOrganisationId: $o,
  purpose: LEGAL_SUPPORT, request: "Please find her a lawyer."}) {
  referral { id respondBy } userErrors { field message } } }"""
MOVE = """mutation($id: ID!, $a: String!) { moveReferral(id: $id, action: $a) {
  referral { status } userErrors { message } } }"""
TIMELINE = "query($id: ID!) { case(id: $id) { timeline { kind details } } }"


@pytest.fixture(scope="module", params=BACKENDS)
async def dir_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2035, 3, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("directory"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


def entry(**over):
    return {"services": ["LEGAL_AID", "ADVOCACY"], "languages": ["en", "SW"],
            "regions": ["Nairobi", "Turkana"], "acceptsHelpRequests": False,
            "referralResponseHours": 48, **over}


async def slugs(env, as_=("mofa", "caseworker"), **filters) -> list[str]:
    body = await env.gql(LIST, {"first": 50, **filters}, as_=as_)
    assert "errors" not in body, body
    return sorted(e["node"]["organisation"]["slug"]
                  for e in body["data"]["serviceDirectory"]["edges"])


async def test_the_demo_fixture_has_entries_and_any_staff_reads_them(dir_env):
    env = dir_env
    assert await slugs(env) == ["embassy", "fund", "mofa", "nhri", "unpc", "wpn"]
    # Any organisation's staff: an analyst of another organisation too.
    assert await slugs(env, as_=("nhri", "analyst")) == await slugs(env)
    assert await slugs(env, a=True) == ["fund", "wpn"]
    assert await slugs(env, s="DETENTION_MONITORING") == ["nhri"]
    assert await slugs(env, l="ar") == ["wpn"]
    assert await slugs(env, r="garissa") == ["nhri", "unpc"]
    assert await slugs(env, s="RELOCATION", l="fr") == ["fund", "unpc"]
    # Pagination: a page of two, then the rest after its cursor.
    first = await env.gql(LIST, {"first": 2}, as_=("mofa", "caseworker"))
    page = first["data"]["serviceDirectory"]
    assert len(page["edges"]) == 2 and page["pageInfo"]["hasNextPage"]
    rest = await env.gql(LIST, {"first": 50, "after": page["pageInfo"]["endCursor"]},
                         as_=("mofa", "caseworker"))
    assert len(rest["data"]["serviceDirectory"]["edges"]) == 4
    refused = await env.gql(LIST, {"l": "english"}, as_=("mofa", "caseworker"))
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_admins_edit_their_own_entry_only(dir_env):
    env = dir_env
    embassy = await org_id(env, "embassy")
    done = await env.gql(SET, {"i": entry()}, as_=("embassy", "admin"))
    payload = done["data"]["setServiceDirectoryEntry"]
    assert payload["userErrors"] == []
    saved = payload["entry"]
    assert saved["organisation"]["slug"] == "embassy" and saved["organisationId"] == embassy
    assert saved["services"] == ["ADVOCACY", "LEGAL_AID"]
    assert saved["languages"] == ["en", "sw"] and saved["referralResponseHours"] == 48
    # A case worker of another organisation reads it.
    seen = await env.gql(ONE, {"o": embassy}, as_=("fund", "caseworker"))
    assert seen["data"]["serviceDirectoryEntry"] == {"services": ["ADVOCACY", "LEGAL_AID"],
                                                     "acceptsHelpRequests": False}
    assert "embassy" in await slugs(env, r="TURKANA")
    # Another organisation's admin cannot edit it: not found, logged, nothing changed.
    other = await env.post(SET, {"i": entry(organisationId=embassy, acceptsHelpRequests=True)},
                           as_=("fund", "admin"))
    assert other.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert other.json()["data"] is None
    async with env.runtime.db.transaction() as s:
        denied = list(await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "service_directory.manage",
            AccessLogEntry.decision == "deny")))
    assert denied
    # A focal point (not an admin) of its own organisation cannot either.
    focal = await env.post(SET, {"i": entry()}, as_=("embassy", "focal"))
    assert focal.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    seen = await env.gql(ONE, {"o": embassy}, as_=("fund", "caseworker"))
    assert seen["data"]["serviceDirectoryEntry"]["acceptsHelpRequests"] is False
    # Validation: ISO 639-1 languages, bounded regions and hours; nothing saved on error.
    for bad, field in ((entry(languages=["xx"]), "languages"),
                       (entry(regions=["x" * 61]), "regions"),
                       (entry(regions=["a|b"]), "regions"),
                       (entry(referralResponseHours=0), "referralResponseHours")):
        refused = await env.gql(SET, {"i": bad}, as_=("embassy", "admin"))
        errors = refused["data"]["setServiceDirectoryEntry"]["userErrors"]
        assert errors and errors[0]["field"] == ["input", field], (bad, refused)


async def timeline(env, case_id: str) -> list[dict]:
    body = await env.gql(TIMELINE, {"id": case_id}, as_=("fund", "focal"))
    return [{"kind": e["kind"], **json.loads(e["details"] or "{}")}
            for e in body["data"]["case"]["timeline"]]


async def test_an_unanswered_referral_escalates_along_the_recipients_chain(dir_env):
    env = dir_env
    pb = await new_peacebuilder(env, "fund")
    await grant(env, pb, as_=("fund", "focal"), to_org="nhri", categories=["INCIDENT_DETAILS"],
                purposes=["LEGAL_SUPPORT"])
    nhri = await org_id(env, "nhri")
    await current_assessment(env, pb["case"], "fund", login=pb["login"])
    made = await env.gql(REFER, {"c": pb["case"], "o": nhri}, as_=("fund", "caseworker"))
    referral = made["data"]["referCase"]["referral"]["id"]
    respond_by = datetime.fromisoformat(made["data"]["referCase"]["referral"]["respondBy"])
    assert respond_by == env.clock.now() + timedelta(hours=72)
    answered = await env.gql(REFER, {"c": pb["case"], "o": nhri}, as_=("fund", "caseworker"))
    accepted = answered["data"]["referCase"]["referral"]["id"]
    ok = await env.gql(MOVE, {"id": accepted, "a": "accept"}, as_=("nhri", "focal"),
                       purpose="legal_support")
    assert ok["data"]["moveReferral"]["userErrors"] == []
    before = await inbox_of(env, "nhri", "focal")
    fund_before = len(await inbox_of(env, "fund", "focal"))

    env.clock.advance(hours=71)  # the NHRI has 72 hours (its directory entry)
    await run_due(env.runtime.db, env.clock)
    assert len(await inbox_of(env, "nhri", "focal")) == len(before)

    env.clock.advance(hours=1, minutes=1)
    await run_due(env.runtime.db, env.clock)
    new = await inbox_since(env, "nhri", "focal", before)
    assert [(i.kind, i.payload["level"], i.payload["referral"]) for i in new] == [
        ("escalation", 1, new[0].payload["referral"])]
    # The recipient's chain, not the sender's.
    assert len(await inbox_of(env, "fund", "focal")) == fund_before
    events = await timeline(env, pb["case"])
    created = [e for e in events if e["kind"] == "referral.created"]
    assert all("respond_by" in e for e in created)
    escalated = [e for e in events if e["kind"] == "referral.escalated"]
    assert [(e["level"], e["to"]) for e in escalated] == [(1, "focal_points")]
    assert escalated[0]["recipients"] > 0

    # Declined now: the chain stops; the accepted one never escalated.
    done = await env.gql(MOVE, {"id": referral, "a": "decline"}, as_=("nhri", "focal"),
                         purpose="legal_support")
    assert done["data"]["moveReferral"]["referral"]["status"] == "declined"
    env.clock.advance(hours=6)
    await run_due(env.runtime.db, env.clock)
    assert len(await inbox_of(env, "nhri", "focal")) == len(before) + 1
    events = await timeline(env, pb["case"])
    assert [e["kind"] for e in events].count("referral.escalated") == 1
