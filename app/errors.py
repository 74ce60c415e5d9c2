"""Errors services raise; the GraphQL edge maps each code to `extensions.code`.

Messages are fixed strings: they never carry a peacebuilder's data, not even a pseudonym, and a
missing object and another organisation's object produce the same error.
"""

from __future__ import annotations


class AppError(Exception):
    code = "INTERNAL_SERVER_ERROR"
    message = "Internal error."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class Unauthenticated(AppError):
    code = "UNAUTHENTICATED"
    message = "Authentication required."


class Forbidden(AppError):
    code = "FORBIDDEN"
    message = "Not allowed."


class NotFound(AppError):
    code = "NOT_FOUND"
    message = "Not found."


class BadInput(AppError):
    code = "BAD_USER_INPUT"
    message = "Invalid input."

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Conflict(AppError):
    code = "CONFLICT"
    message = "Conflicts with the current state."


class ResponseTooLarge(AppError):
    """An answer over the response-size limit (SAFETY_NET_MAX_RESPONSE_BYTES): nothing of it
    is sent. `limit`/`maximum` as for the query limits."""

    code = "QUERY_LIMIT_EXCEEDED"
    limit = "responseSize"

    def __init__(self, maximum: int, message: str | None = None) -> None:
        super().__init__(message or f"The response would be larger than {maximum} bytes and was "
                         "not sent; ask for fewer fields or smaller pages.")
        self.maximum = maximum


class StepUpRequired(AppError):
    """A recent strong (second-factor) sign-in is needed for this action."""

    code = "STEP_UP_REQUIRED"
    message = "Sign in again with your second factor to do this."


class MfaEnrolmentRequired(AppError):
    """The caller's role needs a second factor and the token was issued without one."""

    code = "MFA_ENROLMENT_REQUIRED"
    message = ("Your role needs a second factor: enrol TOTP with the one-time enrolment code "
               "your organisation gave you, then sign in with it.")


class PurposeRequired(AppError):
    """Consent-gated data selected by staff or a machine client without a declared purpose:
    refused outright rather than answered with empty lists and nulls."""

    code = "PURPOSE_REQUIRED"
    message = ("This request reads peacebuilders' records but declares no purpose, so nothing "
               "about them would be released. Send the Safety-Net-Purpose header with one of: "
               "advocacy, aggregate_reporting, emergency_response, legal_support, media, "
               "protection, public_recognition.")


class SecondFactorRequired(AppError):
    """OIDC mode: the caller's role needs a second factor and the provider's token says none
    was used (its `acr`/`amr`, as mapped by the deployment)."""

    code = "SECOND_FACTOR_REQUIRED"
    message = ("Your role needs a second factor: sign in again at your identity provider with "
               "your second factor.")


class UnknownPurpose(AppError):
    """A declared purpose that is not one of ours (there is no intelligence gathering)."""

    code = "INVALID_PURPOSE"
    message = ("Unknown purpose. Declare one of: advocacy, aggregate_reporting, "
               "emergency_response, legal_support, media, protection, public_recognition.")
