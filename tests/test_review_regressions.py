"""Regressions from the security review: each would fail if the hole came back."""

from __future__ import annotations

import pytest

from tests.test_consent import GRANT, READ, grant, new_peacebuilder, org_id
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio
OPEN_GLASS = """mutation($id: ID!) { openBreakGlass(input: {peacebuilderId: $id,
  reason: "Credible threat to her life tonight, network unreachable", hours: 1}) {
  breakGlass { id } userErrors { message } } }"""


async def test_break_glass_gives_no_standing_to_record_consent(env):
    pb = await new_peacebuilder(env, "fund")
    await env.gql(OPEN_GLASS, {"id": pb["id"]}, as_=("nhri", "focal"), purpose="emergency_response")
    forged = await env.gql(GRANT, {"input": {
        "peacebuilderId": pb["id"], "recipientOrganisationId": await org_id(env, "nhri"),
        "categories": ["CONTACT"], "purposes": ["MEDIA"], "obtainedVia": "IN_PERSON"}},
        as_=("nhri", "focal"), purpose="emergency_response")
    assert forged["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    media = await env.gql(READ, {"id": pb["id"]}, as_=("nhri", "focal"), purpose="media")
    assert media["data"] == {"peacebuilder": None}


async def test_staff_cannot_extend_a_group_grant_to_new_members_nor_touch_others_grants(env):
    pb = await new_peacebuilder(env, "fund")
    g = await grant(env, pb, as_=("fund", "focal"), to_org="embassy")
    extend = """mutation($g: ID!) { extendConsent(input: {grantId: $g, categories: [CONTACT],
        obtainedVia: IN_PERSON}) { grant { categories } } }"""
    assert (await env.gql(extend, {"g": g["id"]}, as_=("fund", "focal")))["errors"][0][
        "extensions"]["code"] == "NOT_FOUND"
    revoke_all = await env.gql("mutation($p: ID) { revokeAllConsent(input: {peacebuilderId: $p}) "
                               "{ revoked { id } userErrors { message } } }", {"p": pb["id"]},
                               as_=("embassy", "focal"))
    assert revoke_all["data"]["revokeAllConsent"]["revoked"] == []
    assert "Only she or her network" in revoke_all["data"]["revokeAllConsent"]["userErrors"][0][
        "message"]
    her = await env.peacebuilder_token(pb["login"])
    notices = await env.gql("{ me { notices { kind } } }", token=her, purpose=None)
    before = [n["kind"] for n in notices["data"]["me"]["notices"]].count(
        "consent_awaits_confirmation")
    assert before == 1  # her intake consent, recorded by the registering organisation
    await env.gql(GRANT, {"input": {"peacebuilderId": pb["id"], "obtainedVia": "WRITTEN",
                                    "recipientOrganisationId": await org_id(env, "fund"),
                                    "categories": ["LEGAL"], "purposes": ["LEGAL_SUPPORT"]}},
                  as_=("fund", "focal"))
    notices = await env.gql("{ me { notices { kind } } }", token=her, purpose=None)
    kinds = [n["kind"] for n in notices["data"]["me"]["notices"]]
    assert kinds.count("consent_awaits_confirmation") == before + 1


async def test_timeline_and_response_need_their_categories(env):
    pb = await new_peacebuilder(env, "fund")
    await env.gql(REPORT, incident_input(pb["case"], severity="HIGH"), as_=("fund", "caseworker"))
    await grant(env, pb, as_=("fund", "focal"), to_org="nhri", categories=["FINANCIAL"])
    q = """query($id: ID!) { case(id: $id) { incidents { id } measures { kind }
        proceedings { kind } timeline { kind details } } }"""
    body = await env.gql(q, {"id": pb["case"]}, as_=("nhri", "focal"))
    case = body["data"]["case"]
    assert case == {"incidents": [], "measures": [], "proceedings": [], "timeline": []}
    analyst = await env.gql(q, {"id": pb["case"]}, as_=("fund", "analyst"))
    assert analyst["data"]["case"]["timeline"] == []
    lead = await env.gql(q, {"id": pb["case"]}, as_=("fund", "focal"))
    assert "incident.reported" in [e["kind"] for e in lead["data"]["case"]["timeline"]]


async def test_a_case_worker_cannot_join_a_team_by_opening_another_case(env):
    pb = await new_peacebuilder(env, "fund")
    client = await env.token("fund", client="fund-system")
    opened = await env.gql("mutation($p: ID!) { openCase(input: {peacebuilderId: $p}) "
                           "{ case { id } } }", {"p": pb["id"]}, token=client)
    assert opened["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await env.gql(READ, {"id": pb["id"]}, token=client))["data"] == {"peacebuilder": None}


async def test_admins_cannot_change_their_own_roles(env):
    me = await env.gql("{ users(first: 50) { edges { node { id username } } } }",
                       as_=("embassy", "admin"))
    admin_id = next(e["node"]["id"] for e in me["data"]["users"]["edges"]
                    if e["node"]["username"] == "admin")
    body = await env.gql("""mutation($u: ID!) { setUserRoles(input: {userId: $u,
        roles: [ORG_ADMIN, FOCAL_POINT]}) { userErrors { field } } }""", {"u": admin_id},
                         as_=("embassy", "admin"))
    assert body["data"]["setUserRoles"]["userErrors"] == [{"field": ["input", "userId"]}]
