"""Issue 16: every type, field, argument, input field and enum value of the schema is described,
and every root field is declared with what it requires (schema/permissions.py), its
"Requires:" line generated from that declaration and held to the checks the code makes.

- walking the built schema, nothing a partner developer reads in the SDL is undescribed;
- every Query, Mutation and Subscription field carries a declaration, its description ends with
  the generated line, and it declares a purpose exactly when it can select her records;
- a representative operation per root field, run through the real app, makes exactly the
  checks its declaration names: a check the code makes but the declaration omits fails, and so
  does one the declaration names but the code never makes (drift both ways).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

from app.access import checks
from schema import ids
from schema.permissions import Requirement, declared, reads_records
from schema.schema import schema as built
from tests.conftest import BACKENDS, build_env, unique
from tests.factories import INTAKE, current_assessment, register
from tests.test_consent import INTAKE_CATEGORIES, grant, new_peacebuilder, org_id, wg_id

pytestmark = pytest.mark.anyio

BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}
ROOTS = ("Query", "Mutation", "Subscription")
EMERGENCY = "She is missing after a raid; her family asked for help."
RISK = [*INTAKE_CATEGORIES, "RISK_ASSESSMENT"]
ERASE_REASON = "She asked us in person to erase everything we hold."


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Everything of the SDL without a description (introspection and built-in scalars aside)."""
    missing: list[str] = []
    for name, t in sorted(schema.type_map.items()):
        if name.startswith("__") or name in BUILT_IN:
            continue
        if not (t.description or "").strip():
            missing.append(f"type {name}")
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
            for fname, f in t.fields.items():
                if not (f.description or "").strip():
                    missing.append(f"field {name}.{fname}")
                missing += [
                    f"argument {name}.{fname}({a})"
                    for a, arg in f.args.items()
                    if not (arg.description or "").strip()
                ]
        elif isinstance(t, GraphQLInputObjectType):
            missing += [
                f"input field {name}.{fname}"
                for fname, f in t.fields.items()
                if not (f.description or "").strip()
            ]
        elif isinstance(t, GraphQLEnumType):
            missing += [
                f"enum value {name}.{v}"
                for v, value in t.values.items()
                if not (value.description or "").strip()
            ]
    return missing


def root_fields() -> list[tuple[str, str, Any]]:
    gs = built._schema
    return [(root, name, f) for root in ROOTS for name, f in gs.type_map[root].fields.items()]


def test_every_type_field_argument_and_enum_value_is_described():
    assert undescribed(built._schema) == []


def test_every_root_field_is_declared_and_its_line_is_generated_from_the_declaration():
    gs = built._schema
    undeclared = [f"{root}.{name}" for root, name, f in root_fields() if declared(f) is None]
    assert undeclared == []
    for root, name, f in root_fields():
        requirement = declared(f)
        assert requirement is not None
        assert f.description.endswith(requirement.line()), f"{root}.{name}"
        # Only the generated line speaks of requirements: no hand-written copy to drift.
        body = f.description[: -len(requirement.line())]
        assert "Requires" not in body, f"{root}.{name}: {body}"
        reads = root != "Subscription" and reads_records(gs, f)
        assert requirement.purpose == reads, (
            f"{root}.{name}: declares purpose={requirement.purpose}"
        )


def test_the_line_names_each_check_it_declares():
    line = Requirement(requires=(("case", "update"), ("measure", "manage")), step_up=True).line()
    assert line.startswith("Requires: `case:update` and `measure:manage`; a second-factor")
    assert Requirement().line() == "Requires: no permission. Callers: anyone signed in."


# --- the declarations against the code ------------------------------------------------------

# (org, user); "her", "networked" or "risky" (that woman's own login, in World); None: no token
Caller = tuple[str, str] | str | None
Vars = Callable[["World"], Awaitable[dict[str, Any]]]


@dataclass
class World:
    env: Any
    her: dict[str, str]
    fund: str
    mofa: str
    jag: str
    # A woman registered with the peacebuilders' network named (not yet confirmed by her).
    networked: dict[str, Any]
    # A woman whose intake consent also releases risk_assessment (check-ins, assessments).
    risky: dict[str, Any]


def mut(name: str, input_type: str) -> str:
    """A mutation taking one `input`, selecting only its userErrors."""
    return f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ userErrors {{ message }} }} }}"


@dataclass(frozen=True)
class Op:
    caller: Caller
    document: str
    variables: Vars | None = None
    purpose: str | None = "protection"
    # A rule of the service refuses it after every access check was made (the userError says).
    refused: str | None = None
    # False on a path the declaration's `when` exempts from its step-up.
    step_up_applies: bool = True


async def user_id(env: Any, org: str, username: str) -> str:
    from app.auth import principals

    async with env.runtime.db.transaction() as s:
        found = await principals.find_user(s, org, username)
        assert found is not None
        return ids.encode("User", found.id)


def soon(hours: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def _fresh_user(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: CreateUserInput!) { createUser(input: $i) {
        user { id } userErrors { message } } }""",
        {
            "i": {
                "username": f"u{uuid.uuid4().hex[:8]}",
                "displayName": "Temp",
                "roles": ["CASEWORKER"],
            }
        },
        as_=("fund", "admin"),
    )
    return {"i": {"userId": body["data"]["createUser"]["user"]["id"]}}


async def _fresh_client(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: CreateClientInput!) { createClient(input: $i) {
        client { id } userErrors { message } } }""",
        {"i": {"clientId": f"c{uuid.uuid4().hex[:8]}", "name": "Temp"}},
        as_=("fund", "admin"),
    )
    return {"i": {"id": body["data"]["createClient"]["client"]["id"]}}


async def _her_grant(w: World) -> dict[str, Any]:
    return {"i": {"grantId": w.her["grant"]}}


