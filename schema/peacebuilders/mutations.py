"""Mutations for peacebuilders."""

from __future__ import annotations

import strawberry

from app.peacebuilders import service as peacebuilders
from schema import ids
from schema.common import guarded
from schema.consent.types import ConsentGrant
from schema.context import Info
from schema.peacebuilders.types import (
    CreatePeacebuilderInput,
    Peacebuilder,
    PeacebuilderPayload,
    UpdatePeacebuilderInput,
)


@strawberry.type
class PeacebuilderMutations:
    @strawberry.mutation(description="Register a peacebuilder with the consent she gave your "
                                     "organisation (pending until confirmed: see "
                                     "IntakeConsentInput). Requires `peacebuilder:create`; "
                                     "people only (machine clients never record consent); a "
                                     "second factor in the last 15 minutes. Logged (categories "
                                     "written, never values).")
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
            peacebuilder=Peacebuilder.from_model(done.peacebuilder) if done else None,
            intake_consent=ConsentGrant.from_model(done.intake) if done else None,
            user_errors=errors)

    @strawberry.mutation(description="Change a peacebuilder's record. "
                                     "Requires `peacebuilder:update`. Logged.")
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
        return PeacebuilderPayload(peacebuilder=Peacebuilder.from_model(pb) if pb else None,
                                   user_errors=errors)
