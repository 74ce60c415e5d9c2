"""Oracle for the read path (decision 0014): a page of cases, with her profile and the incidents
below each case, returns exactly what an oracle computed from the consent event log alone says.

The read path decides in SQL from the `consent_access` projection; the oracle replays
`consent_events` (the append-only log, read as the schema owner) with its own few lines, so a
projection that drifts from the log, a decision that leaks across a page or a nested level that
re-decides differently fails here. Random grants, narrowings and revocations by her, for several
women at once, read by every organisation under every purpose, at several moments.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.clock import FrozenClock
from app.tables.categories import (
    CHECKIN_FIELDS,
    INCIDENT_FIELDS,
    PROFILE_FIELDS,
    DataCategory,
    Purpose,
)
from schema import ids
from tests.conftest import BACKENDS, build_env, unique
from tests.factories import register
from tests.test_consent import org_id

pytestmark = pytest.mark.anyio

ORGS = ["fund", "mofa", "embassy", "unpc", "nhri", "wpn"]
RECIPIENTS = ["mofa", "embassy", "unpc", "nhri", "wpn", "jag"]
WOMEN = 3
# Everything to the registering organisation (she confirms it herself: location and contact
# are hers alone to give), so its incidents can carry every sealed field.
INTAKE_CATEGORIES = sorted(c.name for c in DataCategory)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


PROFILE = {camel(f): f"v-{f}" for f in PROFILE_FIELDS}
INCIDENT = {camel(f): f"i-{f}" for f in INCIDENT_FIELDS}
# Issue 19: her risk assessment (listed under risk_assessment, its text sealed) and the plan
# fields of a measure (listed under incident details, each plan field under risk_assessment).
PLAN = {"planKind": "DAY_TO_DAY", "costAmount": "10.50", "costCurrency": "KES",
        "fundingSource": "p-funding", "coveredFamily": ["p-family"]}
# Five a page: each example opens three cases, and the lists below a case count in the budget.
PAGE = ("query($after: DateTime!) { cases(first: 5, filter: {openedAfter: $after}) { edges { node {"
        " id summary peacebuilder { id profile { " + " ".join(PROFILE) + " } }"
        " incidents { id " + " ".join(INCIDENT) + " }"
        " checkInSchedules { safetyContact missedActionNotes } consultations { topics risksRaised }"
        " consultationFollowUps { id status dueAt }"
        " riskAssessments { herAnalysis threats { facts } }"
        " measures { threatId " + " ".join(PLAN) + " } } } } }")
# Rows below a case listed under risk_assessment (app/checkins, app/consultations): field ->
# (list, the value written, its category).
RISK_ROWS = {"safetyContact": ("checkInSchedules", "c-safety"),
             "missedActionNotes": ("checkInSchedules", "c-notes"),
             "topics": ("consultations", "c-topics"), "risksRaised": ("consultations", "c-risks")}
RISK_CATEGORIES = {"safetyContact": CHECKIN_FIELDS["check_in_schedules"]["safety_contact"],
                   "missedActionNotes": CHECKIN_FIELDS["check_in_schedules"]["missed_action_notes"],
                   "topics": CHECKIN_FIELDS["consultations"]["topics"],
                   "risksRaised": CHECKIN_FIELDS["consultations"]["risks_raised"]}

op_strategy = st.one_of(
    st.fixed_dictionaries({
        "op": st.just("grant"),
        "woman": st.integers(0, WOMEN - 1),
        "recipient": st.sampled_from(RECIPIENTS),
        "categories": st.sets(st.sampled_from(list(DataCategory)), min_size=1),
        "purposes": st.sets(st.sampled_from(list(Purpose)), min_size=1),
        "until_min": st.sampled_from([None, 30, 150]),
    }),
    st.fixed_dictionaries({
        "op": st.just("narrow"),
        "pick": st.integers(0, 20),
        "categories": st.sets(st.sampled_from(list(DataCategory)), min_size=1, max_size=3),
    }),
    st.fixed_dictionaries({"op": st.just("revoke"), "pick": st.integers(0, 20)}),
)


@pytest.fixture(scope="module", params=BACKENDS)
async def oracle_env(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime(2033, 1, 1, tzinfo=UTC))
    env, close = await build_env(request.param, tmp_path_factory.mktemp("oracle"), clock=clock)
    env.clock = clock
    clock.set(clock.now() + timedelta(hours=1))  # the demo's cases are opened before any example
    body = await env.gql("{ organisations(first: 50) { edges { node { id slug } } } }",
                         as_=("fund", "focal"))
    env.org_ids = {e["node"]["slug"]: e["node"]["id"]
                   for e in body["data"]["organisations"]["edges"]}
    wgs = await env.gql("{ workingGroups(first: 5) { edges { node { id slug } } } }",
                        as_=("unpc", "admin"))
    env.org_ids["jag"] = wgs["data"]["workingGroups"]["edges"][0]["node"]["id"]
    env.owner = create_async_engine(env.owner_url)
    try:
        yield env
    finally:
        await env.owner.dispose()
        await close()


def raw(global_id: str) -> str:
    return str(ids.decode_any(global_id)[1])


async def consent_log(env: Any, pb_ids: list[str]) -> list[dict[str, Any]]:
    """The women's consent events, as stored, read past the service (as the schema owner)."""
    async with env.owner.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT grant_id, version, peacebuilder_id, kind, recipient_type, recipient_id,"
            " categories, purposes, valid_from, valid_until, covered_org_ids, awaiting"
            " FROM consent_events"))).mappings().all()
    wanted = {uuid.UUID(p) for p in pb_ids}
    return [dict(r) for r in rows if _uuid(r["peacebuilder_id"]) in wanted]


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _list(value: Any) -> list[str]:
    import json

    return list(json.loads(value) if isinstance(value, str) else value)


