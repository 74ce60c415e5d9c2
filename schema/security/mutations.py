"""Mutations: register operations, restrict an organisation to them, enrol and reset TOTP,
and one-time enrolment codes (two people issue one; the second is shown it once)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from graphql import GraphQLError, validate

from app.auth import enrolment, mfa, sessions
from app.errors import BadInput
from app.operations import service as operations
from app.orgs.service import get_user
from app.peacebuilders import account as her_account
from schema import ids, permissions
from schema.common import UserError, guarded
from schema.confirmations.types import Confirmation
from schema.context import Info
from schema.limits import LimitExceeded, check
from schema.orgs.mutations import UserIdInput
from schema.orgs.types import User
from schema.permissions import Who
from schema.security.types import (
    ConfirmTotpPayload,
    EnrolmentCodePayload,
    EnrolmentCodeRequestPayload,
    OperationPolicyPayload,
    RegisteredOperation,
    RegisteredOperationPayload,
    ResetTotpPayload,
    SignOutPayload,
    TotpEnrolmentPayload,
)


@strawberry.input(description="A document to register for your organisation.")
class RegisterOperationInput:
    document: str = strawberry.field(description="The exact text clients will hash and send.")
    name: str | None = strawberry.field(default=None, description="A name to recognise it by.")


@strawberry.input(description="Identify a registered operation.")
class RegisteredOperationIdInput:
    id: strawberry.ID = strawberry.field(description="The registered operation's global ID.")


@strawberry.input(description="Whether your organisation accepts only registered operations.")
class OperationPolicyInput:
    only_registered_operations: bool = strawberry.field(
        description="True: refuse documents that are not registered; false: accept any valid document.")


@strawberry.input(description="A current code from the authenticator app.")
class TotpCodeInput:
    code: str


@strawberry.input(description="Start enrolling a second factor.")
class StartTotpEnrolmentInput:
    enrolment_code: str | None = strawberry.field(default=None, description=(
        "Your one-time enrolment code, needed when you have no confirmed second factor (a "
        "first enrolment, or one after a reset). Issued by two people of your organisation "
        "and handed to you out of band; case, spaces and dashes do not matter. Five wrong "
        "tries lock it."))


@strawberry.input(description="Which of your sessions to end.")
class SignOutInput:
    everywhere: bool = strawberry.field(default=False, description=(
        "End all your sessions (every device), not only the one this token belongs to."))


@strawberry.input(description="The person who needs an enrolment code.")
class RequestEnrolmentCodeInput:
    user_id: strawberry.ID = strawberry.field(
        description="A person of your organisation without a confirmed second factor.")


@strawberry.input(description="The confirmed two-person request whose code you receive.")
class ClaimEnrolmentCodeInput:
    confirmation_id: strawberry.ID = strawberry.field(
        description="The ENROLMENT_CODE request you confirmed (confirmTwoPerson).")


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
    @permissions.mutation(
        "Register a document (parsed, limit-checked and validated first) for your organisation; "
        "registering it again returns the same one. Logged.",
        requires=[("operation", "manage")])
    async def register_operation(self, info: Info,
                                 input: RegisterOperationInput) -> RegisteredOperationPayload:
        op, errors = await guarded(info, lambda: info.context.loaders.call(
            operations.register, info.context.access, checked_document(info, input.document),
            input.name))
        return RegisteredOperationPayload(
            operation=RegisteredOperation.from_model(op) if op else None, user_errors=errors)

    @permissions.mutation(
        "Remove a registered operation; clients sending its hash are refused. Logged.",
        requires=[("operation", "manage")])
    async def unregister_operation(self, info: Info,
                                   input: RegisteredOperationIdInput) -> RegisteredOperationPayload:
        id_ = ids.decode(input.id, "RegisteredOperation")
        op, errors = await guarded(info, lambda: info.context.loaders.call(
            operations.unregister, info.context.access, id_))
        return RegisteredOperationPayload(
            operation=RegisteredOperation.from_model(op) if op else None, user_errors=errors)

    @permissions.mutation(
        "Accept only registered operations from your organisation (its admin's operation "
        "management is always accepted). Logged.",
        requires=[("operation", "manage")])
    async def set_operation_policy(self, info: Info,
                                   input: OperationPolicyInput) -> OperationPolicyPayload:
        only, errors = await guarded(info, lambda: info.context.loaders.call(
            operations.set_only_registered, info.context.access,
            input.only_registered_operations))
        return OperationPolicyPayload(only_registered_operations=only, user_errors=errors)

    @permissions.mutation(
        "Start TOTP enrolment for yourself: returns a new secret. Without a confirmed factor (a "
        "first enrolment, or after a reset) it needs your one-time enrolment code, which it "
        "spends; a wrong code is counted and five lock it. Logged.",
        step_up=True, who=Who.STAFF_PEOPLE,
        when="the step-up applies when replacing a confirmed factor")
    async def start_totp_enrolment(
        self, info: Info,
        input: Annotated[StartTotpEnrolmentInput | None, strawberry.argument(
            description="Your enrolment code (first enrolment).")] = None,
    ) -> TotpEnrolmentPayload:
        code = input.enrolment_code if input else None
        refused: list[UserError] = []

        async def start() -> mfa.Enrolment | None:
            if info.context.access.herself:  # her own factor, on her account (no code needed)
                return await info.context.loaders.call(her_account.start_totp,
                                                       info.context.access)
            try:
                return await info.context.loaders.call(mfa.start_enrolment,
                                                       info.context.access, code)
            except enrolment.CodeRefused as exc:
                # A user error that is *not* rolled back: the counted try (and a lock) stay.
                refused.append(UserError(field=["input", "enrolmentCode"], message=exc.message,
                                         code=exc.code))
                return None

        started, errors = await guarded(info, start)
        errors = refused or errors
        return TotpEnrolmentPayload(secret=started.secret if started else None,
                                    otpauth_uri=started.uri if started else None,
                                    user_errors=errors)

    @permissions.mutation(
        "Sign out: end the session this access token belongs to (or all yours, `everywhere`). Its "
        "refresh token stops working, and its access tokens on every replica at their next "
        "request. Logged.",
        who=Who.PEOPLE)
    async def sign_out(
        self, info: Info,
        input: Annotated[SignOutInput | None, strawberry.argument(
            description="Which sessions; this one when omitted.")] = None,
    ) -> SignOutPayload:
        everywhere = bool(input and input.everywhere)
        ended, errors = await guarded(info, lambda: info.context.loaders.call(
            sessions.sign_out, info.context.access, everywhere=everywhere))
        return SignOutPayload(sessions_ended=ended or 0, user_errors=errors)

    @permissions.mutation(
        "Confirm TOTP enrolment with a current code from the app. Logged.",
        who=Who.STAFF_PEOPLE)
    async def confirm_totp_enrolment(self, info: Info, input: TotpCodeInput) -> ConfirmTotpPayload:
        confirm = her_account.confirm_totp if info.context.access.herself else mfa.confirm_enrolment
        _, errors = await guarded(info, lambda: info.context.loaders.call(
            confirm, info.context.access, input.code))
        return ConfirmTotpPayload(enrolled=not errors, user_errors=errors)

    @permissions.mutation(
        "Remove a person's second factor (a lost phone). She enrols again only with a new "
        "enrolment code (two people: requestEnrolmentCode); her unused codes are voided. Logged.",
        requires=[("user", "manage")], step_up=True)
    async def reset_user_totp(self, info: Info, input: UserIdInput) -> ResetTotpPayload:
        user_id = ids.decode(input.user_id, "User", "userId")
        user, errors = await guarded(info, lambda: info.context.loaders.call(
            mfa.reset, info.context.access, user_id))
        return ResetTotpPayload(user=User.from_model(user) if user else None, user_errors=errors)

    @permissions.mutation(
        "Ask for a one-time enrolment code for a person of your organisation who has no second "
        "factor (new, or after resetUserTotp). A second focal point confirms it (confirmTwoPerson) "
        "and is the only one shown the code (claimEnrolmentCode): not you, not the person it is "
        "for, not whoever set their password. An organisation without such a focal point gets an "
        "error saying so. Logged.",
        requires=[("enrolment_code", "request")], step_up=True, who=Who.STAFF_PEOPLE)
    async def request_enrolment_code(self, info: Info, input: RequestEnrolmentCodeInput
                                     ) -> EnrolmentCodeRequestPayload:
        user_id = ids.decode(input.user_id, "User", "userId")
        found, errors = await guarded(info, lambda: info.context.loaders.call(
            enrolment.request, info.context.access, user_id))
        return EnrolmentCodeRequestPayload(
            confirmation=Confirmation.from_model(found) if found else None, user_errors=errors)

    @permissions.mutation(
        "Receive, once, the enrolment code of a request you confirmed, within 72 hours of "
        "confirming. Hand it to the person out of band; it is never shown again, emailed or "
        "logged. Logged (IDs only).",
        requires=[("user", "read")], step_up=True, who=Who.STAFF_PEOPLE)
    async def claim_enrolment_code(self, info: Info,
                                   input: ClaimEnrolmentCodeInput) -> EnrolmentCodePayload:
        confirmation_id = ids.decode(input.confirmation_id, "Confirmation", "confirmationId")
        issued, errors = await guarded(info, lambda: info.context.loaders.call(
            enrolment.claim, info.context.access, confirmation_id))
        user = None
        if issued is not None:
            user = User.from_model(await info.context.loaders.call(
                get_user, info.context.access, issued.user_id))
        return EnrolmentCodePayload(code=issued.code if issued else None,
                                    expires_at=issued.expires_at if issued else None,
                                    user=user, user_errors=errors)
