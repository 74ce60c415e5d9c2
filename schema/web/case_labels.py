"""Translated labels for the API's enum codes on the case pages (never a raw code like HIGH).

Keys are the codes exactly as the API answers them; `label(table, code)` gives the message to
translate, and a code the table does not know yet reads as "Other" rather than as itself."""

from __future__ import annotations

from schema.web.core import N_

CASE_STATUS = {"OPEN": N_("Open"), "ON_HOLD": N_("On hold"), "CLOSED": N_("Closed")}
LEVEL = {"LOW": N_("Low"), "MEDIUM": N_("Medium"), "HIGH": N_("High"),
         "CRITICAL": N_("Critical")}
INCIDENT_TYPE = {
    "PHYSICAL_ATTACK": N_("Physical attack"),
    "ONLINE_HARASSMENT": N_("Online harassment"),
    "THREATS": N_("Threats"),
    "LEGAL_ADMINISTRATIVE_HARASSMENT": N_("Legal or administrative harassment"),
    "CRIMINALISATION": N_("Criminalisation"),
    "SURVEILLANCE": N_("Surveillance"),
    "THREATS_TO_FAMILY_OR_COLLEAGUES": N_("Threats to family or colleagues"),
    "DETENTION": N_("Detention"),
    "SEXUAL_VIOLENCE": N_("Sexual violence"),
    "SMEAR_CAMPAIGN": N_("Smear campaign"),
    "OTHER": N_("Other"),
}
INCIDENT_STATUS = {"REPORTED": N_("Reported"), "ACKNOWLEDGED": N_("Acknowledged"),
                   "RESPONDING": N_("Responding"), "RESOLVED": N_("Resolved")}
ASSESSMENT_STATUS = {
    "DRAFT": N_("Draft"),
    "SHARED_WITH_HER": N_("Shared with her, awaiting her answer"),
    "AGREED": N_("Agreed by her"),
    "CONTESTED": N_("Contested by her"),
    "SUPERSEDED": N_("Superseded"),
}
ANSWERED_BY = {"HERSELF": N_("Herself"), "NETWORK_FOCAL_POINT": N_("Her network's focal point"),
               "TWO_PERSON": N_("Two staff members after consulting her")}
MEASURE_KIND = {
    "ACCOMPANIMENT": N_("Accompaniment"),
    "HOSTING_AT_PREMISES": N_("Hosting at premises"),
    "SECURE_COMMUNICATION": N_("Secure communication"),
    "SECURE_TRANSPORT": N_("Secure transport"),
    "LEGAL_SUPPORT": N_("Legal support"),
    "DIPLOMATIC_DIALOGUE": N_("Diplomatic dialogue"),
    "PUBLIC_STATEMENT": N_("Public statement"),
    "GRANT": N_("Grant"),
    "RELOCATION": N_("Relocation"),
    "PSYCHOSOCIAL_SUPPORT": N_("Psychosocial support"),
    "MEDIA_CONTACT": N_("Media contact"),
    "RECOGNITION": N_("Recognition"),
}
MEASURE_STATUS = {"planned": N_("Planned"), "in_progress": N_("In progress"), "done": N_("Done"),
                  "cancelled": N_("Cancelled")}
PLAN_KIND = {"DAY_TO_DAY": N_("Day-to-day"), "PREVENTIVE_PROTOCOL": N_("Preventive protocol"),
             "EMERGENCY_PROTOCOL": N_("Emergency protocol")}
PROCEEDING_KIND = {"investigation": N_("Investigation"), "detention": N_("Detention watch")}
HEARING_STATUS = {"SCHEDULED": N_("Scheduled"), "HELD": N_("Held"), "ADJOURNED": N_("Adjourned"),
                  "NOT_HELD": N_("Not held"), "CANCELLED": N_("Cancelled"),
                  "RESCHEDULED": N_("Rescheduled")}
REFERRAL_STATUS = {"pending": N_("Pending"), "accepted": N_("Accepted"),
                   "declined": N_("Declined"), "completed": N_("Completed"),
                   "revoked": N_("Revoked")}
