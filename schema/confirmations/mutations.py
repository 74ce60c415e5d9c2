"""Mutations of the two-person rule: the second person confirms or declines."""

from __future__ import annotations

import strawberry

from app.confirmations import service as confirmations
from schema import ids, permissions
from schema.common import guarded
from schema.confirmations.types import Confirmation, ConfirmationPayload, TwoPersonWindowPayload
from schema.context import Info
from schema.permissions import Who


@strawberry.input(description="Identify a two-person request.")
class ConfirmationIdInput:
    id: strawberry.ID = strawberry.field(description="The two-person request's global ID.")


@strawberry.input(description="How long a two-person request waits for its second person.")
class TwoPersonWindowInput:
    hours: int = strawberry.field(description="1 to 168 hours (default 24).")


@strawberry.type
class ConfirmationMutations:
    @permissions.mutation(
        "Confirm, as the second person, what another person of your organisation started: a person "
        "holding the same role, other than the first, before it lapses. The action takes effect "
        "now. Logged.",
        step_up=True, who=Who.STAFF_PEOPLE)
    async def confirm_two_person(self, info: Info,
                                 input: ConfirmationIdInput) -> ConfirmationPayload:
        return await _decide(info, input, confirmations.confirm)

    @permissions.mutation(
        "Decline a two-person request (holders of its role), or withdraw your own. Nothing it "
        "waited for takes effect. Logged.",
        who=Who.STAFF_PEOPLE)
    async def decline_two_person(self, info: Info,
                                 input: ConfirmationIdInput) -> ConfirmationPayload:
        return await _decide(info, input, confirmations.decline)

    @permissions.mutation(
        "Set how long your organisation's two-person requests wait for a second person. Logged.",
        requires=[("organisation", "manage_settings")])
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
