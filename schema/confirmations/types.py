"""GraphQL types of the two-person rule: what one person asked and a second must confirm."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry

from app.tables import confirmations as models
from schema import ids
from schema.common import Node, UserError, describe_values
from schema.consent.enums import EvidenceKind
from schema.consent.types import ConsentGrant
from schema.context import Info


@strawberry.enum(description="What a two-person request is for.")
class ConfirmationAction(enum.Enum):
    CONSENT_GRANT = strawberry.enum_value("consent.grant", description=(
        "Bring into force a grant her organisation's staff recorded, against the evidence."))
    NETWORK_LINK = strawberry.enum_value("network.link", description=(
        "Confirm a network that acts for her (while she has no login)."))
    ERASURE = strawberry.enum_value("peacebuilder.erase", description=(
        "Erase her data (she and her network are told first and may stop it)."))
    BREAK_GLASS = strawberry.enum_value("break_glass.extend", description=(
        "Let a break-glass opening last the hours asked for, beyond its first hour."))
    ENROLMENT_CODE = strawberry.enum_value("mfa.enrolment_code", description=(
        "Issue a one-time code with which a person enrols a second factor."))
    CASE_CLOSURE = strawberry.enum_value("case.close", description=(
        "Close a case of high or critical risk (with its reason and follow-up plan)."))
    RISK_ASSESSMENT = strawberry.enum_value("risk_assessment.current", description=(
        "Make a joint risk assessment current where she has no account and no network, with "
        "a record of how she was consulted."))
    HER_CODE = strawberry.enum_value("her.code", description=(
        "Issue her a one-time enrolment or reset code (her lead organisation; the second focal "
        "point, who confirms, receives it with issueHerCode)."))
    HER_SUSPENSION = strawberry.enum_value("her.suspend", description=(
        "Suspend her login (her lead organisation; lapses after 72 hours unless her network "
        "confirms it)."))
    HER_REINSTATEMENT = strawberry.enum_value("her.reinstate", description=(
        "Lift the suspension of her login (her lead organisation)."))


@strawberry.enum(description="Where a two-person request stands.")
class ConfirmationStatus(enum.Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    LAPSED = "lapsed"
    CANCELLED = "cancelled"
describe_values(ConfirmationStatus, {
    "PENDING": "Waiting for a second person.",
    "CONFIRMED": "A second person confirmed it: the action took effect.",
    "DECLINED": "A second person declined it: nothing took effect.",
    "LAPSED": "Nobody decided within the organisation's two-person window.",
    "CANCELLED": "Withdrawn by the person who asked, or made moot (e.g. she confirmed herself).",
})


# The type of the object each action is about, for its global ID.
TARGET_TYPES = {"consent.grant": "ConsentGrant", "network.link": "NetworkLink",
                "peacebuilder.erase": "Erasure", "break_glass.extend": "BreakGlass",
                "mfa.enrolment_code": "User", "case.close": "Case",
                "risk_assessment.current": "RiskAssessment",
                "her.code": "Peacebuilder", "her.suspend": "Peacebuilder",
                "her.reinstate": "Peacebuilder"}


@strawberry.type(description="One person of your organisation started an action that a second "
                             "(of the same role, with a recent second factor) must confirm "
                             "within the organisation's window (two-person rule).")
class Confirmation(Node):
    action: ConfirmationAction = strawberry.field(description="What waits for a second person.")
    status: ConfirmationStatus = strawberry.field(description="Where the request stands.")
    requested_at: datetime = strawberry.field(description="When the first person asked (UTC).")
    expires_at: datetime = strawberry.field(description="Lapses unconfirmed at this time.")
    decided_at: datetime | None = strawberry.field(
        description="When it was confirmed, declined, withdrawn or lapsed; null while pending.")
    required_role: str = strawberry.field(description="The role both people hold.")
    requested_by_id: strawberry.ID = strawberry.field(description="The User who asked.")
    target_id: strawberry.ID = strawberry.field(description=(
        "What it is about: a ConsentGrant, NetworkLink, Erasure, BreakGlass or User ID."))
    peacebuilder_id: strawberry.ID | None = strawberry.field(description="Whose record, if any.")
    evidence_kind: EvidenceKind | None = strawberry.field(  # type: ignore[valid-type]
        description="For a grant: what shows she consented.")
    _model: strawberry.Private[models.Confirmation]

    @strawberry.field(description="The evidence's reference (for a grant), opened for the people "
                                  "of your organisation who decide it.")
    async def evidence(self, info: Info) -> str | None:
        from app.her import sealing

        _, evidence = await info.context.loaders.call(sealing.open_confirmation,
                                                      info.context.access, self._model)
        return evidence.value

    @strawberry.field(description="The written reason (erasure, break-glass).")
    async def reason(self, info: Info) -> str | None:
        from app.her import sealing

        reason, _ = await info.context.loaders.call(sealing.open_confirmation,
                                                    info.context.access, self._model)
        return reason.value

    @strawberry.field(description="For a grant: its terms (categories, purposes, recipient).")
    async def grant(self, info: Info) -> ConsentGrant | None:
        from app.consent import service as consent

        found = await info.context.loaders.call(consent.grant_awaiting, info.context.access,
                                                self._model)
        return ConsentGrant.from_model(found) if found else None

    @classmethod
    def from_model(cls, c: models.Confirmation) -> Confirmation:
        subject = c.requested_by.partition(":")[2]
        return cls(
            id=strawberry.ID(ids.encode("Confirmation", c.id)),
            action=ConfirmationAction(c.action), status=ConfirmationStatus(c.status),
            requested_at=c.requested_at, expires_at=c.expires_at, decided_at=c.decided_at,
            required_role=c.required_role,
            requested_by_id=strawberry.ID(ids.encode("User", uuid.UUID(subject))),
            target_id=strawberry.ID(ids.encode(TARGET_TYPES.get(c.action, "Node"), c.target_id)),
            peacebuilder_id=(strawberry.ID(ids.encode("Peacebuilder", c.peacebuilder_id))
                             if c.peacebuilder_id else None),
            evidence_kind=EvidenceKind(c.evidence_kind) if c.evidence_kind else None,
            _model=c)


@strawberry.type(description="Result of confirmTwoPerson / declineTwoPerson.")
class ConfirmationPayload:
    confirmation: Confirmation | None
    user_errors: list[UserError]


@strawberry.type(description="Result of setTwoPersonWindow.")
class TwoPersonWindowPayload:
    hours: int | None = strawberry.field(description="The window now in force.")
    user_errors: list[UserError]
