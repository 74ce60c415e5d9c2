"""Small factories for tests: register a woman the way an organisation must now, through the API.

Consent recorded by staff is pending until confirmed (app/consent/rules.py): by her own login,
or — while she has none and the terms are not protected — by a second focal point of the
organisation against the evidence (the two-person rule, app/confirmations). These helpers do
exactly what a client does, so a test starts from a woman whose intake consent is in force.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from app.consent.rules import PROTECTED_CATEGORIES
from app.tables.consent import PeacebuilderAccount
from app.tables.peacebuilders import Peacebuilder
from schema import ids
from tests.conftest import unique

EVIDENCE = {"kind": "SIGNED_FORM", "reference": "signed intake form, case file 1"}
PROFILE = {"legalName": "Secret Legal Name", "phone": "+1 555 0199", "country": "ZZ",
           "region": "North", "familyMembers": "a sister", "healthNotes": "none"}
INTAKE = {"obtainedVia": "IN_PERSON", "evidence": EVIDENCE}

CREATE = """
mutation($input: CreatePeacebuilderInput!) {
  createPeacebuilder(input: $input) {
    peacebuilder { id }
    intakeConsent { id status awaiting }
    userErrors { field message code }
  }
}"""
CONFIRMATIONS = """
query { confirmations(first: 100) { edges { node { id action targetId status } } } }"""
CONFIRM_TWO_PERSON = """
mutation($id: ID!) { confirmTwoPerson(input: {id: $id}) {
  confirmation { id status } userErrors { field message code } } }"""
CONFIRM_CONSENT = """
mutation($id: ID!) { confirmConsent(input: {grantId: $id}) {
  grant { id status } userErrors { field message code } } }"""

CONFIRM_NETWORK = """
mutation($pb: ID, $n: ID!) { confirmNetwork(input: {peacebuilderId: $pb, networkId: $n}) {
  link { id confirmedAt network { slug } } confirmationId userErrors { field message code } } }"""
OPEN_CASE = """
mutation($input: OpenCaseInput!) {
  openCase(input: $input) { case { id } userErrors { field message code } }
}"""

_org_ids: dict[int, dict[str, str]] = {}


async def org_id(env: Any, slug: str) -> str:
    """Global ID of an organisation of this environment's database (cached per env)."""
    if id(env) not in _org_ids:
        body = await env.gql("{ organisations(first: 50) { edges { node { id slug } } } }",
                             as_=("mofa", "focal"))
        _org_ids[id(env)] = {e["node"]["slug"]: e["node"]["id"]
                             for e in body["data"]["organisations"]["edges"]}
    return _org_ids[id(env)][slug]


def second_of(user: str) -> str:
    """A focal point other than `user`, to confirm what `user` started."""
    return "focal2" if user == "focal" else "focal"


async def pending_confirmation(env: Any, org: str, target_id: str, *, as_user: str = "focal") -> str:
    """The ID of the pending two-person request about `target_id` (as a holder sees it)."""
    body = await env.gql(CONFIRMATIONS, as_=(org, as_user))
    for edge in body["data"]["confirmations"]["edges"]:
        node = edge["node"]
        if _same_target(node["targetId"], target_id) and node["status"] == "PENDING":
            return str(node["id"])
    raise AssertionError(f"no pending confirmation for {target_id}: {body}")


def _same_target(a: str, b: str) -> bool:
    return ids.decode_any(a)[1] == ids.decode_any(b)[1]


async def confirm_by_second_person(env: Any, org: str, target_id: str, *,
                                   first: str = "caseworker") -> dict[str, Any]:
    """A second focal point of `org` confirms the pending request about `target_id`."""
    confirmer = second_of(first)
    confirmation = await pending_confirmation(env, org, target_id, as_user=confirmer)
    body = await env.gql(CONFIRM_TWO_PERSON, {"id": confirmation}, as_=(org, confirmer))
    payload = body["data"]["confirmTwoPerson"]
    assert payload["userErrors"] == [], body
    assert payload["confirmation"]["status"] == "CONFIRMED", body
    return payload  # type: ignore[no-any-return]


async def give_login(env: Any, pb_id: str, login: str | None = None) -> str:
    """Her own login (the service has no enrolment API yet: the harness writes it)."""
    login = login or unique("her")
    raw = ids.decode(pb_id, "Peacebuilder")
    async with env.runtime.db.transaction() as s:
        s.add(PeacebuilderAccount(peacebuilder_id=raw, login=login, active=True,
                                  created_at=env.runtime.clock.now()))
        await s.execute(update(Peacebuilder).where(Peacebuilder.id == raw).values(has_login=True))
    return login


async def she_confirms(env: Any, login: str, grant_id: str) -> None:
    her = await env.peacebuilder_token(login)
    body = await env.gql(CONFIRM_CONSENT, {"id": grant_id}, token=her, purpose=None)
    assert body["data"]["confirmConsent"]["userErrors"] == [], body
    assert body["data"]["confirmConsent"]["grant"]["status"] in ("LIVE", "NOT_YET_VALID"), body


