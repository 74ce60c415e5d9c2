"""Mutations: incidents, deadlines, measures, approvals, referrals, proceedings."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry

from app.errors import AppError, BadInput
from app.incidents import attachments, response
from app.incidents import service as incidents
from app.read import children
from app.read.children import RowView
from app.tables.declared import SourceCategory as SourceCategoryValues
from schema import ids, permissions
from schema.common import UserError, closed_set, guarded
from schema.consent.enums import DataCategory, Purpose
from schema.context import Info
from schema.gated import want_of
from schema.incidents.types import (
    Approval,
    ApprovalPayload,
    Attachment,
    Incident,
    IncidentPayload,
    IncidentStatus,
    IncidentType,
    Measure,
    MeasureKind,
    MeasureNotDoneReason,
    MeasurePayload,
    MeasureStatus,
    Proceeding,
    ProceedingKind,
    ProceedingPayload,
    PublicAct,
    Referral,
    ReferralAction,
    ReferralPayload,
    ReportChannel,
    Reporter,
    Severity,
)
from schema.permissions import Who

AllegedSourceCategory = closed_set(
    SourceCategoryValues, "Who she says is behind an incident, by category, as she reports it "
    "(never inferred).", {
        "STATE_ACTOR": "Police, military, officials or other agents of the state.",
        "NON_STATE_ARMED_GROUP": "An armed group that is not the state's.",
        "PRIVATE_ACTOR": "A company, its security, or another private person or body.",
        "COMMUNITY_OR_FAMILY": "Someone of her community or family.",
        "ONLINE_UNKNOWN": "Online, the author not known.",
        "UNKNOWN": "She does not know who.",
    }, name="AllegedSourceCategory")


@strawberry.input(description="Report an incident on a case you can see. Fields with sensitive "
                              "details need her consent for their category and your purpose.")
class ReportIncidentInput:
    case_id: strawberry.ID = strawberry.field(description="The case's global ID.")
    type: IncidentType = strawberry.field(description="What kind of threat or attack.")
    severity: Severity = strawberry.field(description="How severe; sets the acknowledgement deadline.")
    reported_by: Reporter = strawberry.field(description="Who reported it.")  # type: ignore[valid-type]
    reported_via: ReportChannel = strawberry.field(  # type: ignore[valid-type]
        description="How it reached your organisation.")
    occurred_at: datetime | None = strawberry.field(
        default=None, description="When it happened (ISO 8601), if known.")
    description: str | None = None
    alleged_source_as_reported: str | None = strawberry.field(
        default=None, description="Exactly as reported; leave empty if not reported.")
    location_coarse: str | None = None
    location_precise: str | None = None
    region_code: str | None = strawberry.field(default=None, description=(
        "Coarse region, a code from the deployment's declared list (`monitoringRegions`; "
        "category LOCATION_COARSE): counted in monitoring tables, never shown."))
    source_category: AllegedSourceCategory | None = strawberry.field(default=None, description=(
        "Alleged-source category as she reports it (category INCIDENT_DETAILS); never "
        "inferred. Leave empty if not reported."))


@strawberry.input(description="Add a measure or task.")
class AddMeasureInput:
    case_id: strawberry.ID = strawberry.field(description="The case's global ID.")
    kind: MeasureKind = strawberry.field(description="What kind of measure or task.")
    owner_organisation_id: strawberry.ID | None = strawberry.field(
        default=None, description="Default: your organisation.")
    due_at: datetime | None = strawberry.field(default=None, description=(
        "When it is due (ISO 8601); overdue, it escalates along the owner organisation's "
        "chain."))
    description: str | None = None
    incident_id: strawberry.ID | None = strawberry.field(
        default=None, description="The incident it responds to (global ID), if any.")
    approval_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required for PUBLIC_STATEMENT, MEDIA_CONTACT and RECOGNITION: "
                                  "her live approval of that act for your organisation.")
    owner_user_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "A named person who owns the task: an active focal point, case worker or administrator "
        "of the owner organisation, named by that organisation only (else a userError). Her "
        "reminders and the overdue escalation start with her, then the organisation's chain."))


@strawberry.input(description="Name (or clear) the person who owns an open task. Requires "
                              "`measure:manage` in the task's owner organisation.")
class AssignMeasureInput:
    measure_id: strawberry.ID = strawberry.field(description="The task.")
    owner_user_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "An active focal point, case worker or administrator of your organisation; null: "
        "no named person (the organisation's chain alone)."))


@strawberry.input(description=(
    "A small evidence file sent inside GraphQL, base64-encoded (at most 240,000 characters, "
    "about 175 KiB of file, within the request-body limit; larger files up to 5 MiB go to "
    "POST /incidents/{id}/attachments)."))
class UploadAttachmentInput:
    incident_id: strawberry.ID = strawberry.field(description="The incident (hers, or one you "
                                                              "may see under her consent).")
    content_type: str = strawberry.field(
        description="image/png, image/jpeg, application/pdf or text/plain (checked against the "
                    "bytes).")
    content_base64: str = strawberry.field(description="The file, base64-encoded.")
    category: DataCategory | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Its data category (default INCIDENT_DETAILS); staff need her "
                                  "consent to it.")


@strawberry.type(description="Result of uploadAttachment.")
class AttachmentPayload:
    attachment: Attachment | None = strawberry.field(description="The file's metadata as stored.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was stored.")


@strawberry.input(description="Withdraw one of her approvals (she herself).")
class WithdrawApprovalInput:
    approval_id: strawberry.ID = strawberry.field(description="The approval (from `me.approvals`).")


@strawberry.input(description="Refer a case to another organisation for a purpose she consented to.")
class ReferCaseInput:
    case_id: strawberry.ID = strawberry.field(description="The case's global ID.")
    to_organisation_id: strawberry.ID = strawberry.field(
        description="The organisation referred to (global ID).")
    purpose: Purpose = strawberry.field(description="The purpose she consented to.")  # type: ignore[valid-type]
    request: str | None = None


@strawberry.input(description="Record an investigation/prosecution or a detention watch, or update "
                              "one (give its ID).")
class ProceedingInput:
    case_id: strawberry.ID = strawberry.field(description="The case's global ID.")
    kind: ProceedingKind = strawberry.field(description="What it tracks.")  # type: ignore[valid-type]
    data: strawberry.scalars.JSON = strawberry.field(
        description="Fields of that kind (see Proceeding.details).")
    next_hearing_at: datetime | None = strawberry.field(
        default=None, description="When its next hearing is (ISO 8601), if known.")
    proceeding_id: strawberry.ID | None = strawberry.field(
        default=None, description="The proceeding to update (global ID); omit it to record a new one.")


def _person(value: strawberry.ID | None) -> uuid.UUID | None:
    """A named owner's user ID; an ID of another type (or none at all) names nobody, refused by
    the service with the same userError as any other person it cannot take."""
    if value is None:
        return None
    try:
        return ids.decode(value, "User", "ownerUserId")
    except AppError:
        return uuid.UUID(int=0)


async def _written(info: Info, name: str, field: str, row: object) -> RowView:
    """A mutation's answer, decided for this caller like any read (app/read/children.py)."""
    return await info.context.loaders.call(children.written, info.context.access, name, row,
                                           want_of(info, field))