GRANT_STATUS = {"PENDING": N_("Pending"), "LIVE": N_("Live"),
                "NOT_YET_VALID": N_("Not yet valid"), "EXPIRED": N_("Expired"),
                "REVOKED": N_("Revoked")}
CATEGORY = {
    "IDENTITY": N_("Identity"),
    "CONTACT": N_("Contact details"),
    "LOCATION_COARSE": N_("Location (region)"),
    "LOCATION_PRECISE": N_("Precise location"),
    "FAMILY": N_("Family"),
    "HEALTH": N_("Health"),
    "INCIDENT_DETAILS": N_("Incident details"),
    "LEGAL": N_("Legal"),
    "FINANCIAL": N_("Financial"),
    "TRAVEL": N_("Travel"),
    "RISK_ASSESSMENT": N_("Risk assessment"),
}
PURPOSE = {
    "PROTECTION": N_("Protection"),
    "EMERGENCY_RESPONSE": N_("Emergency response"),
    "LEGAL_SUPPORT": N_("Legal support"),
    "ADVOCACY": N_("Advocacy"),
    "PUBLIC_RECOGNITION": N_("Public recognition"),
    "MEDIA": N_("Media"),
    "AGGREGATE_REPORTING": N_("Aggregate reporting (counts only)"),
}
# Why a field or a section is not shown (the API's WithheldReason).
REASON = {
    "NO_PURPOSE_DECLARED": N_("no purpose was declared"),
    "CONSENT_DOES_NOT_COVER": N_("her consent does not cover it"),
    "NEED_TO_KNOW": N_("your role does not need to know it"),
    "ERASED": N_("it was erased"),
    "UNREADABLE": N_("it cannot be opened"),
}
# Timeline entries by what they are about (the part of the kind before the dot).
TIMELINE = {
    "case": N_("Case changed"),
    "incident": N_("Incident"),
    "measure": N_("Protection measure"),
    "risk_assessment": N_("Risk assessment"),
    "investigation": N_("Investigation"),
    "detention": N_("Detention watch"),
    "detention_watch": N_("Detention watch"),
    "detention_check": N_("Detention check"),
    "detention_visit": N_("Detention visit"),
    "referral": N_("Referral"),
    "hearing": N_("Hearing"),
    "check_in": N_("Check-in"),
    "check_in_schedule": N_("Check-in schedule"),
    "consultation": N_("Consultation"),
    "security_assessment": N_("Digital security assessment"),
    "attachment": N_("Attachment"),
    "correction": N_("Correction request"),
}
# Common timeline kinds in full; others read by their subject (TIMELINE).
TIMELINE_KIND = {
    "incident.reported": N_("Incident reported"),
    "incident.acknowledged": N_("Incident acknowledged"),
    "incident.status": N_("Incident status changed"),
    "case.risk_changed": N_("Risk level changed"),
    "case.closed": N_("Case closed"),
    "case.reopened": N_("Case reopened"),
    "case.closure_requested": N_("Closure requested"),
    "measure.added": N_("Protection measure added"),
    "measure.status": N_("Protection measure status changed"),
    "measure.planned": N_("Protection measure planned"),
    "risk_assessment.drafted": N_("Risk assessment drafted"),
    "risk_assessment.shared": N_("Risk assessment shared with her"),
    "risk_assessment.current": N_("Risk assessment in force"),
    "risk_assessment.superseded": N_("Risk assessment superseded"),
    "risk_assessment.reassessment_started": N_("Reassessment started"),
    "referral.created": N_("Referral made"),
    "investigation.updated": N_("Investigation updated"),
}
OTHER = N_("Other")


def label(table: dict[str, str], code: object) -> str:
    """The untranslated message for an API code (the template translates it)."""
    return table.get(str(code), OTHER) if code is not None else ""


def timeline_label(kind: str) -> str:
    if kind in TIMELINE_KIND:
        return TIMELINE_KIND[kind]
    return TIMELINE.get(kind.partition(".")[0], N_("Change on the case"))
