"""GraphQL types for registered operations, TOTP enrolment and one-time enrolment codes."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.tables import operations as models
from schema import ids
from schema.common import Node, UserError
from schema.confirmations.types import Confirmation
from schema.orgs.types import User


@strawberry.type(description="A GraphQL document your organisation registered. Clients send its "
                             "hash (`extensions.persistedQuery.sha256Hash` or `documentId`) "
                             "instead of the text; with `onlyRegisteredOperations` nothing else "
                             "is accepted from your organisation.")
class RegisteredOperation(Node):
    sha256_hash: str = strawberry.field(description="SHA-256 of the document's UTF-8 text, hex.")
    name: str | None = strawberry.field(description="A name to recognise it by.")
    document: str = strawberry.field(description="The document's exact text.")
    created_at: datetime = strawberry.field(description="When it was registered.")

    @classmethod
    def from_model(cls, op: models.RegisteredOperation) -> RegisteredOperation:
        return cls(id=strawberry.ID(ids.encode("RegisteredOperation", op.id)),
                   sha256_hash=op.sha256, name=op.name, document=op.document,
                   created_at=op.created_at)


@strawberry.type(description="Result of registerOperation / unregisterOperation.")
class RegisteredOperationPayload:
    operation: RegisteredOperation | None
    user_errors: list[UserError]


@strawberry.type(description="Result of setOperationPolicy.")
class OperationPolicyPayload:
    only_registered_operations: bool | None = strawberry.field(
        description="Whether your organisation now accepts only registered operations.")
    user_errors: list[UserError]


@strawberry.type(description="A new TOTP secret: add it to an authenticator app (scan the URI as "
                             "a QR code), then confirm with a code. Shown once.")
class TotpEnrolmentPayload:
    secret: str | None = strawberry.field(description="Base32 secret, for typing in by hand.")
    otpauth_uri: str | None = strawberry.field(description="otpauth:// URI for a QR code.")
    user_errors: list[UserError]


@strawberry.type(description="Result of confirmTotpEnrolment.")
class ConfirmTotpPayload:
    enrolled: bool = strawberry.field(
        description="True once confirmed: sign in again with a code to get a second-factor token.")
    user_errors: list[UserError]


@strawberry.type(description="Result of signOut.")
class SignOutPayload:
    sessions_ended: int = strawberry.field(
        description="How many sessions ended (0 if this token's session had already ended).")
    user_errors: list[UserError]


@strawberry.type(description="Result of resetUserTotp.")
class ResetTotpPayload:
    user: User | None
    user_errors: list[UserError]


@strawberry.type(description="Result of requestEnrolmentCode: the two-person request a second "
                             "focal point of your organisation now confirms.")
class EnrolmentCodeRequestPayload:
    confirmation: Confirmation | None = strawberry.field(
        description="The pending request (action ENROLMENT_CODE, target the person).")
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was requested (e.g. no focal point who could confirm it).")


@strawberry.type(description="Result of claimEnrolmentCode: the code, shown this once. Hand it "
                             "to the person yourself, out of band (in person, by phone); the "
                             "service never sends it.")
class EnrolmentCodePayload:
    code: str | None = strawberry.field(description=(
        "The one-time code (20 characters in groups of five). Not stored in clear anywhere: "
        "it cannot be shown again."))
    expires_at: datetime | None = strawberry.field(
        description="It can no longer be used after this time.")
    user: User | None = strawberry.field(description="The person the code is for.")
    user_errors: list[UserError] = strawberry.field(
        description="Why no code was shown (already shown, expired, not yours to receive).")