def _time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def oracle(events: list[dict[str, Any]], org_uuid: str, purpose: Purpose | None,
           now: datetime) -> dict[uuid.UUID, set[str]]:
    """Per woman, the categories `org` is released at `now` for `purpose` (absent: not visible).

    A grant is in force when its first event needed no confirmation or a `confirm` followed, and
    no `revoke`/`expire` came; its terms are those of its last event. Only records are decided
    here; an aggregate purpose or no purpose releases none."""
    out: dict[uuid.UUID, set[str]] = {}
    if purpose is None or purpose is Purpose.AGGREGATE_REPORTING:
        return out
    history: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        history[e["grant_id"]].append(e)
    for grant in history.values():
        grant.sort(key=lambda e: e["version"])
        kinds = [e["kind"] for e in grant]
        live = (grant[0]["awaiting"] is None or "confirm" in kinds) and not (
            {"revoke", "expire"} & set(kinds))
        last = grant[-1]
        if grant[0]["recipient_type"] == "organisation":
            covered = {str(_uuid(grant[0]["recipient_id"]))}
        else:
            covered = {str(o) for o in _list(last["covered_org_ids"])}
        until = last["valid_until"]
        in_time = _time(last["valid_from"]) <= now and (until is None or now < _time(until))
        if live and in_time and org_uuid in covered and purpose.value in _list(last["purposes"]):
            out.setdefault(_uuid(grant[0]["peacebuilder_id"]), set()).update(
                _list(last["categories"]))
    return out


GRANT = """mutation($i: GrantConsentInput!) { grantConsent(input: $i)
  { grant { id status } userErrors { message } } }"""
NARROW = """mutation($i: NarrowConsentInput!) { narrowConsent(input: $i)
  { grant { id } userErrors { message code } } }"""
REVOKE = """mutation($i: GrantIdInput!) { revokeConsent(input: $i)
  { grant { id } userErrors { message } } }"""


