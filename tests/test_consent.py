"""Consent and need-to-know through GraphQL (invariants 1, 2, 3, 8 and 9).

Each test builds its own peacebuilder, so the shared demo database stays as the fixture says.
Time-dependent tests use `clock_env`, whose runtime reads a FrozenClock the test moves.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from app.clock import FrozenClock
from app.tables.audit import AccessLogEntry
from app.tables.peacebuilders import Peacebuilder
from schema import ids
from schema.server import create_app
from tests.conftest import BACKENDS, build_env, unique
from tests.factories import (
    CONFIRM_CONSENT,
    CONFIRM_NETWORK,
    CONFIRM_TWO_PERSON,
    EVIDENCE,
    INTAKE,
    OPEN_CASE,
    PROFILE,
    confirm_by_second_person,
    org_id,
    pending_confirmation,
    register,
    she_confirms,
)

pytestmark = pytest.mark.anyio

CREATE_PB = """
mutation($input: CreatePeacebuilderInput!) {
  createPeacebuilder(input: $input) { peacebuilder { id } userErrors { field message code } }
}"""
GRANT = """
mutation($input: GrantConsentInput!) {
  grantConsent(input: $input) {
    grant { id status categories purposes recipientType
            coveredOrganisations { slug } events { kind actingForHer obtainedVia } }
    userErrors { field message code }
  }
}"""
REVOKE = """
mutation($id: ID!) { revokeConsent(input: {grantId: $id}) {
  grant { id status revokedAt } userErrors { message code } } }"""
EXTEND = """
mutation($input: ExtendConsentInput!) { extendConsent(input: $input) {
  grant { id status categories coveredOrganisations { slug } } userErrors { message code } } }"""
NARROW = """
mutation($input: NarrowConsentInput!) { narrowConsent(input: $input) {
  grant { id status categories purposes validUntil } userErrors { field message code } } }"""
READ = """
query($id: ID!) {
  peacebuilder(id: $id) {
    pseudonym
    profile { legalName phone country region familyMembers healthNotes }
    cases { id summary status }
  }
}"""
CASES = """
query($pb: ID!) { cases(first: 50, filter: {peacebuilderId: $pb}) {
  totalCount edges { node { id summary peacebuilder { pseudonym profile { legalName } } } } } }"""


async def wg_id(env, slug: str = "jag") -> str:
    body = await env.gql("{ workingGroups(first: 10) { edges { node { id slug } } } }",
                         as_=("unpc", "admin"))
    return next(e["node"]["id"] for e in body["data"]["workingGroups"]["edges"]
                if e["node"]["slug"] == slug)


# Her intake consent in these tests: every category but contact and location (identity too,
# which only she can bring into force: she confirms it with her own login).
INTAKE_CATEGORIES = ["IDENTITY", "FAMILY", "HEALTH", "INCIDENT_DETAILS", "LEGAL", "FINANCIAL",
                     "TRAVEL", "RISK_ASSESSMENT"]


async def new_peacebuilder(env, lead: str = "fund", *, categories=None, purposes=None,
                           summary: str = "Threatened after a radio interview.",
                           account: bool = True) -> dict[str, str]:
    """A fresh woman registered by `lead`, her intake consent confirmed (by her, with her own
    login; without one, by a second focal point and without identity), with a case whose team
    includes `lead`'s caseworker."""
    if categories is None:
        categories = INTAKE_CATEGORIES if account else [
            c for c in INTAKE_CATEGORIES if c != "IDENTITY"]
    her = await register(env, lead, "caseworker", profile=PROFILE, categories=categories,
                         purposes=purposes, login=account)
    pb = her["id"]
    case = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": pb, "summary": summary}},
                         as_=(lead, "caseworker"))
    assert case["data"]["openCase"]["userErrors"] == [], case
    return {"id": pb, "case": case["data"]["openCase"]["case"]["id"], "login": her["login"],
            "grant": her["grant"]}


async def grant(env, pb: dict, *, as_, to_org: str | None = None, to_wg: str | None = None,
                categories=("INCIDENT_DETAILS",), purposes=("PROTECTION",), confirm: bool = True,
                **extra) -> dict:
    """Record a grant: staff only for their own organisation (pending until she — or, while she
    has no login, a second focal point — confirms it: done here unless `confirm` is False);
    anything else she records."""
    variables = {"peacebuilderId": pb["id"], "categories": list(categories),
                 "purposes": list(purposes), "obtainedVia": "IN_PERSON", **extra}
    if to_org:
        variables["recipientOrganisationId"] = await org_id(env, to_org)
    if to_wg:
        variables["recipientWorkingGroupId"] = to_wg
    if to_wg or to_org != as_[0]:
        del variables["obtainedVia"]
        her = await env.peacebuilder_token(pb["login"])
        body = await env.gql(GRANT, {"input": variables}, token=her, purpose=None)
        assert body["data"]["grantConsent"]["userErrors"] == [], body
        return body["data"]["grantConsent"]["grant"]
    if not pb.get("login"):
        variables["evidence"] = EVIDENCE
    body = await env.gql(GRANT, {"input": variables}, as_=as_)
    assert body["data"]["grantConsent"]["userErrors"] == [], body
    recorded = body["data"]["grantConsent"]["grant"]
    assert recorded["status"] == "PENDING", body
    if confirm and pb.get("login"):
        await she_confirms(env, pb["login"], recorded["id"])
    elif confirm:
        await confirm_by_second_person(env, as_[0], recorded["id"], first=as_[1])
    return recorded


