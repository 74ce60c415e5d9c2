"""GraphQL types for organisations, people, machine clients and working groups."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.access.principal import PrincipalKind
from app.tables import orgs as models
from schema import ids
from schema.common import Node, closed_set, describe_values
from schema.context import Info

OrgKind = strawberry.enum(models.OrgKind, description="The kind of organisation.")
describe_values(OrgKind, {
    "MINISTRY": "A government ministry.",
    "EMBASSY_MISSION": "An embassy or diplomatic mission.",
    "UN_PROTECTION_CLUSTER": "A UN protection cluster.",
    "OHCHR_OFFICE": "An office of the UN human rights office (OHCHR).",
    "NHRI": "A national human rights institution.",
    "LAW_ENFORCEMENT_LIAISON": "A law-enforcement liaison office.",
    "PEACEBUILDERS_NETWORK": "A network of women peacebuilders.",
    "FUND": "A fund that supports her protection.",
})
Role = strawberry.enum(models.Role, description="A role inside one organisation.")
describe_values(Role, {
    "ORG_ADMIN": "Manages the organisation's people, clients and settings; sees no case content.",
    "FOCAL_POINT": "Leads protection: cases, break-glass, confirmations, alerts.",
    "CASEWORKER": "Works on the cases whose team they are on.",
    "ANALYST": "Reads pseudonymous records and aggregate statistics.",
    "AUDITOR": "Reads and exports the access log.",
    "MACHINE_CLIENT": "A case-management system acting for the organisation.",
})



ViewerKind = closed_set(PrincipalKind, "Who is calling.", {
    "USER": "A person of an organisation.", "CLIENT": "A machine client (OAuth2).",
    "PEACEBUILDER": "She herself.", "SYSTEM": "The service itself (never a caller of the API).",
    "ANONYMOUS": "Nobody signed in (the public entry points)."}, name="ViewerKind")


@strawberry.type(description="An organisation (tenant): ministry, mission, UN cluster, NHRI, "
                             "network, fund and so on. The directory is visible to all staff.")
class Organisation(Node):
    slug: str = strawberry.field(description="Short stable name, e.g. `unpc`.")
    name: str = strawberry.field(description="Display name.")
    kind: OrgKind = strawberry.field(description="Kind of organisation.")
    country: str = strawberry.field(description="ISO 3166 alpha-2 country code.")

    @classmethod
    def from_model(cls, org: models.Organisation) -> Organisation:
        return cls(id=strawberry.ID(ids.encode("Organisation", org.id)), slug=org.slug,
                   name=org.name, kind=models.OrgKind(org.kind), country=org.country)


async def organisation_of(info: Info, org_id: object) -> Organisation | None:
    """The organisation with this ID through the request's loader (null for none)."""
    if org_id is None:
        return None
    org = await info.context.loaders.organisation.load(org_id)
    return Organisation.from_model(org) if org else None


@strawberry.type(description="A person working for the caller's own organisation. "
                             "Requires `user:read` (org admin, focal point).")
class User(Node):
    username: str = strawberry.field(description="Login name, unique in the organisation.")
    display_name: str = strawberry.field(description="Name shown to colleagues.")
    active: bool = strawberry.field(description="Inactive users cannot sign in or use tokens.")
    created_at: datetime = strawberry.field(description="When the account was created.")
    identity_linked: bool = strawberry.field(description=(
        "OIDC mode: whether she is bound to an account at the identity provider "
        "(linkUserIdentity); unbound people cannot sign in there."))
    _subject: strawberry.Private[str]

    @strawberry.field(description="Roles held in the organisation.")
    async def roles(self, info: Info) -> list[Role]:
        return [models.Role(r) for r in await info.context.loaders.roles.load(self._subject)]

    @classmethod
    def from_model(cls, user: models.User) -> User:
        return cls(id=strawberry.ID(ids.encode("User", user.id)), username=user.username,
                   display_name=user.display_name, active=user.active,
                   created_at=user.created_at,
                   identity_linked=user.oidc_subject is not None, _subject=user.subject)


@strawberry.type(description="A partner agency's system using OAuth2 client credentials. "
                             "Requires `client:manage` (org admin).")
class Client(Node):
    client_id: str = strawberry.field(description="The OAuth2 client_id.")
    name: str = strawberry.field(description="What system this is.")
    active: bool = strawberry.field(description="Inactive clients get no tokens.")
    secret_rotated_at: datetime | None = strawberry.field(description="Last secret change.")

    @classmethod
    def from_model(cls, client: models.Client) -> Client:
        return cls(id=strawberry.ID(ids.encode("Client", client.id)), client_id=client.client_id,
                   name=client.name, active=client.active,
                   secret_rotated_at=client.secret_rotated_at)


@strawberry.type(description="Organisations coordinating protection for a set of cases; one "
                             "convenes it. Visible to its convener and current members.")
class WorkingGroup(Node):
    slug: str = strawberry.field(description="Short stable name, e.g. `jag`.")
    name: str = strawberry.field(description="Display name.")
    _convener_id: strawberry.Private[object]
    _id: strawberry.Private[object]

    @strawberry.field(description="The organisation that convenes the group.")
    async def convener(self, info: Info) -> Organisation:
        return Organisation.from_model(await info.context.loaders.organisation.load(self._convener_id))

    @strawberry.field(description="Current member organisations.")
    async def members(self, info: Info) -> list[Organisation]:
        member_ids = await info.context.loaders.members.load(self._id)
        orgs = await info.context.loaders.organisation.load_many(member_ids)
        return [Organisation.from_model(o) for o in orgs if o is not None]

    @classmethod
    def from_model(cls, wg: models.WorkingGroup) -> WorkingGroup:
        return cls(id=strawberry.ID(ids.encode("WorkingGroup", wg.id)), slug=wg.slug, name=wg.name,
                   _convener_id=wg.convener_org_id, _id=wg.id)


@strawberry.type(description="Who is calling.")
class Viewer:
    kind: ViewerKind = strawberry.field(description="Who is calling.")  # type: ignore[valid-type]
    name: str = strawberry.field(description="Username or client ID.")
    roles: list[Role] = strawberry.field(description=(
        "Roles in the caller's organisation (none for her own login: `kind` says who she is)."))
    _org_id: strawberry.Private[object]

    @strawberry.field(description="The caller's organisation.")
    async def organisation(self, info: Info) -> Organisation | None:
        return await organisation_of(info, self._org_id)