async def _incident_payload(info: Info, incident: object, errors: list) -> IncidentPayload:  # type: ignore[type-arg]
    if incident is None:
        return IncidentPayload(incident=None, user_errors=errors)
    view = await _written(info, "incidents", "incident", incident)
    return IncidentPayload(incident=Incident.from_view(view), user_errors=errors)


@strawberry.input(description="Acknowledge an incident.")
class AcknowledgeIncidentInput:
    incident_id: strawberry.ID = strawberry.field(description="The incident.")


@strawberry.input(description="Move an incident on.")
class SetIncidentStatusInput:
    incident_id: strawberry.ID = strawberry.field(description="The incident.")
    status: IncidentStatus = strawberry.field(description="RESPONDING or RESOLVED.")


@strawberry.input(description="Your organisation's acknowledgement deadline for one severity.")
class SetAcknowledgementDeadlineInput:
    severity: Severity = strawberry.field(description="The severity it applies to.")
    minutes: int = strawberry.field(description="Minutes, from 1 to 20160 (14 days).")


@strawberry.type(description="Result of setAcknowledgementDeadline.")
class AcknowledgementDeadlinePayload:
    severity: Severity | None = strawberry.field(description="The severity it applies to.")
    minutes: int | None = strawberry.field(description="The deadline now in force (minutes).")
    user_errors: list[UserError] = strawberry.field(description="Why nothing changed.")