def released(body: dict) -> dict:
    return body["data"]["peacebuilder"]["profile"]


# --- the demo scenario of the closing note -----------------------------------------------------

async def test_she_grants_the_cluster_it_reads_the_embassy_does_not_then_revocation(env):
    pb = await new_peacebuilder(env, "mofa")
    her = await env.peacebuilder_token(pb["login"])
    body = await env.gql(GRANT, {"input": {
        "recipientOrganisationId": await org_id(env, "unpc"), "categories": ["INCIDENT_DETAILS"],
        "purposes": ["PROTECTION"]}}, token=her, purpose=None)
    granted = body["data"]["grantConsent"]["grant"]
    assert granted["status"] == "LIVE"
    assert granted["events"] == [{"kind": "grant", "actingForHer": False,
                                  "obtainedVia": "SELF_SERVICE"}]
    unpc = await env.gql(READ, {"id": pb["id"]}, as_=("unpc", "focal"))
    assert unpc["data"]["peacebuilder"]["cases"][0]["summary"] == "Threatened after a radio interview."
    # Identity was not granted: null, and said so without telling whether a value exists.
    assert released(unpc)["legalName"] is None
    assert {"path": ["peacebuilder", "profile", "legalName"],
            "reason": "CONSENT_DOES_NOT_COVER"} in unpc["extensions"]["redacted"]
    embassy = await env.post(READ, {"id": pb["id"]}, as_=("embassy", "focal"))
    assert embassy.json()["data"] == {"peacebuilder": None}
    assert embassy.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    revoked = await env.gql(REVOKE, {"id": granted["id"]}, token=her, purpose=None)
    assert revoked["data"]["revokeConsent"]["grant"]["status"] == "REVOKED"
    after = await env.gql(READ, {"id": pb["id"]}, as_=("unpc", "focal"))
    assert after["data"] == {"peacebuilder": None}
    assert after["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    listed = await env.gql(CASES, {"pb": pb["id"]}, as_=("unpc", "focal"))
    assert listed["data"]["cases"] == {"totalCount": 0, "edges": []}


# --- purpose ------------------------------------------------------------------------------------

async def test_no_purpose_means_no_sensitive_data_even_for_the_lead(env):
    pb = await new_peacebuilder(env, "fund")
    with_purpose = await env.gql(READ, {"id": pb["id"]}, as_=("fund", "caseworker"))
    assert released(with_purpose)["legalName"] == "Secret Legal Name"
    # Without a purpose nothing about her is released, and the request is told so outright
    # (PURPOSE_REQUIRED) instead of getting a null or an empty list.
    without = await env.gql(READ, {"id": pb["id"]}, as_=("fund", "caseworker"), purpose=None)
    assert without.get("data") is None
    assert without["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
    listed = await env.gql(CASES, {"pb": pb["id"]}, as_=("fund", "caseworker"), purpose=None)
    assert listed["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"


async def test_purpose_not_covered_gets_nothing(env):
    pb = await new_peacebuilder(env, "fund", purposes=["PROTECTION"])
    media = await env.gql(READ, {"id": pb["id"]}, as_=("fund", "caseworker"), purpose="media")
    assert media["data"] == {"peacebuilder": None}


async def test_unknown_purpose_is_refused_and_logged(env):
    response = await env.post("{ viewer { name } }", as_=("mofa", "caseworker"),
                              purpose="intelligence_gathering")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_PURPOSE"
    async with env.runtime.db.transaction() as s:
        row = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "request.purpose").order_by(AccessLogEntry.at.desc()))).first()
    assert row is not None and row.decision == "deny"


async def test_unknown_purpose_is_logged_on_the_endpoints_outside_graphql_too(env):
    async def refusals() -> int:
        async with env.runtime.db.transaction() as s:
            return len(list(await s.scalars(select(AccessLogEntry.id).where(
                AccessLogEntry.action == "request.purpose"))))

    before = await refusals()
    token = await env.token("nhri", "auditor")
    export = await env.client.get("/audit/export", headers={
        "authorization": f"Bearer {token}", "safety-net-purpose": "intelligence_gathering"})
    assert export.status_code == 400
    assert await refusals() == before + 1
    from schema import ids

    some_id = ids.encode("Attachment", uuid.uuid4())
    attachment = await env.client.get(f"/attachments/{some_id}", headers={
        "authorization": f"Bearer {token}", "safety-net-purpose": "surveillance"})
    assert attachment.status_code == 400
    assert await refusals() == before + 2


