"""GraphQL types for the access log, alerts and her access history."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app import ids as app_ids
from app.audit import verify
from app.tables import audit as models
from schema import ids
from schema.common import Node, closed_set
from schema.consent.enums import Purpose
from schema.context import Info
from schema.orgs.types import Organisation, organisation_of

AccessDecision = closed_set(models.Decision, "An access decision.", {
    "ALLOW": "Allowed.", "DENY": "Refused."}, name="AccessDecision")
AccessAlertKind = closed_set(models.AlertKind, "Unusual access noticed in the log.", {
    "BULK_READ": "Many records of different women read at once.",
    "REPEATED_DENIALS": "Many refused attempts by one caller in a short time.",
    "REPEATED_BREAK_GLASS": "Break-glass opened repeatedly."}, name="AccessAlertKind")


@strawberry.type(description="One access decision or change. Never holds sensitive values.")
class AccessLogEntry(Node):
    seq: int | None = strawberry.field(description="Position in the hash chain (null until chained).")
    at: datetime = strawberry.field(description="When it happened (UTC).")
    actor: str = strawberry.field(description="user:<id>, client:<id>, peacebuilder:<id> or system.")
    purpose: Purpose | None = strawberry.field(  # type: ignore[valid-type]
        description="The purpose the actor declared for the request (null when none was needed).")
    action: str = strawberry.field(
        description="What was done or attempted, as a dotted code (e.g. `case.read`, `consent.grant`).")
    target_type: str | None = strawberry.field(
        description="The type of the object acted on (e.g. Case, Peacebuilder); null when none.")
    target_id: str | None = strawberry.field(description=(
        "Opaque global ID of the target (of type `targetType`); the export also carries the "
        "stored form the hash chain covers."))
    decision: AccessDecision = strawberry.field(description="What was decided.")  # type: ignore[valid-type]
    reason: str | None = strawberry.field(
        description="Why it was denied, or a note on an allowed action; null when none.")
    request_id: str = strawberry.field(
        description="The request it belongs to (the `X-Request-ID` answered to the caller).")
    details: str | None = strawberry.field(description="JSON: IDs and categories, never values.",
                                           deprecation_reason="Use `data` (the same, as JSON).")
    hash: str | None = strawberry.field(
        description="SHA-256 of this entry chained to the previous one (hex); null until chained.")
    prev_hash: str | None = strawberry.field(
        description="`hash` of the previous entry of the chain (hex); null for the first or until chained.")

    @strawberry.field(description="IDs (opaque global IDs) and categories, never values.")
    def data(self) -> JSON | None:
        return json.loads(self.details) if self.details else None
    _org: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The organisation the actor acted for.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_model(cls, e: models.AccessLogEntry) -> AccessLogEntry:
        return cls(id=strawberry.ID(ids.encode("AccessLogEntry", e.id)), seq=e.seq, at=e.at,
                   actor=e.actor, purpose=e.purpose, action=e.action, target_type=e.target_type,
                   target_id=app_ids.target_global_id(e.target_type, e.target_id) or e.target_id,
                   decision=e.decision, reason=e.reason, request_id=e.request_id,
                   details=(json.dumps(app_ids.globalize(e.details), sort_keys=True)
                            if e.details else None),
                   hash=e.hash, prev_hash=e.prev_hash, _org=e.org_id)


ACTIONS = {
    "data.read": ("read your {cats}", "asked for your {cats} and was refused"),
    "data.export": ("exported your data", "was refused an export of your data"),
    "consent.grant": ("recorded a consent grant", "was refused recording a grant"),
    "consent.narrow": ("narrowed a consent grant", ""),
    "consent.extend": ("extended a consent grant", ""),
    "consent.revoke": ("revoked a consent grant", ""),
    "break_glass.open": ("opened emergency access without your consent", ""),
    "break_glass.close": ("closed emergency access", ""),
    "case.open": ("opened a case", ""),
    "case.update": ("updated your case", ""),
    "peacebuilder.update": ("updated your record", ""),
    "peacebuilder.create": ("registered you", ""),
    "peacebuilder.read": ("", "asked for your record and was refused"),
    "case.read": ("", "asked for your case and was refused"),
    "incident.report": ("reported an incident on your case", ""),
    "attachment.upload": ("added evidence to an incident", ""),
    "referral.create": ("referred your case", "was refused referring your case"),
    "approval.record": ("recorded your approval of a public act", ""),
    "hearing.schedule": ("scheduled a hearing in your case",
                         "was refused scheduling a hearing in your case"),
    "hearing.reschedule": ("moved a hearing in your case",
                           "was refused moving a hearing in your case"),
    "hearing.cancel": ("cancelled a hearing in your case",
                       "was refused cancelling a hearing in your case"),
    "hearing.outcome": ("recorded how a hearing in your case went",
                        "was refused recording how a hearing in your case went"),
    "detention.record": ("recorded that you are detained, to watch over your detention",
                         "was refused recording your detention"),
    "detention.visit": ("recorded a visit to you in detention",
                        "was refused recording a visit to you in detention"),
    "detention.release": ("recorded your release", "was refused recording your release"),
}


@strawberry.type(description="One access to her data, in plain language.")
class AccessHistoryEntry:
    at: datetime = strawberry.field(description="When her data was accessed (UTC).")
    purpose: Purpose | None = strawberry.field(  # type: ignore[valid-type]
        description="The purpose the reader declared (null: she herself, or the system).")
    decision: AccessDecision = strawberry.field(  # type: ignore[valid-type]
        description="Whether it was read or changed (allowed) or the attempt was refused (denied).")
    description: str = strawberry.field(description="What happened, e.g. 'read your identity'.")
    _org: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="Which organisation.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org)

    @classmethod
    def from_model(cls, e: models.AccessLogEntry, pb_id: uuid.UUID | None) -> AccessHistoryEntry:
        allowed, denied = ACTIONS.get(e.action, (e.action.replace("_", " ").replace(".", ": "), ""))
        cats = ((e.details or {}).get("records") or {}).get(str(pb_id), []) if pb_id else []
        text = (allowed if e.decision == "allow" else denied or f"was refused: {allowed}")
        text = text.format(cats=", ".join(c.replace("_", " ") for c in cats) or "record")
        return cls(at=e.at, purpose=e.purpose, decision=e.decision, description=text, _org=e.org_id)


@strawberry.type(description="Unusual access noticed in the log (IDs and counts only).")
class Alert(Node):
    kind: AccessAlertKind = strawberry.field(description="What was noticed.")  # type: ignore[valid-type]
    created_at: datetime = strawberry.field(description="When the alert was raised (UTC).")
    details: str = strawberry.field(description="JSON of IDs and counts.",
                                    deprecation_reason="Use `data` (the same, as JSON).")

    @strawberry.field(description="IDs and counts.")
    def data(self) -> JSON:
        return json.loads(self.details)

    @classmethod
    def from_model(cls, a: models.Alert) -> Alert:
        return cls(id=strawberry.ID(ids.encode("Alert", a.id)), kind=a.kind,
                   created_at=a.created_at, details=json.dumps(a.details, sort_keys=True))


@strawberry.input(description="Filters for the access log (combined with AND).")
class AccessLogFilter:
    since: datetime | None = strawberry.field(default=None, description="Inclusive.")
    until: datetime | None = strawberry.field(default=None, description="Exclusive.")
    organisation_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "Only entries of this organisation (yours, or one that accepts your oversight)."))
    actor: str | None = None
    peacebuilder_pseudonym: str | None = None
    decision: AccessDecision | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Only allowed, or only denied, entries.")
    purpose: Purpose | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Only entries of requests that declared this purpose.")
    action_prefix: str | None = None


AccessLogChainState = closed_set(verify.ChainState, "What the access log's verification found.", {
    "VERIFIED": "The newest checkpoint is validly signed and the chain recomputes to its head.",
    "BROKEN": "A signature, a link or an entry's hash does not match: the log was altered.",
    "NO_CHECKPOINT": "No checkpoint has been signed yet: nothing to verify against."},
    name="AccessLogChainState")


@strawberry.type(description=(
    "The access log checked against its newest signed checkpoint: the checkpoint's signature, "
    "and the hash chain recomputed over the entries before it (at most the last 20,000; "
    "`safety-net audit verify` checks every entry and every checkpoint file)."))
class AccessLogVerification:
    state: AccessLogChainState = strawberry.field(  # type: ignore[valid-type]
        description="What the check found.")
    checkpoint_size: int | None = strawberry.field(
        description="Entries the newest checkpoint covers (null when there is none).")
    checkpoint_at: datetime | None = strawberry.field(
        description="When the newest checkpoint was signed (UTC).")
    checkpoint_key_id: str | None = strawberry.field(
        description="The ID of the key that signed it (the operator publishes the public keys).")
    checkpoint_head: str | None = strawberry.field(
        description="The chain head the checkpoint commits to (SHA-256, hex).")
    checked_from: int = strawberry.field(
        description="The first entry recomputed (1: from the start of the log).")
    checked_through: int = strawberry.field(
        description="The last entry recomputed: the checkpoint's size.")
    pending: int = strawberry.field(
        description="Entries written but not chained yet (covered by a later checkpoint).")
    first_bad_seq: int | None = strawberry.field(
        description="The first entry found not to match (null when verified).")
    problems: list[str] = strawberry.field(
        description="What did not match, by sequence number (IDs and numbers only).")

    @classmethod
    def from_status(cls, s: verify.ChainStatus) -> AccessLogVerification:
        cp = s.checkpoint
        return cls(state=s.state, checkpoint_size=cp.size if cp else None,
                   checkpoint_at=cp.time if cp else None,
                   checkpoint_key_id=cp.key_id if cp else None,
                   checkpoint_head=cp.head if cp else None, checked_from=s.checked_from,
                   checked_through=s.checked_through, pending=s.pending,
                   first_bad_seq=s.first_bad_seq, problems=list(s.problems))