OPS: dict[str, Op] = {
    "Query.viewer": Op(("fund", "caseworker"), "{ viewer { kind } }"),
    "Query.organisation": Op(
        ("fund", "caseworker"),
        "query($id: ID!) { organisation(id: $id) { slug } }",
        lambda w: _v(id=w.mofa),
    ),
    "Query.organisations": Op(
        ("fund", "caseworker"), "{ organisations(first: 5) { edges { node { slug } } } }"
    ),
    "Query.users": Op(("fund", "admin"), "{ users(first: 5) { edges { node { id } } } }"),
    "Query.clients": Op(("fund", "admin"), "{ clients(first: 5) { edges { node { id } } } }"),
    "Query.workingGroup": Op(
        ("unpc", "admin"),
        "query($id: ID!) { workingGroup(id: $id) { slug } }",
        lambda w: _v(id=w.jag),
    ),
    "Query.workingGroups": Op(
        ("unpc", "admin"), "{ workingGroups(first: 5) { edges { node { slug } } } }"
    ),
    "Query.peacebuilder": Op(
        ("fund", "caseworker"),
        "query($id: ID!) { peacebuilder(id: $id) { pseudonym } }",
        lambda w: _v(id=w.her["id"]),
    ),
    "Query.peacebuilders": Op(
        ("fund", "caseworker"), "{ peacebuilders(first: 5) { edges { node { id } } } }"
    ),
    "Query.case": Op(
        ("fund", "caseworker"),
        "query($id: ID!) { case(id: $id) { status } }",
        lambda w: _v(id=w.her["case"]),
    ),
    "Query.cases": Op(("fund", "caseworker"), "{ cases(first: 5) { edges { node { id } } } }"),
    "Query.me": Op("her", "{ me { __typename } }", purpose=None),
    "Query.consentGrants": Op(
        ("fund", "caseworker"),
        "query($id: ID!) { consentGrants(peacebuilderId: $id) { id } }",
        lambda w: _v(id=w.her["id"]),
    ),
    "Query.consentReceipt": Op(
        "her",
        "query($id: ID!) { consentReceipt(grantId: $id) }",
        lambda w: _v(id=w.her["grant"]),
        purpose=None,
    ),
    "Query.accessLog": Op(("nhri", "auditor"), "{ accessLog(first: 5) { edges { node { id } } } }"),
    "Query.accessLogVerification": Op(("nhri", "auditor"),
                                      "{ accessLogVerification { state checkpointSize } }"),
    "Query.accessLogOrganisations": Op(("nhri", "auditor"),
                                       "{ accessLogOrganisations { id name } }"),
    "Query.alerts": Op(("fund", "focal"), "{ alerts(first: 5) { edges { node { id } } } }"),
    "Query.accessHistory": Op(
        "her", "{ accessHistory(first: 5) { edges { cursor } } }", purpose=None
    ),
    "Query.referrals": Op(("fund", "focal"), "{ referrals(incoming: true) { id } }"),
    "Query.inbox": Op(("fund", "focal"), "{ inbox { id } }"),
    "Query.incidentStatistics": Op(
        ("fund", "analyst"),
        "{ incidentStatistics { minWomenPerCount } }",
        purpose="aggregate_reporting",
    ),
    "Query.operationPolicy": Op(
        ("fund", "admin"), "{ operationPolicy { onlyRegisteredOperations } }"
    ),
    "Query.confirmations": Op(
        ("fund", "focal"), "{ confirmations(first: 5) { edges { cursor } } }"
    ),
    "Query.dutyRota": Op(("fund", "admin"), "{ dutyRota { id } }"),
    "Query.myChannels": Op(("fund", "focal"), "{ myChannels { id } }"),
    "Query.myAlertChannels": Op(("fund", "focal"), "{ myAlertChannels { level } }"),
    "Query.serviceDirectory": Op(
        ("fund", "caseworker"), "{ serviceDirectory(first: 5) { edges { cursor } } }"
    ),
    "Query.serviceDirectoryEntry": Op(
        ("fund", "caseworker"),
        "query($id: ID!) { serviceDirectoryEntry(organisationId: $id) { services } }",
        lambda w: _v(id=w.mofa),
    ),
    "Query.helpDesks": Op(None, "{ helpDesks { name } }", purpose=None),
    "Query.helpRequests": Op(("fund", "focal"), "{ helpRequests(first: 5) { edges { cursor } } }"),
    "Query.correctionRequests": Op(
        ("fund", "focal"), "{ correctionRequests(openOnly: true) { id } }"
    ),
    "Mutation.createUser": Op(
        ("fund", "admin"),
        """mutation($i: CreateUserInput!) { createUser(input: $i) {
        user { id } userErrors { message } } }""",
        lambda w: _v(
            i={"username": f"u{uuid.uuid4().hex[:8]}", "displayName": "A", "roles": ["ANALYST"]}
        ),
    ),
    "Mutation.setUserRoles": Op(
        ("fund", "admin"), mut("setUserRoles", "SetUserRolesInput"), lambda w: _roles(w)
    ),
    "Mutation.deactivateUser": Op(
        ("fund", "admin"), mut("deactivateUser", "UserIdInput"), _fresh_user
    ),
    "Mutation.reactivateUser": Op(
        ("fund", "admin"), mut("reactivateUser", "UserIdInput"), _fresh_user
    ),
    "Mutation.resetUserPassword": Op(
        ("fund", "admin"), mut("resetUserPassword", "UserIdInput"), _fresh_user
    ),
    "Mutation.resetUserTotp": Op(
        ("fund", "admin"), mut("resetUserTotp", "UserIdInput"), _fresh_user
    ),
    "Mutation.createClient": Op(
        ("fund", "admin"),
        mut("createClient", "CreateClientInput"),
        lambda w: _v(i={"clientId": f"c{uuid.uuid4().hex[:8]}", "name": "A"}),
    ),
    "Mutation.rotateClientSecret": Op(
        ("fund", "admin"), mut("rotateClientSecret", "ClientIdInput"), _fresh_client
    ),
    "Mutation.deactivateClient": Op(
        ("fund", "admin"), mut("deactivateClient", "ClientIdInput"), _fresh_client
    ),
    "Mutation.updatePeacebuilder": Op(
        ("fund", "caseworker"),
        mut("updatePeacebuilder", "UpdatePeacebuilderInput"),
        lambda w: _v(i={"id": w.her["id"], "preferredLanguage": "fr"}),
    ),
    "Mutation.openCase": Op(
        ("fund", "caseworker"),
        mut("openCase", "OpenCaseInput"),
        lambda w: _v(i={"peacebuilderId": w.her["id"], "summary": "Another."}),
    ),
    "Mutation.updateCase": Op(
        ("fund", "caseworker"),
        mut("updateCase", "UpdateCaseInput"),
        lambda w: _v(i={"id": w.her["case"], "summary": "Updated."}),
    ),
    "Mutation.addCaseNote": Op(
        ("fund", "caseworker"),
        mut("addCaseNote", "AddCaseNoteInput"),
        lambda w: _v(i={"caseId": w.her["case"], "body": "Called her."}),
    ),
    # Consent changes by staff: the step-up applies (she herself needs none).
    "Mutation.grantConsent": Op(
        ("fund", "caseworker"), mut("grantConsent", "GrantConsentInput"), lambda w: _staff_grant(w)
    ),
    "Mutation.narrowConsent": Op(
        ("fund", "caseworker"),
        mut("narrowConsent", "NarrowConsentInput"),
        lambda w: _pending(w, note="narrower"),
    ),
    "Mutation.extendConsent": Op(
        ("fund", "caseworker"),
        mut("extendConsent", "ExtendConsentInput"),
        lambda w: _pending(w, note="longer"),
        refused="Staff cannot widen a grant",
    ),
    "Mutation.revokeConsent": Op(
        ("fund", "caseworker"), mut("revokeConsent", "GrantIdInput"), lambda w: _pending(w)
    ),
    "Mutation.reportIncident": Op(
        ("fund", "caseworker"),
        mut("reportIncident", "ReportIncidentInput"),
        lambda w: _v(
            i={
                "caseId": w.her["case"],
                "type": "THREATS",
                "severity": "LOW",
                "reportedBy": "herself",
                "reportedVia": "phone",
            }
        ),
    ),
    "Mutation.addMeasure": Op(
        ("fund", "caseworker"),
        mut("addMeasure", "AddMeasureInput"),
        lambda w: _v(i={"caseId": w.her["case"], "kind": "ACCOMPANIMENT", "dueAt": soon(48)}),
    ),
    "Mutation.referCase": Op(
        ("fund", "caseworker"),
        mut("referCase", "ReferCaseInput"),
        lambda w: _referral(w),
    ),
    "Mutation.recordProceeding": Op(
        ("fund", "caseworker"),
        mut("recordProceeding", "ProceedingInput"),
        lambda w: _v(i={"caseId": w.her["case"], "kind": "investigation", "data": {}}),
    ),
    "Mutation.unregisterOperation": Op(
        ("fund", "admin"),
        mut("unregisterOperation", "RegisteredOperationIdInput"),
        lambda w: _registered(w),
    ),
    "Mutation.removeDutyShift": Op(
        ("fund", "admin"), mut("removeDutyShift", "DutyShiftIdInput"), lambda w: _shift_id(w)
    ),
    "Mutation.addWorkingGroupMember": Op(
        ("unpc", "admin"),
        mut("addWorkingGroupMember", "WorkingGroupMemberInput"),
        lambda w: _v(i={"workingGroupId": w.jag, "organisationId": w.fund}),
    ),
    "Mutation.removeWorkingGroupMember": Op(
        ("unpc", "admin"),
        mut("removeWorkingGroupMember", "WorkingGroupMemberInput"),
        lambda w: _v(i={"workingGroupId": w.jag, "organisationId": w.fund}),
    ),
    "Mutation.addMyChannel": Op(
        ("fund", "focal"),
        mut("addMyChannel", "AddMyChannelInput"),
        lambda w: _v(i={"url": "http://127.0.0.1:9/hook"}),
    ),
    "Mutation.setMyAlertChannels": Op(
        ("fund", "focal"),
        mut("setMyAlertChannels", "SetMyAlertChannelsInput"),
        lambda w: _v(i={"levels": []}),
    ),
    "Mutation.openBreakGlass": Op(
        ("fund", "focal"),
        mut("openBreakGlass", "OpenBreakGlassInput"),
        lambda w: _v(i={"peacebuilderId": w.her["id"], "hours": 1, "reason": EMERGENCY}),
        purpose="emergency_response",
    ),
    "Mutation.assignCaseTeamMember": Op(
        ("fund", "focal"), mut("assignCaseTeamMember", "CaseTeamInput"), lambda w: _team(w)
    ),
    "Mutation.removeCaseTeamMember": Op(
        ("fund", "focal"), mut("removeCaseTeamMember", "CaseTeamInput"), lambda w: _team(w)
    ),
    "Mutation.registerOperation": Op(
        ("fund", "admin"),
        mut("registerOperation", "RegisterOperationInput"),
        lambda w: _v(i={"document": "{ viewer { kind } }"}),
    ),
    "Mutation.setOperationPolicy": Op(
        ("fund", "admin"),
        mut("setOperationPolicy", "OperationPolicyInput"),
        lambda w: _v(i={"onlyRegisteredOperations": False}),
    ),
    "Mutation.signOut": Op(("fund", "caseworker"), "mutation { signOut { sessionsEnded } }"),
    "Mutation.setTwoPersonWindow": Op(
        ("fund", "admin"),
        mut("setTwoPersonWindow", "TwoPersonWindowInput"),
        lambda w: _v(i={"hours": 24}),
    ),
    "Mutation.addDutyShift": Op(
        ("fund", "admin"), mut("addDutyShift", "AddDutyShiftInput"), lambda w: _shift(w)
    ),
    "Mutation.setServiceDirectoryEntry": Op(
        ("fund", "admin"),
        mut("setServiceDirectoryEntry", "SetServiceDirectoryEntryInput"),
        lambda w: _v(
            i={
                "services": ["LEGAL_AID"],
                "languages": ["en"],
                "regions": ["Nairobi"],
                "acceptsHelpRequests": True,
            }
        ),
    ),
    "Mutation.requestHelp": Op(
        None,
        mut("requestHelp", "RequestHelpInput"),
        lambda w: _v(
            i={"organisationId": w.fund, "message": "Please call me.", "contact": "evenings"}
        ),
        purpose=None,
    ),
    "Mutation.requestCorrection": Op(
        "her",
        mut("requestCorrection", "RequestCorrectionInput"),
        lambda w: _v(i={"field": "region", "message": "I moved."}),
        purpose=None,
    ),
    "Mutation.setCorrectionDeadline": Op(
        ("fund", "admin"),
        mut("setCorrectionDeadline", "CorrectionDeadlineInput"),
        lambda w: _v(i={"days": 30}),
    ),
    "Mutation.createPeacebuilder": Op(
        ("fund", "caseworker"),
        mut("createPeacebuilder", "CreatePeacebuilderInput"),
        lambda w: _v(i={"pseudonym": unique("pb"), "intakeConsent": INTAKE}),
    ),
    "Mutation.closeCase": Op(
        ("fund", "caseworker"), mut("closeCase", "CloseCaseInput"), lambda w: _closing(w)
    ),
    "Mutation.reopenCase": Op(
        ("fund", "caseworker"),
        mut("reopenCase", "ReopenCaseInput"),
        lambda w: _closed(w, reason="NEW_THREAT"),
    ),
    "Mutation.setRetentionHold": Op(
        ("fund", "caseworker"),
        mut("setRetentionHold", "SetRetentionHoldInput"),
        lambda w: _closed(w, hold=True, reason="LEGAL_PROCEEDINGS"),
    ),
    "Mutation.scheduleHearing": Op(
        ("fund", "caseworker"),
        mut("scheduleHearing", "ScheduleHearingInput"),
        lambda w: _proceeding(w),
    ),
    "Mutation.rescheduleHearing": Op(
        ("fund", "caseworker"),
        mut("rescheduleHearing", "RescheduleHearingInput"),
        lambda w: _hearing(w, scheduledAt=soon(24 * 12)),
    ),
    "Mutation.cancelHearing": Op(
        ("fund", "caseworker"), mut("cancelHearing", "HearingIdInput"), lambda w: _hearing(w)
    ),
    "Mutation.recordDetention": Op(
        ("fund", "caseworker"),
        mut("recordDetention", "RecordDetentionInput"),
        lambda w: _v(i={"caseId": w.her["case"], "detainedAt": soon(-2)}),
    ),
    "Mutation.recordDetentionVisit": Op(
        ("fund", "caseworker"),
        mut("recordDetentionVisit", "RecordDetentionVisitInput"),
        lambda w: _detention(w, visitor="LAWYER", visitedAt=soon(-1)),
    ),
    "Mutation.releaseDetention": Op(
        ("fund", "caseworker"),
        mut("releaseDetention", "ReleaseDetentionInput"),
        lambda w: _detention(w),
    ),
    "Mutation.removeMyChannel": Op(
        ("fund", "focal"), mut("removeMyChannel", "RemoveMyChannelInput"), lambda w: _channel(w)
    ),
    "Mutation.uploadAttachment": Op(
        ("fund", "caseworker"),
        mut("uploadAttachment", "UploadAttachmentInput"),
        lambda w: _attachment(w),
    ),
    "Mutation.acknowledgeHelpRequest": Op(
        ("fund", "focal"),
        mut("acknowledgeHelpRequest", "HelpRequestIdInput"),
        lambda w: _help_request(w),
    ),
    "Mutation.eraseHelpRequest": Op(
        ("fund", "focal"), mut("eraseHelpRequest", "HelpRequestIdInput"), lambda w: _help_request(w)
    ),
    "Mutation.extendRetention": Op(
        ("fund", "caseworker"),
        mut("extendRetention", "ExtendRetentionInput"),
        lambda w: _closed(w, until=soon(24 * 365 * 5), reason="INVESTIGATION"),
    ),
    "Mutation.closeBreakGlass": Op(
        ("fund", "focal"),
        mut("closeBreakGlass", "BreakGlassIdInput"),
        lambda w: _glass(w),
        purpose="emergency_response",
    ),
    "Mutation.revokeAllConsent": Op(
        ("fund", "caseworker"),
        mut("revokeAllConsent", "RevokeAllInput"),
        lambda w: _another_woman(w),
        refused="Only she or her network",
    ),
    "Mutation.confirmTwoPerson": Op(
        ("fund", "focal2"), mut("confirmTwoPerson", "ConfirmationIdInput"), lambda w: _asked(w)
    ),
    "Mutation.declineTwoPerson": Op(
        ("fund", "focal2"), mut("declineTwoPerson", "ConfirmationIdInput"), lambda w: _asked(w)
    ),
    "Mutation.requestEnrolmentCode": Op(
        ("fund", "admin"),
        mut("requestEnrolmentCode", "RequestEnrolmentCodeInput"),
        lambda w: _fresh_user(w),
    ),
    "Mutation.claimEnrolmentCode": Op(
        ("fund", "focal"), mut("claimEnrolmentCode", "ClaimEnrolmentCodeInput"), lambda w: _code(w)
    ),
    "Mutation.answerCorrectionRequest": Op(
        ("fund", "focal"),
        mut("answerCorrectionRequest", "AnswerCorrectionInput"),
        lambda w: _correction(w),
    ),
    # Paths where the declared step-up does not apply (`when` says so): she acts herself, or a
    # first factor is enrolled with an enrolment code instead.
    "Mutation.confirmConsent": Op(
        "her",
        mut("confirmConsent", "GrantIdInput"),
        lambda w: _pending(w, ("ADVOCACY",)),
        purpose=None,
        step_up_applies=False,
    ),
    "Mutation.confirmNetwork": Op(
        "networked",
        mut("confirmNetwork", "ConfirmNetworkInput"),
        lambda w: _named_network(w),
        purpose=None,
        step_up_applies=False,
    ),
    "Mutation.startTotpEnrolment": Op(
        ("fund", "analyst"),
        mut("startTotpEnrolment", "StartTotpEnrolmentInput"),
        lambda w: _enrolment_code(w, "analyst"),
        step_up_applies=False,
    ),
    "Mutation.confirmTotpEnrolment": Op(
        ("fund", "caseworker"),
        mut("confirmTotpEnrolment", "TotpCodeInput"),
        lambda w: _totp_code(w, "caseworker"),
    ),
    "Mutation.assignMeasure": Op(
        ("fund", "caseworker"), mut("assignMeasure", "AssignMeasureInput"), lambda w: _measure(w)
    ),
    # The built-in issuer: linking is refused (OIDC mode only) after its checks; unlinking a
    # person who has no link succeeds.
    "Mutation.linkUserIdentity": Op(
        ("fund", "admin"),
        mut("linkUserIdentity", "LinkUserIdentityInput"),
        lambda w: _to_link(w),
        refused="linked in OIDC mode only",
    ),
    "Mutation.unlinkUserIdentity": Op(
        ("fund", "admin"), mut("unlinkUserIdentity", "UserIdInput"), _fresh_user
    ),
    "Mutation.acknowledgeIncident": Op(
        ("fund", "caseworker"),
        mut("acknowledgeIncident", "AcknowledgeIncidentInput"),
        lambda w: _incident(w),
    ),
    "Mutation.setIncidentStatus": Op(
        ("fund", "caseworker"),
        mut("setIncidentStatus", "SetIncidentStatusInput"),
        lambda w: _incident(w, status="RESPONDING"),
    ),
    "Mutation.setAcknowledgementDeadline": Op(
        ("fund", "admin"),
        mut("setAcknowledgementDeadline", "SetAcknowledgementDeadlineInput"),
        lambda w: _v(i={"severity": "LOW", "minutes": 72 * 60}),
    ),
    "Mutation.setMeasureStatus": Op(
        ("fund", "caseworker"),
        mut("setMeasureStatus", "SetMeasureStatusInput"),
        lambda w: _measure_status(w),
    ),
    "Mutation.moveReferral": Op(
        ("mofa", "focal"),
        mut("moveReferral", "MoveReferralInput"),
        lambda w: _referred(w),
        purpose="legal_support",
    ),
    "Mutation.recordApproval": Op(
        "her", mut("recordApproval", "RecordApprovalInput"), lambda w: _approval(w), purpose=None
    ),
    "Mutation.withdrawApproval": Op(
        "her",
        mut("withdrawApproval", "WithdrawApprovalInput"),
        lambda w: _approved(w),
        purpose=None,
    ),
    "Mutation.eraseMyData": Op(
        ("fund", "focal"), mut("eraseMyData", "EraseDataInput"), lambda w: _erasure(w)
    ),
    "Mutation.stopErasure": Op(
        "her",
        mut("stopErasure", "ErasureIdInput"),
        lambda w: _asked_erasure(w),
        purpose=None,
        step_up_applies=False,
    ),
    "Query.monitoringRegions": Op(("fund", "analyst"), "{ monitoringRegions { code } }"),
    "Query.monitoringTables": Op(("fund", "analyst"), "{ monitoringTables { tables { name } } }"),
    "Query.monitoringReleases": Op(
        ("fund", "analyst"),
        "{ monitoringReleases { table period } }",
        purpose="aggregate_reporting",
    ),
    "Query.monitoringCoverage": Op(
        ("fund", "analyst"),
        "{ monitoringCoverage { regions { code } } }",
        purpose="aggregate_reporting",
    ),
    "Mutation.releaseMonitoringTable": Op(
        ("fund", "analyst"),
        mut("releaseMonitoringTable", "ReleaseMonitoringTableInput"),
        lambda w: _v(i={"table": "incidents_by_region", "period": "2020"}),
        purpose="aggregate_reporting",
    ),
    "Mutation.agreeCheckInSchedule": Op(
        ("fund", "caseworker"),
        mut("agreeCheckInSchedule", "AgreeCheckInScheduleInput"),
        lambda w: _schedule_input(w),
    ),
    "Mutation.endCheckInSchedule": Op(
        ("fund", "caseworker"),
        mut("endCheckInSchedule", "EndCheckInScheduleInput"),
        lambda w: _schedule(w),
    ),
    "Mutation.checkIn": Op(
        "risky", mut("checkIn", "CheckInInput"), lambda w: _schedule(w, by="HER"), purpose=None
    ),
    "Mutation.recordSecurityAssessment": Op(
        ("fund", "caseworker"),
        mut("recordSecurityAssessment", "RecordSecurityAssessmentInput"),
        lambda w: _v(i={"caseId": w.risky["case"], "subject": "HER", "followUpAt": soon(24 * 30)}),
    ),
    "Mutation.recordConsultation": Op(
        ("fund", "caseworker"),
        mut("recordConsultation", "RecordConsultationInput"),
        lambda w: _v(
            i={
                "caseId": w.risky["case"],
                "heldAt": soon(-1),
                "consulted": "HER",
                "organisationIds": [],
                "followUps": [],
            }
        ),
    ),
    "Mutation.recordSecurityFollowUp": Op(
        ("fund", "caseworker"),
        mut("recordSecurityFollowUp", "RecordSecurityFollowUpInput"),
        lambda w: _assessment(w),
    ),
    "Mutation.amendConsultation": Op(
        ("fund", "caseworker"),
        mut("amendConsultation", "AmendConsultationInput"),
        lambda w: _consultation(w),
    ),
    "Mutation.designateCoveredFamily": Op(
        "risky",
        mut("designateCoveredFamily", "DesignateCoveredFamilyInput"),
        lambda w: _her_measure(w),
        purpose=None,
        step_up_applies=False,
    ),
    "Mutation.completeConsultationFollowUp": Op(
        ("fund", "caseworker"),
        mut("completeConsultationFollowUp", "CompleteConsultationFollowUpInput"),
        lambda w: _follow_up_task(w),
    ),
    "Mutation.signOutEverywhere": Op(
        ("fund", "caseworker"), "mutation { signOutEverywhere { sessionsEnded } }"
    ),
    "Mutation.setDuressPassword": Op(
        "risky",
        mut("setDuressPassword", "SetDuressPasswordInput"),
        lambda w: _v(i={"password": "a long duress phrase"}),
        purpose=None,
    ),
    "Mutation.draftRiskAssessment": Op(
        ("fund", "caseworker"),
        mut("draftRiskAssessment", "DraftRiskAssessmentInput"),
        lambda w: _draft_input(w),
    ),
    "Mutation.shareRiskAssessment": Op(
        ("fund", "caseworker"),
        mut("shareRiskAssessment", "RiskAssessmentIdInput"),
        lambda w: _drafted(w),
    ),
    "Mutation.answerRiskAssessment": Op(
        "risky",
        mut("answerRiskAssessment", "AnswerRiskAssessmentInput"),
        lambda w: _shared(w, agree=True),
        purpose=None,
        step_up_applies=False,
    ),
    "Mutation.confirmRiskAssessmentWithoutHer": Op(
        ("fund", "focal"),
        mut("confirmRiskAssessmentWithoutHer", "ConfirmRiskAssessmentInput"),
        lambda w: _shared_without_her(w),
    ),
    "Mutation.setMeasurePlan": Op(
        ("fund", "caseworker"),
        mut("setMeasurePlan", "SetMeasurePlanInput"),
        lambda w: _plan(w),
    ),
    # Her lead organisation's first focal point asks (two-person rule): the request is the
    # path that makes the checks; the second person's confirmation is confirmTwoPerson's.
    "Mutation.issueHerCode": Op(
        ("fund", "focal"), mut("issueHerCode", "IssueHerCodeInput"), lambda w: _her_login(w)
    ),
    "Mutation.suspendHerLogin": Op(
        ("fund", "focal"), mut("suspendHerLogin", "HerLoginInput"), lambda w: _her_login(w)
    ),
    "Mutation.reinstateHerLogin": Op(
        ("fund", "focal"), mut("reinstateHerLogin", "HerLoginInput"), lambda w: _her_login(w)
    ),
    "Mutation.recordHearingOutcome": Op(
        ("fund", "caseworker"),
        mut("recordHearingOutcome", "RecordHearingOutcomeInput"),
        lambda w: _hearing_held(w),
    ),
    "Mutation.resolveMissedCheckIn": Op(
        ("fund", "focal"),
        mut("resolveMissedCheckIn", "ResolveMissedCheckInInput"),
        lambda w: _missed_check_in(w),
    ),
}

