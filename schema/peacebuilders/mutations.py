"""Mutations for peacebuilders."""

from __future__ import annotations

import uuid

import strawberry

from app.peacebuilders import service as peacebuilders
from app.read import peacebuilders as read
from schema import ids, permissions
from schema.common import guarded
from schema.consent.types import ConsentGrant
from schema.context import Info
from schema.gated import want_of
from schema.peacebuilders.types import (
    CreatePeacebuilderInput,
    Peacebuilder,
    PeacebuilderPayload,
    UpdatePeacebuilderInput,
)
from schema.permissions import Who


@strawberry.type
class PeacebuilderMutations:
    @permissions.mutation(
        "Register a peacebuilder with the consent she gave your organisation (pending until "
        "confirmed: see IntakeConsentInput). Logged (categories written, never values).",
        requires=[("peacebuilder", "create")], step_up=True, purpose=True, who=Who.STAFF_PEOPLE)
    async def create_peacebuilder(
        self, info: Info, input: CreatePeacebuilderInput
    ) -> PeacebuilderPayload:
        networks = [ids.decode(n, "Organisation", "networkIds") for n in input.network_ids or []]
        done, errors = await guarded(info, lambda: info.context.loaders.call(
            peacebuilders.create, info.context.access, pseudonym=input.pseudonym,
            preferred_language=input.preferred_language, network_ids=networks,
            profile=input.profile.to_dict() if input.profile else None,
            intake_consent=input.intake_consent.to_app()))
        return PeacebuilderPayload(
            peacebuilder=await _written(info, done.peacebuilder.id if done else None),
            intake_consent=ConsentGrant.from_model(done.intake) if done else None,
            counting_consents=[ConsentGrant.from_model(g) for g in done.counting] if done else [],
            user_errors=errors)

    @permissions.mutation(
        "Change a peacebuilder's record. Logged.",
        requires=[("peacebuilder", "update"), ("peacebuilder", "read")], purpose=True)
    async def update_peacebuilder(
        self, info: Info, input: UpdatePeacebuilderInput
    ) -> PeacebuilderPayload:
        pb_id = ids.decode(input.id, "Peacebuilder")
        networks = (None if input.network_ids is None else
                    [ids.decode(n, "Organisation", "networkIds") for n in input.network_ids])
        pb, errors = await guarded(info, lambda: info.context.loaders.call(
            peacebuilders.update, info.context.access, pb_id,
            preferred_language=input.preferred_language, network_ids=networks,
            profile=input.profile.to_dict() if input.profile else None))
        return PeacebuilderPayload(peacebuilder=await _written(info, pb.id if pb else None),
                                   user_errors=errors)


async def _written(info: Info, pb_id: uuid.UUID | None) -> Peacebuilder | None:
    """Her record as the mutation left it, decided for this caller like any read."""
    if pb_id is None:
        return None
    view = await info.context.loaders.call(read.written, info.context.access, pb_id,
                                           want_of(info, "peacebuilder"))
    return Peacebuilder.from_view(view)