# --- categories and redaction -------------------------------------------------------------------

async def test_category_not_granted_is_null_and_redacted_identically_with_or_without_value(env):
    pb = await new_peacebuilder(env, "fund")
    # Contact is never in a default intake grant, and `phone` has a value; `address` has none.
    body = await env.gql("query($id: ID!) { peacebuilder(id: $id) { profile { phone address "
                         "legalName } } }", {"id": pb["id"]}, as_=("fund", "caseworker"))
    profile = released(body)
    assert profile["phone"] is None and profile["address"] is None
    assert profile["legalName"] == "Secret Legal Name"
    reasons = {tuple(r["path"]): r["reason"] for r in body["extensions"]["redacted"]}
    assert reasons == {("peacebuilder", "profile", "phone"): "CONSENT_DOES_NOT_COVER",
                       ("peacebuilder", "profile", "address"): "CONSENT_DOES_NOT_COVER"}


async def test_analysts_see_pseudonymous_records_only(env):
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(READ, {"id": pb["id"]}, as_=("fund", "analyst"))
    record = body["data"]["peacebuilder"]
    assert record["pseudonym"] == pb["login"]
    assert set(record["profile"].values()) == {None}
    assert record["cases"][0]["summary"] is None
    assert {r["reason"] for r in body["extensions"]["redacted"]} == {"NEED_TO_KNOW"}


async def test_admins_and_auditors_see_no_case_content(env):
    pb = await new_peacebuilder(env, "nhri")
    for user in ("admin", "auditor"):
        body = await env.post(READ, {"id": pb["id"]}, as_=("nhri", user))
        assert body.json()["data"] == {"peacebuilder": None}
        assert "Secret" not in body.text


# --- need-to-know inside an organisation --------------------------------------------------------

