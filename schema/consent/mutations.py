"""Mutations: grants and their changes, break-glass, case teams, correction requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.cases import teams
from app.consent import break_glass
from app.consent import service as consent
from app.corrections import service as corrections
from app.errors import BadInput
from app.peacebuilders import self_service
from app.tables.consent import ConsentGrant as ConsentGrantModel
from schema import ids, permissions
from schema.cases.types import CasePayload, case_payload
from schema.common import UserError, guarded
from schema.consent.enums import ConsentEvidenceInput, DataCategory, ObtainedVia, Purpose
from schema.consent.types import (
    BreakGlass,
    BreakGlassPayload,
    ConsentGrant,
    ConsentGrantPayload,
    DataRequest,
    DataRequestPayload,
    Erasure,
    NetworkLink,
    RevokeAllPayload,
)
from schema.context import Info
from schema.permissions import Who


@strawberry.input(description="Record her consent for one recipient: an organisation or a working "
                              "group (its member organisations at this moment). In force at once "
                              "when she or her network records it; recorded by staff (for their "
                              "own organisation only) it is PENDING until confirmed — see "
                              "ConsentGrant.awaiting.")
class GrantConsentInput:
    peacebuilder_id: strawberry.ID | None = strawberry.field(
        default=None, description="Whose consent; omit when she records it herself.")
    recipient_organisation_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "The organisation the grant names (global ID); give this or "
        "`recipientWorkingGroupId`."))
    recipient_working_group_id: strawberry.ID | None = strawberry.field(default=None, description=(
        "The working group the grant names (global ID); give this or "
        "`recipientOrganisationId`."))
    categories: list[DataCategory] = strawberry.field(
        description="The data categories to release (at least one).")
    purposes: list[Purpose] = strawberry.field(
        description="The purposes they are released for (at least one).")
    valid_from: datetime | None = strawberry.field(default=None, description="Default: now.")
    valid_until: datetime | None = strawberry.field(default=None, description="Null: until revoked.")
    obtained_via: ObtainedVia | None = strawberry.field(
        default=None, description="Required when staff record it (in person, written, verbal "
                                  "with a witness); set automatically for her and her network.")
    note: str | None = None
    evidence: ConsentEvidenceInput | None = strawberry.field(default=None, description=(
        "Staff, while she has no login: what shows she consented; a second focal point "
        "confirms against it."))


@strawberry.input(description="Take categories or purposes away, or end the grant sooner.")
class NarrowConsentInput:
    grant_id: strawberry.ID = strawberry.field(description="The grant's global ID.")
    categories: list[DataCategory] | None = strawberry.field(default=None, description="To remove.")
    purposes: list[Purpose] | None = strawberry.field(default=None, description="To remove.")
    valid_until: datetime | None = strawberry.field(default=None, description="A sooner end.")
    note: str | None = None


@strawberry.input(description="Add categories or purposes, or make the grant last longer. For a "
                              "working group it also covers the group's current members.")
class ExtendConsentInput:
    grant_id: strawberry.ID = strawberry.field(description="The grant's global ID.")
    categories: list[DataCategory] | None = strawberry.field(default=None, description="To add.")
    purposes: list[Purpose] | None = strawberry.field(default=None, description="To add.")
    valid_until: datetime | None = strawberry.field(default=None, description="A later end.")
    obtained_via: ObtainedVia | None = strawberry.field(
        default=None, description="How staff obtained her consent to the extension (required from staff).")
    note: str | None = None


@strawberry.input(description="Identify a grant.")
class GrantIdInput:
    grant_id: strawberry.ID = strawberry.field(description="The grant's global ID.")


@strawberry.input(description="Revoke every live grant of hers.")
class RevokeAllInput:
    peacebuilder_id: strawberry.ID | None = strawberry.field(
        default=None, description="Omit when she does it herself.")


@strawberry.input(description="Open access without consent in her vital interest. Focal points "
                              "only, purpose EMERGENCY_RESPONSE, at most 72 hours; she is told.")
class OpenBreakGlassInput:
    peacebuilder_id: strawberry.ID = strawberry.field(description="Her global ID.")
    reason: str = strawberry.field(description="Why her vital interest requires it (>= 20 chars).")
    hours: int = strawberry.field(default=24, description="1 to 72.")


@strawberry.input(description="Identify a break-glass access.")
class BreakGlassIdInput:
    id: strawberry.ID = strawberry.field(description="The break-glass access's global ID.")


@strawberry.input(description="Put a user or machine client of your organisation on a case team.")
class CaseTeamInput:
    case_id: strawberry.ID = strawberry.field(description="The case's global ID.")
    member_id: strawberry.ID = strawberry.field(description="A User or Client ID.")


@strawberry.input(description="Identify an erasure request.")
class ErasureIdInput:
    id: strawberry.ID = strawberry.field(description="The erasure's global ID.")


@strawberry.input(description="A network named for her, to confirm.")
class ConfirmNetworkInput:
    peacebuilder_id: strawberry.ID | None = strawberry.field(
        default=None, description="Omit when she does it herself.")
    network_id: strawberry.ID = strawberry.field(description="The network Organisation.")


@strawberry.input(description="Erase her personal data (see eraseMyData).")
class EraseDataInput:
    peacebuilder_id: strawberry.ID | None = strawberry.field(
        default=None, description="Her ID (staff); omit when she asks herself.")
    reason: str | None = strawberry.field(
        default=None, description="Staff: why her data must go (at least 20 characters; sealed).")


@strawberry.type(description="Result of eraseMyData / stopErasure.")
class ErasurePayload:
    erased: bool = strawberry.field(description="Her key is destroyed now.")
    erasure: Erasure | None = strawberry.field(default=None, description="The request.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="Result of confirmNetwork.")
class NetworkLinkPayload:
    link: NetworkLink | None
    confirmation_id: strawberry.ID | None = strawberry.field(description=(
        "The two-person request waiting for a second focal point (staff), if one was started."))
    user_errors: list[UserError]


@strawberry.input(description="Ask for a correction of her data.")
class RequestCorrectionInput:
    field: str = strawberry.field(description="A profile field name, `summary` or `other`.")
    message: str


def _values(items: list[DataCategory] | list[Purpose] | None) -> list[str] | None:
    return [i.value for i in items] if items else None


def _self_or(info: Info, value: strawberry.ID | None) -> object:
    if value is not None:
        return ids.decode(value, "Peacebuilder", "peacebuilderId")
    return self_service.my_id(info.context.access)


_INPUT = ("What to do. Required: omitted only by older clients that still send the "
          "deprecated loose arguments.")


@strawberry.type
class ConsentMutations:
    @permissions.mutation(
        "Record a consent grant (staff's stays pending until she, or a second person, confirms "
        "it). Logged.",
        step_up=True, who=Who.PEOPLE,
        when="the step-up applies to anyone but she herself")
    async def grant_consent(self, info: Info, input: GrantConsentInput) -> ConsentGrantPayload:
        async def record() -> ConsentGrantModel:
            # Every problem with the input (recipients, categories, a duplicate) is a userError.
            if ((input.recipient_organisation_id is None)
                    == (input.recipient_working_group_id is None)):
                raise BadInput("Name exactly one recipient: an organisation or a working group.",
                               field="recipient")
            if input.recipient_organisation_id is not None:
                rtype, rid = "organisation", ids.decode(
                    input.recipient_organisation_id, "Organisation", "recipientOrganisationId")
            else:
                assert input.recipient_working_group_id is not None
                rtype, rid = "working_group", ids.decode(
                    input.recipient_working_group_id, "WorkingGroup", "recipientWorkingGroupId")
            pb_id = _self_or(info, input.peacebuilder_id)
            return await info.context.loaders.call(
                consent.grant, info.context.access, peacebuilder_id=pb_id, recipient_type=rtype,
                recipient_id=rid, categories=[c.value for c in input.categories],
                purposes=[p.value for p in input.purposes], valid_from=input.valid_from,
                valid_until=input.valid_until,
                obtained_via=input.obtained_via.value if input.obtained_via else None,
                note=input.note,
                evidence=input.evidence.to_app() if input.evidence else None)  # type: ignore[arg-type]

        grant, errors = await guarded(info, record)
        return ConsentGrantPayload(grant=ConsentGrant.from_model(grant) if grant else None,
                                   user_errors=errors)

    @permissions.mutation(
        "She (or a focal point of a network she confirmed, acting for her) brings a PENDING grant "
        "into force. Staff confirm as the second person with confirmTwoPerson instead. Logged.",
        step_up=True, who=Who.HER_SIDE,
        when="the step-up applies to her network, not to her")
    async def confirm_consent(self, info: Info, input: GrantIdInput) -> ConsentGrantPayload:
        grant_id = ids.decode(input.grant_id, "ConsentGrant", "grantId")
        grant, errors = await guarded(info, lambda: info.context.loaders.call(
            consent.confirm, info.context.access, grant_id))
        return ConsentGrantPayload(grant=ConsentGrant.from_model(grant) if grant else None,
                                   user_errors=errors)

    @permissions.mutation(
        "Narrow a grant (only ever less). Logged.",
        step_up=True, who=Who.PEOPLE,
        when="the step-up applies to anyone but she herself")
    async def narrow_consent(self, info: Info, input: NarrowConsentInput) -> ConsentGrantPayload:
        grant_id = ids.decode(input.grant_id, "ConsentGrant", "grantId")
        grant, errors = await guarded(info, lambda: info.context.loaders.call(
            consent.change, info.context.access, grant_id, "narrow",
            categories=_values(input.categories), purposes=_values(input.purposes),
            valid_until=input.valid_until, note=input.note))
        return ConsentGrantPayload(grant=ConsentGrant.from_model(grant) if grant else None,
                                   user_errors=errors)

    @permissions.mutation(
        "Extend a grant. Logged.",
        step_up=True, who=Who.PEOPLE,
        when="the step-up applies to anyone but she herself")
    async def extend_consent(self, info: Info, input: ExtendConsentInput) -> ConsentGrantPayload:
        grant_id = ids.decode(input.grant_id, "ConsentGrant", "grantId")
        grant, errors = await guarded(info, lambda: info.context.loaders.call(
            consent.change, info.context.access, grant_id, "extend",
            categories=_values(input.categories), purposes=_values(input.purposes),
            valid_until=input.valid_until,
            obtained_via=input.obtained_via.value if input.obtained_via else None,
            note=input.note))
        return ConsentGrantPayload(grant=ConsentGrant.from_model(grant) if grant else None,
                                   user_errors=errors)

    @permissions.mutation(
        "Revoke a grant: it stops on the very next request (a pending one is withdrawn). Logged.",
        step_up=True, who=Who.PEOPLE,
        when="the step-up applies to anyone but she herself")
    async def revoke_consent(self, info: Info, input: GrantIdInput) -> ConsentGrantPayload:
        grant_id = ids.decode(input.grant_id, "ConsentGrant", "grantId")
        grant, errors = await guarded(info, lambda: info.context.loaders.call(
            consent.change, info.context.access, grant_id, "revoke"))
        return ConsentGrantPayload(grant=ConsentGrant.from_model(grant) if grant else None,
                                   user_errors=errors)

    @permissions.mutation(
        "Revoke all her live grants in one step. Logged.",
        step_up=True, who=Who.HER_SIDE,
        when="the step-up applies to her network, not to her")
    async def revoke_all_consent(self, info: Info, input: RevokeAllInput) -> RevokeAllPayload:
        pb_id = _self_or(info, input.peacebuilder_id)
        revoked, errors = await guarded(info, lambda: info.context.loaders.call(
            consent.revoke_all, info.context.access, pb_id))
        return RevokeAllPayload(revoked=[ConsentGrant.from_model(g) for g in revoked or []],
                                user_errors=errors)

    @permissions.mutation(
        "Open break-glass access to her record without her consent, in her vital interest (see "
        "input). Logged; she is told.",
        requires=[("break_glass", "open")], step_up=True)
    async def open_break_glass(self, info: Info, input: OpenBreakGlassInput) -> BreakGlassPayload:
        pb_id = ids.decode(input.peacebuilder_id, "Peacebuilder", "peacebuilderId")
        glass, errors = await guarded(info, lambda: info.context.loaders.call(
            break_glass.open_, info.context.access, pb_id, reason=input.reason, hours=input.hours))
        return BreakGlassPayload(break_glass=BreakGlass.from_model(glass) if glass else None,
                                 user_errors=errors)

    @permissions.mutation(
        "Close break-glass access before it expires. Logged.",
        requires=[("break_glass", "open")])
    async def close_break_glass(self, info: Info, input: BreakGlassIdInput) -> BreakGlassPayload:
        glass_id = ids.decode(input.id, "BreakGlass")
        glass, errors = await guarded(info, lambda: info.context.loaders.call(
            break_glass.close, info.context.access, glass_id))
        return BreakGlassPayload(break_glass=BreakGlass.from_model(glass) if glass else None,
                                 user_errors=errors)

    @permissions.mutation(
        "Put a member of your organisation on a case team. Logged.",
        requires=[("case_team", "manage")], purpose=True)
    async def assign_case_team_member(self, info: Info, input: CaseTeamInput) -> CasePayload:
        return await _team(info, input, teams.assign)

    @permissions.mutation(
        "Take a member off a case team. Logged.",
        requires=[("case_team", "manage")], purpose=True)
    async def remove_case_team_member(self, info: Info, input: CaseTeamInput) -> CasePayload:
        return await _team(info, input, teams.remove)

    @permissions.mutation(
        "Erase her personal data for good: her data key is destroyed, so her sealed fields are "
        "unreadable wherever they are held (backups too, once the KEK versions they depend on are "
        "destroyed). She herself (omit the ID): at once. A focal point of a network she confirmed, "
        "for her: carried out 48 hours after she and her network are told, unless she stops it. A "
        "focal point of an organisation that leads one of her cases and still holds her live "
        "consent, with a written `reason`: once a second focal point confirms (two-person rule), "
        "then likewise after 48 hours. Anyone else: NOT_FOUND. Logged.",
        step_up=True,
        when="the step-up applies to anyone but she herself",
        args={
            "peacebuilder_id": "Her global ID; omit it when she asks herself.",
        })
    async def erase_my_data(
        self, info: Info,
        input: Annotated[EraseDataInput | None, strawberry.argument(description=_INPUT)] = None,
        peacebuilder_id: Annotated[strawberry.ID | None, strawberry.argument(
            deprecation_reason="Use `input`.")] = None,
        reason: Annotated[str | None, strawberry.argument(
            description="Staff: why her data must go (at least 20 characters; sealed).",
            deprecation_reason="Use `input`.")] = None,
    ) -> ErasurePayload:
        from app.peacebuilders import erasure

        if input is not None:
            peacebuilder_id, reason = input.peacebuilder_id, input.reason
        pb_id = _self_or(info, peacebuilder_id)
        done, errors = await guarded(info, lambda: info.context.loaders.call(
            erasure.request, info.context.access, pb_id, reason))
        return ErasurePayload(erased=bool(done and done.status == "done"),
                              erasure=Erasure.from_model(done) if done else None,
                              user_errors=errors)

    @permissions.mutation(
        "She (or her network's focal point, for her) stops an erasure someone else asked for, "
        "before it is carried out. Logged.",
        step_up=True, who=Who.HER_SIDE,
        when="the step-up applies to her network, not to her")
    async def stop_erasure(self, info: Info, input: ErasureIdInput) -> ErasurePayload:
        from app.peacebuilders import erasure

        erasure_id = ids.decode(input.id, "Erasure")
        done, errors = await guarded(info, lambda: info.context.loaders.call(
            erasure.stop, info.context.access, erasure_id))
        return ErasurePayload(erased=False, erasure=Erasure.from_model(done) if done else None,
                              user_errors=errors)

    @permissions.mutation(
        "Confirm a network named for her, so its focal points may act for her. She herself: at "
        "once. While she has no login, a focal point of the organisation that registered her asks, "
        "and a second focal point confirms it (two-person rule; see `confirmation`); the network "
        "is told. Logged.",
        step_up=True,
        when="the step-up applies to the focal point who asks, not to her")
    async def confirm_network(self, info: Info, input: ConfirmNetworkInput) -> NetworkLinkPayload:
        from app.peacebuilders import networks

        pb_id = _self_or(info, input.peacebuilder_id)
        network_id = ids.decode(input.network_id, "Organisation", "networkId")
        done, errors = await guarded(info, lambda: info.context.loaders.call(
            networks.confirm, info.context.access, pb_id, network_id))
        link, asked = done if done else (None, None)
        return NetworkLinkPayload(link=NetworkLink.from_model(link) if link else None,
                                  confirmation_id=(strawberry.ID(ids.encode("Confirmation",
                                                                            asked.id))
                                                   if asked else None),
                                  user_errors=errors)

    @permissions.mutation(
        "She asks for a correction of her data. It goes to the lead organisation of her most "
        "recent open case (else the one that registered her) as a task due in its correction "
        "deadline (default 30 days), escalating along its chain when unanswered. Logged.",
        who=Who.HERSELF)
    async def request_correction(
        self, info: Info, input: RequestCorrectionInput
    ) -> DataRequestPayload:
        req, errors = await guarded(info, lambda: info.context.loaders.call(
            corrections.request_correction, info.context.access, input.field, input.message))
        return DataRequestPayload(request=DataRequest.from_model(req) if req else None,
                                  user_errors=errors)


async def _team(info: Info, input: CaseTeamInput, action: object) -> CasePayload:
    case_id = ids.decode(input.case_id, "Case", "caseId")
    member = ids.decode_any(input.member_id, "memberId")
    case, errors = await guarded(info, lambda: info.context.loaders.call(
        action, info.context.access, case_id, member))  # type: ignore[arg-type]
    return await case_payload(info, case, errors)
