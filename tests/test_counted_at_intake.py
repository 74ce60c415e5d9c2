"""Issue 20, who is counted: intake offers her the plain choice "count me, anonymously, in the
statistics of ..." (an NHRI, a working group). Each choice is a grant for aggregate_reporting
only — counts, never her record — recorded by staff and so pending until confirmed, like the
intake grant. Staff still cannot record any other grant for another organisation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from app.tables.incidents import Incident
from schema import ids
from tests.factories import CREATE, EVIDENCE, confirm_by_second_person
from tests.test_consent import GRANT, OPEN_CASE, org_id
from tests.test_incidents import REPORT, incident_input
from tests.test_monitoring import RELEASE

pytestmark = pytest.mark.anyio

CREATE_COUNTED = CREATE.replace("intakeConsent { id status awaiting }", """
    intakeConsent { id status awaiting }
    countingConsents { id status awaiting purposes categories
                       recipientOrganisation { id } }""")
PB = """query($id: ID!) { peacebuilder(id: $id) { id pseudonym } }"""


def _intake(counted_by: list[str]) -> dict:
    return {"obtainedVia": "IN_PERSON", "evidence": EVIDENCE, "countedBy": counted_by}


async def _registered_counted(env, nhri: str, *, counted: bool) -> dict:
    """A woman the fund registers; with `counted`, she chose to be counted by the NHRI. A second
    focal point confirms what staff recorded, against the evidence."""
    from tests.conftest import unique

    body = await env.gql(CREATE_COUNTED, {"input": {
        "pseudonym": unique("pb"), "intakeConsent": {
            **_intake([nhri] if counted else []),
            "categories": ["INCIDENT_DETAILS", "LOCATION_COARSE", "LEGAL"]}}},
        as_=("fund", "caseworker"))
    payload = body["data"]["createPeacebuilder"]
    assert payload["userErrors"] == [], body
    for grant in (payload["intakeConsent"], *payload["countingConsents"]):
        assert grant["status"] == "PENDING" and grant["awaiting"] == "SECOND_PERSON", body
        await confirm_by_second_person(env, "fund", grant["id"])
    return payload


async def test_women_who_chose_it_at_intake_are_counted_and_never_read(env) -> None:
    nhri = await org_id(env, "nhri")
    women = [await _registered_counted(env, nhri, counted=i < 5) for i in range(6)]
    counting = women[0]["countingConsents"][0]
    assert counting["purposes"] == ["AGGREGATE_REPORTING"]
    assert set(counting["categories"]) == {"INCIDENT_DETAILS", "LOCATION_COARSE", "LEGAL"}
    assert counting["recipientOrganisation"]["id"] == nhri
    assert women[5]["countingConsents"] == []
    for her in women:
        case = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": her["peacebuilder"]["id"]}},
                             as_=("fund", "caseworker"))
        assert case["data"]["openCase"]["userErrors"] == [], case
        body = await env.gql(REPORT, incident_input(case["data"]["openCase"]["case"]["id"],
                                                    "HIGH", type="DETENTION"),
                             as_=("fund", "caseworker"))
        assert body["data"]["reportIncident"]["userErrors"] == [], body
        incident = ids.decode(body["data"]["reportIncident"]["incident"]["id"], "Incident")
        async with env.runtime.db.transaction() as s:
            await s.execute(update(Incident).where(Incident.id == incident).values(
                reported_at=datetime(2011, 5, 10, tzinfo=UTC)))
    # The five who chose it are counted by the NHRI; the sixth is not.
    release = await env.gql(RELEASE, {"i": {"table": "incidents_by_type", "period": "2011-05"}},
                            as_=("nhri", "analyst"), purpose="aggregate_reporting")
    assert release["data"]["releaseMonitoringTable"]["userErrors"] == [], release
    cells = {(c["row"], c["column"]): c["women"]
             for c in release["data"]["releaseMonitoringTable"]["release"]["cells"]}
    assert cells[("detention", "high")] == 5, cells
    # Counted, never read: the NHRI gets no record of her, under any purpose.
    for purpose in ("aggregate_reporting", "protection"):
        seen = await env.gql(PB, {"id": women[0]["peacebuilder"]["id"]}, as_=("nhri", "analyst"),
                             purpose=purpose)
        assert (seen.get("data") or {}).get("peacebuilder") is None, seen


@pytest.mark.parametrize("bad", ["case", "unknown_org", "twice"])
async def test_a_bad_choice_is_a_user_error_and_registers_nothing(env, bad) -> None:
    from tests.conftest import unique

    nhri = await org_id(env, "nhri")
    counted = {"case": [ids.encode("Case", ids.decode(nhri, "Organisation"))],
               "unknown_org": [ids.encode("Organisation",
                                          __import__("uuid").uuid4())],
               "twice": [nhri, nhri]}[bad]
    pseudonym = unique("pb")
    body = await env.gql(CREATE_COUNTED, {"input": {"pseudonym": pseudonym,
                                                    "intakeConsent": _intake(counted)}},
                         as_=("mofa", "caseworker"))
    payload = body["data"]["createPeacebuilder"]
    assert payload["peacebuilder"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "intakeConsent", "countedBy"], "BAD_USER_INPUT")], body
    # Nothing was kept: the pseudonym is still free.
    again = await env.gql(CREATE_COUNTED, {"input": {"pseudonym": pseudonym,
                                                     "intakeConsent": _intake([])}},
                          as_=("mofa", "caseworker"))
    assert again["data"]["createPeacebuilder"]["userErrors"] == [], again


async def test_outside_intake_staff_still_cannot_grant_counting_to_another_organisation(env):
    from tests.test_consent import new_peacebuilder

    pb = await new_peacebuilder(env, "mofa")
    body = await env.gql(GRANT, {"input": {
        "peacebuilderId": pb["id"], "recipientOrganisationId": await org_id(env, "nhri"),
        "categories": ["INCIDENT_DETAILS"], "purposes": ["AGGREGATE_REPORTING"],
        "obtainedVia": "IN_PERSON", "evidence": EVIDENCE}}, as_=("mofa", "caseworker"))
    payload = body["data"]["grantConsent"]
    assert payload["grant"] is None
    assert [e["field"] for e in payload["userErrors"]] == [["input", "recipient"]], body