async def test_case_team_decides_who_inside_the_organisation_sees(env):
    pb = await new_peacebuilder(env, "embassy")
    # A second case worker of the same organisation, not on the team.
    created = await env.gql("""mutation($u: String!) { createUser(input: {username: $u,
        displayName: "Second case worker", roles: [CASEWORKER]}) { user { id } userErrors { message } } }""",
                            {"u": unique("cw")}, as_=("embassy", "admin"))
    user_id = created["data"]["createUser"]["user"]["id"]
    async with env.runtime.db.transaction() as s:
        from app.tables.orgs import User

        user = await s.get(User, ids.decode(user_id, "User"))
        token = env.runtime.issuer.issue(subject=user.subject, org_id=str(user.org_id))[0]
    assert (await env.gql(READ, {"id": pb["id"]}, token=token))["data"] == {"peacebuilder": None}
    assign = """mutation($c: ID!, $m: ID!) { assignCaseTeamMember(input: {caseId: $c, memberId: $m}) {
        case { id teamMemberIds } userErrors { message } } }"""
    done = await env.gql(assign, {"c": pb["case"], "m": user_id}, as_=("embassy", "admin"))
    assert user_id in done["data"]["assignCaseTeamMember"]["case"]["teamMemberIds"]
    seen = await env.gql(READ, {"id": pb["id"]}, token=token)
    assert released(seen)["legalName"] == "Secret Legal Name"
    remove = assign.replace("assignCaseTeamMember", "removeCaseTeamMember")
    await env.gql(remove, {"c": pb["case"], "m": user_id}, as_=("embassy", "focal"))
    assert (await env.gql(READ, {"id": pb["id"]}, token=token))["data"] == {"peacebuilder": None}
    # Case workers cannot put themselves on a team.
    refused = await env.gql(assign, {"c": pb["case"], "m": user_id}, token=token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with env.runtime.db.transaction() as s:
        actions = set(await s.scalars(select(AccessLogEntry.action).where(
            AccessLogEntry.target_id == str(ids.decode(pb["case"], "Case")))))
    assert {"case_team.assign", "case_team.remove"} <= actions


# --- working groups -----------------------------------------------------------------------------

async def test_working_group_grant_covers_members_at_grant_time_only(env):
    jag = await wg_id(env)
    pb = await new_peacebuilder(env, "unpc")
    g = await grant(env, pb, as_=("unpc", "focal"), to_wg=jag)
    assert {o["slug"] for o in g["coveredOrganisations"]} == {"mofa", "embassy", "wpn"}
    assert (await env.gql(READ, {"id": pb["id"]}, as_=("embassy", "focal")))["data"]["peacebuilder"]
    membership = """mutation($w: ID!, $o: ID!) { %s(input: {workingGroupId: $w, organisationId: $o})
        { workingGroup { id } userErrors { message } } }"""
    embassy = await org_id(env, "embassy")
    try:
        await env.gql(membership % "removeWorkingGroupMember", {"w": jag, "o": embassy},
                      as_=("unpc", "admin"))
        gone = await env.gql(READ, {"id": pb["id"]}, as_=("embassy", "focal"))
        assert gone["data"] == {"peacebuilder": None}
    finally:
        await env.gql(membership % "addWorkingGroupMember", {"w": jag, "o": embassy},
                      as_=("unpc", "admin"))
    # Back in the group, but it (re)joined after the grant: still nothing, and she is told.
    assert (await env.gql(READ, {"id": pb["id"]}, as_=("embassy", "focal")))["data"] == {
        "peacebuilder": None}
    her = await env.peacebuilder_token(pb["login"])
    notices = await env.gql("{ me { notices { kind details } } }", token=her, purpose=None)
    kinds = [n["kind"] for n in notices["data"]["me"]["notices"]]
    assert "working_group_new_member" in kinds
    assert all("Secret" not in n["details"] for n in notices["data"]["me"]["notices"])
    extended = await env.gql(EXTEND, {"input": {"grantId": g["id"]}}, token=her, purpose=None)
    assert {o["slug"] for o in extended["data"]["extendConsent"]["grant"]["coveredOrganisations"]} \
        == {"mofa", "embassy", "wpn"}
    back = await env.gql(READ, {"id": pb["id"]}, as_=("embassy", "focal"))
    assert back["data"]["peacebuilder"]["cases"][0]["summary"]


# --- filters, ordering, nested edges ------------------------------------------------------------

async def test_filters_on_hidden_fields_do_not_leak(env):
    shown = await new_peacebuilder(env, "fund")
    hidden = await new_peacebuilder(env, "fund")
    await grant(env, shown, as_=("fund", "focal"), to_org="wpn",
                categories=["LOCATION_COARSE", "INCIDENT_DETAILS"])
    await grant(env, hidden, as_=("fund", "focal"), to_org="wpn", categories=["INCIDENT_DETAILS"])
    query = """query { peacebuilders(first: 100, profileFieldEquals: {field: COUNTRY, value: "ZZ"})
        { edges { node { id } } } }"""
    found = {e["node"]["id"] for e in (await env.gql(query, as_=("wpn", "focal")))["data"][
        "peacebuilders"]["edges"]}
    assert shown["id"] in found and hidden["id"] not in found
    everyone = await env.gql("{ peacebuilders(first: 100) { edges { node { id } } } }",
                             as_=("wpn", "focal"))
    assert hidden["id"] in {e["node"]["id"] for e in everyone["data"]["peacebuilders"]["edges"]}


async def test_nested_edges_apply_the_same_rules(env):
    pb = await new_peacebuilder(env, "fund")
    await grant(env, pb, as_=("fund", "focal"), to_org="mofa", categories=["INCIDENT_DETAILS"])
    body = await env.gql(CASES, {"pb": pb["id"]}, as_=("mofa", "focal"))
    node = body["data"]["cases"]["edges"][0]["node"]
    assert node["summary"] and node["peacebuilder"]["pseudonym"] == pb["login"]
    assert node["peacebuilder"]["profile"]["legalName"] is None
    assert any(r["path"][-1] == "legalName" for r in body["extensions"]["redacted"])


# --- time ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
async def clock_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("clock"), clock=clock)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


async def test_expiry_at_the_boundary_second(clock_env):
    env = clock_env
    pb = await new_peacebuilder(env, "fund")
    until = env.clock.now() + timedelta(hours=1)
    await grant(env, pb, as_=("fund", "focal"), to_org="wpn", validUntil=until.isoformat())
    env.clock.set(until - timedelta(seconds=1))
    assert (await env.gql(READ, {"id": pb["id"]}, as_=("wpn", "focal")))["data"]["peacebuilder"]
    env.clock.set(until)  # [from, until): gone at the boundary itself
    assert (await env.gql(READ, {"id": pb["id"]}, as_=("wpn", "focal")))["data"] == {
        "peacebuilder": None}


async def test_grant_not_yet_valid(clock_env):
    env = clock_env
    pb = await new_peacebuilder(env, "fund")
    start = env.clock.now() + timedelta(days=1)
    g = await grant(env, pb, as_=("fund", "focal"), to_org="nhri", validFrom=start.isoformat())
    assert g["status"] == "NOT_YET_VALID"
    assert (await env.gql(READ, {"id": pb["id"]}, as_=("nhri", "focal")))["data"] == {
        "peacebuilder": None}
    env.clock.set(start)
    assert (await env.gql(READ, {"id": pb["id"]}, as_=("nhri", "focal")))["data"]["peacebuilder"]