@strawberry.input(description="Change a measure's status.")
class SetMeasureStatusInput:
    measure_id: strawberry.ID = strawberry.field(description="The measure or task.")
    status: MeasureStatus = strawberry.field(description="Its new status.")
    reason: MeasureNotDoneReason | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="With status CANCELLED (required then): why it was not done.")


@strawberry.input(description="Her approval of one public act by one organisation.")
class RecordApprovalInput:
    act: PublicAct = strawberry.field(description="The act she approves.")  # type: ignore[valid-type]
    description: str = strawberry.field(description="What she approves (the text, or the outlet "
                                                    "and occasion); sealed with her key.")
    organisation_id: strawberry.ID = strawberry.field(
        description="The organisation she approves to perform the act.")
    peacebuilder_id: strawberry.ID | None = strawberry.field(
        default=None, description="Her ID (her network's focal point, acting for her); omit "
                                  "when she records it herself.")


@strawberry.input(description="A step on a referral.")
class MoveReferralInput:
    referral_id: strawberry.ID = strawberry.field(description="The referral.")
    action: ReferralAction = strawberry.field(description="The step.")  # type: ignore[valid-type]
    outcome: str | None = strawberry.field(default=None, description="How it ended (sealed).")


_LOOSE = "Use `input`."
_INPUT = ("What to do. Required: omitted only by older clients that still send the "
          "deprecated loose arguments.")


def _loose_or_input(input: object, **loose: object) -> None:
    """Raise BAD_USER_INPUT unless the new `input` or every required loose argument is given."""
    if input is None and any(v is None for v in loose.values()):
        raise BadInput("Give `input`.", field="input")


