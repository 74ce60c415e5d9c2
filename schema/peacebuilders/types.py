"""GraphQL types for peacebuilders: the pseudonymous record only."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from app.access.gate import Gate
from app.read.peacebuilders import PeacebuilderView
from app.tables.categories import PROFILE_FIELDS
from schema import ids
from schema.common import Node, UserError, describe_values
from schema.consent.enums import ConsentEvidenceInput, DataCategory, ObtainedVia, Purpose
from schema.consent.types import ConsentGrant
from schema.context import Info
from schema.gated import ConsentGated, gated
from schema.orgs.types import Organisation

if TYPE_CHECKING:
    from schema.cases.types import Case


def _profile_type() -> type:
    annotations: dict[str, Any] = {"_gate": strawberry.Private[Gate]}
    namespace: dict[str, Any] = {"__annotations__": annotations}
    for name, category in PROFILE_FIELDS.items():
        annotations[name] = str | None
        namespace[name] = gated(name, category.value, "")
    return strawberry.type(type("PeacebuilderProfile", (ConsentGated,), namespace), description=(
        "Her sensitive fields. Each is released only under a live consent grant covering your "
        "organisation, its data category and your declared purpose, and only to her case team "
        "and your focal points."))


PeacebuilderProfile = _profile_type()

ProfileField = strawberry.enum(enum.Enum("ProfileField", {n.upper(): n for n in PROFILE_FIELDS}),
                               description="A field of her profile.")
describe_values(ProfileField, {
    "LEGAL_NAME": "Her legal name (category identity).",
    "DATE_OF_BIRTH": "Her date of birth (identity).",
    "NATIONALITY": "Her nationality (identity).",
    "PHONE": "Her phone number (contact).",
    "EMAIL": "Her email address (contact).",
    "SECURE_MESSENGER": "Her secure messenger handle (contact).",
    "COUNTRY": "The country she is in (location_coarse).",
    "REGION": "The region she is in (location_coarse).",
    "ADDRESS": "Her address (location_precise).",
    "COORDINATES": "Her coordinates (location_precise).",
    "FAMILY_MEMBERS": "Her family members (family).",
    "HEALTH_NOTES": "Notes on her health (health).",
    "LEGAL_SITUATION": "Her legal situation (legal).",
    "BANK_DETAILS": "Her bank details (financial).",
    "TRAVEL_PLANS": "Her travel plans (travel).",
})


@strawberry.input(description="Match one profile field exactly.")
class ProfileFieldFilter:
    field: ProfileField = strawberry.field(  # type: ignore[valid-type]
        description="The profile field to compare.")
    value: str


@strawberry.type(description="A protected woman peacebuilder, known by a pseudonym. Her "
                             "sensitive data (identity, contact, location, family, ...) is stored "
                             "apart and released only under her consent.")
class Peacebuilder(Node):
    pseudonym: str = strawberry.field(description="Pseudonym used everywhere by default.")
    preferred_language: str = strawberry.field(description="Language for receipts and messages.")
    created_at: datetime = strawberry.field(description="When she was registered.")
    _id: strawberry.Private[uuid.UUID]
    _view: strawberry.Private[PeacebuilderView]

    @strawberry.field(description="Her sensitive fields, released field by field under consent.")
    def profile(self) -> PeacebuilderProfile:  # type: ignore[valid-type]
        return PeacebuilderProfile(_gate=self._view.gate)

    @strawberry.field(description="Networks (organisations) she belongs to, which may act for her.")
    async def networks(self, info: Info) -> list[Organisation]:
        org_ids = await info.context.loaders.networks.load(self._id)
        orgs = await info.context.loaders.organisation.load_many(org_ids)
        return [Organisation.from_model(o) for o in orgs if o is not None]

    @strawberry.field(description="Her cases that the caller may see.")
    def cases(self) -> list[Annotated[Case, strawberry.lazy("schema.cases.types")]]:
        from schema.cases.types import Case

        return [Case.from_view(c) for c in self._view.cases or []]

    @classmethod
    def from_view(cls, view: PeacebuilderView) -> Peacebuilder:
        return cls(id=strawberry.ID(ids.encode("Peacebuilder", view.id)), pseudonym=view.pseudonym,
                   preferred_language=view.preferred_language, created_at=view.created_at,
                   _id=view.id, _view=view)


@strawberry.input(description="Her sensitive fields, each in a data category. Omitted fields are "
                              "left unchanged; null removes a value.")
class PeacebuilderProfileInput:
    legal_name: str | None = strawberry.UNSET
    date_of_birth: str | None = strawberry.UNSET
    nationality: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    secure_messenger: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET
    region: str | None = strawberry.UNSET
    address: str | None = strawberry.UNSET
    coordinates: str | None = strawberry.UNSET
    family_members: str | None = strawberry.UNSET
    health_notes: str | None = strawberry.UNSET
    legal_situation: str | None = strawberry.UNSET
    bank_details: str | None = strawberry.UNSET
    travel_plans: str | None = strawberry.UNSET

    def to_dict(self) -> dict[str, str | None]:
        return {k: v for k, v in vars(self).items() if v is not strawberry.UNSET}


@strawberry.input(description="The consent she gave the organisation opening her file. Contact "
                              "and location are never included unless named. Recorded by staff, "
                              "it is pending — it releases nothing — until she (or her network) "
                              "confirms it, or, while she has no login and it names no identity, "
                              "contact, precise location, media or public recognition, a second "
                              "focal point confirms it against the evidence.")
class IntakeConsentInput:
    obtained_via: ObtainedVia = strawberry.field(description="How she gave it.")
    categories: list[DataCategory] | None = strawberry.field(
        default=None, description="Default: every category except identity, contact and "
                                  "location.")
    purposes: list[Purpose] | None = strawberry.field(
        default=None, description="Default: PROTECTION and EMERGENCY_RESPONSE.")
    valid_until: datetime | None = strawberry.field(default=None, description="Open-ended if null.")
    note: str | None = None
    evidence: ConsentEvidenceInput | None = strawberry.field(default=None, description=(
        "What shows she consented. Needed while she has no login: a second focal point of your "
        "organisation then confirms the grant against it."))
    counted_by: list[strawberry.ID] | None = strawberry.field(default=None, description=(
        "Her plain choice: \"count me, anonymously, in the statistics of ...\" — organisations "
        "(e.g. the overseeing NHRI) or working groups, at most 10. Each gets a grant for "
        "AGGREGATE_REPORTING only (incident details, coarse location and legal, counted in the "
        "declared monitoring tables), which releases counts and never her record; pending "
        "until confirmed like the intake grant."))

    def to_app(self) -> Any:
        from app.errors import BadInput
        from app.ids import decode_any
        from app.peacebuilders.service import IntakeConsent

        counted_by = []
        for value in self.counted_by or []:
            kind, id_ = decode_any(value, "intakeConsent.countedBy")
            if kind not in ("Organisation", "WorkingGroup"):
                raise BadInput("Name organisations or working groups.",
                               field="intakeConsent.countedBy")
            counted_by.append(("organisation" if kind == "Organisation" else "working_group",
                               id_))
        return IntakeConsent(
            counted_by=counted_by,
            obtained_via=self.obtained_via.value,
            categories=[c.value for c in self.categories] if self.categories else None,
            purposes=[p.value for p in self.purposes] if self.purposes else None,
            valid_until=self.valid_until, note=self.note,
            evidence=self.evidence.to_app() if self.evidence else None)  # type: ignore[arg-type]


@strawberry.input(description="Register a peacebuilder under a pseudonym, with her intake consent.")
class CreatePeacebuilderInput:
    pseudonym: str = strawberry.field(description="2-64 lowercase letters, digits or '-'; "
                                                  "unique in your organisation.")
    preferred_language: str = strawberry.field(default="en", description="Language tag.")
    network_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Peacebuilders' network organisations she belongs to. Named "
                                  "only: a network acts for her once confirmed (confirmNetwork).")
    profile: PeacebuilderProfileInput | None = strawberry.field(
        default=None, description="Her sensitive fields (stored by data category).")
    intake_consent: IntakeConsentInput = strawberry.field(
        description="Her consent to your organisation: your own access rests on it.")


@strawberry.input(description="Change a peacebuilder's record.")
class UpdatePeacebuilderInput:
    id: strawberry.ID = strawberry.field(description="Her global ID.")
    preferred_language: str | None = None
    network_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Replaces her networks when given.")
    profile: PeacebuilderProfileInput | None = strawberry.field(
        default=None, description="Profile fields to change (those omitted stay as they are).")


@strawberry.type(description="Result of createPeacebuilder / updatePeacebuilder.")
class PeacebuilderPayload:
    peacebuilder: Peacebuilder | None
    user_errors: list[UserError]
    intake_consent: ConsentGrant | None = strawberry.field(default=None, description=(
        "createPeacebuilder: her intake grant, PENDING until confirmed (see `awaiting`)."))
    counting_consents: list[ConsentGrant] = strawberry.field(default_factory=list, description=(
        "createPeacebuilder: the grants for `intakeConsent.countedBy` (AGGREGATE_REPORTING "
        "only), PENDING until confirmed."))