# Root fields whose checks are another root field's, or that a later change covers.
NOT_RUN: dict[str, str] = {
    "Query.node": "delegates to the queried type's own query (checked above for each)",
    # Over the WebSocket: no access check beyond who is signed in (inbox entitlement is a
    # filter, not a refusal); tests/test_realtime.py and tests/test_notices.py cover who receives.
    "Subscription.alerts": "a filter, not a check: covered by tests/test_realtime.py",
    "Subscription.myNotices": "she herself only: covered by tests/test_notices.py",
}


async def _v(**values: Any) -> dict[str, Any]:
    return values


async def _staff_grant(w: World, purposes: tuple[str, ...] = ("PROTECTION",)) -> dict[str, Any]:
    return {
        "i": {
            "peacebuilderId": w.her["id"],
            "recipientOrganisationId": w.fund,
            "categories": ["TRAVEL"],
            "purposes": list(purposes),
            "obtainedVia": "IN_PERSON",
        }
    }


async def _pending(
    w: World, purposes: tuple[str, ...] = ("PROTECTION",), **extra: Any
) -> dict[str, Any]:
    """A grant the fund's caseworker just recorded (pending until she confirms it)."""
    body = await w.env.gql(
        """mutation($i: GrantConsentInput!) { grantConsent(input: $i) {
        grant { id } userErrors { message } } }""",
        await _staff_grant(w, purposes),
        as_=("fund", "caseworker"),
    )
    assert body["data"]["grantConsent"]["userErrors"] == [], body
    return {"i": {"grantId": body["data"]["grantConsent"]["grant"]["id"], **extra}}