@strawberry.type
class IncidentMutations:
    @permissions.mutation(
        "Report an incident. Alerts the lead organisation's focal points and case team. Logged.",
        requires=[("incident", "create"), ("case", "read")], purpose=True)
    async def report_incident(self, info: Info, input: ReportIncidentInput) -> IncidentPayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        incident, errors = await guarded(info, lambda: info.context.loaders.call(
            incidents.report, info.context.access, case_id=case_id, type=input.type.value,
            severity=input.severity.value, reported_by=input.reported_by.value,
            reported_via=input.reported_via.value, occurred_at=input.occurred_at,
            description=input.description,
            alleged_source_as_reported=input.alleged_source_as_reported,
            location_coarse=input.location_coarse, location_precise=input.location_precise,
            region_code=input.region_code,
            source_category=input.source_category.value if input.source_category else None))
        return await _incident_payload(info, incident, errors)

    @permissions.mutation(
        "Acknowledge an incident (lead organisation). Stops escalation. Logged.",
        requires=[("incident", "update"), ("case", "read")], purpose=True,
        args={
            "id": "The incident's global ID.",
        })
    async def acknowledge_incident(
        self, info: Info,
        input: Annotated[AcknowledgeIncidentInput | None, strawberry.argument(description=_INPUT)] = None,
        id: Annotated[strawberry.ID | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
    ) -> IncidentPayload:
        _loose_or_input(input, id=id)
        incident_id = (ids.decode(input.incident_id, "Incident", "incidentId") if input
                       else ids.decode(id, "Incident"))
        incident, errors = await guarded(info, lambda: info.context.loaders.call(
            incidents.acknowledge, info.context.access, incident_id))
        return await _incident_payload(info, incident, errors)

    @permissions.mutation(
        "Move an incident to RESPONDING or RESOLVED (lead organisation). Logged.",
        requires=[("incident", "update"), ("case", "read")], purpose=True,
        args={
            "id": "The incident's global ID.",
            "status": "RESPONDING or RESOLVED.",
        })
    async def set_incident_status(
        self, info: Info,
        input: Annotated[SetIncidentStatusInput | None, strawberry.argument(description=_INPUT)] = None,
        id: Annotated[strawberry.ID | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
        status: Annotated[IncidentStatus | None,
                          strawberry.argument(deprecation_reason=_LOOSE)] = None,
    ) -> IncidentPayload:
        _loose_or_input(input, id=id, status=status)
        incident_id = (ids.decode(input.incident_id, "Incident", "incidentId") if input
                       else ids.decode(id, "Incident"))
        new = input.status if input else status
        assert new is not None
        incident, errors = await guarded(info, lambda: info.context.loaders.call(
            incidents.set_status, info.context.access, incident_id, new.value))
        return await _incident_payload(info, incident, errors)

    @permissions.mutation(
        "Your organisation's acknowledgement deadline for a severity, in minutes. Logged.",
        requires=[("incident_policy", "manage")],
        args={
            "severity": "The severity this deadline applies to.",
            "minutes": ("Minutes from the report by which the lead organisation must "
                       "acknowledge it (then it escalates)."),
        })
    async def set_acknowledgement_deadline(
        self, info: Info,
        input: Annotated[SetAcknowledgementDeadlineInput | None,
                         strawberry.argument(description=_INPUT)] = None,
        severity: Annotated[Severity | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
        minutes: Annotated[int | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
    ) -> AcknowledgementDeadlinePayload:
        _loose_or_input(input, severity=severity, minutes=minutes)
        level = input.severity if input else severity
        value = input.minutes if input else minutes
        assert level is not None and value is not None
        done, errors = await guarded(info, lambda: info.context.loaders.call(
            incidents.set_ack_policy, info.context.access, level.value, value))
        return AcknowledgementDeadlinePayload(severity=level if done is not None else None,
                                              minutes=done, user_errors=errors)

    @permissions.mutation(
        "Add a protection measure or task. A PUBLIC_STATEMENT needs her approval for it. Logged.",
        requires=[("measure", "manage"), ("case", "read")], purpose=True)
    async def add_measure(self, info: Info, input: AddMeasureInput) -> MeasurePayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        owner = (ids.decode(input.owner_organisation_id, "Organisation", "ownerOrganisationId")
                 if input.owner_organisation_id else None)
        incident_id = ids.decode(input.incident_id, "Incident", "incidentId") if input.incident_id else None
        approval_id = ids.decode(input.approval_id, "Approval", "approvalId") if input.approval_id else None
        person = _person(input.owner_user_id)
        measure, errors = await guarded(info, lambda: info.context.loaders.call(
            response.add_measure, info.context.access, case_id=case_id, kind=input.kind.value,
            owner_org_id=owner, due_at=input.due_at, description=input.description,
            incident_id=incident_id, approval_id=approval_id, owner_user_id=person))
        return MeasurePayload(measure=Measure.from_view(
            await _written(info, "measures", "measure", measure)) if measure else None,
                              user_errors=errors)

    @permissions.mutation(
        "Name (or clear) the person of your organisation who owns one of its open tasks. Logged.",
        requires=[("measure", "manage"), ("case", "read")], purpose=True,
        when="`measure:manage` in the owner organisation")
    async def assign_measure(self, info: Info, input: AssignMeasureInput) -> MeasurePayload:
        measure_id = ids.decode(input.measure_id, "Measure", "measureId")
        person = _person(input.owner_user_id)
        measure, errors = await guarded(info, lambda: info.context.loaders.call(
            response.assign_measure, info.context.access, measure_id, person))
        return MeasurePayload(measure=Measure.from_view(
            await _written(info, "measures", "measure", measure)) if measure else None,
                              user_errors=errors)

    @permissions.mutation(
        "Change a measure's status (owner organisation). Done or cancelled (not done), she is told "
        "(a notice: kind, date, case, reason code). Logged.",
        requires=[("measure", "manage"), ("case", "read")], purpose=True,
        args={
            "id": "The measure's global ID.",
        })
    async def set_measure_status(
        self, info: Info,
        input: Annotated[SetMeasureStatusInput | None, strawberry.argument(description=_INPUT)] = None,
        id: Annotated[strawberry.ID | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
        status: Annotated[str | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
        reason: Annotated[str | None, strawberry.argument(description=(
            "With status cancelled: why it was not done, a code (no_longer_needed, "
            "she_declined, not_feasible, consent_withdrawn, replaced, other; required then). "
            "Never free text: it reaches her notice."), deprecation_reason=_LOOSE)] = None,
    ) -> MeasurePayload:
        _loose_or_input(input, id=id, status=status)
        if input:
            measure_id = ids.decode(input.measure_id, "Measure", "measureId")
            new: str = input.status.value
            why = input.reason.value if input.reason else None
        else:
            measure_id, new, why = ids.decode(id, "Measure"), str(status), reason
        measure, errors = await guarded(info, lambda: info.context.loaders.call(
            response.set_measure_status, info.context.access, measure_id, new, why))
        return MeasurePayload(measure=Measure.from_view(
            await _written(info, "measures", "measure", measure)) if measure else None,
                              user_errors=errors)

    @permissions.mutation(
        "She (or her network's focal point, acting for her) approves one public act "
        "(public_statement, media_contact or recognition) by one organisation: only that "
        "organisation can use the approval, once, for that act. Logged.",
        who=Who.HER_SIDE,
        args={
            "peacebuilder_id": "Her global ID; omit it when she approves herself.",
        })
    async def record_approval(
        self, info: Info,
        input: Annotated[RecordApprovalInput | None, strawberry.argument(description=_INPUT)] = None,
        act: Annotated[str | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
        description: Annotated[str | None,
                               strawberry.argument(deprecation_reason=_LOOSE)] = None,
        organisation_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="The organisation she approves to perform the act.",
            deprecation_reason=_LOOSE)] = None,
        peacebuilder_id: Annotated[strawberry.ID | None,
                                   strawberry.argument(deprecation_reason=_LOOSE)] = None,
    ) -> ApprovalPayload:
        from app.peacebuilders import self_service

        _loose_or_input(input, act=act, description=description, organisation_id=organisation_id)
        if input:
            act, description = input.act.value, input.description
            organisation_id, peacebuilder_id = input.organisation_id, input.peacebuilder_id
        pb_id = (ids.decode(peacebuilder_id, "Peacebuilder", "peacebuilderId") if peacebuilder_id
                 else self_service.my_id(info.context.access))
        org_id = ids.decode(organisation_id, "Organisation", "organisationId")
        what, text = str(act), str(description)
        approval, errors = await guarded(info, lambda: info.context.loaders.call(
            response.record_approval, info.context.access, pb_id, what, text, org_id))
        return ApprovalPayload(approval=Approval.from_model(approval) if approval else None,
                               user_errors=errors)

    @permissions.mutation(
        "File evidence on an incident: staff under her consent to the category, or she herself on "
        "her own incidents (another woman's is not found). The same type and size checks and "
        "sealing with her key as the HTTP route; the SHA-256 of the content is kept. Logged.",
        requires=[("incident", "create"), ("case", "read")])
    async def upload_attachment(self, info: Info,
                                input: UploadAttachmentInput) -> AttachmentPayload:
        incident_id = ids.decode(input.incident_id, "Incident", "incidentId")
        try:
            data = base64.b64decode(input.content_base64, validate=True)
        except (binascii.Error, ValueError):
            return AttachmentPayload(attachment=None, user_errors=[UserError(
                field=["input", "contentBase64"], message="Not valid base64.",
                code="BAD_USER_INPUT")])
        category = input.category.value if input.category else "incident_details"
        done, errors = await guarded(info, lambda: info.context.loaders.call(
            attachments.upload, info.context.access, incident_id, input.content_type, data,
            category))
        return AttachmentPayload(attachment=Attachment.from_model(done) if done else None,
                                 user_errors=errors)

    @permissions.mutation(
        "She withdraws an approval she gave, while it is not yet used: the act can no longer be "
        "carried out (a measure planned with it cannot be marked done). An approval of another "
        "woman is not found. The organisation it named is told (IDs only). Logged.",
        who=Who.HERSELF)
    async def withdraw_approval(self, info: Info,
                                input: WithdrawApprovalInput) -> ApprovalPayload:
        approval_id = ids.decode(input.approval_id, "Approval", "approvalId")
        approval, errors = await guarded(info, lambda: info.context.loaders.call(
            response.withdraw_approval, info.context.access, approval_id))
        return ApprovalPayload(approval=Approval.from_model(approval) if approval else None,
                               user_errors=errors)

    @permissions.mutation(
        "Refer a case to another organisation. Refused unless she consented to that organisation "
        "for that purpose. Logged.",
        requires=[("referral", "manage"), ("case", "read")])
    async def refer_case(self, info: Info, input: ReferCaseInput) -> ReferralPayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        to = ids.decode(input.to_organisation_id, "Organisation", "toOrganisationId")
        referral, errors = await guarded(info, lambda: info.context.loaders.call(
            response.refer, info.context.access, case_id=case_id, to_org_id=to,
            purpose=input.purpose.value, request=input.request))
        return ReferralPayload(referral=await _referral(info, referral), user_errors=errors)

    @permissions.mutation(
        "Accept, decline or complete (recipient) or revoke (sender) a referral; `outcome` records "
        "how it ended. Logged.",
        requires=[("referral", "manage"), ("case", "read")],
        args={
            "id": "The referral's global ID.",
        })
    async def move_referral(
        self, info: Info,
        input: Annotated[MoveReferralInput | None, strawberry.argument(description=_INPUT)] = None,
        id: Annotated[strawberry.ID | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
        action: Annotated[str | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
        outcome: Annotated[str | None, strawberry.argument(deprecation_reason=_LOOSE)] = None,
    ) -> ReferralPayload:
        _loose_or_input(input, id=id, action=action)
        if input:
            referral_id = ids.decode(input.referral_id, "Referral", "referralId")
            step, outcome = input.action.value, input.outcome
        else:
            referral_id, step = ids.decode(id, "Referral"), str(action)
        referral, errors = await guarded(info, lambda: info.context.loaders.call(
            response.move_referral, info.context.access, referral_id, step, outcome))
        return ReferralPayload(referral=await _referral(info, referral), user_errors=errors)

    @permissions.mutation(
        "Record or update an investigation or detention watch (category `legal`). Logged.",
        requires=[("proceeding", "manage"), ("case", "read")], purpose=True)
    async def record_proceeding(self, info: Info, input: ProceedingInput) -> ProceedingPayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        pid = ids.decode(input.proceeding_id, "Proceeding", "proceedingId") if input.proceeding_id else None
        data = input.data if isinstance(input.data, dict) else {}
        proceeding, errors = await guarded(info, lambda: info.context.loaders.call(
            response.record_proceeding, info.context.access, case_id=case_id, kind=input.kind.value,
            data=data, next_hearing_at=input.next_hearing_at, proceeding_id=pid))
        return ProceedingPayload(
            proceeding=Proceeding.from_view(
                await _written(info, "proceedings", "proceeding", proceeding))
            if proceeding else None, user_errors=errors)


async def _referral(info: Info, referral: Any) -> Referral | None:
    """The payload's referral, decided like a read (its request and outcome under her consent)."""
    if referral is None:
        return None
    views = await info.context.loaders.call(response.referral_views, info.context.access,
                                            [referral])
    return Referral.from_view(views[0])
