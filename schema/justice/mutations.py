"""Mutations of the justice follow-up: hearings and detention watch.

Each needs `proceeding:manage` (focal points, caseworkers) on a case whose `legal` category her
consent releases to the caller for the declared purpose; otherwise what it names is not found.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from app.justice import service as justice
from app.read import children
from schema import ids, permissions
from schema.common import guarded
from schema.context import Info
from schema.gated import want_of
from schema.justice.types import (
    Detention,
    DetentionCheckKind,
    DetentionPayload,
    DetentionVisit,
    DetentionVisitPayload,
    Hearing,
    HearingOutcome,
    HearingPayload,
    VisitorCategory,
)

PERMISSION = ("Requires `proceeding:manage` and her consent releasing `legal` to your "
              "organisation for the declared purpose (otherwise NOT_FOUND, as for a missing "
              "record). Logged.")


@strawberry.input(description="Schedule a hearing on a proceeding.")
class ScheduleHearingInput:
    proceeding_id: strawberry.ID = strawberry.field(description="The Proceeding.")
    scheduled_at: datetime = strawberry.field(description="When; ahead of now.")
    owner_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "An active person (User) of your organisation reminded instead of its focal points."))


@strawberry.input(description="Move a scheduled hearing to another time.")
class RescheduleHearingInput:
    hearing_id: strawberry.ID = strawberry.field(description="The scheduled Hearing.")
    scheduled_at: datetime = strawberry.field(description="The new time; ahead of now.")


@strawberry.input(description="Identify a scheduled hearing.")
class HearingIdInput:
    hearing_id: strawberry.ID = strawberry.field(description="The scheduled Hearing.")


@strawberry.input(description="Record how a hearing went, once its time has come.")
class RecordHearingOutcomeInput:
    hearing_id: strawberry.ID = strawberry.field(description="The scheduled Hearing.")
    outcome: HearingOutcome = strawberry.field(description="How it went.")
    notes: str | None = strawberry.field(default=None, description=(
        "Notes (category `legal`, sealed with her key)."))


@strawberry.input(description="She is detained: start the detention watch and its three checks.")
class RecordDetentionInput:
    case_id: strawberry.ID = strawberry.field(description="The Case.")
    detained_at: datetime = strawberry.field(description="When she was detained (not ahead).")
    place: str | None = strawberry.field(default=None, description=(
        "Where she is held (category `legal`, sealed with her key)."))
    proceeding_id: strawberry.ID | None = strawberry.field(
        default=None, description="The detention-watch Proceeding of this case, if any.")


@strawberry.input(description="Record a visit to her in detention.")
class RecordDetentionVisitInput:
    detention_id: strawberry.ID = strawberry.field(description="The Detention (still detained).")
    visitor: VisitorCategory = strawberry.field(description="Who visited, as a category.")
    visited_at: datetime = strawberry.field(description="When (between detention and now).")
    satisfies: DetentionCheckKind | None = strawberry.field(default=None, description=(
        "The check it satisfies; default: the visitor's own (LAWYER → LAWYER_ACCESS, FAMILY → "
        "FAMILY_VISIT, MEDICAL → MEDICAL_ACCESS). Any other is refused."))
    notes: str | None = strawberry.field(default=None, description=(
        "Notes (category `legal`, sealed with her key)."))


@strawberry.input(description="She is released: the watch and its pending checks end.")
class ReleaseDetentionInput:
    detention_id: strawberry.ID = strawberry.field(description="The Detention.")
    released_at: datetime | None = strawberry.field(default=None,
                                                    description="When; default now.")


async def _hearing(info: Info, row: Any, errors: list) -> HearingPayload:  # type: ignore[type-arg]
    if row is None:
        return HearingPayload(hearing=None, user_errors=errors)
    view = await info.context.loaders.call(children.written, info.context.access, "hearings",
                                           row, want_of(info, "hearing"))
    return HearingPayload(hearing=Hearing.from_view(view), user_errors=errors)


async def _detention(info: Info, row: Any, errors: list) -> DetentionPayload:  # type: ignore[type-arg]
    if row is None:
        return DetentionPayload(detention=None, user_errors=errors)
    view = await info.context.loaders.call(children.written, info.context.access, "detentions",
                                           row, want_of(info, "detention"))
    return DetentionPayload(detention=Detention.from_view(view), user_errors=errors)


@strawberry.type
class JusticeMutations:
    @permissions.mutation(
        "Schedule a hearing on a proceeding: its owner is reminded 72 h and 24 h before; its "
        "outcome is owed 48 h after, or it escalates. Her consent must release `legal` to your "
        "organisation for the declared purpose (otherwise NOT_FOUND, as for a missing record). "
        "Logged.",
        requires=[("proceeding", "manage"), ("case", "read")], purpose=True)
    async def schedule_hearing(self, info: Info, input: ScheduleHearingInput) -> HearingPayload:
        pid = ids.decode(input.proceeding_id, "Proceeding", "proceedingId")
        owner = ids.decode(input.owner_id, "User", "ownerId") if input.owner_id else None
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            justice.schedule_hearing, info.context.access, proceeding_id=pid,
            scheduled_at=input.scheduled_at, owner_id=owner))
        return await _hearing(info, row, errors)

    @permissions.mutation(
        "Move a scheduled hearing: it becomes RESCHEDULED and a new hearing (returned) takes its "
        "place with its own reminders. Her consent must release `legal` to your organisation for "
        "the declared purpose (otherwise NOT_FOUND, as for a missing record). Logged.",
        requires=[("proceeding", "manage"), ("case", "read")], purpose=True)
    async def reschedule_hearing(self, info: Info,
                                 input: RescheduleHearingInput) -> HearingPayload:
        hid = ids.decode(input.hearing_id, "Hearing", "hearingId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            justice.reschedule_hearing, info.context.access, hid, input.scheduled_at))
        return await _hearing(info, row, errors)

    @permissions.mutation(
        "Cancel a scheduled hearing (no more reminders, nothing owed). Her consent must release "
        "`legal` to your organisation for the declared purpose (otherwise NOT_FOUND, as for a "
        "missing record). Logged.",
        requires=[("proceeding", "manage"), ("case", "read")], purpose=True)
    async def cancel_hearing(self, info: Info, input: HearingIdInput) -> HearingPayload:
        hid = ids.decode(input.hearing_id, "Hearing", "hearingId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            justice.cancel_hearing, info.context.access, hid))
        return await _hearing(info, row, errors)

    @permissions.mutation(
        "Record a hearing's outcome once its time has come: stops its escalation. Her consent must "
        "release `legal` to your organisation for the declared purpose (otherwise NOT_FOUND, as "
        "for a missing record). Logged.",
        requires=[("proceeding", "manage"), ("case", "read")], purpose=True)
    async def record_hearing_outcome(self, info: Info,
                                     input: RecordHearingOutcomeInput) -> HearingPayload:
        hid = ids.decode(input.hearing_id, "Hearing", "hearingId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            justice.record_outcome, info.context.access, hid, input.outcome.value, input.notes))
        return await _hearing(info, row, errors)

    @permissions.mutation(
        "Record that she is detained: lawyer access (24 h), medical access (48 h) and a family "
        "visit (72 h) fall due from the detention (or the lead organisation's own hours), each "
        "escalating along the lead organisation's chain when missed. Her consent must release "
        "`legal` to your organisation for the declared purpose (otherwise NOT_FOUND, as for a "
        "missing record). Logged.",
        requires=[("proceeding", "manage"), ("case", "read")], purpose=True)
    async def record_detention(self, info: Info, input: RecordDetentionInput) -> DetentionPayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        pid = (ids.decode(input.proceeding_id, "Proceeding", "proceedingId")
               if input.proceeding_id else None)
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            justice.record_detention, info.context.access, case_id=case_id,
            detained_at=input.detained_at, place=input.place, proceeding_id=pid))
        return await _detention(info, row, errors)

    @permissions.mutation(
        "Log a visit to her in detention; a visit of the right kind satisfies its check and stops "
        "its escalation. Her consent must release `legal` to your organisation for the declared "
        "purpose (otherwise NOT_FOUND, as for a missing record). Logged.",
        requires=[("proceeding", "manage"), ("case", "read")], purpose=True)
    async def record_detention_visit(self, info: Info,
                                     input: RecordDetentionVisitInput) -> DetentionVisitPayload:
        did = ids.decode(input.detention_id, "Detention", "detentionId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            justice.record_visit, info.context.access, detention_id=did,
            visitor=input.visitor.value, visited_at=input.visited_at,
            satisfies=input.satisfies.value if input.satisfies else None, notes=input.notes))
        if row is None:
            return DetentionVisitPayload(visit=None, user_errors=errors)
        view = await info.context.loaders.call(children.written, info.context.access,
                                               "detention_visits", row, want_of(info, "visit"))
        return DetentionVisitPayload(visit=DetentionVisit.from_view(view), user_errors=errors)

    @permissions.mutation(
        "Record her release: every pending check ends. Her consent must release `legal` to your "
        "organisation for the declared purpose (otherwise NOT_FOUND, as for a missing record). "
        "Logged.",
        requires=[("proceeding", "manage"), ("case", "read")], purpose=True)
    async def release_detention(self, info: Info,
                                input: ReleaseDetentionInput) -> DetentionPayload:
        did = ids.decode(input.detention_id, "Detention", "detentionId")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            justice.release, info.context.access, did, input.released_at))
        return await _detention(info, row, errors)