async def _registered(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: RegisterOperationInput!) { registerOperation(input: $i) {
        operation { id } userErrors { message } } }""",
        {"i": {"document": "{ viewer { roles } }"}},
        as_=("fund", "admin"),
    )
    return {"i": {"id": body["data"]["registerOperation"]["operation"]["id"]}}


async def _shift_id(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: AddDutyShiftInput!) { addDutyShift(input: $i) {
        shift { id } userErrors { message } } }""",
        await _shift(w),
        as_=("fund", "admin"),
    )
    return {"i": {"id": body["data"]["addDutyShift"]["shift"]["id"]}}


async def _new_case(w: World) -> str:
    body = await w.env.gql(
        "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } userErrors { message } } }",
        {"i": {"peacebuilderId": w.her["id"], "summary": "Another threat."}},
        as_=("fund", "caseworker"),
    )
    return str(body["data"]["openCase"]["case"]["id"])


async def _closing(w: World) -> dict[str, Any]:
    """A LOW-risk case to close (no second person) with a one-step follow-up plan."""
    step = {"kind": "ACCOMPANIMENT", "dueAt": soon(24 * 7)}
    return {"i": {"caseId": await _new_case(w), "reason": "RISK_RESOLVED", "followUp": [step]}}


async def _closed(w: World, **extra: Any) -> dict[str, Any]:
    closing = await _closing(w)
    body = await w.env.gql(mut("closeCase", "CloseCaseInput"), closing, as_=("fund", "caseworker"))
    assert body["data"]["closeCase"]["userErrors"] == [], body
    return {"i": {"caseId": closing["i"]["caseId"], **extra}}