async def test_break_glass_is_emergency_only_visible_to_her_and_ends_by_itself(clock_env):
    env = clock_env
    pb = await new_peacebuilder(env, "fund")
    open_q = """mutation($id: ID!, $r: String!, $h: Int!) { openBreakGlass(input: {peacebuilderId: $id,
        reason: $r, hours: $h}) { breakGlass { id expiresAt openedAt confirmedAt }
        userErrors { field message code } } }"""
    reason = "Credible threat to her life tonight; her network cannot reach her."
    # An organisation with no relation to her cannot open it: not found, like any stranger.
    stranger = await env.gql(open_q, {"id": pb["id"], "r": reason, "h": 24},
                             as_=("unpc", "focal"), purpose="emergency_response")
    assert stranger["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # She lets the Joint Action Group (mofa is a member) see incident details for protection:
    # mofa now has a relation to her, but no consent for emergency response.
    await grant(env, pb, as_=("fund", "focal"), to_wg=await wg_id(env))
    assert (await env.gql(READ, {"id": pb["id"]}, as_=("mofa", "focal"),
                          purpose="emergency_response"))["data"] == {"peacebuilder": None}
    wrong = await env.gql(open_q, {"id": pb["id"], "r": reason, "h": 24}, as_=("mofa", "focal"))
    assert wrong["data"]["openBreakGlass"]["userErrors"][0]["field"] == ["input", "purpose"]
    too_long = await env.gql(open_q, {"id": pb["id"], "r": reason, "h": 73}, as_=("mofa", "focal"),
                             purpose="emergency_response")
    assert too_long["data"]["openBreakGlass"]["userErrors"][0]["field"] == ["input", "hours"]
    not_focal = await env.gql(open_q, {"id": pb["id"], "r": reason, "h": 24},
                              as_=("mofa", "caseworker"), purpose="emergency_response")
    assert not_focal["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    opened = await env.gql(open_q, {"id": pb["id"], "r": reason, "h": 24}, as_=("mofa", "focal"),
                           purpose="emergency_response")
    assert opened["data"]["openBreakGlass"]["userErrors"] == []
    glass = opened["data"]["openBreakGlass"]["breakGlass"]
    # It opens at once, for one hour until a second focal point confirms it.
    assert (datetime.fromisoformat(glass["expiresAt"])
            - datetime.fromisoformat(glass["openedAt"])) == timedelta(hours=1)
    seen = await env.gql(READ, {"id": pb["id"]}, as_=("mofa", "focal"), purpose="emergency_response")
    assert released(seen)["legalName"] == "Secret Legal Name"
    # Only for emergency response: for protection, mofa sees what the group grant allows.
    assert released(await env.gql(READ, {"id": pb["id"]}, as_=("mofa", "focal")))["legalName"] is None
    # Her lead organisation and mofa's overseer (the NHRI) are told, IDs only.
    for org, user in (("fund", "focal"), ("nhri", "auditor")):
        inbox = await env.gql("{ inbox { kind payload } }", as_=(org, user))
        told = [json.loads(a["payload"]) for a in inbox["data"]["inbox"]
                if a["kind"] == "break_glass_opened"]
        assert any(t["break_glass"] == glass["id"] for t in told)
        assert "Secret" not in json.dumps(told) and reason not in json.dumps(told)
    # The same focal point cannot confirm her own opening; a second one can.
    confirmation = await pending_confirmation(env, "mofa", glass["id"], as_user="focal2")
    same = await env.post(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=("mofa", "focal"))
    assert same.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await confirm_by_second_person(env, "mofa", glass["id"], first="focal")
    her = await env.peacebuilder_token(pb["login"])
    mine = await env.gql("{ me { breakGlass { organisation { slug } closedAt confirmedAt expiresAt "
                         "openedAt } notices { kind } } }", token=her, purpose=None)
    mine_glass = mine["data"]["me"]["breakGlass"][0]
    assert mine_glass["organisation"]["slug"] == "mofa" and mine_glass["confirmedAt"]
    assert (datetime.fromisoformat(mine_glass["expiresAt"])
            - datetime.fromisoformat(mine_glass["openedAt"])) == timedelta(hours=24)
    kinds = [n["kind"] for n in mine["data"]["me"]["notices"]]
    assert "break_glass_opened" in kinds and "break_glass_confirmed" in kinds
    env.clock.advance(hours=24)
    assert (await env.gql(READ, {"id": pb["id"]}, as_=("mofa", "focal"),
                          purpose="emergency_response"))["data"] == {"peacebuilder": None}
    # A cool-down before it can be reopened.
    again = await env.gql(open_q, {"id": pb["id"], "r": reason, "h": 2}, as_=("mofa", "focal"),
                          purpose="emergency_response")
    assert again["data"]["openBreakGlass"]["userErrors"][0]["code"] == "CONFLICT"
    env.clock.advance(hours=12)
    later = await env.gql(open_q, {"id": pb["id"], "r": reason, "h": 2}, as_=("mofa", "focal"),
                          purpose="emergency_response")
    assert later["data"]["openBreakGlass"]["userErrors"] == []
    async with env.runtime.db.transaction() as s:
        row = (await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "break_glass.open"))).first()
    assert row is not None and reason not in json.dumps(row.details)


