"""Mutations of the two-person rule: the second person confirms or declines."""

from __future__ import annotations

import strawberry

from app.confirmations import service as confirmations
from schema import ids
from schema.common import guarded
from schema.confirmations.types import Confirmation, ConfirmationPayload, TwoPersonWindowPayload
from schema.context import Info


@strawberry.input(description="Identify a two-person request.")
class ConfirmationIdInput:
    id: strawberry.ID


@strawberry.input(description="How long a two-person request waits for its second person.")
class TwoPersonWindowInput:
    hours: int = strawberry.field(description="1 to 168 hours (default 24).")


@strawberry.type
class ConfirmationMutations:
    @strawberry.mutation(description=(
        "Confirm, as the second person, what another person of your organisation started: a "
        "person (not a machine client) holding the same role, other than the first, signed in "
        "with a second factor in the last 15 minutes (STEP_UP_REQUIRED otherwise), before it "
        "lapses. The action takes effect now. Logged."))
    async def confirm_two_person(self, info: Info,
                                 input: ConfirmationIdInput) -> ConfirmationPayload:
        return await _decide(info, input, confirmations.confirm)

    @strawberry.mutation(description=(
        "Decline a two-person request (holders of its role), or withdraw your own. Nothing "
        "it waited for takes effect. Logged."))
    async def decline_two_person(self, info: Info,
                                 input: ConfirmationIdInput) -> ConfirmationPayload:
        return await _decide(info, input, confirmations.decline)

    @strawberry.mutation(description="Set how long your organisation's two-person requests wait "
                                     "for a second person. Requires `organisation:manage_settings` "
                                     "(org admins). Logged.")
    async def set_two_person_window(self, info: Info,
                                    input: TwoPersonWindowInput) -> TwoPersonWindowPayload:
        hours, errors = await guarded(info, lambda: info.context.loaders.call(
            confirmations.set_window, info.context.access, input.hours))
        return TwoPersonWindowPayload(hours=hours, user_errors=errors)


async def _decide(info: Info, input: ConfirmationIdInput, action: object) -> ConfirmationPayload:
    confirmation_id = ids.decode(input.id, "Confirmation")
    found, errors = await guarded(info, lambda: info.context.loaders.call(
        action, info.context.access, confirmation_id))  # type: ignore[arg-type]
    return ConfirmationPayload(confirmation=Confirmation.from_model(found) if found else None,
                               user_errors=errors)
