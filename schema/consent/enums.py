"""GraphQL enums of the consent vocabulary (defined once in app/consent/categories.py)."""

from __future__ import annotations

import strawberry

from app.consent import categories

DataCategory = strawberry.enum(categories.DataCategory, description="A category of her data.")
Purpose = strawberry.enum(categories.Purpose, description=(
    "Why data is accessed; declared per request in the Safety-Net-Purpose header. There is no "
    "intelligence-gathering purpose."))
ObtainedVia = strawberry.enum(categories.ObtainedVia, description="How her consent was obtained.")
EvidenceKind = strawberry.enum(categories.EvidenceKind, description=(
    "What your organisation keeps that shows she consented."))


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