async def _proceeding(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: ProceedingInput!) { recordProceeding(input: $i) {
        proceeding { id } userErrors { message } } }""",
        {"i": {"caseId": w.her["case"], "kind": "investigation", "data": {}}},
        as_=("fund", "caseworker"),
    )
    proceeding = body["data"]["recordProceeding"]["proceeding"]["id"]
    return {"i": {"proceedingId": proceeding, "scheduledAt": soon(24 * 10)}}


async def _hearing(w: World, **extra: Any) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: ScheduleHearingInput!) { scheduleHearing(input: $i) {
        hearing { id } userErrors { message } } }""",
        await _proceeding(w),
        as_=("fund", "caseworker"),
    )
    return {"i": {"hearingId": body["data"]["scheduleHearing"]["hearing"]["id"], **extra}}


async def _detention(w: World, **extra: Any) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: RecordDetentionInput!) { recordDetention(input: $i) {
        detention { id } userErrors { message } } }""",
        {"i": {"caseId": await _new_case(w), "detainedAt": soon(-3)}},
        as_=("fund", "caseworker"),
    )
    return {"i": {"detentionId": body["data"]["recordDetention"]["detention"]["id"], **extra}}


async def _channel(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: AddMyChannelInput!) { addMyChannel(input: $i) {
        channel { id } userErrors { message } } }""",
        {"i": {"url": "http://127.0.0.1:9/other"}},
        as_=("fund", "focal"),
    )
    return {"i": {"channelId": body["data"]["addMyChannel"]["channel"]["id"]}}


