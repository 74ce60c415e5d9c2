"""GraphQL types for consent grants, her own view, break-glass and notices."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app import ids as app_ids
from app.her.notices import NoticeKind
from app.peacebuilders.notice_text import short_reference
from app.peacebuilders.self_service import NoticeView
from app.tables import consent as models
from app.tables import peacebuilders as pb_models
from schema import ids
from schema.common import Node, UserError, closed_set, describe_values
from schema.consent.enums import DataCategory, ObtainedVia, Purpose
from schema.context import Info
from schema.orgs.types import Organisation, organisation_of


@strawberry.enum(description="Whether a grant is in force now.")
class GrantStatus(enum.Enum):
    PENDING = "pending"
    LIVE = "live"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
describe_values(GrantStatus, {
    "PENDING": "Recorded but not yet confirmed: releases nothing.",
    "LIVE": "In force now.",
    "NOT_YET_VALID": "Confirmed, in force from `validFrom`.",
    "EXPIRED": "Past `validUntil`.",
    "REVOKED": "Revoked (or withdrawn while pending).",
})


@strawberry.enum(description="Who must still confirm a pending grant before it releases anything.")
class ConsentAwaiting(enum.Enum):
    HER = strawberry.enum_value("her", description=(
        "She herself (her login) or a focal point of a network she confirmed, acting for her."))
    SECOND_PERSON = strawberry.enum_value("second_person", description=(
        "A second focal point of the recipient, against the evidence (two-person rule); she or "
        "her network may confirm it too."))
    HER_NETWORK = strawberry.enum_value("reset_hold", description=(
        "Her network's focal point (confirmConsent), or she signed in with a second factor she "
        "enrolled before: she widened it in the days after a one-time code set her password."))


@strawberry.enum(description="Who receives a grant.")
class RecipientType(enum.Enum):
    ORGANISATION = "organisation"
    WORKING_GROUP = "working_group"
describe_values(RecipientType, {
    "ORGANISATION": "One organisation.",
    "WORKING_GROUP": "A working group: its members at the time of the grant or of its last extension.",
})


@strawberry.type(description="One change to a grant. Grants are never edited; each change is an "
                             "event and the grant's state is derived from them.")
class ConsentEvent:
    kind: ConsentEventKind = strawberry.field(description="The step.")  # type: ignore[valid-type]
    at: datetime = strawberry.field(description="When the change was recorded (UTC).")
    categories: list[DataCategory] = strawberry.field(
        description="The data categories the grant covers after this change.")
    purposes: list[Purpose] = strawberry.field(description="The purposes the grant covers after this change.")
    valid_until: datetime | None = strawberry.field(
        description="When the grant ends after this change; null: until revoked.")
    acting_for_her: bool = strawberry.field(
        description="Recorded by a focal point of her network acting for her.")
    obtained_via: ObtainedVia | None = strawberry.field(
        description="How staff obtained her consent for this change; null when she or her network made it.")

    @classmethod
    def from_model(cls, e: models.ConsentEvent) -> ConsentEvent:
        return cls(kind=e.kind, at=e.at, categories=[DataCategory(c) for c in e.categories],
                   purposes=[Purpose(p) for p in e.purposes], valid_until=e.valid_until,
                   acting_for_her=e.acting_for_her,
                   obtained_via=ObtainedVia(e.obtained_via) if e.obtained_via else None)


@strawberry.type(description="She allows one recipient to see some categories of her data for "
                             "some purposes, from a date, until a date or until revoked.")
class ConsentGrant(Node):
    recipient_type: RecipientType = strawberry.field(
        description="Whether the grant names one organisation or a working group.")
    categories: list[DataCategory] = strawberry.field(description="The data categories it releases.")
    purposes: list[Purpose] = strawberry.field(
        description="The purposes for which it releases them: a request must declare one of these.")
    valid_from: datetime = strawberry.field(description="Start (inclusive, UTC).")
    valid_until: datetime | None = strawberry.field(description="End (exclusive, UTC); null: open.")
    obtained_via: ObtainedVia | None = strawberry.field(
        description="How staff obtained her consent; null when she or her network recorded it.")
    revoked_at: datetime | None = strawberry.field(description="When revoked or expired.")
    created_at: datetime = strawberry.field(description="When it was recorded (UTC).")
    confirmed_at: datetime | None = strawberry.field(description=(
        "When it came into force; null while pending (a pending grant releases nothing)."))
    awaiting: ConsentAwaiting | None = strawberry.field(description=(
        "Who must still confirm it (null once in force, or once ended)."))
    _id: strawberry.Private[uuid.UUID]
    _recipient: strawberry.Private[uuid.UUID]
    _covered: strawberry.Private[list[str]]

    @strawberry.field(description="Whether the grant is in force now.")
    def status(self, info: Info) -> GrantStatus:
        now = info.context.access.clock.now()
        if self.revoked_at is not None:
            return GrantStatus.REVOKED
        if self.confirmed_at is None:
            return GrantStatus.PENDING
        if self.valid_from > now:
            return GrantStatus.NOT_YET_VALID
        if self.valid_until is not None and self.valid_until <= now:
            return GrantStatus.EXPIRED
        return GrantStatus.LIVE

    @strawberry.field(description="The recipient organisation (null for a working group).")
    async def recipient_organisation(self, info: Info) -> Organisation | None:
        if self.recipient_type is not RecipientType.ORGANISATION:
            return None
        return await organisation_of(info, self._recipient)

    @strawberry.field(description="The recipient working group (null for an organisation).")
    async def recipient_working_group(self, info: Info) -> WorkingGroupRef | None:
        if self.recipient_type is not RecipientType.WORKING_GROUP:
            return None
        return WorkingGroupRef(id=strawberry.ID(ids.encode("WorkingGroup", self._recipient)))

    @strawberry.field(description="Organisations covered: a working-group grant covers its members "
                                  "at the time of the grant or of its last extension.")
    async def covered_organisations(self, info: Info) -> list[Organisation]:
        orgs = await info.context.loaders.organisation.load_many([uuid.UUID(c) for c in self._covered])
        return [Organisation.from_model(o) for o in orgs if o is not None]

    @strawberry.field(description="Its history, oldest first.")
    async def events(self, info: Info) -> list[ConsentEvent]:
        from app.consent import service as consent

        events = await info.context.loaders.call(consent.events_for, info.context.access, self._id)
        return [ConsentEvent.from_model(e) for e in events]

    @classmethod
    def from_model(cls, g: models.ConsentGrant) -> ConsentGrant:
        return cls(id=strawberry.ID(ids.encode("ConsentGrant", g.id)),
                   recipient_type=RecipientType(g.recipient_type),
                   categories=[DataCategory(c) for c in g.categories],
                   purposes=[Purpose(p) for p in g.purposes], valid_from=g.valid_from,
                   valid_until=g.valid_until,
                   obtained_via=ObtainedVia(g.obtained_via) if g.obtained_via else None,
                   revoked_at=g.revoked_at, created_at=g.created_at,
                   confirmed_at=g.confirmed_at,
                   awaiting=(ConsentAwaiting(g.awaiting)
                             if g.awaiting and g.revoked_at is None else None), _id=g.id,
                   _recipient=g.recipient_id, _covered=list(g.covered_org_ids))


@strawberry.type(description="A working group named in a grant (its details are visible to its "
                             "members through `workingGroup`).")
class WorkingGroupRef:
    id: strawberry.ID = strawberry.field(description="The working group's global ID.")


@strawberry.type(description="Access opened without consent in her vital interest.")
class BreakGlass(Node):
    opened_at: datetime = strawberry.field(description="When it was opened (UTC).")
    expires_at: datetime = strawberry.field(description=(
        "One hour after opening until a second focal point confirms it; then the hours asked "
        "for (at most 72)."))
    closed_at: datetime | None = strawberry.field(
        description="When it was closed before expiring; null while open or when it expired.")
    requested_hours: int | None = strawberry.field(description="The hours asked for.")
    confirmed_at: datetime | None = strawberry.field(description=(
        "When a second focal point confirmed it (two-person rule); null: not confirmed."))
    _org: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The organisation that opened it.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_model(cls, b: models.BreakGlass) -> BreakGlass:
        return cls(id=strawberry.ID(ids.encode("BreakGlass", b.id)), opened_at=b.opened_at,
                   expires_at=b.expires_at, closed_at=b.closed_at,
                   requested_hours=b.requested_hours, confirmed_at=b.confirmed_at, _org=b.org_id)


ConsentEventKind = closed_set(models.ConsentEventKind, "A step in a grant's history.", {
    "GRANT": "Recorded.", "CONFIRM": "Confirmed (by her, or by a second person).",
    "NARROW": "Narrowed (fewer categories or purposes).", "EXTEND": "Extended.",
    "REVOKE": "Revoked.", "EXPIRE": "Ran out."})
DataRequestKind = closed_set(models.DataRequestKind, "What she asks of an organisation.", {
    "CORRECTION": "To correct her data."})
DataRequestStatus = closed_set(models.DataRequestStatus, "Where her request stands.", {
    "OPEN": "Not yet answered.", "CORRECTED": "Corrected.",
    "DECLINED": "Declined, with a reason for her."})
ErasureVia = closed_set(pb_models.ErasureVia, "Who asked for an erasure of her data.", {
    "HERSELF": "She herself.", "NETWORK": "A focal point of a network she confirmed, for her.",
    "ORGANISATION": "A focal point of an organisation that leads one of her cases, with a "
                    "reason and a second focal point's confirmation."})
NoticeKindEnum = closed_set(NoticeKind, "What changed, in a notice to her.", {
    "INCIDENT_ACKNOWLEDGED": "An organisation acknowledged an incident she faces.",
    "INCIDENT_ESCALATED": "An incident was not acknowledged in time and went up the chain.",
    "INCIDENT_STATUS_CHANGED": "The response to an incident moved on.",
    "MEASURE_DONE": "A protection measure was carried out.",
    "MEASURE_NOT_DONE": "A protection measure was not done (with a reason code).",
    "REFERRAL_ACCEPTED": "An organisation accepted a referral of her case.",
    "REFERRAL_DECLINED": "An organisation declined a referral of her case.",
    "CASE_CLOSED": "Her case was closed (with a reason code).",
    "CASE_REOPENED": "Her case was reopened (with a reason code).",
    "CONSENT_GRANTED_BY_OTHERS": "Someone recorded a consent grant for her.",
    "CONSENT_CONFIRMED_BY_OTHERS": "Someone confirmed a consent grant for her.",
    "CONSENT_EXTENDED_BY_OTHERS": "Someone extended a consent grant of hers.",
    "CONSENT_AWAITS_CONFIRMATION": "A grant recorded for her waits for a second person.",
    "GRANT_EXPIRING": "A consent grant of hers ends soon.",
    "WORKING_GROUP_NEW_MEMBER": "A group she granted has a new member.",
    "APPROVAL_USED": "An approval of a public act she gave was used.",
    "BREAK_GLASS_OPENED": "Someone opened break-glass access to her record.",
    "BREAK_GLASS_CONFIRMED": "A second person confirmed break-glass access.",
    "BREAK_GLASS_ENDED": "Break-glass access ended (with a reason code).",
    "NETWORK_CONFIRMED": "A network was confirmed to act for her.",
    "ERASURE_SCHEDULED": "An erasure of her data is scheduled (she may stop it).",
    "ENROLMENT_CODE_ISSUED": "An enrolment code for her login was issued.",
    "PASSWORD_RESET": "Her password was reset.",
    "LOGIN_SUSPENDED": "Her login was suspended.",
    "CORRECTION_ANSWERED": "A correction she asked for was answered.",
    "CASE_DATA_ERASED": "A closed case's retention ran out: its data was erased.",
    "RISK_ASSESSMENT_SHARED": "A joint risk assessment waits for her answer (agree or contest).",
    "RISK_ASSESSMENT_CURRENT": "A joint risk assessment of her case is now in force.",
    "CHECK_IN_MISSED": "A check-in of hers was missed: the lead organisation was alerted."},
    name="NoticeKind")


@strawberry.type(description=(
    "Something she is told about: kind, date, case reference, reason code and IDs — never her "
    "name, never free text. Only she reads her notices (me.notices, myNotices)."))
class Notice:
    id: strawberry.ID = strawberry.field(description="The notice's ID (her subscription may "
                                                     "deliver one twice: de-duplicate by it).")
    kind: NoticeKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="What changed.")
    created_at: datetime = strawberry.field(description="When it happened.")
    details: str = strawberry.field(description=(
        "JSON object of codes, dates and opaque global IDs (`case`, `incident`, `measure`, "
        "`referral`, `grant`, `organisation`, …: usable with `node(id:)`)."),
        deprecation_reason="Use `data` (the same, as JSON).")
    cursor: str = strawberry.field(description="Pass as `after` (me.notices, myNotices) to "
                                               "resume after this notice.")
    language: str = strawberry.field(description="The language of `title` and `text`: hers "
                                                 "(en, fr, es, ar, sw), English otherwise.")
    title: str = strawberry.field(description="One line in her language, safe on her screen.")
    text: str = strawberry.field(description=(
        "Plain text in her language: title, date, short case reference and reason; the "
        "details stay inside the app."))
    case_id: strawberry.ID | None = strawberry.field(description="The case it concerns, if any.")
    case_reference: str | None = strawberry.field(description=(
        "A short reference of that case she can read out (e.g. C-1A2B3C4D)."))
    reason: str | None = strawberry.field(description=(
        "The reason code, where the change has one (case closed or reopened, measure not done, "
        "break-glass ended, correction answered)."))

    @strawberry.field(description="Codes, dates and opaque global IDs (`case`, `incident`, "
                                  "`measure`, `referral`, `grant`, `organisation`, …: usable "
                                  "with `node(id:)`).")
    def data(self) -> JSON:
        return json.loads(self.details)

    @classmethod
    def from_view(cls, v: NoticeView) -> Notice:
        n = v.notice
        case = n.details.get("case")
        reason = n.details.get("reason")
        return cls(id=strawberry.ID(ids.encode("Notice", n.id)), kind=n.kind,
                   created_at=n.created_at,
                   details=json.dumps(app_ids.globalize(n.details), sort_keys=True),
                   cursor=v.cursor, language=v.text.language, title=v.text.title,
                   text=v.text.text,
                   case_id=strawberry.ID(ids.encode("Case", uuid.UUID(case))) if case else None,
                   case_reference=short_reference(case) if case else None,
                   reason=reason if isinstance(reason, str) else None)


@strawberry.type(description=(
    "Her request to correct her data, as she sees it (herself only): addressed to one "
    "organisation, answered by its deadline or escalated."))
class DataRequest:
    id: strawberry.ID = strawberry.field(description="Opaque global ID.")
    kind: DataRequestKind = strawberry.field(description="What she asked.")  # type: ignore[valid-type]
    field: str | None = strawberry.field(description="The field she asked to correct.")
    status: DataRequestStatus = strawberry.field(description="Where it stands.")  # type: ignore[valid-type]
    created_at: datetime = strawberry.field(description="When she asked.")
    due_at: datetime | None = strawberry.field(
        default=None, description="When the organisation must have answered.")
    answered_at: datetime | None = strawberry.field(default=None, description="When it answered.")
    reason: str | None = strawberry.field(default=None, description=(
        "The organisation's reason (always given when declined), opened with her key: in her "
        "own view only."))

    @classmethod
    def from_model(cls, r: models.DataRequest, reason: str | None = None) -> DataRequest:
        from schema import ids as schema_ids

        return cls(id=strawberry.ID(schema_ids.encode("DataRequest", r.id)), kind=r.kind,
                   field=r.field, status=r.status, created_at=r.created_at, due_at=r.due_at,
                   answered_at=r.answered_at, reason=reason)


@strawberry.type(description="Result of a consent change.")
class ConsentGrantPayload:
    grant: ConsentGrant | None
    user_errors: list[UserError]


@strawberry.type(description="Result of revokeAllConsent.")
class RevokeAllPayload:
    revoked: list[ConsentGrant]
    user_errors: list[UserError]


@strawberry.type(description="Result of openBreakGlass / closeBreakGlass.")
class BreakGlassPayload:
    break_glass: BreakGlass | None
    user_errors: list[UserError]


@strawberry.type(description="Result of requestCorrection.")
class DataRequestPayload:
    request: DataRequest | None
    user_errors: list[UserError]




@strawberry.enum(description="Where an erasure request stands.")
class ErasureStatus(enum.Enum):
    AWAITING_CONFIRMATION = strawberry.enum_value("awaiting_confirmation", description=(
        "Asked by an organisation; waits for a second focal point (two-person rule)."))
    SCHEDULED = strawberry.enum_value("scheduled", description=(
        "She and her network were told; carried out at `dueAt` unless she stops it."))
    STOPPED = "stopped"
    DECLINED = strawberry.enum_value("declined", description="Not confirmed by a second person.")
    DONE = strawberry.enum_value("done", description="Her data key is destroyed.")
describe_values(ErasureStatus, {
    "STOPPED": "She (or her network, for her) stopped it before it was carried out.",
})


@strawberry.type(description="A request to erase her data (crypto-shredding).")
class Erasure(Node):
    status: ErasureStatus = strawberry.field(description="Where the erasure stands.")
    via: ErasureVia = strawberry.field(description="Who asked for it.")  # type: ignore[valid-type]
    requested_at: datetime = strawberry.field(description="When it was asked for (UTC).")
    due_at: datetime | None = strawberry.field(description="When it will be carried out.")
    done_at: datetime | None = strawberry.field(
        description="When her data key was destroyed; null until then.")

    @classmethod
    def from_model(cls, e: Any) -> Erasure:
        return cls(id=strawberry.ID(ids.encode("Erasure", e.id)), status=ErasureStatus(e.status),
                   via=e.via, requested_at=e.requested_at, due_at=e.due_at, done_at=e.done_at)


@strawberry.type(description="A network named for her; it acts for her only once confirmed.")
class NetworkLink:
    id: strawberry.ID = strawberry.field(description="The link's ID.")
    confirmed_at: datetime | None = strawberry.field(description="Null: named, not confirmed.")
    _org: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The network organisation.")
    async def network(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_model(cls, link: Any) -> NetworkLink:
        return cls(id=strawberry.ID(ids.encode("NetworkLink", link.id)),
                   confirmed_at=link.confirmed_at, _org=link.org_id)
