"""Issue 18: a request for help from a woman with no case — through GraphQL without a token, on
both databases, with the controlled clock.

- anyone lists the organisations that take requests (`helpDesks`) and sends one (`requestHelp`);
- it reaches only the chosen organisation's focal points (not another organisation's, not its
  own case workers); message and contact are sealed at rest; reading is in the access log;
- an organisation that does not accept requests and one that does not exist get one identical
  answer; nothing else is reachable without a token; the limit per client address applies;
- unacknowledged by its deadline it escalates along the organisation's chain; acknowledged, the
  chain stops; erased, its text is gone.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from app.clock import FrozenClock
from app.scheduler import run_due
from app.tables.audit import AccessLogEntry
from app.tables.directory import HelpRequest
from schema import ids
from tests.conftest import BACKENDS, build_env
from tests.test_consent import org_id
from tests.test_incidents import inbox_of, inbox_since
from tests.test_ratelimit import limits

pytestmark = pytest.mark.anyio

DESKS = "{ helpDesks { organisationId name services languages } }"
ASK = """mutation($i: RequestHelpInput!) { requestHelp(input: $i) {
  received userErrors { field message code } } }"""
LIST = """{ helpRequests(first: 50) { edges { node { id status message contact language
  ackDeadline events { kind details } } } } }"""
ACK = """mutation($id: ID!) { acknowledgeHelpRequest(input: {id: $id}) {
  helpRequest { status message } userErrors { message code } } }"""
ERASE = """mutation($id: ID!) { eraseHelpRequest(input: {id: $id}) {
  helpRequest { status message contact } userErrors { message } } }"""


@pytest.fixture(scope="module", params=BACKENDS)
async def help_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2036, 5, 1, 9, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("help"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def ask(env, org: str, message: str, **extra) -> dict:
    variables = {"i": {"organisationId": org, "message": message,
                       "contact": "Signal +000 555 0101, evenings", **extra}}
    response = await env.post(ASK, variables, purpose=None)  # no token at all
    assert response.status_code == 200, response.text
    return response.json()


async def requests_of(env, org: str, user: str = "focal") -> list[dict]:
    body = await env.gql(LIST, as_=(org, user))
    assert "errors" not in body, body
    return [e["node"] for e in body["data"]["helpRequests"]["edges"]]


async def test_only_the_chosen_organisations_focal_points_read_it(help_env):
    env = help_env
    desks = (await env.post(DESKS, purpose=None)).json()["data"]["helpDesks"]
    names = {d["organisationId"]: d["name"] for d in desks}
    fund, wpn = await org_id(env, "fund"), await org_id(env, "wpn")
    assert set(names) == {fund, wpn}, "only those whose entry accepts requests"
    before = {who: len(await inbox_of(env, *who)) for who in
              (("fund", "focal"), ("fund", "focal2"), ("fund", "caseworker"), ("wpn", "focal"))}

    sent = await ask(env, fund, "Men followed me home twice this week.", language="sw")
    assert sent == {"data": {"requestHelp": {"received": True, "userErrors": []}}}

    mine = [r for r in await requests_of(env, "fund")
            if r["message"] == "Men followed me home twice this week."]
    assert len(mine) == 1
    request = mine[0]
    assert request["contact"] == "Signal +000 555 0101, evenings"
    assert request["status"] == "OPEN" and request["language"] == "sw"
    for who in (("fund", "focal"), ("fund", "focal2")):
        new = (await inbox_of(env, *who))[before[who]:]
        assert [i.kind for i in new] == ["help_request_received"]
        assert "followed" not in json.dumps(new[0].payload), "alerts carry IDs only"
    assert len(await inbox_of(env, "fund", "caseworker")) == before[("fund", "caseworker")]
    # Through the API: the alert names the request by its global ID, nothing of her text.
    alerts = (await env.gql("{ inbox { kind payload } }", as_=("fund", "focal")))["data"]["inbox"]
    received = [json.loads(a["payload"]) for a in alerts if a["kind"] == "help_request_received"]
    assert {"help_request": request["id"], "language": "sw"} in received
    assert len(await inbox_of(env, "wpn", "focal")) == before[("wpn", "focal")]
    # Another organisation's focal point sees nothing of it; its own case worker may not list.
    assert all(r["id"] != request["id"] for r in await requests_of(env, "wpn"))
    worker = await env.post(LIST, as_=("fund", "caseworker"))
    assert worker.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "followed" not in worker.text
    foreign = await env.post(ACK, {"id": request["id"]}, as_=("wpn", "focal"))
    assert foreign.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Sealed at rest: the stored row holds no plaintext.
    raw_id = ids.decode(request["id"], "HelpRequest")
    async with env.runtime.db.transaction() as s:
        row = (await s.execute(text("SELECT message, contact FROM help_requests WHERE id = :i"),
                               {"i": raw_id if env.backend == "postgresql" else raw_id.hex})).one()
    assert row.message.startswith("enc1:") and "followed" not in row.message
    assert row.contact.startswith("enc1:") and "Signal" not in row.contact
    async with env.runtime.db.transaction() as s:
        reads = list(await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "help_request.read",
            AccessLogEntry.target_id == str(raw_id))))
    assert reads, "reading it is in the access log"


async def test_not_accepting_and_missing_organisations_get_one_answer(help_env):
    env = help_env
    async with env.runtime.db.transaction() as s:
        count = len(list(await s.scalars(select(HelpRequest.id))))
    nhri = await ask(env, await org_id(env, "nhri"), "Please help me.")
    missing = await ask(env, ids.encode("Organisation", uuid.uuid4()), "Please help me.")
    garbled = await ask(env, "not-an-id", "Please help me.")
    assert nhri == missing == garbled
    payload = nhri["data"]["requestHelp"]
    assert payload["received"] is False
    assert payload["userErrors"][0]["field"] == ["input", "organisationId"]
    for word in ("case", "peacebuilder", "nhri", "National"):
        assert word.lower() not in json.dumps(nhri).lower()
    async with env.runtime.db.transaction() as s:
        assert len(list(await s.scalars(select(HelpRequest.id)))) == count, "nothing written"
    bad = await ask(env, await org_id(env, "fund"), "Help.", language="xx")
    assert bad["data"]["requestHelp"]["userErrors"][0]["field"] == ["input", "language"]


async def test_nothing_else_is_reachable_without_a_token(help_env):
    env = help_env
    for query in ("{ cases { edges { node { id } } } }", "{ viewer { name } }",
                  "{ helpRequests { edges { node { id message } } } }",
                  '{ helpDesks { name } viewer { name } }'):
        response = await env.post(query, purpose=None)
        assert response.status_code == 401, (query, response.text)


async def test_the_limit_per_client_address_applies(help_env):
    env = help_env
    fund = await org_id(env, "fund")
    with limits(env, rate_help_ip="2/3600"):
        for _ in range(2):
            assert (await ask(env, fund, "Help."))["data"]["requestHelp"]["received"] is True
        refused = await env.post(ASK, {"i": {"organisationId": fund, "message": "Help.",
                                             "contact": "x"}}, purpose=None)
        assert refused.status_code == 429
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["limit"] == "help_address"


async def test_unacknowledged_it_escalates_acknowledged_it_stops_erased_it_is_gone(help_env):
    env = help_env
    wpn = await org_id(env, "wpn")
    assert (await ask(env, wpn, "They took my phone."))["data"]["requestHelp"]["received"]
    [request] = [r for r in await requests_of(env, "wpn") if r["message"] == "They took my phone."]
    before = await inbox_of(env, "wpn", "focal")
    env.clock.advance(hours=4, minutes=1)  # past its acknowledgement deadline
    await run_due(env.runtime.db, env.clock)
    new = await inbox_since(env, "wpn", "focal", before)
    assert [(i.kind, i.payload["level"]) for i in new] == [("escalation", 1)]
    assert new[0].case_id is None and "phone" not in json.dumps(new[0].payload)
    [request] = [r for r in await requests_of(env, "wpn") if r["id"] == request["id"]]
    kinds = [e["kind"] for e in request["events"]]
    assert kinds == ["help_request.escalated"]
    assert json.loads(request["events"][0]["details"])["recipients"] > 0

    acked = await env.gql(ACK, {"id": request["id"]}, as_=("wpn", "focal"))
    assert acked["data"]["acknowledgeHelpRequest"]["helpRequest"]["status"] == "ACKNOWLEDGED"
    env.clock.advance(hours=3)
    await run_due(env.runtime.db, env.clock)
    assert len(await inbox_of(env, "wpn", "focal")) == len(before) + 1, "acknowledged: it stops"

    erased = await env.gql(ERASE, {"id": request["id"]}, as_=("wpn", "focal"))
    assert erased["data"]["eraseHelpRequest"]["helpRequest"] == {
        "status": "ERASED", "message": None, "contact": None}
    [after] = [r for r in await requests_of(env, "wpn") if r["id"] == request["id"]]
    assert after["message"] is None and after["contact"] is None


async def test_aliases_cannot_multiply_the_limit_and_subscriptions_are_refused(help_env):
    """Insider review: one request carried 15 aliased requestHelp fields past the per-address
    limit; `subscription { helpDesks }` without a token was an unhandled error."""
    env = help_env
    fund = await org_id(env, "fund")
    aliased = """mutation($o: ID!) {
      a: requestHelp(input: {organisationId: $o, message: "m", contact: "c"}) { received }
      b: requestHelp(input: {organisationId: $o, message: "m", contact: "c"}) { received } }"""
    async with env.runtime.db.transaction() as s:
        before = await s.scalar(select(func.count()).select_from(HelpRequest))
    refused = await env.post(aliased, {"o": fund}, purpose=None)
    assert refused.json()["errors"][0]["message"] == "One requestHelp per request.", refused.text
    async with env.runtime.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(HelpRequest)) == before
    sub = await env.post("subscription { helpDesks { name } }", purpose=None)
    assert sub.status_code == 400, sub.text
    assert sub.json()["errors"][0]["extensions"]["code"] == "OPERATION_NOT_SUPPORTED"
