"""GraphQL enums of the consent vocabulary (defined once in app/tables/categories.py)."""

from __future__ import annotations

import strawberry

from app.tables import categories
from schema.common import describe_values

DataCategory = strawberry.enum(categories.DataCategory, description="A category of her data.")
describe_values(DataCategory, {
    "IDENTITY": "Who she is: legal name, date of birth, nationality.",
    "CONTACT": "How to reach her: phone, email, secure messenger.",
    "LOCATION_COARSE": "Where she is, to country and region.",
    "LOCATION_PRECISE": "Where exactly she is: address and coordinates.",
    "FAMILY": "Her family members.",
    "HEALTH": "Her health notes.",
    "INCIDENT_DETAILS": "What happened to her: incident descriptions, evidence, measures and referrals.",
    "LEGAL": "Her legal situation: proceedings, hearings, detention.",
    "FINANCIAL": "Her bank details and grants.",
    "TRAVEL": "Her travel plans.",
    "RISK_ASSESSMENT": "Her safety check-ins, digital security assessments and consultations.",
})
Purpose = strawberry.enum(categories.Purpose, description=(
    "Why data is accessed; declared per request in the Safety-Net-Purpose header. There is no "
    "intelligence-gathering purpose."))
describe_values(Purpose, {
    "PROTECTION": "Protecting her from the threats she faces.",
    "EMERGENCY_RESPONSE": "Responding to an emergency that endangers her.",
    "LEGAL_SUPPORT": "Legal support (lawyers, proceedings, detention).",
    "ADVOCACY": "Advocacy on her behalf.",
    "PUBLIC_RECOGNITION": "Publicly recognising her work.",
    "MEDIA": "Contact with the media about her.",
    "AGGREGATE_REPORTING": "Counting only: aggregate statistics, never her record.",
})
ObtainedVia = strawberry.enum(categories.ObtainedVia, description="How her consent was obtained.")
describe_values(ObtainedVia, {
    "IN_PERSON": "She said so in person to staff.",
    "WRITTEN": "She gave it in writing.",
    "NETWORK_FOCAL_POINT": "A focal point of a network she confirmed recorded it for her.",
    "VERBAL_WITNESSED": "She said so verbally, with a witness.",
    "SELF_SERVICE": "She recorded it herself, signed in.",
})
EvidenceKind = strawberry.enum(categories.EvidenceKind, description=(
    "What your organisation keeps that shows she consented."))
describe_values(EvidenceKind, {
    "SIGNED_FORM": "A consent form she signed.",
    "RECORDING": "A recording of her giving consent.",
    "WITNESS_STATEMENT": "A statement by a witness to her verbal consent.",
})


@strawberry.input(description="The evidence of her consent that a second person of your "
                              "organisation checks before confirming it (two-person rule).")
class ConsentEvidenceInput:
    kind: EvidenceKind = strawberry.field(  # type: ignore[valid-type]
        description="What kind of evidence shows she consented.")
    reference: str = strawberry.field(description="Where it is kept (a file number, a recording "
                                                  "reference); at most 500 characters. Sealed.")

    def to_app(self) -> object:
        from app.consent.service import Evidence

        return Evidence(kind=self.kind.value, reference=self.reference)
