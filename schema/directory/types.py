"""GraphQL types of the service directory and of requests for help."""

from __future__ import annotations

import json
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app import ids as app_ids
from app.directory import help as help_requests
from app.tables import directory as models
from schema import ids
from schema.common import Node, UserError, describe_values
from schema.context import Info
from schema.orgs.types import Organisation, organisation_of

ServiceKind = strawberry.enum(models.ServiceKind, description=(
    "A kind of support an organisation offers (protection guidance): legal aid, psychosocial "
    "support, relocation, security and protection, medical care, digital security, emergency "
    "grants, advocacy, shelter, detention monitoring."))
describe_values(ServiceKind, {
    "LEGAL_AID": "Lawyers and legal advice.",
    "PSYCHOSOCIAL_SUPPORT": "Psychological and social support.",
    "RELOCATION": "Temporary or permanent relocation.",
    "SECURITY_PROTECTION": "Physical protection and security advice.",
    "MEDICAL": "Medical care.",
    "DIGITAL_SECURITY": "Help securing her devices and accounts.",
    "EMERGENCY_GRANTS": "Emergency money.",
    "ADVOCACY": "Advocacy with authorities.",
    "SHELTER": "A safe place to stay.",
    "DETENTION_MONITORING": "Visits and monitoring while she is detained.",
})


@strawberry.type(description="What one organisation offers: the service directory. Not personal "
                             "data. Requires `service_directory:read` (staff of any "
                             "organisation).")
class ServiceDirectoryEntry:
    organisation_id: strawberry.ID = strawberry.field(description="The organisation it describes.")
    services: list[ServiceKind] = strawberry.field(description="Kinds of support it offers.")
    languages: list[str] = strawberry.field(description="Languages it works in (ISO 639-1).")
    regions: list[str] = strawberry.field(description="Regions it works in.")
    accepts_help_requests: bool = strawberry.field(description=(
        "Whether it accepts requests for help from women without a case (`requestHelp`): the "
        "one source for that."))
    referral_response_hours: int = strawberry.field(description=(
        "Hours it has to accept or decline a referral before its escalation chain is alerted."))
    updated_at: datetime = strawberry.field(description="When its admins last changed it.")

    @strawberry.field(description="The organisation it describes.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, ids.decode(self.organisation_id, "Organisation"))

    @classmethod
    def from_model(cls, entry: models.ServiceEntry) -> ServiceDirectoryEntry:
        return cls(organisation_id=strawberry.ID(ids.encode("Organisation", entry.org_id)),
                   services=[models.ServiceKind(s) for s in entry.services],
                   languages=list(entry.languages), regions=list(entry.regions),
                   accepts_help_requests=entry.accepts_help_requests,
                   referral_response_hours=entry.referral_response_hours,
                   updated_at=entry.updated_at)


@strawberry.type(description="An organisation that accepts requests for help (public: it chose "
                             "to be found). No sign-in needed.")
class HelpDesk:
    organisation_id: strawberry.ID = strawberry.field(
        description="Pass as `requestHelp(input: {organisationId})`.")
    name: str = strawberry.field(description="The organisation's name.")
    country: str = strawberry.field(description="ISO 3166 alpha-2 country code.")
    services: list[ServiceKind] = strawberry.field(description="Kinds of support it offers.")
    languages: list[str] = strawberry.field(description="Languages it works in (ISO 639-1).")
    regions: list[str] = strawberry.field(description="Regions it works in.")

    @classmethod
    def from_desk(cls, desk: help_requests.Desk) -> HelpDesk:
        return cls(organisation_id=strawberry.ID(ids.encode("Organisation", desk.org.id)),
                   name=desk.org.name, country=desk.org.country,
                   services=[models.ServiceKind(s) for s in desk.entry.services],
                   languages=list(desk.entry.languages), regions=list(desk.entry.regions))


HelpRequestStatus = strawberry.enum(
    models.HelpRequestStatus, description="open: nobody has taken it on yet (it escalates at its deadline); "
                "acknowledged: a focal point took it on; erased: its key was destroyed.")
describe_values(HelpRequestStatus, {
    "OPEN": "Not yet taken on: it escalates when unanswered.",
    "ACKNOWLEDGED": "Taken on by a focal point.",
    "ERASED": "Erased: its message and contact are unreadable.",
})


@strawberry.type(description="What happened to a request for help (escalated, skipped level, "
                             "overseers told). IDs and codes only.")
class HelpRequestEvent:
    kind: str = strawberry.field(description="e.g. help_request.escalated.")
    details: str | None = strawberry.field(description="JSON object of IDs and codes.",
                                           deprecation_reason="Use `data` (the same, as JSON).")
    at: datetime = strawberry.field(description="When.")

    @strawberry.field(description="IDs (opaque global IDs) and codes.")
    def data(self) -> JSON | None:
        return json.loads(self.details) if self.details else None


@strawberry.type(description="A request for help from a woman without a case, to your "
                             "organisation. Requires `help_request:read` (its focal points); "
                             "each read is in the access log.")
class HelpRequest(Node):
    language: str | None = strawberry.field(description="The language she wrote in (ISO 639-1).")
    status: HelpRequestStatus = strawberry.field(description="Where it stands.")
    received_at: datetime = strawberry.field(description="When it arrived.")
    ack_deadline: datetime = strawberry.field(
        description="When it escalates along your chain unless acknowledged.")
    acknowledged_at: datetime | None = strawberry.field(description="When it was taken on.")
    message: str | None = strawberry.field(
        description="Her message (null once erased or if it cannot be opened).")
    contact: str | None = strawberry.field(
        description="How to reach her (null once erased or if it cannot be opened).")
    events: list[HelpRequestEvent] = strawberry.field(description="Its escalation events.")

    @classmethod
    def from_opened(cls, opened: help_requests.Opened) -> HelpRequest:
        r = opened.row
        return cls(id=strawberry.ID(ids.encode("HelpRequest", r.id)), language=r.language,
                   status=HelpRequestStatus(r.status), received_at=r.received_at,
                   ack_deadline=r.ack_deadline, acknowledged_at=r.acknowledged_at,
                   message=opened.message, contact=opened.contact,
                   events=[HelpRequestEvent(kind=e.kind, at=e.at, details=json.dumps(
                       app_ids.globalize(e.details or {}), sort_keys=True))
                       for e in opened.events])


@strawberry.type(description="Result of setServiceDirectoryEntry.")
class ServiceDirectoryEntryPayload:
    entry: ServiceDirectoryEntry | None = strawberry.field(description="The entry as saved.")
    user_errors: list[UserError] = strawberry.field(description="Problems with the input.")


@strawberry.type(description="Result of requestHelp: only whether it was received.")
class RequestHelpPayload:
    received: bool = strawberry.field(
        description="True: the organisation's focal points have it and will reach out.")
    user_errors: list[UserError] = strawberry.field(description="Problems with the input.")


@strawberry.type(description="Result of acknowledgeHelpRequest / eraseHelpRequest.")
class HelpRequestPayload:
    help_request: HelpRequest | None = strawberry.field(description="The request, changed.")
    user_errors: list[UserError] = strawberry.field(description="Problems with the input.")
