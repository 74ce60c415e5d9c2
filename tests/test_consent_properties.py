"""Property: for random grants, revocations, expiries and purposes, the data each organisation
gets through GraphQL is exactly what the live grants allow — never more, never less.

The example count comes from the hypothesis profile (tests/conftest.py: `ci` by default).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.clock import FrozenClock
from app.tables.categories import PROFILE_FIELDS, DataCategory, Purpose
from tests.conftest import BACKENDS, build_env, unique
from tests.factories import register

pytestmark = pytest.mark.anyio

ORGS = ["fund", "mofa", "embassy", "unpc", "nhri", "wpn"]
RECIPIENTS = ["mofa", "embassy", "unpc", "nhri", "wpn", "jag"]
JAG_MEMBERS = {"mofa", "embassy", "wpn"}
INTAKE = {"categories": set(DataCategory) - {DataCategory.CONTACT, DataCategory.LOCATION_COARSE,
                                             DataCategory.LOCATION_PRECISE},
          "purposes": {Purpose.PROTECTION, Purpose.EMERGENCY_RESPONSE}}
FIELDS = list(PROFILE_FIELDS)
PROFILE = {"".join(w.capitalize() if i else w for i, w in enumerate(f.split("_"))): f"v-{f}"
           for f in FIELDS}
READ = ("query($id: ID!) { peacebuilder(id: $id) { profile { "
        + " ".join(PROFILE) + " } cases { summary } } }")

grant_strategy = st.fixed_dictionaries({
    "recipient": st.sampled_from(RECIPIENTS),
    "categories": st.sets(st.sampled_from(list(DataCategory)), min_size=1),
    "purposes": st.sets(st.sampled_from(list(Purpose)), min_size=1),
    "from_min": st.sampled_from([-120, 0, 60]),
    "until_min": st.sampled_from([None, 30, 150]),
    "revoke": st.booleans(),
})


@pytest.fixture(scope="module", params=BACKENDS)
async def prop_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2031, 1, 1, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("prop"), clock=clock)
    env.clock = clock
    body = await env.gql("{ organisations(first: 50) { edges { node { id slug } } } }",
                         as_=("fund", "focal"))
    env.org_ids = {e["node"]["slug"]: e["node"]["id"] for e in body["data"]["organisations"]["edges"]}
    wgs = await env.gql("{ workingGroups(first: 5) { edges { node { id slug } } } }",
                        as_=("unpc", "admin"))
    env.org_ids["jag"] = wgs["data"]["workingGroups"]["edges"][0]["node"]["id"]
    try:
        yield env
    finally:
        await close()


def expected(grants: list[dict], org: str, purpose: Purpose | None, now_min: int) -> set[str] | None:
    """Categories the model says `org` gets at `now_min` minutes; None means not visible."""
    if purpose is None or purpose is Purpose.AGGREGATE_REPORTING:
        return None  # no purpose, or one that only ever feeds counts: no record at all
    live = [INTAKE | {"recipient": "fund", "from_min": -10**6, "until_min": None, "revoke": False}]
    live += grants
    cats: set[str] = set()
    visible = False
    for g in live:
        covers = g["recipient"] == org or (g["recipient"] == "jag" and org in JAG_MEMBERS)
        until = g["until_min"]
        in_time = g["from_min"] <= now_min and (until is None or now_min < until)
        if covers and in_time and not g["revoke"] and purpose in g["purposes"]:
            visible = True
            cats |= {c.value for c in g["categories"]}
    return cats if visible else None


def duplicate(kept: list[dict], g: dict) -> bool:
    """Whether an earlier grant with the same recipient and terms is still in force when `g` is
    recorded (at minute 0; hers are confirmed at once, not-yet-valid ones too): revoked and
    ended ones do not count."""
    return any(k["recipient"] == g["recipient"] and set(k["categories"]) == set(g["categories"])
               and set(k["purposes"]) == set(g["purposes"]) and not k["revoke"]
               and (k["until_min"] is None or k["until_min"] > 0) for k in kept)


@given(grants=st.lists(grant_strategy, max_size=4),
       shift=st.sampled_from([0, 45, 90, 200]),
       purpose=st.one_of(st.none(), st.sampled_from(list(Purpose))))
async def test_returned_data_is_exactly_what_live_grants_allow(prop_env, grants, shift, purpose):
    env = prop_env
    start = env.clock.now()
    # Registered by fund with her intake consent, which she confirms with her own login.
    registered = await register(env, "fund", "focal", pseudonym=unique("prop"), profile=PROFILE,
                                categories=sorted(c.name for c in INTAKE["categories"]),
                                purposes=sorted(p.name for p in INTAKE["purposes"]), login=True)
    pb = registered["id"]
    her = await env.peacebuilder_token(registered["login"])
    opened = await env.gql("""mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }""",
                           {"i": {"peacebuilderId": pb, "summary": "what happened"}},
                           as_=("fund", "focal"))
    assert opened["data"]["openCase"]["case"]
    kept = []
    for g in grants:
        until = g["until_min"]
        if until is not None and until <= g["from_min"]:
            continue  # invalid interval: the API refuses it (tested elsewhere)
        variables = {"peacebuilderId": pb,
                     "categories": [c.name for c in g["categories"]],
                     "purposes": [p.name for p in g["purposes"]],
                     "validFrom": (start + timedelta(minutes=g["from_min"])).isoformat()}
        if until is not None:
            variables["validUntil"] = (start + timedelta(minutes=until)).isoformat()
        key = "recipientWorkingGroupId" if g["recipient"] == "jag" else "recipientOrganisationId"
        variables[key] = env.org_ids[g["recipient"]]
        # She records each grant herself (staff may record only what she gives their own org).
        body = await env.gql("""mutation($i: GrantConsentInput!) { grantConsent(input: $i)
            { grant { id } userErrors { message code } } }""", {"i": variables}, token=her,
                             purpose=None)
        if duplicate(kept, g):
            # The same terms for the same recipient while one is in force: refused.
            assert body["data"]["grantConsent"]["userErrors"][0]["code"] == "CONFLICT", body
            continue
        grant_id = body["data"]["grantConsent"]["grant"]["id"]
        if g["revoke"]:
            await env.gql("mutation($g: ID!) { revokeConsent(input: {grantId: $g}) { grant { id } } }",
                          {"g": grant_id}, token=her, purpose=None)
        kept.append(g)
    env.clock.set(start + timedelta(minutes=shift))
    try:
        for org in ORGS:
            body = await env.post(READ, {"id": pb}, as_=(org, "focal"),
                                  purpose=purpose.value if purpose else None)
            if purpose is None:  # refused outright: nothing about her is read without one
                assert body.json()["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
                assert "v-" not in body.text
                continue
            data = body.json()["data"]["peacebuilder"]
            want = expected(kept, org, purpose, shift)
            if want is None:
                assert data is None, (org, purpose, shift)
                assert "v-" not in body.text
                continue
            assert data is not None, (org, purpose, shift)
            got = {f for f, key in zip(FIELDS, PROFILE, strict=True) if data["profile"][key]}
            assert got == {f for f in FIELDS if PROFILE_FIELDS[f].value in want}, (org, purpose)
            has_summary = data["cases"][0]["summary"] is not None
            assert has_summary == (DataCategory.INCIDENT_DETAILS.value in want)
    finally:
        # Each example starts well after the last one's grants could still matter.
        env.clock.set(start + timedelta(days=1))
