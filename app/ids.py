"""Opaque global IDs: base64url("Type:uuid"). Clients must not parse them. One codec for
GraphQL and the HTTP routes (attachments): a malformed ID is BAD_USER_INPUT, an ID of another
type is NOT_FOUND, everywhere."""

from __future__ import annotations

import base64
import binascii
import uuid

from app.errors import BadInput, NotFound

# base64's URL-safe alphabet from the standard one (what base64.urlsafe_b64encode does, in C).
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def encode(type_name: str, id_: uuid.UUID) -> str:
    # A page encodes a few hundred IDs: binascii directly, without base64's Python wrappers.
    return binascii.b2a_base64(f"{type_name}:{id_}".encode(), newline=False).translate(
        _URLSAFE).rstrip(b"=").decode()


def decode_any(value: str, field: str = "id") -> tuple[str, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        type_name, _, raw_id = raw.partition(":")
        if not type_name.isidentifier():
            raise ValueError
        return type_name, uuid.UUID(raw_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadInput("Invalid ID.", field=field) from exc


def decode(value: str, type_name: str, field: str = "id") -> uuid.UUID:
    """The UUID inside an ID of the expected type; any other type of ID is simply not found."""
    found_type, id_ = decode_any(value, field)
    if found_type != type_name:
        raise NotFound()
    return id_


# --- one ID scheme on the way out -------------------------------------------------------------
# Stored payloads, timeline details and access-log entries keep raw UUIDs (the access log's hash
# chain covers them as stored); every place that hands one to a client converts it here, by the
# key it is stored under, so a client never decodes an ID and every endpoint accepts what it got.
KEY_TYPES: dict[str, str] = {
    "incident": "Incident", "case": "Case", "measure": "Measure", "referral": "Referral",
    "proceeding": "Proceeding", "attachment": "Attachment", "approval": "Approval",
    "organisation": "Organisation", "organisations": "Organisation", "owner": "Organisation",
    "to": "Organisation", "from": "Organisation", "org": "Organisation",
    "peacebuilder": "Peacebuilder", "confirmation": "Confirmation", "grant": "ConsentGrant",
    "break_glass": "BreakGlass", "working_group": "WorkingGroup", "erasure": "Erasure",
    "user": "User", "owner_person": "User", "shift": "DutyShift", "network": "NetworkLink",
    "note": "CaseNote",
    "hearing": "Hearing", "hearing_to": "Hearing", "hearing_from": "Hearing",
    "new_hearing": "Hearing", "detention": "Detention", "detention_check": "DetentionCheck",
    "visit": "DetentionVisit", "help_request": "HelpRequest", "request": "DataRequest",
    "notice": "Notice", "data_request": "DataRequest",
    "risk_assessment": "RiskAssessment",
    "superseded_by": "RiskAssessment",
    "threat": "RiskThreat",
    "check_in": "CheckIn", "schedule": "CheckInSchedule",
    "security_assessment": "SecurityAssessment", "assessment": "SecurityAssessment",
    "consultation": "Consultation", "follow_up": "ConsultationFollowUpTask",
}
# Timeline events: the type of the subject, by the event kind's prefix.
EVENT_SUBJECTS: dict[str, str] = {
    "incident": "Incident", "measure": "Measure", "referral": "Referral",
    "attachment": "Attachment", "detention": "Proceeding", "investigation": "Proceeding",
    "proceeding": "Proceeding", "approval": "Approval", "case": "Confirmation",
    "hearing": "Hearing", "detention_watch": "Detention", "detention_check": "DetentionCheck",
    "detention_visit": "DetentionVisit",
    "correction": "DataRequest", "risk_assessment": "RiskAssessment",
    "risk_review": "RiskAssessment", "risk_reassessment": "RiskAssessment",
    "check_in_schedule": "CheckInSchedule", "check_in": "CheckIn",
    "security_assessment": "SecurityAssessment", "consultation": "Consultation",
    "consultation_follow_up": "ConsultationFollowUpTask", "follow_up": "ConsultationFollowUpTask",
}


def _as_uuid(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) in (32, 36):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def globalize(data: object, type_name: str | None = None) -> object:
    """The same JSON value with every UUID under a known key as its opaque global ID.
    `subject` takes its type from a sibling `what` (escalation notices)."""
    if isinstance(data, dict):
        out: dict[str, object] = {}
        for key, value in data.items():
            kind = KEY_TYPES.get(key)
            if key == "subject" and isinstance(data.get("what"), str):
                kind = KEY_TYPES.get(str(data["what"]))
            out[key] = globalize(value, kind)
        return out
    if isinstance(data, list):
        return [globalize(v, type_name) for v in data]
    if type_name is not None and (raw := _as_uuid(data)) is not None:
        return encode(type_name, raw)
    return data


def target_global_id(target_type: str | None, target_id: str | None) -> str | None:
    """An access-log entry's target as a global ID (None when it names no object)."""
    raw = _as_uuid(target_id)
    if target_type is None or raw is None:
        return None
    return encode(target_type, raw)


def event_subject(kind: str, subject_id: uuid.UUID | None) -> str | None:
    if subject_id is None:
        return None
    return encode(EVENT_SUBJECTS.get(kind.split(".", 1)[0], "Node"), subject_id)