async def _attachment(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
        incident { id } userErrors { message } } }""",
        {
            "i": {
                "caseId": w.her["case"],
                "type": "THREATS",
                "severity": "LOW",
                "reportedBy": "herself",
                "reportedVia": "phone",
            }
        },
        as_=("fund", "caseworker"),
    )
    incident = body["data"]["reportIncident"]["incident"]["id"]
    content = base64.b64encode(b"a threatening message, transcribed").decode()
    return {"i": {"incidentId": incident, "contentType": "text/plain", "contentBase64": content}}


async def _help_request(w: World) -> dict[str, Any]:
    """A request for help to the fund (which takes them once its directory entry says so)."""
    entry = {
        "services": ["LEGAL_AID"],
        "languages": ["en"],
        "regions": ["Nairobi"],
        "acceptsHelpRequests": True,
    }
    await w.env.gql(
        mut("setServiceDirectoryEntry", "SetServiceDirectoryEntryInput"),
        {"i": entry},
        as_=("fund", "admin"),
    )
    await w.env.gql(
        mut("requestHelp", "RequestHelpInput"),
        {"i": {"organisationId": w.fund, "message": "Please call me.", "contact": "evenings"}},
        token=None,
        purpose=None,
    )
    body = await w.env.gql(
        "{ helpRequests(first: 1, status: OPEN) { edges { node { id } } } }", as_=("fund", "focal")
    )
    return {"i": {"id": body["data"]["helpRequests"]["edges"][0]["node"]["id"]}}


async def _glass(w: World) -> dict[str, Any]:
    """Break-glass access the fund's focal point opened on another woman of its cases."""
    other = await _another_woman(w)
    body = await w.env.gql(
        """mutation($i: OpenBreakGlassInput!) { openBreakGlass(input: $i) {
        breakGlass { id } userErrors { message } } }""",
        {"i": {**other["i"], "hours": 1, "reason": EMERGENCY}},
        as_=("fund", "focal"),
        purpose="emergency_response",
    )
    return {"i": {"id": body["data"]["openBreakGlass"]["breakGlass"]["id"]}}


async def _another_woman(w: World) -> dict[str, Any]:
    other = await new_peacebuilder(w.env, "fund", account=False)
    return {"i": {"peacebuilderId": other["id"]}}


async def _asked(w: World) -> dict[str, Any]:
    """A two-person request the fund's first focal point started (a user's enrolment code)."""
    body = await w.env.gql(
        """mutation($i: RequestEnrolmentCodeInput!) { requestEnrolmentCode(input: $i) {
        confirmation { id } userErrors { message } } }""",
        await _fresh_user(w),
        as_=("fund", "focal"),
    )
    return {"i": {"id": body["data"]["requestEnrolmentCode"]["confirmation"]["id"]}}


async def _code(w: World) -> dict[str, Any]:
    """An enrolment code the fund's admin asked for and its focal point confirmed."""
    body = await w.env.gql(
        """mutation($i: RequestEnrolmentCodeInput!) { requestEnrolmentCode(input: $i) {
        confirmation { id } userErrors { message } } }""",
        await _fresh_user(w),
        as_=("fund", "admin"),
    )
    asked = body["data"]["requestEnrolmentCode"]["confirmation"]["id"]
    done = await w.env.gql(
        mut("confirmTwoPerson", "ConfirmationIdInput"), {"i": {"id": asked}}, as_=("fund", "focal")
    )
    assert done["data"]["confirmTwoPerson"]["userErrors"] == [], done
    return {"i": {"confirmationId": asked}}


async def _correction(w: World) -> dict[str, Any]:
    her = await w.env.peacebuilder_token(w.her["login"])
    await w.env.gql(
        mut("requestCorrection", "RequestCorrectionInput"),
        {"i": {"field": "region", "message": "I moved north."}},
        token=her,
        purpose=None,
    )
    body = await w.env.gql("{ correctionRequests(openOnly: true) { id } }", as_=("fund", "focal"))
    first = body["data"]["correctionRequests"][0]["id"]
    return {"i": {"requestId": first, "outcome": "DECLINED", "reason": "We checked: unchanged."}}


async def _referral(w: World, purpose: str = "PROTECTION") -> dict[str, Any]:
    """She consents to the ministry for `purpose`; the fund refers her case there."""
    await grant(w.env, w.her, as_=("fund", "caseworker"), to_org="mofa", purposes=(purpose,))
    return {"i": {"caseId": w.her["case"], "toOrganisationId": w.mofa, "purpose": purpose}}


async def _named_network(w: World) -> dict[str, Any]:
    """The network named at her registration, which she confirms herself."""
    return {"i": {"networkId": await org_id(w.env, "wpn")}}


async def _enrolment_code(w: World, username: str) -> dict[str, Any]:
    """The code two people of the fund issue for `username` (admin asks, focal confirms and
    claims it)."""
    person = {"i": {"userId": await user_id(w.env, "fund", username)}}
    body = await w.env.gql(
        """mutation($i: RequestEnrolmentCodeInput!) { requestEnrolmentCode(input: $i) {
        confirmation { id } userErrors { message } } }""",
        person,
        as_=("fund", "admin"),
    )
    asked = body["data"]["requestEnrolmentCode"]["confirmation"]["id"]
    await w.env.gql(
        mut("confirmTwoPerson", "ConfirmationIdInput"), {"i": {"id": asked}}, as_=("fund", "focal")
    )
    claimed = await w.env.gql(
        """mutation($i: ClaimEnrolmentCodeInput!) { claimEnrolmentCode(input: $i) {
        code userErrors { message } } }""",
        {"i": {"confirmationId": asked}},
        as_=("fund", "focal"),
    )
    return {"i": {"enrolmentCode": claimed["data"]["claimEnrolmentCode"]["code"]}}


async def _totp_code(w: World, username: str) -> dict[str, Any]:
    """`username` started enrolment with a code; a current code from the new secret."""
    from app.auth import totp

    started = await w.env.gql(
        """mutation($i: StartTotpEnrolmentInput) { startTotpEnrolment(input: $i) {
        secret userErrors { message } } }""",
        await _enrolment_code(w, username),
        as_=("fund", username),
    )
    secret = started["data"]["startTotpEnrolment"]["secret"]
    return {"i": {"code": totp.code_at(secret, totp.step_of(time.time()))}}