async def women(env: Any) -> list[dict[str, Any]]:
    out = []
    for _ in range(WOMEN):
        registered = await register(env, "fund", "focal", pseudonym=unique("oracle"),
                                    profile=PROFILE, categories=INTAKE_CATEGORIES,
                                    purposes=["PROTECTION", "EMERGENCY_RESPONSE"], login=True)
        opened = await env.gql("""mutation($i: OpenCaseInput!) { openCase(input: $i)
            { case { id } } }""", {"i": {"peacebuilderId": registered["id"],
                                         "summary": "what happened"}}, as_=("fund", "focal"))
        case_id = opened["data"]["openCase"]["case"]["id"]
        reported = await env.gql("""mutation($i: ReportIncidentInput!) { reportIncident(input: $i)
            { incident { id } userErrors { message } } }""", {"i": {
            "caseId": case_id, "type": "THREATS", "severity": "MEDIUM", "reportedBy": "herself",
            "reportedVia": "secure_messenger", **INCIDENT}}, as_=("fund", "focal"))
        assert reported["data"]["reportIncident"]["incident"], reported
        await _assessed_and_planned(env, case_id, registered["login"])
        agreed = await env.gql("""mutation($i: AgreeCheckInScheduleInput!) {
            agreeCheckInSchedule(input: $i) { userErrors { message } } }""", {"i": {
            "caseId": case_id, "intervalMinutes": 24 * 60, "channel": "APP", "agreedVia": "PHONE",
            "missedAction": "OTHER", "missedActionNotes": "c-notes", "safetyContact": "c-safety"}},
            as_=("fund", "focal"))
        assert agreed["data"]["agreeCheckInSchedule"]["userErrors"] == [], agreed
        consulted = await env.gql("""mutation($i: RecordConsultationInput!) {
            recordConsultation(input: $i) { userErrors { message } } }""", {"i": {
            "caseId": case_id, "heldAt": env.clock.now().isoformat(), "consulted": "HER",
            "topics": "c-topics", "risksRaised": "c-risks",
            "followUps": [{"action": "c-follow", "ownerOrganisationId": await org_id(env, "fund"),
                           "dueAt": (env.clock.now() + timedelta(days=400)).isoformat()}]}},
            as_=("fund", "focal"))
        assert consulted["data"]["recordConsultation"]["userErrors"] == [], consulted
        out.append({"pb": registered["id"], "case": case_id,
                    "her": await env.peacebuilder_token(registered["login"])})
    return out


async def _assessed_and_planned(env: Any, case_id: str, login: str) -> None:
    """A current assessment (agreed by her) and a measure tied to its threat."""
    drafted = await env.gql("""mutation($i: DraftRiskAssessmentInput!) {
        draftRiskAssessment(input: $i) { assessment { id threats { id } } userErrors { message } } }""",
                            {"i": {"caseId": case_id, "level": "HIGH",
                                   "reviewAt": (env.clock.now() + timedelta(days=30)).isoformat(),
                                   "herAnalysis": "r-analysis",
                                   "threats": [{"likelihood": "HIGH", "impact": "HIGH",
                                                "facts": "r-facts"}]}}, as_=("fund", "focal"))
    assessment = drafted["data"]["draftRiskAssessment"]["assessment"]
    await env.gql("mutation($id: ID!) { shareRiskAssessment(input: {id: $id}) { userErrors "
                  "{ message } } }", {"id": assessment["id"]}, as_=("fund", "focal"))
    answered = await env.gql("""mutation($id: ID!) { answerRiskAssessment(input: {id: $id,
        agree: true}) { assessment { status } } }""", {"id": assessment["id"]},
                             token=await env.peacebuilder_token(login), purpose=None)
    assert answered["data"]["answerRiskAssessment"]["assessment"]["status"] == "AGREED"
    added = await env.gql("""mutation($c: ID!) { addMeasure(input: {caseId: $c,
        kind: ACCOMPANIMENT}) { measure { id } } }""", {"c": case_id}, as_=("fund", "focal"))
    planned = await env.gql("""mutation($i: SetMeasurePlanInput!) { setMeasurePlan(input: $i) {
        userErrors { message } } }""", {"i": {
        "measureId": added["data"]["addMeasure"]["measure"]["id"],
        "threatId": assessment["threats"][0]["id"], **PLAN}}, as_=("fund", "focal"))
    assert planned["data"]["setMeasurePlan"]["userErrors"] == [], planned


async def apply(env: Any, ops: list[dict[str, Any]], who: list[dict[str, Any]],
                start: datetime) -> None:
    grants: list[tuple[str, str]] = []  # (grant id, her token)
    for op in ops:
        if op["op"] == "grant":
            w = who[op["woman"]]
            variables: dict[str, Any] = {
                "peacebuilderId": w["pb"], "categories": [c.name for c in op["categories"]],
                "purposes": [p.name for p in op["purposes"]], "validFrom": start.isoformat()}
            if op["until_min"] is not None:
                variables["validUntil"] = (start + timedelta(minutes=op["until_min"])).isoformat()
            key = "recipientWorkingGroupId" if op["recipient"] == "jag" else "recipientOrganisationId"
            variables[key] = env.org_ids[op["recipient"]]
            body = await env.gql(GRANT, {"i": variables}, token=w["her"], purpose=None)
            payload = body["data"]["grantConsent"]
            if payload["grant"] is not None:  # a refusal (e.g. a duplicate) changes nothing
                grants.append((payload["grant"]["id"], w["her"]))
        elif grants:
            grant_id, her = grants[op["pick"] % len(grants)]
            if op["op"] == "narrow":
                await env.gql(NARROW, {"i": {"grantId": grant_id, "categories": [
                    c.name for c in op["categories"]]}}, token=her, purpose=None)
            else:
                await env.gql(REVOKE, {"i": {"grantId": grant_id}}, token=her, purpose=None)


