"""GraphQL types for incidents, the response and the case timeline."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app import ids as app_ids
from app.access.gate import Gate
from app.her import notices as notice_codes
from app.her import sealing
from app.incidents import response
from app.incidents.response import ReferralView
from app.read.children import RowView
from app.tables import incidents as models
from app.tables.categories import (
    INCIDENT_FIELDS,
    PROCEEDING_CATEGORY,
    RESPONSE_CATEGORY,
)
from app.tables.categories import DataCategory as Categories
from app.tables.risk import PlanKind as RiskPlanKind
from schema import ids
from schema.common import Node, UserError, closed_set, describe_values, member
from schema.consent.enums import DataCategory, Purpose
from schema.consent.gate import release_sealed
from schema.context import Info
from schema.gated import ConsentGated, declares, gated, read_gated, read_plain
from schema.notify.types import AlertKind
from schema.orgs.types import Organisation, organisation_of
from schema.risk.types import PlanKind

DETAILS = Categories.INCIDENT_DETAILS.value
RISK = Categories.RISK_ASSESSMENT.value
IncidentType = strawberry.enum(models.IncidentType, description="What kind of threat or attack.")
describe_values(IncidentType, {
    "PHYSICAL_ATTACK": "A physical attack on her.",
    "ONLINE_HARASSMENT": "Harassment online (messages, posts, doxxing).",
    "THREATS": "Threats against her.",
    "LEGAL_ADMINISTRATIVE_HARASSMENT": "Abuse of legal or administrative procedures against her.",
    "CRIMINALISATION": "Criminal charges for her work.",
    "SURVEILLANCE": "Being watched or followed, physically or digitally.",
    "THREATS_TO_FAMILY_OR_COLLEAGUES": "Threats against her family or colleagues.",
    "DETENTION": "Arrest or detention.",
    "SEXUAL_VIOLENCE": "Sexual violence or its threat.",
    "SMEAR_CAMPAIGN": "A campaign to discredit her.",
    "OTHER": "Another kind of threat or attack.",
})
Severity = strawberry.enum(models.Severity, description="How severe; sets the acknowledgement deadline.")
describe_values(Severity, {
    "LOW": "Low: acknowledged within 72 hours by default.",
    "MEDIUM": "Medium: within 24 hours by default.",
    "HIGH": "High: within 4 hours by default.",
    "CRITICAL": "Critical, her life or liberty at stake: within 1 hour by default.",
})
IncidentStatus = strawberry.enum(models.IncidentStatus, description="Where the response stands.")
describe_values(IncidentStatus, {
    "REPORTED": "Reported, not yet acknowledged: escalates past its deadline.",
    "ACKNOWLEDGED": "The lead organisation acknowledged it.",
    "RESPONDING": "Measures are being taken.",
    "RESOLVED": "The response is over.",
})
MeasureKind = strawberry.enum(models.MeasureKind, description="A protection measure or task.")
describe_values(MeasureKind, {
    "ACCOMPANIMENT": "Someone accompanies her (protective presence).",
    "HOSTING_AT_PREMISES": "She is hosted at the organisation's premises.",
    "SECURE_COMMUNICATION": "Secure means of communication for her.",
    "SECURE_TRANSPORT": "Safe transport for her.",
    "LEGAL_SUPPORT": "A lawyer or legal advice.",
    "DIPLOMATIC_DIALOGUE": "Raising her situation with the authorities through diplomatic channels.",
    "PUBLIC_STATEMENT": "A public statement about her situation (needs her approval).",
    "GRANT": "Money for her protection.",
    "RELOCATION": "Moving her to a safer place.",
    "PSYCHOSOCIAL_SUPPORT": "Psychological and social support.",
    "MEDIA_CONTACT": "Contact with the media about her (needs her approval).",
    "RECOGNITION": "Public recognition of her work (needs her approval).",
})
Reporter = closed_set(models.Reporter, "Who reported an incident.", {
    "HERSELF": "She herself.", "HER_NETWORK": "Her network (a focal point of it).",
    "STAFF": "Staff of an organisation.", "WITNESS": "A witness.",
    "FAMILY": "Her family.", "OTHER": "Someone else."})
ReportChannel = closed_set(models.ReportChannel, "How an incident reached the organisation.", {
    "IN_PERSON": "In person.", "PHONE": "By phone.",
    "SECURE_MESSENGER": "Through a secure messenger.", "EMAIL": "By e-mail.",
    "ONLINE_FORM": "Through an online form.", "OTHER": "Another way."})
MeasureStatus = closed_set(models.MeasureStatus, "Where a measure or task stands.", {
    "PLANNED": "Planned, not started.", "IN_PROGRESS": "Being carried out.",
    "DONE": "Carried out (she is told).",
    "CANCELLED": "Not done, with a reason code (she is told)."})
PublicAct = closed_set(models.PublicAct, "A public act of hers that needs her approval.", {
    "PUBLIC_STATEMENT": "A public statement about her.",
    "MEDIA_CONTACT": "Contact with the media about her.",
    "RECOGNITION": "Public recognition (an award, a mention)."})
ReferralAction = closed_set(models.ReferralAction, "A step on a referral.", {
    "ACCEPT": "The recipient accepts a pending referral.",
    "DECLINE": "The recipient declines a pending referral.",
    "COMPLETE": "The recipient completes an accepted referral.",
    "REVOKE": "The referring organisation withdraws it."})
MeasureNotDoneReason = closed_set(notice_codes.MeasureNotDoneReason, "Why a measure was not done "
                                  "(a code, never free text: it reaches her notice).", {
    "NO_LONGER_NEEDED": "No longer needed.", "SHE_DECLINED": "She declined it.",
    "NOT_FEASIBLE": "It could not be done.", "CONSENT_WITHDRAWN": "She withdrew her consent.",
    "REPLACED": "Another measure replaced it.", "OTHER": "Another reason."})
ProceedingKind = closed_set(models.ProceedingKind, "What a proceeding tracks.", {
    "INVESTIGATION": "An investigation or prosecution (authority, reference, stage).",
    "DETENTION": "A detention watch (place, conditions, visits, legal representation, "
                 "due-process concerns, release negotiations)."})
ReferralStatus = closed_set(models.ReferralStatus, "Where a referral stands.", {
    "PENDING": "Sent, not yet answered.", "ACCEPTED": "The recipient took it on.",
    "DECLINED": "The recipient declined it.", "COMPLETED": "The recipient completed it.",
    "REVOKED": "The referring organisation withdrew it."})


@strawberry.type(description="A threat or attack on her. Its type, severity, status and deadline "
                             "are visible to everyone who may see the case (she always sees the "
                             "status); details and location need their data categories.")
class Incident(Node, ConsentGated):
    type: IncidentType = strawberry.field(description="What kind of threat or attack.")
    severity: Severity = strawberry.field(description="How severe; sets the acknowledgement deadline.")
    status: IncidentStatus = strawberry.field(description="Where the response stands.")
    occurred_at: datetime | None = strawberry.field(
        description="When it happened, as reported; null when not known.")
    reported_at: datetime = strawberry.field(description="When it was reported to the service (UTC).")
    reported_by: Reporter = strawberry.field(description="Who reported it.")  # type: ignore[valid-type]
    reported_via: ReportChannel = strawberry.field(  # type: ignore[valid-type]
        description="How it reached the organisation.")
    acknowledgement_deadline: datetime = strawberry.field(
        description="When the lead organisation must have acknowledged it; past it, it escalates.")
    acknowledged_at: datetime | None = strawberry.field(
        description="When the lead organisation acknowledged it; null until then.")
    description: str | None = gated(
        "description", INCIDENT_FIELDS["description"].value, "What happened.")
    alleged_source_as_reported: str | None = gated(
        "alleged_source_as_reported", INCIDENT_FIELDS["alleged_source_as_reported"].value,
        "The alleged source exactly as reported — never inferred or filled in.")
    location_coarse: str | None = gated(
        "location_coarse", INCIDENT_FIELDS["location_coarse"].value,
        "Where, coarsely: country or region.")
    location_precise: str | None = gated(
        "location_precise", INCIDENT_FIELDS["location_precise"].value, "Where, precisely.")
    _pb: strawberry.Private[uuid.UUID]
    _gate: strawberry.Private[Gate]
    _iid: strawberry.Private[uuid.UUID]

    @strawberry.field(description=(
        "Evidence filed on this incident: metadata only (type, size, when, by which "
        "organisation, SHA-256 of the content), never the file (download it from "
        "`GET /attachments/{id}`). Gated like the incident's other data: each attachment is "
        "listed only when her consent releases its data category to you for your purpose (she "
        "herself sees every attachment of her own incidents, including those staff added under "
        "her consent). Each category listed is recorded in the access log."))
    async def attachments(self, info: Info) -> list[Attachment]:
        rows = await info.context.loaders.attachments.load(self._iid)
        shown = []
        for row in rows:
            if self._gate.releases(row.category):
                info.context.access.note_read(self._pb, row.category)
                shown.append(Attachment.from_model(row))
            else:
                info.context.access.note_withheld(self._pb, row.category)
        return shown

    @classmethod
    def from_view(cls, view: RowView) -> Incident:
        # A column the selection did not ask for may come back NULL (app/read/children.py):
        # its field is not completed, so None is never returned where the schema says non-null.
        i = view.row
        return cls(id=strawberry.ID(ids.encode("Incident", i.id)),
                   type=member(models.IncidentType, i.type),
                   severity=member(models.Severity, i.severity),
                   status=member(models.IncidentStatus, i.status),
                   occurred_at=i.occurred_at, reported_at=i.reported_at, reported_by=i.reported_by,
                   reported_via=i.reported_via, acknowledgement_deadline=i.ack_deadline,
                   acknowledged_at=i.acknowledged_at, _pb=view.gate.peacebuilder_id,
                   _gate=view.gate, _iid=i.id)


@strawberry.type(description=(
    "One evidence file's metadata (never its content): what an incident's `attachments` lists "
    "under her consent to its data category. Download the file itself from "
    "`GET /attachments/{id}` (same permission, recorded in the access log)."))
class Attachment(Node):
    content_type: str = strawberry.field(description="image/png, image/jpeg, application/pdf or "
                                                     "text/plain, checked against the bytes.")
    size: int = strawberry.field(description="Bytes of the file.")
    category: DataCategory = strawberry.field(  # type: ignore[valid-type]
        description="The data category it was filed under (her consent gates it).")
    added_at: datetime = strawberry.field(description="When it was uploaded.")
    added_by_herself: bool = strawberry.field(description="True: she uploaded it herself.")
    sha256: str | None = strawberry.field(description=(
        "SHA-256 of the file's content (hex), computed at upload: chain of custody. Null for "
        "files uploaded before it was kept."))
    _org: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The organisation that added it (null: she did, herself).")
    async def added_by(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_model(cls, a: models.Attachment) -> Attachment:
        return cls(id=strawberry.ID(ids.encode("Attachment", a.id)), content_type=a.content_type,
                   size=a.size, category=Categories(a.category),
                   added_at=a.uploaded_at, added_by_herself=a.org_id is None and
                   a.uploaded_by.startswith("peacebuilder:"), sha256=a.sha256, _org=a.org_id)


@strawberry.type(description="A protection measure or task, with an owner organisation.")
class Measure(Node, ConsentGated):
    kind: MeasureKind = strawberry.field(description="What kind of measure or task.")
    status: MeasureStatus = strawberry.field(description="Where it stands.")  # type: ignore[valid-type]
    not_done_reason: MeasureNotDoneReason | None = strawberry.field(  # type: ignore[valid-type]
        description="Why it was not done (status CANCELLED, which always has one); null "
                    "otherwise.")
    due_at: datetime | None = strawberry.field(description="When it is due; null when no date was set.")
    created_at: datetime = strawberry.field(description="When it was added (UTC).")
    description: str | None = gated("description", RESPONSE_CATEGORY.value, "Details.")
    _owner: strawberry.Private[uuid.UUID]
    _gate: strawberry.Private[Gate]
    _row: strawberry.Private[Any]

    @strawberry.field(description="The owner organisation.")
    async def owner(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._owner)

    @strawberry.field(description=(
        "The named person of the owner organisation who owns this task (her reminders and the "
        "first level of its overdue escalation are hers). Shown to the owner organisation "
        "(with her name) and the lead organisation (her ID only); null for anyone else, or "
        "when no one is named."))
    async def owner_person(self, info: Info) -> TaskOwnerPerson | None:
        found = await info.context.loaders.call(response.owner_person, info.context.access,
                                                self._row)
        if found is None:
            return None
        return TaskOwnerPerson(id=strawberry.ID(ids.encode("User", found.user_id)),
                               display_name=found.display_name)

    # Her protection plan (app/risk/plan.py): category risk_assessment, each field gated.
    @strawberry.field(description=(
        "The threat of her risk assessment it addresses (a RiskThreat ID). Data category "
        "`risk_assessment`: null, and listed in `withheld`, unless her consent releases it."))
    @declares("threat_id", RISK)
    def threat_id(self, info: Info) -> strawberry.ID | None:
        value = read_plain(info, self._gate, RISK, self._row.threat_id)
        return strawberry.ID(ids.encode("RiskThreat", value)) if value else None

    @strawberry.field(description=(
        "Its part of her protection plan. Data category `risk_assessment` (gated)."))
    @declares("plan_kind", RISK)
    def plan_kind(self, info: Info) -> PlanKind | None:
        value = read_plain(info, self._gate, RISK, self._row.plan_kind)
        return RiskPlanKind(value) if value else None

    @strawberry.field(description=(
        "What it costs, a decimal string with `costCurrency`. Data category `risk_assessment` "
        "(gated)."))
    @declares("cost_amount", RISK)
    def cost_amount(self, info: Info) -> str | None:
        return read_plain(info, self._gate, RISK, self._row.cost_amount)  # type: ignore[no-any-return]

    @strawberry.field(description="ISO 4217 currency of the cost. Data category "
                                  "`risk_assessment` (gated).")
    @declares("cost_currency", RISK)
    def cost_currency(self, info: Info) -> str | None:
        return read_plain(info, self._gate, RISK, self._row.cost_currency)  # type: ignore[no-any-return]

    funding_source: str | None = gated("funding_source", RISK, "Who pays for it.")

    @strawberry.field(description=(
        "The family members she designated that it covers, in her words. Data category "
        "`risk_assessment`: null, and listed in `withheld`, unless her consent releases it."))
    @declares("covered_family", RISK)
    def covered_family(self, info: Info) -> list[str] | None:
        text = read_gated(info, self._gate, "covered_family", RISK)
        return list(json.loads(text)) if text else None

    @classmethod
    def from_view(cls, view: RowView) -> Measure:
        m = view.row
        return cls(id=strawberry.ID(ids.encode("Measure", m.id)), kind=models.MeasureKind(m.kind),
                   status=m.status, due_at=m.due_at, created_at=m.created_at,
                   not_done_reason=m.not_done_reason, _owner=m.owner_org_id, _gate=view.gate,
                   _row=m)


@strawberry.type(description="The named person who owns a task (see Measure.ownerPerson).")
class TaskOwnerPerson:
    id: strawberry.ID = strawberry.field(description="Her user ID.")
    display_name: str | None = strawberry.field(description=(
        "Her name, to her own organisation only (null for the lead organisation)."))


@strawberry.type(description="One organisation asks another to act, under her consent.")
class Referral(Node):
    purpose: Purpose = strawberry.field(  # type: ignore[valid-type]
        description="What the referral is for (one of the purposes her consent names).")
    status: ReferralStatus = strawberry.field(description="Where it stands.")  # type: ignore[valid-type]
    created_at: datetime = strawberry.field(description="When it was made (UTC).")
    updated_at: datetime = strawberry.field(description="When its status last changed (UTC).")
    _from: strawberry.Private[uuid.UUID]
    _to: strawberry.Private[uuid.UUID]
    _case: strawberry.Private[uuid.UUID]
    _view: strawberry.Private[ReferralView]

    @strawberry.field(description="Who referred.")
    async def from_organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._from)

    @strawberry.field(description="Who is asked to act.")
    async def to_organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._to)

    @strawberry.field(description="The case's ID.")
    def case_id(self) -> strawberry.ID:
        return strawberry.ID(ids.encode("Case", self._case))

    @strawberry.field(description=(
        "When the recipient must have accepted or declined it (its directory entry's "
        "`referralResponseHours` after it was made); still pending then, it escalates along "
        "the recipient's chain. Null for referrals made before deadlines existed."))
    def respond_by(self) -> datetime | None:
        return self._view.row.respond_by

    @strawberry.field(description=(
        "What the referring organisation asks of the recipient. Category incident_details: "
        "released to the recipient by the consent that allowed the referral, and only while it "
        "does (null, with the reason in `extensions.redacted`, otherwise)."))
    async def request(self, info: Info) -> str | None:
        return await self._sealed(info, "request", self._view.row.request)

    @strawberry.field(description=(
        "How it ended, as the recipient recorded it. Category incident_details, like `request`."))
    async def outcome(self, info: Info) -> str | None:
        return await self._sealed(info, "outcome", self._view.row.outcome)

    async def _sealed(self, info: Info, field: str, token: str | None) -> str | None:
        view = self._view
        if token is None:
            return None
        return await release_sealed(info, view.peacebuilder_id, DETAILS, view.released,
                                    sealing.referral_ref(view.row, view.peacebuilder_id, field),
                                    token)

    @classmethod
    def from_view(cls, view: ReferralView) -> Referral:
        r = view.row
        return cls(id=strawberry.ID(ids.encode("Referral", r.id)), purpose=r.purpose,
                   status=r.status, created_at=r.created_at, updated_at=r.updated_at,
                   _from=r.from_org_id, _to=r.to_org_id, _case=r.case_id, _view=view)


@strawberry.type(description="Investigation/prosecution tracking or detention watch.")
class Proceeding(Node, ConsentGated):
    kind: ProceedingKind = strawberry.field(description="What is tracked.")  # type: ignore[valid-type]
    next_hearing_at: datetime | None = strawberry.field(
        description="When its next scheduled hearing is; null when none is scheduled.")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    details: str | None = gated(
        "data", PROCEEDING_CATEGORY.value,
        "Authority, reference, stage — or place, conditions, visits, legal representation, "
        "due-process concerns, release negotiations — as JSON.")
    _gate: strawberry.Private[Gate]

    @classmethod
    def from_view(cls, view: RowView) -> Proceeding:
        p = view.row
        return cls(id=strawberry.ID(ids.encode("Proceeding", p.id)), kind=p.kind,
                   next_hearing_at=p.next_hearing_at, updated_at=p.updated_at, _gate=view.gate)


@strawberry.type(description="One step of the case timeline: what changed, by whom, when.")
class TimelineEvent:
    kind: str = strawberry.field(
        description="What happened, as a code (e.g. `incident_reported`, `measure_done`).")
    at: datetime = strawberry.field(description="When it happened (UTC).")
    actor: str = strawberry.field(
        description="Who acted: user:<id>, client:<id>, peacebuilder:<id> or system.")
    subject_id: str | None = strawberry.field(description=(
        "Opaque global ID of what the step is about (an Incident, Measure, Referral, "
        "Attachment, Proceeding or Confirmation): usable with `node(id:)`."))
    details: str | None = strawberry.field(description=(
        "JSON of codes and opaque global IDs (never personal data)."),
        deprecation_reason="Use `data` (the same, as JSON).")
    _org: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="Codes and opaque global IDs (never personal data).")
    def data(self) -> JSON | None:
        return json.loads(self.details) if self.details else None

    @strawberry.field(description="The organisation that acted (null: the system).")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_model(cls, e: Any) -> TimelineEvent:
        return cls(kind=e.kind, at=e.at, actor=e.actor,
                   subject_id=app_ids.event_subject(e.kind, e.subject_id),
                   details=(json.dumps(app_ids.globalize(e.details), sort_keys=True)
                            if e.details else None),
                   _org=e.org_id)


@strawberry.enum(description="Where one of her approvals stands.")
class ApprovalStatus(enum.Enum):
    LIVE = strawberry.enum_value("live", description=(
        "Not yet used: the organisation it names may plan the act; she may withdraw it."))
    BOUND = strawberry.enum_value("bound", description=(
        "A measure was planned with it; the act is not carried out yet (she may withdraw it, "
        "and the measure can then not be marked done)."))
    USED = strawberry.enum_value("used", description="The act was carried out (its measure done).")
    WITHDRAWN = strawberry.enum_value("withdrawn", description="She withdrew it.")


@strawberry.type(description=(
    "Her approval of one public act (public_statement, media_contact or recognition) by one "
    "organisation. Returned to her (`me.approvals`, `withdrawApproval`) and to whoever records "
    "it (she, or her network's focal point acting for her)."))
class Approval(Node):
    act: PublicAct = strawberry.field(description="The act she approved.")  # type: ignore[valid-type]
    approved_at: datetime = strawberry.field(description="When she approved it.")
    acting_for_her: bool = strawberry.field(
        description="True: her network's focal point recorded it for her.")
    status: ApprovalStatus = strawberry.field(description="Where it stands.")
    used_at: datetime | None = strawberry.field(description="When the act was carried out.")
    withdrawn_at: datetime | None = strawberry.field(description="When she withdrew it.")
    description: str | None = strawberry.field(default=None, description=(
        "What she approved (the text, or the outlet and occasion), opened with her key: in her "
        "own view (`me.approvals`) only; null elsewhere and once her data is erased."))
    _org: strawberry.Private[uuid.UUID | None] = None
    _measure: strawberry.Private[uuid.UUID | None] = None

    @strawberry.field(description="The organisation she approved to perform the act.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @strawberry.field(description="The measure planned with it (opaque global ID), if any.")
    def measure_id(self) -> strawberry.ID | None:
        return strawberry.ID(ids.encode("Measure", self._measure)) if self._measure else None

    @classmethod
    def from_model(cls, a: models.Approval, description: str | None = None) -> Approval:
        status = (ApprovalStatus.WITHDRAWN if a.revoked_at is not None else
                  ApprovalStatus.USED if a.used_at is not None else
                  ApprovalStatus.BOUND if a.used_by is not None else ApprovalStatus.LIVE)
        return cls(id=strawberry.ID(ids.encode("Approval", a.id)), act=a.act,
                   approved_at=a.approved_at, acting_for_her=a.acting_for_her, status=status,
                   used_at=a.used_at, withdrawn_at=a.revoked_at, description=description,
                   _org=a.org_id, _measure=a.used_by)


@strawberry.type(description="An alert in a user's inbox: IDs and codes, never personal data.")
class InboxAlert:
    id: strawberry.ID = strawberry.field(
        description="The alert's ID (de-duplicate by it: delivery is at least once).")
    kind: AlertKind = strawberry.field(description="What it is about.")  # type: ignore[valid-type]
    created_at: datetime = strawberry.field(description="When the alert was raised (UTC).")
    cursor: str = strawberry.field(description="Pass as `after` to resume after this alert.")
    payload: str = strawberry.field(description=(
        "JSON of codes and opaque global IDs (`incident`, `case`, `measure`, …: usable with "
        "`node(id:)` and the HTTP routes)."), deprecation_reason="Use `data` (the same, as JSON).")

    @strawberry.field(description="Codes and opaque global IDs (`incident`, `case`, `measure`, "
                                  "…: usable with `node(id:)` and the HTTP routes).")
    def data(self) -> JSON:
        return json.loads(self.payload)


@strawberry.type
class IncidentPayload:
    incident: Incident | None
    user_errors: list[UserError]


@strawberry.type
class MeasurePayload:
    measure: Measure | None
    user_errors: list[UserError]


@strawberry.type
class ReferralPayload:
    referral: Referral | None
    user_errors: list[UserError]


@strawberry.type
class ProceedingPayload:
    proceeding: Proceeding | None
    user_errors: list[UserError]


@strawberry.type
class ApprovalPayload:
    approval: Approval | None
    user_errors: list[UserError]


@strawberry.type(description="Incidents of one type and severity (an aggregate: no individual).")
class IncidentCount:
    type: IncidentType = strawberry.field(description="The incident type counted.")
    severity: Severity = strawberry.field(description="The severity counted.")
    incidents: int | None = strawberry.field(description=(
        "Women (not incidents; the name is kept for compatibility), rounded to a multiple of 5; "
        "null when suppressed."))
    suppressed: bool = strawberry.field(
        description="True when the count is withheld (too few women, or it would reveal another).")


@strawberry.type(description="An aggregate report with small counts suppressed.")
class IncidentStatistics:
    counts: list[IncidentCount] = strawberry.field(
        description="One count per incident type and severity that occurs.")
    total_incidents: int | None = strawberry.field(description=(
        "Women with any incident in the period, rounded; null when suppressed (too few women, "
        "or it would reveal a suppressed count)."))
    total_suppressed: bool = strawberry.field(description="True when `totalIncidents` is withheld.")
    min_women_per_count: int = strawberry.field(
        description="The fewest different women a published count may stand for.")
    period: str = strawberry.field(description="The calendar period counted (2026, 2026-Q2 or "
                                               "2026-04).")
