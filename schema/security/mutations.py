"""Mutations: register operations, restrict an organisation to them, enrol and reset TOTP."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError, validate

from app.auth import mfa
from app.errors import BadInput
from app.operations import service as operations
from schema import ids
from schema.common import guarded
from schema.context import Info
from schema.limits import LimitExceeded, check
from schema.orgs.mutations import UserIdInput
from schema.orgs.types import User
from schema.security.types import (
    ConfirmTotpPayload,
    OperationPolicyPayload,
    RegisteredOperation,
    RegisteredOperationPayload,
    ResetTotpPayload,
    TotpEnrolmentPayload,
)


@strawberry.input(description="A document to register for your organisation.")
class RegisterOperationInput:
    document: str = strawberry.field(description="The exact text clients will hash and send.")
    name: str | None = strawberry.field(default=None, description="A name to recognise it by.")


@strawberry.input(description="Identify a registered operation.")
class RegisteredOperationIdInput:
    id: strawberry.ID


@strawberry.input(description="Whether your organisation accepts only registered operations.")
class OperationPolicyInput:
    only_registered_operations: bool


@strawberry.input(description="A current code from the authenticator app.")
class TotpCodeInput:
    code: str


def checked_document(info: Info, document: str) -> str:
    """A document is registered only if it parses, is within the limits and is valid here."""
    schema = info.schema
    try:
        parsed, _ = check(schema._schema, document, schema.limits)  # type: ignore[attr-defined]
    except LimitExceeded as exc:
        raise BadInput(exc.message, field="document") from exc
    except GraphQLError as exc:
        raise BadInput(exc.message, field="document") from exc
    errors = validate(schema._schema, parsed)
    if errors:
        raise BadInput("; ".join(e.message for e in errors[:5]), field="document")
    return document


@strawberry.type
class SecurityMutations:
    @strawberry.mutation(description="Register a document (parsed, limit-checked and validated "
                                     "first) for your organisation; registering it again returns "
                                     "the same one. Requires `operation:manage`. Logged.")
    async def register_operation(self, info: Info,
                                 input: RegisterOperationInput) -> RegisteredOperationPayload:
        op, errors = await guarded(info, lambda: info.context.loaders.call(
            operations.register, info.context.access, checked_document(info, input.document),
            input.name))
        return RegisteredOperationPayload(
            operation=RegisteredOperation.from_model(op) if op else None, user_errors=errors)

    @strawberry.mutation(description="Remove a registered operation; clients sending its hash "
                                     "are refused. Requires `operation:manage`. Logged.")
    async def unregister_operation(self, info: Info,
                                   input: RegisteredOperationIdInput) -> RegisteredOperationPayload:
        id_ = ids.decode(input.id, "RegisteredOperation")
        op, errors = await guarded(info, lambda: info.context.loaders.call(
            operations.unregister, info.context.access, id_))
        return RegisteredOperationPayload(
            operation=RegisteredOperation.from_model(op) if op else None, user_errors=errors)

    @strawberry.mutation(description="Accept only registered operations from your organisation "
                                     "(its admin's operation management is always accepted). "
                                     "Requires `operation:manage`. Logged.")
    async def set_operation_policy(self, info: Info,
                                   input: OperationPolicyInput) -> OperationPolicyPayload:
        only, errors = await guarded(info, lambda: info.context.loaders.call(
            operations.set_only_registered, info.context.access,
            input.only_registered_operations))
        return OperationPolicyPayload(only_registered_operations=only, user_errors=errors)

    @strawberry.mutation(description="Start TOTP enrolment for yourself: returns a new secret. "
                                     "Replacing a confirmed factor needs a recent second-factor "
                                     "sign-in. Logged.")
    async def start_totp_enrolment(self, info: Info) -> TotpEnrolmentPayload:
        enrolment, errors = await guarded(info, lambda: info.context.loaders.call(
            mfa.start_enrolment, info.context.access))
        return TotpEnrolmentPayload(secret=enrolment.secret if enrolment else None,
                                    otpauth_uri=enrolment.uri if enrolment else None,
                                    user_errors=errors)

    @strawberry.mutation(description="Confirm TOTP enrolment with a current code from the app. "
                                     "Logged.")
    async def confirm_totp_enrolment(self, info: Info, input: TotpCodeInput) -> ConfirmTotpPayload:
        _, errors = await guarded(info, lambda: info.context.loaders.call(
            mfa.confirm_enrolment, info.context.access, input.code))
        return ConfirmTotpPayload(enrolled=not errors, user_errors=errors)

    @strawberry.mutation(description="Remove a person's second factor (a lost phone) so she can "
                                     "enrol again. Requires `user:manage` and a recent "
                                     "second-factor sign-in. Logged.")
    async def reset_user_totp(self, info: Info, input: UserIdInput) -> ResetTotpPayload:
        user_id = ids.decode(input.user_id, "User", "userId")
        user, errors = await guarded(info, lambda: info.context.loaders.call(
            mfa.reset, info.context.access, user_id))
        return ResetTotpPayload(user=User.from_model(user) if user else None, user_errors=errors)