async def test_break_glass_unconfirmed_ends_after_one_hour(clock_env):
    env = clock_env
    pb = await new_peacebuilder(env, "fund")
    await grant(env, pb, as_=("fund", "focal"), to_wg=await wg_id(env))
    opened = await env.gql("""mutation($id: ID!) { openBreakGlass(input: {peacebuilderId: $id,
        reason: "Abducted this morning; her family asks for help now.", hours: 48}) {
        breakGlass { id } userErrors { code } } }""", {"id": pb["id"]}, as_=("embassy", "focal"),
                           purpose="emergency_response")
    assert opened["data"]["openBreakGlass"]["userErrors"] == []
    seen = await env.gql(READ, {"id": pb["id"]}, as_=("embassy", "focal"),
                         purpose="emergency_response")
    assert released(seen)["legalName"] == "Secret Legal Name"
    env.clock.advance(minutes=61)
    ended = await env.gql(READ, {"id": pb["id"]}, as_=("embassy", "focal"),
                          purpose="emergency_response")
    assert ended["data"] == {"peacebuilder": None}
    # Too late to confirm: it already ended.
    confirmation = await pending_confirmation(env, "embassy",
                                              opened["data"]["openBreakGlass"]["breakGlass"]["id"],
                                              as_user="focal2")
    late = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=("embassy", "focal2"))
    assert late["data"]["confirmTwoPerson"]["userErrors"][0]["code"] == "CONFLICT"


# --- her own view -------------------------------------------------------------------------------

async def test_she_sees_everything_of_hers_and_nothing_else(env):
    pb = await new_peacebuilder(env, "fund")
    other = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    body = await env.gql("""{ me { peacebuilder { pseudonym profile { legalName phone } }
        cases { status summary } consentGrants { status recipientOrganisation { slug } }
        dataCopy } }""", token=her, purpose=None)
    me = body["data"]["me"]
    assert me["peacebuilder"]["profile"] == {"legalName": "Secret Legal Name", "phone": "+1 555 0199"}
    assert me["cases"] == [{"status": "OPEN", "summary": "Threatened after a radio interview."}]
    assert me["consentGrants"] == [{"status": "LIVE", "recipientOrganisation": {"slug": "fund"}}]
    assert json.loads(me["dataCopy"])["profile"]["legal_name"] == "Secret Legal Name"
    foreign = await env.post(READ, {"id": other["id"]}, token=her, purpose=None)
    assert foreign.json()["data"] == {"peacebuilder": None}
    assert "Secret" not in foreign.text
    staff_me = await env.gql("{ me { dataCopy } }", as_=("fund", "focal"))
    assert staff_me["data"] == {"me": None}


async def test_revoke_all_in_one_step_cuts_the_lead_organisation_too(env):
    pb = await new_peacebuilder(env, "fund")
    await grant(env, pb, as_=("fund", "focal"), to_org="mofa")
    her = await env.peacebuilder_token(pb["login"])
    body = await env.gql("mutation { revokeAllConsent(input: {}) { revoked { id } userErrors { message } } }",
                         token=her, purpose=None)
    assert len(body["data"]["revokeAllConsent"]["revoked"]) == 2
    for org in ("fund", "mofa"):
        assert (await env.gql(READ, {"id": pb["id"]}, as_=(org, "focal")))["data"] == {
            "peacebuilder": None}


