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
    # Joint risk assessments and protection plans (app/risk). Last, so existing bit masks keep
    # their meaning (app/access/visibility.CATEGORY_BITS numbers categories in order).
    RISK_ASSESSMENT = "risk_assessment"


class Purpose(enum.StrEnum):
    """Why data is accessed. There is no intelligence-gathering purpose, by design."""

    PROTECTION = "protection"
    EMERGENCY_RESPONSE = "emergency_response"
    LEGAL_SUPPORT = "legal_support"
    ADVOCACY = "advocacy"
    PUBLIC_RECOGNITION = "public_recognition"
    MEDIA = "media"
    AGGREGATE_REPORTING = "aggregate_reporting"


class ObtainedVia(enum.StrEnum):
    IN_PERSON = "in_person"
    WRITTEN = "written"
    NETWORK_FOCAL_POINT = "network_focal_point"
    VERBAL_WITNESSED = "verbal_witnessed"
    SELF_SERVICE = "self_service"  # she recorded it herself, signed in


class EvidenceKind(enum.StrEnum):
    """What staff keep that shows she consented; a second person confirms against it."""

    SIGNED_FORM = "signed_form"
    RECORDING = "recording"
    WITNESS_STATEMENT = "witness_statement"


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

# Categories an intake consent covers when none are named: contact and location never.
DEFAULT_CATEGORIES = frozenset(DataCategory) - NEVER_BY_DEFAULT

# Case fields that hold sensitive data: field -> category.
CASE_FIELDS: dict[str, DataCategory] = {
    "summary": DataCategory.INCIDENT_DETAILS,
}

# Incident fields: field -> category (app/incidents).
INCIDENT_FIELDS: dict[str, DataCategory] = {
    "description": DataCategory.INCIDENT_DETAILS,
    "alleged_source_as_reported": DataCategory.INCIDENT_DETAILS,
    "location_coarse": DataCategory.LOCATION_COARSE,
    "location_precise": DataCategory.LOCATION_PRECISE,
}
# Codes chosen from declared lists as she reports (app/tables/declared.py): counted in
# aggregate tables only, recorded only when her consent releases their category.
INCIDENT_CODES: dict[str, DataCategory] = {
    "region_code": DataCategory.LOCATION_COARSE,
    "source_category": DataCategory.INCIDENT_DETAILS,
}
# Other free text on the response: measures and referrals (incident details), proceedings (legal).
RESPONSE_CATEGORY = DataCategory.INCIDENT_DETAILS
PROCEEDING_CATEGORY = DataCategory.LEGAL
# Justice follow-up (app/justice): free text on hearings and detention watch, per table.
JUSTICE_FIELDS: dict[str, dict[str, DataCategory]] = {
    "hearings": {"outcome": DataCategory.LEGAL},
    "detentions": {"place": DataCategory.LEGAL},
    "detention_visits": {"notes": DataCategory.LEGAL},
}
# Joint risk assessments and protection plans (app/risk): free text per table, and the plan
# fields added to measures (the threat a measure addresses, its part of the plan, its cost and
# funding, the family members she designated) — all under risk_assessment.
RISK_CATEGORY = DataCategory.RISK_ASSESSMENT
RISK_FIELDS: dict[str, dict[str, DataCategory]] = {
    "risk_assessments": dict.fromkeys(
        ("vulnerabilities", "capacities", "reasoning", "context_notes", "her_analysis",
         "her_view"), RISK_CATEGORY),
    "risk_threats": dict.fromkeys(
        ("facts", "pattern", "objective", "source_as_reported", "feasibility"), RISK_CATEGORY),
    "measures": dict.fromkeys(
        ("threat_id", "plan_kind", "cost_amount", "cost_currency", "funding_source",
         "covered_family"), RISK_CATEGORY),
}
# Safety check-ins, digital security assessments (app/checkins) and the consultations log
# (app/consultations): free text per table. The safety contact is contact data; the rest is her
# risk picture.
CHECKIN_FIELDS: dict[str, dict[str, DataCategory]] = {
    "check_in_schedules": {"safety_contact": DataCategory.CONTACT,
                           "missed_action_notes": DataCategory.RISK_ASSESSMENT},
    "security_assessments": {"assets": DataCategory.RISK_ASSESSMENT,
                             "vulnerabilities": DataCategory.RISK_ASSESSMENT,
                             "recommendations": DataCategory.RISK_ASSESSMENT},
    "consultations": {"topics": DataCategory.RISK_ASSESSMENT,
                      "risks_raised": DataCategory.RISK_ASSESSMENT,
                      "follow_ups": DataCategory.RISK_ASSESSMENT},
}