async def _measure(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: AddMeasureInput!) { addMeasure(input: $i) {
        measure { id } userErrors { message } } }""",
        {"i": {"caseId": w.her["case"], "kind": "ACCOMPANIMENT", "dueAt": soon(48)}},
        as_=("fund", "caseworker"),
    )
    measure = body["data"]["addMeasure"]["measure"]["id"]
    return {"i": {"measureId": measure, "ownerUserId": await user_id(w.env, "fund", "focal")}}


async def _to_link(w: World) -> dict[str, Any]:
    fresh = await _fresh_user(w)
    return {"i": {**fresh["i"], "subject": f"sub-{uuid.uuid4().hex}"}}


async def _incident(w: World, **extra: Any) -> dict[str, Any]:
    """An incident reported on her case (acknowledged when a status change follows)."""
    body = await w.env.gql(
        """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
        incident { id } userErrors { message } } }""",
        {
            "i": {
                "caseId": w.her["case"],
                "type": "THREATS",
                "severity": "LOW",
                "reportedBy": "herself",
                "reportedVia": "phone",
            }
        },
        as_=("fund", "caseworker"),
    )
    incident = {"incidentId": body["data"]["reportIncident"]["incident"]["id"]}
    if extra:
        await w.env.gql(
            mut("acknowledgeIncident", "AcknowledgeIncidentInput"),
            {"i": incident},
            as_=("fund", "caseworker"),
        )
    return {"i": {**incident, **extra}}


async def _measure_status(w: World) -> dict[str, Any]:
    measure = await _measure(w)
    return {"i": {"measureId": measure["i"]["measureId"], "status": "in_progress"}}


async def _referred(w: World) -> dict[str, Any]:
    """The fund referred her case to the ministry (she consented); the ministry accepts."""
    body = await w.env.gql(
        """mutation($i: ReferCaseInput!) { referCase(input: $i) {
        referral { id } userErrors { message } } }""",
        await _referral(w, "LEGAL_SUPPORT"),
        as_=("fund", "caseworker"),
    )
    return {"i": {"referralId": body["data"]["referCase"]["referral"]["id"], "action": "accept"}}


async def _approval(w: World) -> dict[str, Any]:
    return {
        "i": {
            "act": "public_statement",
            "description": "A statement on her release.",
            "organisationId": w.fund,
        }
    }


async def _approved(w: World) -> dict[str, Any]:
    her = await w.env.peacebuilder_token(w.her["login"])
    body = await w.env.gql(
        """mutation($i: RecordApprovalInput!) { recordApproval(input: $i) {
        approval { id } userErrors { message } } }""",
        await _approval(w),
        token=her,
        purpose=None,
    )
    return {"i": {"approvalId": body["data"]["recordApproval"]["approval"]["id"]}}


async def _erasure(w: World) -> dict[str, Any]:
    """The fund leads her case and holds her consent: its focal point asks (two-person rule)."""
    other = await _another_woman(w)
    return {"i": {"peacebuilderId": other["i"]["peacebuilderId"], "reason": ERASE_REASON}}


async def _asked_erasure(w: World) -> dict[str, Any]:
    """The fund's focal point asks to erase her data (awaiting a second focal point)."""
    body = await w.env.gql(
        """mutation($i: EraseDataInput) { eraseMyData(input: $i) {
        erasure { id } userErrors { message } } }""",
        {"i": {"peacebuilderId": w.her["id"], "reason": ERASE_REASON}},
        as_=("fund", "focal"),
    )
    assert body["data"]["eraseMyData"]["userErrors"] == [], body
    return {"i": {"id": body["data"]["eraseMyData"]["erasure"]["id"]}}


async def _schedule_input(w: World) -> dict[str, Any]:
    """A check-in schedule agreed with her on a new case of hers (one active per case)."""
    body = await w.env.gql(
        "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } userErrors { message } } }",
        {"i": {"peacebuilderId": w.risky["id"], "summary": "Check-ins agreed."}},
        as_=("fund", "caseworker"),
    )
    case = body["data"]["openCase"]["case"]["id"]
    return {
        "i": {
            "caseId": case,
            "intervalMinutes": 12 * 60,
            "channel": "SECURE_MESSENGER",
            "agreedVia": "IN_PERSON",
            "missedAction": "CALL_HER",
        }
    }


async def _schedule(w: World, **extra: Any) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: AgreeCheckInScheduleInput!) { agreeCheckInSchedule(input: $i) {
        schedule { id } userErrors { message } } }""",
        await _schedule_input(w),
        as_=("fund", "caseworker"),
    )
    return {"i": {"scheduleId": body["data"]["agreeCheckInSchedule"]["schedule"]["id"], **extra}}


async def _assessment(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: RecordSecurityAssessmentInput!) { recordSecurityAssessment(input: $i) {
        assessment { id } userErrors { message } } }""",
        {"i": {"caseId": w.risky["case"], "subject": "HER", "followUpAt": soon(24 * 30)}},
        as_=("fund", "caseworker"),
    )
    assessment = body["data"]["recordSecurityAssessment"]["assessment"]["id"]
    return {"i": {"assessmentId": assessment, "vulnerabilities": "Two-factor sign-in is on."}}


async def _consultation(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: RecordConsultationInput!) { recordConsultation(input: $i) {
        consultation { id } userErrors { message } } }""",
        {
            "i": {
                "caseId": w.risky["case"],
                "heldAt": soon(-1),
                "consulted": "HER",
                "organisationIds": [],
                "followUps": [],
            }
        },
        as_=("fund", "caseworker"),
    )
    consultation = body["data"]["recordConsultation"]["consultation"]["id"]
    return {"i": {"consultationId": consultation, "topics": "Travel to the summit."}}


async def _her_measure(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: AddMeasureInput!) { addMeasure(input: $i) {
        measure { id } userErrors { message } } }""",
        {"i": {"caseId": w.risky["case"], "kind": "RELOCATION"}},
        as_=("fund", "caseworker"),
    )
    measure = body["data"]["addMeasure"]["measure"]["id"]
    return {"i": {"measureId": measure, "family": ["my two sons"]}}


async def _follow_up_task(w: World) -> dict[str, Any]:
    body = await w.env.gql(
        """mutation($i: RecordConsultationInput!) { recordConsultation(input: $i) {
        consultation { followUps { taskId } } userErrors { message } } }""",
        {
            "i": {
                "caseId": w.risky["case"],
                "heldAt": soon(-1),
                "consulted": "HER",
                "followUps": [
                    {"action": "Call back.", "ownerOrganisationId": await org_id(w.env, "fund")}
                ],
            }
        },
        as_=("fund", "caseworker"),
    )
    task = body["data"]["recordConsultation"]["consultation"]["followUps"][0]["taskId"]
    return {"i": {"followUpId": task}}


async def _risky_case(w: World) -> str:
    """A new case of the woman whose consent releases risk_assessment to the fund."""
    body = await w.env.gql(
        "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } userErrors { message } } }",
        {"i": {"peacebuilderId": w.risky["id"], "summary": "Threatened again."}},
        as_=("fund", "caseworker"),
    )
    return str(body["data"]["openCase"]["case"]["id"])


async def _draft_input(w: World, case: str | None = None) -> dict[str, Any]:
    threat = {"likelihood": "MEDIUM", "impact": "HIGH", "facts": "Messages after the forum."}
    return {
        "i": {
            "caseId": case or await _risky_case(w),
            "level": "HIGH",
            "reviewAt": soon(24 * 30),
            "threats": [threat],
        }
    }


async def _drafted_assessment(w: World, case: str | None = None) -> dict[str, Any]:
    """A draft joint assessment of a case the fund leads, with its one threat."""
    body = await w.env.gql(
        """mutation($i: DraftRiskAssessmentInput!) { draftRiskAssessment(input: $i) {
        assessment { id threats { id } } userErrors { message } } }""",
        await _draft_input(w, case),
        as_=("fund", "caseworker"),
    )
    assert body["data"]["draftRiskAssessment"]["userErrors"] == [], body
    return dict(body["data"]["draftRiskAssessment"]["assessment"])


async def _drafted(w: World) -> dict[str, Any]:
    return {"i": {"id": (await _drafted_assessment(w))["id"]}}