async def test_network_focal_point_acts_for_her_and_is_recorded_as_such(env):
    wpn = await org_id(env, "wpn")
    # Registered by unpc with wpn named as her network; her intake names identity, which only
    # she or her network can bring into force. She has no login.
    created = await env.gql(CREATE_PB, {"input": {
        "pseudonym": unique("pb"), "networkIds": [wpn], "profile": PROFILE,
        "intakeConsent": {**INTAKE, "categories": INTAKE_CATEGORIES}}}, as_=("unpc", "caseworker"))
    pb = {"id": created["data"]["createPeacebuilder"]["peacebuilder"]["id"]}
    # Named, not confirmed: the network cannot act for her yet.
    early = await env.post("query($id: ID!) { consentGrants(peacebuilderId: $id) { id } }",
                           {"id": pb["id"]}, as_=("wpn", "focal"))
    assert early.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Two people of the organisation that registered her confirm the network (she has no login).
    asked = await env.gql(CONFIRM_NETWORK, {"pb": pb["id"], "n": wpn}, as_=("unpc", "focal"))
    link = asked["data"]["confirmNetwork"]
    assert link["userErrors"] == [] and link["link"]["confirmedAt"] is None
    await confirm_by_second_person(env, "unpc", link["link"]["id"], first="focal")
    told = await env.gql("{ inbox { kind } }", as_=("wpn", "focal"))
    assert "network_confirmed" in [a["kind"] for a in told["data"]["inbox"]]
    # Now her network confirms, for her, the intake she gave unpc (identity included).
    listed = await env.gql("query($id: ID!) { consentGrants(peacebuilderId: $id) { id status awaiting } }",
                           {"id": pb["id"]}, as_=("wpn", "focal"))
    assert listed["data"]["consentGrants"][0]["status"] == "PENDING"
    assert listed["data"]["consentGrants"][0]["awaiting"] == "HER"
    grant_id = listed["data"]["consentGrants"][0]["id"]
    confirmed = await env.gql(CONFIRM_CONSENT, {"id": grant_id}, as_=("wpn", "focal"))
    assert confirmed["data"]["confirmConsent"]["grant"]["status"] == "LIVE", confirmed
    lead = await env.gql(READ, {"id": pb["id"]}, as_=("unpc", "focal"))
    assert released(lead)["legalName"] == "Secret Legal Name"
    # Staff cannot make an organisation her network afterwards (networks act for her).
    refused = await env.gql("""mutation($id: ID!, $n: [ID!]) { updatePeacebuilder(input: {id: $id,
        networkIds: $n}) { userErrors { field } } }""", {"id": pb["id"], "n": []},
                            as_=("unpc", "focal"))
    assert refused["data"]["updatePeacebuilder"]["userErrors"] == [{"field": ["input", "networkIds"]}]
    narrowed = await env.gql(NARROW, {"input": {"grantId": grant_id, "categories": ["IDENTITY"]}},
                             as_=("wpn", "focal"))
    assert "IDENTITY" not in narrowed["data"]["narrowConsent"]["grant"]["categories"]
    events = await env.gql(
        "query($id: ID!) { consentGrants(peacebuilderId: $id) { events { kind actingForHer } } }",
        {"id": pb["id"]}, as_=("wpn", "focal"))
    assert [e["kind"] for e in events["data"]["consentGrants"][0]["events"]] == [
        "grant", "confirm", "narrow"]
    assert events["data"]["consentGrants"][0]["events"][-1] == {"kind": "narrow", "actingForHer": True}
    # Narrowing took identity away from the lead organisation at once.
    lead = await env.gql(READ, {"id": pb["id"]}, as_=("unpc", "focal"))
    assert released(lead)["legalName"] is None
    # A network never grants to itself.
    itself = await env.gql(GRANT, {"input": {"peacebuilderId": pb["id"], "recipientOrganisationId": wpn,
                                             "categories": ["CONTACT"], "purposes": ["PROTECTION"]}},
                           as_=("wpn", "focal"))
    assert itself["data"]["grantConsent"]["userErrors"][0]["field"] == ["input", "recipient"]
    # Not every member of the network: only its focal points act for her.
    refused = await env.gql("query($id: ID!) { consentGrants(peacebuilderId: $id) { id } }",
                            {"id": pb["id"]}, as_=("wpn", "caseworker"))
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_consent_receipt_in_her_language(env):
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    grants = await env.gql("{ me { consentGrants { id } } }", token=her, purpose=None)
    gid = grants["data"]["me"]["consentGrants"][0]["id"]
    fr = await env.gql("query($g: ID!) { consentReceipt(grantId: $g, language: \"fr\") }",
                       {"g": gid}, token=her, purpose=None)
    text = fr["data"]["consentReceipt"]
    assert text.startswith("Reçu de consentement") and "Rapid Response Fund" in text
    assert "en personne" in text and "Secret" not in text


