"""Her free text, sealed with her own data key: the one way to write and to read it.

Every column that holds free text about a peacebuilder (her profile fields, case summaries,
incident details, measures, proceedings, internal notes, approvals, referrals, correction
requests, consent notes, break-glass reasons, evidence files) is stored as `crypto.seal` output
under HER data key, with associated data naming the owning organisation, the table, the record
and the field (`Ref.aad`). So:

- a database dump alone holds no readable text (the data key is wrapped by a KEK kept elsewhere);
- a ciphertext copied to another record, field or organisation does not open (fails closed);
- erasure destroys her data key: every value sealed with it is unreadable everywhere at once.

Reads go through `open_many` (one key lookup for all the peacebuilders of a page, cached for the
request); a value that does not open is reported as `ERASED` (her key is gone) or `UNREADABLE`
(tampered with, moved, or never sealed) — never as plaintext, never as an exception.
See docs/decisions/0011-encryption-at-rest.md.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app import crypto
from app.access.context import AccessContext
from app.access.gate import Gate
from app.errors import BadInput
from app.her import keys as pb_keys

if TYPE_CHECKING:
    from app.tables.cases import Case, CaseNote
    from app.tables.confirmations import Confirmation
    from app.tables.consent import BreakGlass, ConsentEvent, DataRequest
    from app.tables.incidents import Approval, Incident, Measure, Proceeding, Referral
    from app.tables.peacebuilders import Erasure

log = logging.getLogger("safety_net.sealing")

ERASED = "ERASED"  # her data key was destroyed: erased on purpose
UNREADABLE = "UNREADABLE"  # failed its integrity check: altered, moved or never sealed


@dataclass(frozen=True)
class Ref:
    """Where one sealed value lives: whose key opens it and what it is bound to."""

    peacebuilder_id: uuid.UUID
    org_id: uuid.UUID | None  # the organisation owning the record (None: she herself)
    table: str
    record_id: uuid.UUID
    field: str

    @property
    def aad(self) -> bytes:
        return crypto.associated(self.org_id, self.table, self.record_id, self.field)


# Where each sealed column lives. The organisation is the record's own, immutable owner column
# (approvals, correction requests: hers alone, None). Writers and readers both use these.

def profile_ref(pb_id: uuid.UUID, registered_by: uuid.UUID, field: str) -> Ref:
    return Ref(pb_id, registered_by, "peacebuilder_data", pb_id, field)


def case_ref(case: Case, field: str = "summary") -> Ref:
    return Ref(case.peacebuilder_id, case.lead_org_id, "cases", case.id, field)


def note_ref(note: CaseNote, pb_id: uuid.UUID) -> Ref:
    return Ref(pb_id, note.org_id, "case_notes", note.id, "body")


def incident_ref(incident: Incident, pb_id: uuid.UUID, field: str) -> Ref:
    return Ref(pb_id, incident.reporting_org_id, "incidents", incident.id, field)


def measure_ref(measure: Measure, pb_id: uuid.UUID) -> Ref:
    return Ref(pb_id, measure.owner_org_id, "measures", measure.id, "description")


def proceeding_ref(proceeding: Proceeding, pb_id: uuid.UUID) -> Ref:
    return Ref(pb_id, proceeding.org_id, "proceedings", proceeding.id, "data")


def referral_ref(referral: Referral, pb_id: uuid.UUID, field: str) -> Ref:
    return Ref(pb_id, referral.from_org_id, "referrals", referral.id, field)


def approval_ref(approval: Approval) -> Ref:
    return Ref(approval.peacebuilder_id, None, "approvals", approval.id, "description")


def data_request_ref(request: DataRequest) -> Ref:
    return Ref(request.peacebuilder_id, None, "data_requests", request.id, "message")


def consent_note_ref(event: ConsentEvent) -> Ref:
    return Ref(event.peacebuilder_id, event.recorded_by_org_id, "consent_events", event.id, "note")


def break_glass_ref(glass: BreakGlass) -> Ref:
    return Ref(glass.peacebuilder_id, glass.org_id, "break_glass", glass.id, "reason")


def confirmation_ref(confirmation: Confirmation, field: str) -> Ref:
    """A two-person request's reason or evidence (about her: sealed with her key)."""
    assert confirmation.peacebuilder_id is not None
    return Ref(confirmation.peacebuilder_id, confirmation.org_id, "confirmations",
               confirmation.id, field)


def erasure_ref(erasure: Erasure) -> Ref:
    return Ref(erasure.peacebuilder_id, erasure.requested_by_org_id, "erasures", erasure.id,
               "reason")


def attachment_ref(pb_id: uuid.UUID, incident: Incident, attachment_id: uuid.UUID) -> Ref:
    # The incident is part of the field: a file moved to another incident does not open.
    return Ref(pb_id, incident.reporting_org_id, "attachments", attachment_id,
               f"ciphertext@{incident.id}")


@dataclass(frozen=True)
class Opened:
    """A value read back: `value`, or None with `problem` (ERASED / UNREADABLE) if it was
    stored but cannot be read. Both None: nothing was stored."""

    value: str | None
    problem: str | None = None


async def data_key(ctx: AccessContext, pb_id: uuid.UUID, field: str) -> bytes:
    """Her data key for writing; refused once she is erased (nothing new is kept about her)."""
    key = (await pb_keys.of(ctx, [pb_id]))[pb_id]
    if key is None:
        raise BadInput("Her data was erased; it cannot be written again.", field=field)
    return key


