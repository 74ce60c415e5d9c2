"""Mutations: an organisation's directory entry (its admins), a request for help (anyone, no
sign-in), and its handling (the organisation's focal points)."""

from __future__ import annotations

import strawberry

from app.directory import help as help_requests
from app.directory import service as directory
from app.errors import BadInput
from schema import ids, permissions
from schema.common import guarded
from schema.context import Info
from schema.directory.types import (
    HelpRequest,
    HelpRequestPayload,
    RequestHelpPayload,
    ServiceDirectoryEntry,
    ServiceDirectoryEntryPayload,
    ServiceKind,
)
from schema.permissions import Who


@strawberry.input(description="Your organisation's directory entry (replaces the whole entry).")
class SetServiceDirectoryEntryInput:
    organisation_id: strawberry.ID | None = strawberry.field(
        default=None, description="Your own organisation (the default); any other is NOT_FOUND.")
    services: list[ServiceKind] = strawberry.field(description="Kinds of support it offers.")
    languages: list[str] = strawberry.field(
        description="Languages it works in: ISO 639-1 codes, at most 20.")
    regions: list[str] = strawberry.field(
        description="Regions it works in: at most 20, each 1-60 characters.")
    accepts_help_requests: bool = strawberry.field(
        description="Whether it accepts requests for help from women without a case.")
    referral_response_hours: int | None = strawberry.field(
        default=None, description="Hours to accept or decline a referral (1-720; default 72).")


@strawberry.input(description="A request for help from someone without a case or account.")
class RequestHelpInput:
    organisation_id: strawberry.ID = strawberry.field(
        description="The organisation she picks, from `helpDesks`.")
    message: str = strawberry.field(description="What is happening and what she needs.")
    contact: str = strawberry.field(
        description="How and when it is safe to reach her (a number, a messenger handle, a "
                    "time of day).")
    language: str | None = strawberry.field(
        default=None, description="The language to answer in (ISO 639-1).")


@strawberry.input(description="Identify a request for help to your organisation.")
class HelpRequestIdInput:
    id: strawberry.ID = strawberry.field(description="The request (HelpRequest ID).")


@strawberry.type
class DirectoryMutations:
    @permissions.mutation(
        "Create or replace your organisation's directory entry. Logged.",
        requires=[("service_directory", "manage")])
    async def set_service_directory_entry(
            self, info: Info, input: SetServiceDirectoryEntryInput) -> ServiceDirectoryEntryPayload:
        org = (ids.decode(input.organisation_id, "Organisation", "organisationId")
               if input.organisation_id else None)
        value = directory.EntryInput(
            services=[s.value for s in input.services], languages=list(input.languages),
            regions=list(input.regions), accepts_help_requests=input.accepts_help_requests,
            referral_response_hours=input.referral_response_hours)
        entry, errors = await guarded(info, lambda: info.context.loaders.call(
            directory.set_entry, info.context.access, org, value))
        return ServiceDirectoryEntryPayload(
            entry=ServiceDirectoryEntry.from_model(entry) if entry else None, user_errors=errors)

    @permissions.mutation(
        "Ask one organisation for help, without an account (limited per client address). Her "
        "message and contact are sealed so that only that organisation's focal points read them. "
        "An organisation that does not take requests, or does not exist, gets the same userError; "
        "the answer never says anything about any record.",
        who=Who.PUBLIC)
    async def request_help(self, info: Info, input: RequestHelpInput) -> RequestHelpPayload:
        async def submit() -> None:
            try:
                org = ids.decode(input.organisation_id, "Organisation", "organisationId")
            except BadInput:  # a malformed ID is answered like any other unknown organisation
                org = None
            await info.context.loaders.call(
                help_requests.submit, info.context.access, org_id=org, message=input.message,
                contact=input.contact, language=input.language)

        _, errors = await guarded(info, submit)
        return RequestHelpPayload(received=not errors, user_errors=errors)

    @permissions.mutation(
        "Take a request for help on: its escalation stops. Logged.",
        requires=[("help_request", "manage")])
    async def acknowledge_help_request(self, info: Info,
                                       input: HelpRequestIdInput) -> HelpRequestPayload:
        rid = ids.decode(input.id, "HelpRequest")
        opened, errors = await guarded(info, lambda: info.context.loaders.call(
            help_requests.acknowledge, info.context.access, rid))
        return HelpRequestPayload(help_request=HelpRequest.from_opened(opened) if opened else None,
                                  user_errors=errors)

    @permissions.mutation(
        "Erase a request for help: its key is destroyed, so its message and contact are unreadable "
        "everywhere. Logged.",
        requires=[("help_request", "manage")])
    async def erase_help_request(self, info: Info,
                                 input: HelpRequestIdInput) -> HelpRequestPayload:
        rid = ids.decode(input.id, "HelpRequest")
        opened, errors = await guarded(info, lambda: info.context.loaders.call(
            help_requests.erase, info.context.access, rid))
        return HelpRequestPayload(help_request=HelpRequest.from_opened(opened) if opened else None,
                                  user_errors=errors)