async def test_staff_must_say_how_consent_was_obtained_and_never_for_intelligence(env):
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(GRANT, {"input": {"peacebuilderId": pb["id"],
                                           "recipientOrganisationId": await org_id(env, "fund"),
                                           "categories": ["IDENTITY"], "purposes": ["PROTECTION"]}},
                         as_=("fund", "focal"))
    assert body["data"]["grantConsent"]["userErrors"][0]["field"] == ["input", "obtainedVia"]
    # Staff never record consent for another organisation.
    other = await env.gql(GRANT, {"input": {"peacebuilderId": pb["id"], "obtainedVia": "WRITTEN",
                                            "recipientOrganisationId": await org_id(env, "mofa"),
                                            "categories": ["IDENTITY"], "purposes": ["PROTECTION"]}},
                          as_=("fund", "focal"))
    assert other["data"]["grantConsent"]["userErrors"][0]["field"] == ["input", "recipient"]
    # Media consent she gave them they may record, but only she can bring it into force.
    media = await env.gql(GRANT, {"input": {"peacebuilderId": pb["id"], "obtainedVia": "WRITTEN",
                                            "recipientOrganisationId": await org_id(env, "fund"),
                                            "categories": ["IDENTITY"], "purposes": ["MEDIA"]}},
                          as_=("fund", "focal"))
    assert media["data"]["grantConsent"]["grant"]["status"] == "PENDING"
    read = await env.post(READ, {"id": pb["id"]}, as_=("fund", "focal"), purpose="media")
    assert read.json()["data"] == {"peacebuilder": None}
    bad = await env.post(GRANT, {"input": {"peacebuilderId": pb["id"],
                                           "recipientOrganisationId": await org_id(env, "mofa"),
                                           "categories": ["IDENTITY"],
                                           "purposes": ["INTELLIGENCE_GATHERING"],
                                           "obtainedVia": "WRITTEN"}}, as_=("fund", "focal"))
    assert "errors" in bad.json() and bad.json().get("data") is None


async def test_reads_and_withheld_categories_are_logged_with_purpose_never_values(env):
    pb = await new_peacebuilder(env, "fund")
    await env.gql(READ, {"id": pb["id"]}, as_=("fund", "caseworker"), purpose="emergency_response")
    pb_uuid = str(ids.decode(pb["id"], "Peacebuilder"))
    async with env.runtime.db.transaction() as s:
        rows = list(await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == "data.read", AccessLogEntry.purpose == "emergency_response")))
    mine = [r for r in rows if pb_uuid in (r.details or {}).get("records", {})]
    allowed = next(r for r in mine if r.decision == "allow")
    denied = next(r for r in mine if r.decision == "deny")
    assert set(allowed.details["records"][pb_uuid]) >= {"identity", "family", "incident_details"}
    assert set(denied.details["records"][pb_uuid]) == {"contact", "location_coarse"}
    assert "Secret" not in json.dumps([r.details for r in mine])


async def test_revocation_bites_on_the_next_request_of_another_instance(env):
    """Two app instances (two runtimes, two pools) on one database: no cache outlives a revoke."""
    pb = await new_peacebuilder(env, "fund")
    g = await grant(env, pb, as_=("fund", "focal"), to_org="embassy")
    from app.runtime import Runtime

    other_runtime = Runtime.create(env.settings)
    other_app = create_app(other_runtime)
    token = await env.token("embassy", "focal")
    headers = {"authorization": f"Bearer {token}", "safety-net-purpose": "protection"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app),
                                 base_url="http://other") as other:
        first = await other.post("/graphql", json={"query": READ, "variables": {"id": pb["id"]}},
                                 headers=headers)
        assert first.json()["data"]["peacebuilder"]["cases"][0]["summary"]
        her = await env.peacebuilder_token(pb["login"])
        revoked = await env.gql(REVOKE, {"id": g["id"]}, token=her, purpose=None)
        assert revoked["data"]["revokeConsent"]["grant"]["status"] == "REVOKED"
        second = await other.post("/graphql", json={"query": READ, "variables": {"id": pb["id"]}},
                                  headers=headers)
        assert second.json()["data"] == {"peacebuilder": None}
    await other_runtime.close()


async def test_event_log_replays_to_the_projection(env):
    from app.consent import repository as consent_repo
    from app.consent.service import replay

    pb = await new_peacebuilder(env, "fund")
    g = await grant(env, pb, as_=("fund", "focal"), to_org="nhri",
                    categories=["IDENTITY", "FAMILY"], purposes=["PROTECTION", "ADVOCACY"])
    her = await env.peacebuilder_token(pb["login"])
    await env.gql(NARROW, {"input": {"grantId": g["id"], "purposes": ["ADVOCACY"]}},
                  token=her, purpose=None)
    await env.gql(EXTEND, {"input": {"grantId": g["id"], "categories": ["LEGAL"]}},
                  token=her, purpose=None)
    gid = ids.decode(g["id"], "ConsentGrant")
    async with env.runtime.db.transaction() as s:
        events = await consent_repo.events_of(s, gid)
        state = await consent_repo.grant(s, gid)
        assert [e.kind for e in events] == ["grant", "narrow", "extend"]
        assert replay(events)["categories"] == state.categories == ["family", "identity", "legal"]
        assert state.purposes == ["protection"]
        pb_row = await s.get(Peacebuilder, ids.decode(pb["id"], "Peacebuilder"))
        assert pb_row is not None