async def _shared(w: World, case: str | None = None, **extra: Any) -> dict[str, Any]:
    """A draft shared with her for her answer."""
    drafted = await _drafted(w) if case is None else {
        "i": {"id": (await _drafted_assessment(w, case))["id"]}}
    body = await w.env.gql(
        mut("shareRiskAssessment", "RiskAssessmentIdInput"), drafted, as_=("fund", "caseworker")
    )
    assert body["data"]["shareRiskAssessment"]["userErrors"] == [], body
    return {"i": {**drafted["i"], **extra}}


async def _shared_without_her(w: World) -> dict[str, Any]:
    """A shared assessment of a woman with no account and no network (the two-person path)."""
    other = await new_peacebuilder(
        w.env, "fund", account=False, categories=[c for c in RISK if c != "IDENTITY"]
    )
    return await _shared(w, other["case"], consultedHow="IN_PERSON")


async def _plan(w: World) -> dict[str, Any]:
    """A measure of her case tied to a threat of its assessment, with a cost."""
    case = await _risky_case(w)
    drafted = await _drafted_assessment(w, case)
    body = await w.env.gql(
        """mutation($i: AddMeasureInput!) { addMeasure(input: $i) {
        measure { id } userErrors { message } } }""",
        {"i": {"caseId": case, "kind": "SECURE_TRANSPORT"}},
        as_=("fund", "caseworker"),
    )
    return {
        "i": {
            "measureId": body["data"]["addMeasure"]["measure"]["id"],
            "threatId": drafted["threats"][0]["id"],
            "planKind": "PREVENTIVE_PROTOCOL",
            "costAmount": "120.50",
            "costCurrency": "KES",
        }
    }


async def _her_login(w: World) -> dict[str, Any]:
    """A woman of the fund's cases with her own login (a fresh one: her login is acted on)."""
    other = await new_peacebuilder(w.env, "fund")
    return {"i": {"peacebuilderId": other["id"]}}


async def _until(at: datetime) -> None:
    """Wait for the real clock (the world's) to pass `at`."""
    await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.2)


async def _hearing_held(w: World) -> dict[str, Any]:
    """A hearing whose time has come: scheduled a few seconds ahead, then waited for."""
    at = datetime.now(UTC) + timedelta(seconds=3)
    proceeding = await _proceeding(w)
    body = await w.env.gql(
        """mutation($i: ScheduleHearingInput!) { scheduleHearing(input: $i) {
        hearing { id } userErrors { message } } }""",
        {"i": {**proceeding["i"], "scheduledAt": at.isoformat()}},
        as_=("fund", "caseworker"),
    )
    assert body["data"]["scheduleHearing"]["userErrors"] == [], body
    await _until(at)
    return {"i": {"hearingId": body["data"]["scheduleHearing"]["hearing"]["id"], "outcome": "HELD"}}


async def _missed_check_in(w: World) -> dict[str, Any]:
    """A check-in missed: its first period falls due a few seconds ahead, nobody checks in,
    and the scheduler marks it missed at its deadline."""
    from app.scheduler import run_due

    at = datetime.now(UTC) + timedelta(seconds=3)
    agreed = await _schedule_input(w)
    body = await w.env.gql(
        """mutation($i: AgreeCheckInScheduleInput!) { agreeCheckInSchedule(input: $i) {
        schedule { id } userErrors { message } } }""",
        {"i": {**agreed["i"], "firstDueAt": at.isoformat()}},
        as_=("fund", "caseworker"),
    )
    assert body["data"]["agreeCheckInSchedule"]["userErrors"] == [], body
    await _until(at)
    await run_due(w.env.runtime.db, w.env.runtime.clock)
    case = await w.env.gql(
        "query($id: ID!) { case(id: $id) { checkIns { id status } } }",
        {"id": agreed["i"]["caseId"]},
        as_=("fund", "focal"),
    )
    missed = [p["id"] for p in case["data"]["case"]["checkIns"] if p["status"] == "MISSED"]
    assert len(missed) == 1, case
    return {"i": {"checkInId": missed[0], "resolution": "REACHED_SAFE"}}

async def _roles(w: World) -> dict[str, Any]:
    fresh = await _fresh_user(w)
    return {"i": {"userId": fresh["i"]["userId"], "roles": ["ANALYST"]}}


async def _team(w: World) -> dict[str, Any]:
    return {"i": {"caseId": w.her["case"], "memberId": await user_id(w.env, "fund", "focal2")}}


async def _shift(w: World) -> dict[str, Any]:
    return {
        "i": {
            "userId": await user_id(w.env, "fund", "focal"),
            "startsAt": soon(1),
            "endsAt": soon(9),
        }
    }


@pytest.fixture(scope="module", params=BACKENDS)
async def world(request, tmp_path_factory, anyio_backend):
    env, close = await build_env(request.param, tmp_path_factory.mktemp("declared"))
    try:
        her = await new_peacebuilder(env, "fund")
        # Referrals and public acts need a current joint risk assessment (issue 19's gates).
        await current_assessment(env, her["case"], "fund", login=her.get("login"))
        networked = await register(env, "fund", networks=[await org_id(env, "wpn")], login=True)
        yield World(
            env=env,
            her=her,
            fund=await org_id(env, "fund"),
            mofa=await org_id(env, "mofa"),
            jag=await wg_id(env),
            networked=networked,
            risky=await new_peacebuilder(env, "fund", categories=RISK),
        )
    finally:
        await close()


def expected(requirement: Requirement) -> set[checks.Check]:
    made = set(requirement.requires)
    return made | {checks.STEP_UP} if requirement.step_up else made


def test_every_root_field_has_a_representative_operation_or_a_reason():
    names = {f"{root}.{name}" for root, name, _ in root_fields()}
    assert set(OPS) <= names and set(NOT_RUN) <= names
    # Shrinks as operations are added; a new root field must come with one.
    assert names - set(OPS) - set(NOT_RUN) == NOT_YET


# Root fields without a representative operation yet: none (a new root field comes with one).
NOT_YET: set[str] = set()


@pytest.mark.parametrize("field", sorted(OPS))
async def test_the_code_makes_exactly_the_declared_checks(world, field):
    root, name = field.split(".")
    requirement = declared(built._schema.type_map[root].fields[name])
    assert requirement is not None
    op = OPS[field]
    env = world.env
    variables = await op.variables(world) if op.variables else None
    token = None
    if op.caller == "her":
        token = await env.peacebuilder_token(world.her["login"])
    elif op.caller == "risky":
        token = await env.peacebuilder_token(world.risky["login"])
    elif op.caller == "networked":
        token = await env.peacebuilder_token(world.networked["login"])
    elif isinstance(op.caller, tuple):
        token = await env.token(*op.caller)
    with checks.recording() as made:
        body = await env.gql(op.document, variables, token=token, purpose=op.purpose)
    assert "errors" not in body, body
    # The operation succeeded: its checks are those of the path that does the work.
    answered = body["data"][name]
    if isinstance(answered, dict) and "userErrors" in answered:
        messages = [e["message"] for e in answered["userErrors"]]
        assert messages == ([] if op.refused is None else [m for m in messages if op.refused in m])
        assert op.refused is None or messages, body
    wanted = expected(requirement)
    if not op.step_up_applies:
        assert requirement.step_up and requirement.when, field
        wanted.discard(checks.STEP_UP)
    assert set(made) == wanted, (field, made)