async def register(env: Any, org: str = "mofa", user: str = "caseworker", *,
                   pseudonym: str | None = None, profile: dict[str, Any] | None = None,
                   categories: list[str] | None = None, purposes: list[str] | None = None,
                   networks: list[str] | None = None, login: bool = False,
                   **intake: Any) -> dict[str, Any]:
    """Register a woman as `org`'s `user` and bring her intake consent into force: by her own
    login when `login` (or when the terms are protected: only she can), else by a second focal
    point. Returns {"id", "grant", "login" (or None), "pseudonym"}."""
    terms: dict[str, Any] = {**INTAKE, **intake}
    if categories is not None:
        terms["categories"] = categories
    if purposes is not None:
        terms["purposes"] = purposes
    pseudonym = pseudonym or unique("pb")
    variables: dict[str, Any] = {"pseudonym": pseudonym, "intakeConsent": terms}
    if profile is not None:
        variables["profile"] = profile
    if networks is not None:
        variables["networkIds"] = networks
    body = await env.gql(CREATE, {"input": variables}, as_=(org, user))
    payload = body["data"]["createPeacebuilder"]
    assert payload["userErrors"] == [], body
    pb_id, grant = payload["peacebuilder"]["id"], payload["intakeConsent"]
    assert grant["status"] == "PENDING", body
    protected = {c.upper() for c in PROTECTED_CATEGORIES} & set(categories or [])
    her_login = None
    if login or protected:
        her_login = await give_login(env, pb_id, pseudonym)
        await she_confirms(env, her_login, grant["id"])
    else:
        await confirm_by_second_person(env, org, grant["id"], first=user)
    return {"id": pb_id, "grant": grant["id"], "login": her_login, "pseudonym": pseudonym}


RISK_DRAFT = """mutation($i: DraftRiskAssessmentInput!) { draftRiskAssessment(input: $i) {
  assessment { id } userErrors { field message code } } }"""
RISK_SHARE = """mutation($id: ID!) { shareRiskAssessment(input: {id: $id}) {
  assessment { id } userErrors { field message code } } }"""
RISK_ANSWER = """mutation($i: AnswerRiskAssessmentInput!) { answerRiskAssessment(input: $i) {
  assessment { id status } userErrors { field message code } } }"""
RISK_WITHOUT_HER = """mutation($i: ConfirmRiskAssessmentInput!) {
  confirmRiskAssessmentWithoutHer(input: $i) { confirmationId userErrors { field message } } }"""


async def current_assessment(env: Any, case_id: str, lead: str, *, login: str | None,
                             level: str = "MEDIUM", days: int = 60) -> str:
    """A current joint risk assessment of the case (the gates of issue 19 need one before a
    referral, a public act or a grant to a working group by others): drafted and shared by the
    lead organisation's focal point, agreed by her own login — or, without one, by a second
    focal point after consulting her in person."""
    from datetime import timedelta

    review = (env.runtime.clock.now() + timedelta(days=days)).isoformat()
    body = await env.gql(RISK_DRAFT, {"i": {"caseId": case_id, "level": level, "reviewAt": review,
                                            "threats": [{"likelihood": "MEDIUM",
                                                         "impact": "HIGH"}]}},
                         as_=(lead, "focal"))
    assert body["data"]["draftRiskAssessment"]["userErrors"] == [], body
    assessment = body["data"]["draftRiskAssessment"]["assessment"]["id"]
    body = await env.gql(RISK_SHARE, {"id": assessment}, as_=(lead, "focal"))
    assert body["data"]["shareRiskAssessment"]["userErrors"] == [], body
    if login:
        her = await env.peacebuilder_token(login)
        body = await env.gql(RISK_ANSWER, {"i": {"id": assessment, "agree": True}}, token=her,
                             purpose=None)
        assert "errors" not in body, body
        assert body["data"]["answerRiskAssessment"]["userErrors"] == [], body
    else:
        body = await env.gql(RISK_WITHOUT_HER, {"i": {"id": assessment,
                                                      "consultedHow": "IN_PERSON"}},
                             as_=(lead, "focal"))
        assert body["data"]["confirmRiskAssessmentWithoutHer"]["userErrors"] == [], body
        await confirm_by_second_person(env, lead, assessment, first="focal")
    return str(assessment)


async def networked_case(env: Any, categories: list[str], *, lead: str = "unpc",
                         network: str = "wpn") -> dict[str, Any]:
    """A woman without a login of her own whom `lead` registers naming `network`: two of
    `lead`'s focal points confirm the network, the network's focal point confirms her intake
    consent (`categories`, for protection) for her, and `lead` opens her case.
    Returns {"id", "case"}."""
    network_id = await org_id(env, network)
    body = await env.gql(CREATE, {"input": {
        "pseudonym": unique("pb"), "networkIds": [network_id], "profile": PROFILE,
        "intakeConsent": {"categories": categories, "purposes": ["PROTECTION"],
                          "obtainedVia": "IN_PERSON"}}}, as_=(lead, "caseworker"))
    assert body["data"]["createPeacebuilder"]["userErrors"] == [], body
    pb = body["data"]["createPeacebuilder"]["peacebuilder"]["id"]
    asked = await env.gql(CONFIRM_NETWORK, {"pb": pb, "n": network_id}, as_=(lead, "focal"))
    assert asked["data"]["confirmNetwork"]["userErrors"] == [], asked
    await confirm_by_second_person(env, lead, asked["data"]["confirmNetwork"]["link"]["id"],
                                   first="focal")
    listed = await env.gql("query($id: ID!) { consentGrants(peacebuilderId: $id) { id } }",
                           {"id": pb}, as_=(network, "focal"))
    body = await env.gql(CONFIRM_CONSENT, {"id": listed["data"]["consentGrants"][0]["id"]},
                         as_=(network, "focal"))
    assert body["data"]["confirmConsent"]["userErrors"] == [], body
    opened = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": pb}}, as_=(lead, "caseworker"))
    assert opened["data"]["openCase"]["userErrors"] == [], opened
    return {"id": pb, "case": opened["data"]["openCase"]["case"]["id"]}
