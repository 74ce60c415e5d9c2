"""The one map from every sensitive field to its data category.

Consent grants name categories; a field with no category can never be released, and a test
fails if a model or input gains a sensitive field that is missing here.
"""

from __future__ import annotations

import enum


class DataCategory(enum.StrEnum):
    IDENTITY = "identity"
    CONTACT = "contact"
    LOCATION_COARSE = "location_coarse"
    LOCATION_PRECISE = "location_precise"
    FAMILY = "family"
    HEALTH = "health"
    INCIDENT_DETAILS = "incident_details"
    LEGAL = "legal"
    FINANCIAL = "financial"
    TRAVEL = "travel"


# Never part of a default grant: shared only when she names them explicitly.
NEVER_BY_DEFAULT = frozenset({
    DataCategory.CONTACT, DataCategory.LOCATION_COARSE, DataCategory.LOCATION_PRECISE,
})

# Her profile: field name -> category. Stored apart from the pseudonymous record.
PROFILE_FIELDS: dict[str, DataCategory] = {
    "legal_name": DataCategory.IDENTITY,
    "date_of_birth": DataCategory.IDENTITY,
    "nationality": DataCategory.IDENTITY,
    "phone": DataCategory.CONTACT,
    "email": DataCategory.CONTACT,
    "secure_messenger": DataCategory.CONTACT,
    "country": DataCategory.LOCATION_COARSE,
    "region": DataCategory.LOCATION_COARSE,
    "address": DataCategory.LOCATION_PRECISE,
    "coordinates": DataCategory.LOCATION_PRECISE,
    "family_members": DataCategory.FAMILY,
    "health_notes": DataCategory.HEALTH,
    "legal_situation": DataCategory.LEGAL,
    "bank_details": DataCategory.FINANCIAL,
    "travel_plans": DataCategory.TRAVEL,
}
