"""GraphQL types for consent grants, her own view, break-glass and notices."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import datetime

import strawberry

from app.consent import models
from schema import ids
from schema.common import Node, UserError
from schema.consent.enums import DataCategory, ObtainedVia, Purpose
from schema.context import Info
from schema.orgs.types import Organisation, organisation_of


@strawberry.enum(description="Whether a grant is in force now.")
class GrantStatus(enum.Enum):
    LIVE = "live"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@strawberry.enum(description="Who receives a grant.")
class RecipientType(enum.Enum):
    ORGANISATION = "organisation"
    WORKING_GROUP = "working_group"


@strawberry.type(description="One change to a grant. Grants are never edited; each change is an "
                             "event and the grant's state is derived from them.")
class ConsentEvent:
    kind: str = strawberry.field(description="grant, narrow, extend, revoke or expire.")
    at: datetime
    categories: list[DataCategory]
    purposes: list[Purpose]
    valid_until: datetime | None
    acting_for_her: bool = strawberry.field(
        description="Recorded by a focal point of her network acting for her.")
    obtained_via: ObtainedVia | None

    @classmethod
    def from_model(cls, e: models.ConsentEvent) -> ConsentEvent:
        return cls(kind=e.kind, at=e.at, categories=[DataCategory(c) for c in e.categories],
                   purposes=[Purpose(p) for p in e.purposes], valid_until=e.valid_until,
                   acting_for_her=e.acting_for_her,
                   obtained_via=ObtainedVia(e.obtained_via) if e.obtained_via else None)


@strawberry.type(description="She allows one recipient to see some categories of her data for "
                             "some purposes, from a date, until a date or until revoked.")
class ConsentGrant(Node):
    recipient_type: RecipientType
    categories: list[DataCategory]
    purposes: list[Purpose]
    valid_from: datetime = strawberry.field(description="Start (inclusive, UTC).")
    valid_until: datetime | None = strawberry.field(description="End (exclusive, UTC); null: open.")
    obtained_via: ObtainedVia | None
    revoked_at: datetime | None = strawberry.field(description="When revoked or expired.")
    created_at: datetime
    _id: strawberry.Private[uuid.UUID]
    _recipient: strawberry.Private[uuid.UUID]
    _covered: strawberry.Private[list[str]]

    @strawberry.field(description="Whether the grant is in force now.")
    def status(self, info: Info) -> GrantStatus:
        now = info.context.access.clock.now()
        if self.revoked_at is not None:
            return GrantStatus.REVOKED
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
                   revoked_at=g.revoked_at, created_at=g.created_at, _id=g.id,
                   _recipient=g.recipient_id, _covered=list(g.covered_org_ids))


@strawberry.type(description="A working group named in a grant (its details are visible to its "
                             "members through `workingGroup`).")
class WorkingGroupRef:
    id: strawberry.ID


@strawberry.type(description="Access opened without consent in her vital interest.")
class BreakGlass(Node):
    opened_at: datetime
    expires_at: datetime = strawberry.field(description="At most 72 hours after opening.")
    closed_at: datetime | None
    _org: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The organisation that opened it.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_model(cls, b: models.BreakGlass) -> BreakGlass:
        return cls(id=strawberry.ID(ids.encode("BreakGlass", b.id)), opened_at=b.opened_at,
                   expires_at=b.expires_at, closed_at=b.closed_at, _org=b.org_id)


@strawberry.type(description="Something she is told about. Carries IDs only.")
class Notice:
    kind: str = strawberry.field(description="e.g. working_group_new_member, break_glass_opened.")
    created_at: datetime
    details: str = strawberry.field(description="JSON object of IDs.")

    @classmethod
    def from_model(cls, n: models.Notice) -> Notice:
        return cls(kind=n.kind, created_at=n.created_at, details=json.dumps(n.details, sort_keys=True))


@strawberry.type(description="Her request to correct her data.")
class DataRequest:
    id: strawberry.ID
    kind: str
    field: str | None
    status: str
    created_at: datetime


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