async def seal(ctx: AccessContext, ref: Ref, value: str | None, *,
               input_field: str | None = None) -> str | None:
    """The stored form of `value` (None stays None)."""
    if value is None:
        return None
    key = await data_key(ctx, ref.peacebuilder_id, input_field or ref.field)
    return crypto.seal(key, ref.aad, value)


async def seal_json(ctx: AccessContext, ref: Ref, value: dict[str, Any], *,
                    input_field: str | None = None) -> dict[str, Any]:
    """A JSON object stored sealed: `{"sealed": token}` (the column stays a JSON object)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    token = await seal(ctx, ref, text, input_field=input_field)
    return {"sealed": token}


async def open_many(ctx: AccessContext,
                    items: Sequence[tuple[Ref, str | None]]) -> list[Opened]:
    """Open many values with one key lookup for all the peacebuilders concerned."""
    wanted = list({ref.peacebuilder_id for ref, token in items if token is not None})
    keys = await pb_keys.of(ctx, wanted) if wanted else {}
    return [_open(keys.get(ref.peacebuilder_id), ref, token) for ref, token in items]


async def open_one(ctx: AccessContext, ref: Ref, token: str | None) -> Opened:
    return (await open_many(ctx, [(ref, token)]))[0]


def open_json(opened: Opened) -> dict[str, Any] | None:
    """The object sealed by `seal_json`, from its opened text."""
    if opened.value is None:
        return None
    value = json.loads(opened.value)
    return value if isinstance(value, dict) else None


def json_token(stored: Any) -> str | None:
    """The token inside a column written by `seal_json`; a bare object was never sealed."""
    if isinstance(stored, dict) and set(stored) == {"sealed"}:
        token = stored["sealed"]
        return token if isinstance(token, str) else ""
    return "" if stored else None  # plaintext JSON: unreadable, never shown as is


def fill(gate: Gate, key: bytes | None,
         items: Sequence[tuple[str, str, Ref, str | None]]) -> None:
    """Open into `gate` the values whose category it releases: (column, category, ref, stored
    token) each; the others stay closed (never decrypted). Her key was read with the rows."""
    # Written into the gate directly, without an `Opened` per value (a page fills ~200).
    released = gate.released
    if not released:
        return
    for column, category, ref, token in items:
        if token is None or category not in released:
            continue
        value, problem = _outcome(key, ref, token)
        if problem is None:
            gate.values[column] = value
        else:
            gate.problems[column] = problem


def _outcome(key: bytes | None, ref: Ref, token: str) -> tuple[str | None, str | None]:
    """A stored token opened: (value, None), or (None, why not) — her key erased, or the value
    failing its integrity check (logged with opaque IDs only, invariant 8: never a value)."""
    if key is None:
        return None, ERASED
    try:
        return crypto.open_sealed(key, ref.aad, token), None
    except crypto.Unreadable:
        log.warning("sealed value failed its integrity check",
                    extra={"table": ref.table, "record": str(ref.record_id), "field": ref.field})
        return None, UNREADABLE


def _open(key: bytes | None, ref: Ref, token: str | None) -> Opened:
    if token is None:
        return Opened(None)
    value, problem = _outcome(key, ref, token)
    return Opened(value, problem)


async def open_confirmation(ctx: AccessContext, confirmation: Confirmation) -> tuple[Opened, Opened]:
    """The reason and evidence of a two-person request, for the people of its organisation who
    decide it. Her key is read for this decision only (the tenancy is put back afterwards)."""
    if confirmation.peacebuilder_id is None or confirmation.status != "pending":
        # Opened only while someone must decide on it: afterwards, nobody reads her key for it.
        return Opened(None), Opened(None)
    if confirmation.action == "peacebuilder.erase":
        from app.access.visibility import org_holds_consent

        # An erasure may go ahead only while the organisation holds her consent: once she cut
        # it off, its reason is no longer its to read (a consent or network confirmation has
        # none yet by design, and a break-glass is an emergency's own record).
        if not await org_holds_consent(ctx.session, confirmation.org_id,
                                       confirmation.peacebuilder_id, ctx.clock.now(),
                                       directly=True):
            return Opened(None), Opened(None)
    items = [(confirmation_ref(confirmation, "reason"), confirmation.reason),
             (confirmation_ref(confirmation, "evidence"), confirmation.evidence)]
    async with ctx.peek([confirmation.peacebuilder_id]):
        if confirmation.action == "consent.grant":
            from app.tables.consent import ConsentGrant

            # She (or her network) may have withdrawn it meanwhile, from another organisation
            # whose request cannot close this one: a withdrawn grant has nothing to decide.
            grant = await ctx.session.get(ConsentGrant, confirmation.target_id)
            if grant is None or grant.revoked_at is not None or grant.confirmed_at is not None:
                return Opened(None), Opened(None)
        reason, evidence = await open_many(ctx, items)
    return reason, evidence


async def seal_for_confirmation(ctx: AccessContext, confirmation: Confirmation, field: str,
                                value: str | None) -> str | None:
    """Seal a text the second person will read (a reason, an evidence reference)."""
    return await seal(ctx, confirmation_ref(confirmation, field), value, input_field=field)