# Each example reads 48 pages: fewer examples than the CI profile's default, all under `thorough`.
@settings(max_examples=min(10, settings.default.max_examples)
          if settings.default.max_examples <= 20 else settings.default.max_examples)
@given(ops=st.lists(op_strategy, min_size=2, max_size=6), shift=st.sampled_from([0, 45, 200]))
async def test_page_and_nested_levels_match_the_consent_log(oracle_env, ops, shift):
    env = oracle_env
    start = env.clock.now()
    who = await women(env)
    await apply(env, ops, who, start)
    env.clock.set(start + timedelta(minutes=shift))
    now = env.clock.now()
    events = await consent_log(env, [raw(w["pb"]) for w in who])
    assert events, "the log holds the intake grants at least"
    try:
        for org in ORGS:
            org_uuid = raw(env.org_ids[org])
            for purpose in [None, *Purpose]:
                want = oracle(events, org_uuid, purpose, now)
                body = await env.post(PAGE, {"after": start.isoformat()}, as_=(org, "focal"),
                                      purpose=purpose.value if purpose else None)
                data = body.json()
                if purpose is None:  # staff must say why: refused, not an empty page
                    assert data["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED", data
                    continue
                assert "errors" not in data, data
                got = {raw(e["node"]["peacebuilder"]["id"]): e["node"]
                       for e in data["data"]["cases"]["edges"]}
                assert set(got) == {str(p) for p in want}, (org, purpose, shift)
                for pb, node in got.items():
                    released = want[uuid.UUID(pb)]
                    check_case(node, released, (org, purpose, shift))
    finally:
        env.clock.set(start + timedelta(days=1))


def check_case(node: dict[str, Any], released: set[str], where: tuple[Any, ...]) -> None:
    details = DataCategory.INCIDENT_DETAILS.value
    assert (node["summary"] is not None) == (details in released), where
    profile = node["peacebuilder"]["profile"]
    for field, category in PROFILE_FIELDS.items():
        value = profile[camel(field)]
        assert (value is not None) == (category.value in released), (field, where)
        assert value in (None, f"v-{field}")
    # Her risk assessments are listed with risk_assessment, their text opened with it.
    risk = DataCategory.RISK_ASSESSMENT.value
    if risk in released:
        assert node["riskAssessments"] == [{"herAnalysis": "r-analysis",
                                            "threats": [{"facts": "r-facts"}]}], where
    else:
        assert node["riskAssessments"] == [], where
    # Measures are listed with incident details; each plan field released by risk_assessment.
    if details in released:
        assert len(node["measures"]) == 1, where
        measure = node["measures"][0]
        for field, value in PLAN.items():
            assert measure[field] == (value if risk in released else None), (field, where)
        assert (measure["threatId"] is not None) == (risk in released), where
    else:
        assert node["measures"] == [], where
    # Check-in schedules and consultations are listed with risk_assessment; each sealed field by
    # its own category (the safety contact is contact data).
    risk = DataCategory.RISK_ASSESSMENT.value
    for field, (rows, written) in RISK_ROWS.items():
        if risk not in released:
            assert node[rows] == [], where
            continue
        assert len(node[rows]) == 1, where
        value = node[rows][0][field]
        assert (value is not None) == (RISK_CATEGORIES[field].value in released), (field, where)
        assert value in (None, written)
    # A consultation's follow-ups as tasks (IDs, dates, codes): listed with risk_assessment.
    assert len(node["consultationFollowUps"]) == (1 if risk in released else 0), where
    # Incidents are listed with their details category; each sealed field by its own.
    if details not in released:
        assert node["incidents"] == [], where
        return
    assert len(node["incidents"]) == 1, where
    for field, category in INCIDENT_FIELDS.items():
        value = node["incidents"][0][camel(field)]
        assert (value is not None) == (category.value in released), (field, where)
        assert value in (None, f"i-{field}")
