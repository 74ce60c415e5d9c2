"""GraphQL for the duty rota (the escalation chain's on_duty level)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from app.escalation import rota
from app.tables.escalation import DutyShift as DutyShiftModel
from schema import ids, permissions
from schema.common import Node, UserError, guarded
from schema.context import Info


def _person_id(subject: str) -> strawberry.ID:
    kind, _, raw = subject.partition(":")
    return strawberry.ID(ids.encode("User" if kind == "user" else "Client", uuid.UUID(raw)))


@strawberry.type(description="One person of your organisation on duty from `startsAt` until "
                             "`endsAt`: the escalation chain's on_duty level alerts whoever is on "
                             "duty when it fires.")
class DutyShift(Node):
    user_id: strawberry.ID = strawberry.field(description="The person on duty (a User ID).")
    starts_at: datetime = strawberry.field(description="Start of the shift.")
    ends_at: datetime = strawberry.field(description="End of the shift (hand-over).")
    created_at: datetime = strawberry.field(description="When it was put on the rota.")

    @classmethod
    def from_model(cls, s: DutyShiftModel) -> DutyShift:
        return cls(id=strawberry.ID(ids.encode("DutyShift", s.id)), user_id=_person_id(s.subject),
                   starts_at=s.starts_at, ends_at=s.ends_at, created_at=s.created_at)


@strawberry.input(description="Put a person of your organisation on duty.")
class AddDutyShiftInput:
    user_id: strawberry.ID = strawberry.field(description=(
        "An active focal point or administrator of your organisation."))
    starts_at: datetime = strawberry.field(description="Start of the shift.")
    ends_at: datetime = strawberry.field(description="End (after the start, at most 14 days).")


@strawberry.input(description="Identify a shift.")
class DutyShiftIdInput:
    id: strawberry.ID = strawberry.field(description="The shift's global ID.")


@strawberry.type(description="Result of addDutyShift / removeDutyShift.")
class DutyShiftPayload:
    shift: DutyShift | None
    user_errors: list[UserError]


@strawberry.type
class EscalationQueries:
    @permissions.query(
        "Your organisation's duty rota: shifts overlapping [after, before), in order (at most "
        "500).",
        requires=[("duty_rota", "read")],
        args={
            "after": "Only shifts ending after this instant (no lower bound when omitted).",
            "before": "Only shifts starting before this instant (no upper bound when omitted).",
        })
    async def duty_rota(self, info: Info, after: datetime | None = None,
                        before: datetime | None = None) -> list[DutyShift]:
        rows = await info.context.loaders.call(rota.shifts, info.context.access, after, before)
        return [DutyShift.from_model(s) for s in rows]


@strawberry.type
class EscalationMutations:
    @permissions.mutation(
        "Put a focal point or administrator of your organisation on duty for a period. Logged.",
        requires=[("duty_rota", "manage")])
    async def add_duty_shift(self, info: Info, input: AddDutyShiftInput) -> DutyShiftPayload:
        user_id = ids.decode(input.user_id, "User", "userId")
        shift, errors = await guarded(info, lambda: info.context.loaders.call(
            rota.add, info.context.access, user_id, input.starts_at, input.ends_at))
        return DutyShiftPayload(shift=DutyShift.from_model(shift) if shift else None,
                                user_errors=errors)

    @permissions.mutation(
        "Take a shift off the rota. Logged.",
        requires=[("duty_rota", "manage")])
    async def remove_duty_shift(self, info: Info, input: DutyShiftIdInput) -> DutyShiftPayload:
        shift_id = ids.decode(input.id, "DutyShift")
        shift, errors = await guarded(info, lambda: info.context.loaders.call(
            rota.remove, info.context.access, shift_id))
        return DutyShiftPayload(shift=DutyShift.from_model(shift) if shift else None,
                                user_errors=errors)
