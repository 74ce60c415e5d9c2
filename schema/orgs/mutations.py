"""Mutations of organisation admins: people, roles, clients, working-group membership."""

from __future__ import annotations

import strawberry

from app.orgs import service as orgs
from schema import ids, permissions
from schema.common import UserError, guarded
from schema.context import Info
from schema.orgs.types import Client, Role, User, WorkingGroup


@strawberry.input(description="Create a person in your organisation.")
class CreateUserInput:
    username: str = strawberry.field(description="1-64 lowercase letters, digits, '.', '_', '-'.")
    display_name: str
    roles: list[Role] = strawberry.field(description="The roles the person holds in your organisation.")


@strawberry.type(description="Result of createUser / resetUserPassword.")
class UserCredentialPayload:
    user: User | None
    initial_password: str | None = strawberry.field(
        description="Generated password, shown once; the user should change it.")
    user_errors: list[UserError]


@strawberry.input(description="Replace a user's roles.")
class SetUserRolesInput:
    user_id: strawberry.ID = strawberry.field(description="The person's global ID.")
    roles: list[Role] = strawberry.field(
        description="The roles the person holds from now on (replacing the old ones).")


@strawberry.input(description="Identify a user.")
class UserIdInput:
    user_id: strawberry.ID = strawberry.field(description="The person's global ID.")


@strawberry.input(description="Bind a person to her account at the identity provider.")
class LinkUserIdentityInput:
    user_id: strawberry.ID = strawberry.field(description="A person of your organisation.")
    subject: str = strawberry.field(description=(
        "Her account's `sub` at the deployment's OIDC provider (stable, never reassigned; "
        "not a username or an email address)."))


@strawberry.type(description="Result of a change to a user.")
class UserPayload:
    user: User | None
    user_errors: list[UserError]


@strawberry.input(description="Register a machine client for your organisation.")
class CreateClientInput:
    client_id: str = strawberry.field(description="3-80 lowercase letters, digits, '.', '_', '-'.")
    name: str


@strawberry.input(description="Identify a machine client.")
class ClientIdInput:
    id: strawberry.ID = strawberry.field(description="The machine client's global ID.")


@strawberry.type(description="Result of createClient / rotateClientSecret.")
class ClientSecretPayload:
    client: Client | None
    client_secret: str | None = strawberry.field(description="The secret, shown once.")
    user_errors: list[UserError]


@strawberry.type(description="Result of a change to a machine client.")
class ClientPayload:
    client: Client | None
    user_errors: list[UserError]


@strawberry.input(description="Add or remove a member organisation (convener's admin only).")
class WorkingGroupMemberInput:
    working_group_id: strawberry.ID = strawberry.field(description="The working group's global ID.")
    organisation_id: strawberry.ID = strawberry.field(description="The member organisation's global ID.")


@strawberry.type(description="Result of a working-group membership change.")
class WorkingGroupPayload:
    working_group: WorkingGroup | None
    user_errors: list[UserError]


def _roles(roles: list[Role]) -> list[str]:
    return [r.value for r in roles]


@strawberry.type
class OrgMutations:
    @permissions.mutation(
        "Create a user with a generated initial password (shown once). Logged.",
        requires=[("user", "manage")])
    async def create_user(self, info: Info, input: CreateUserInput) -> UserCredentialPayload:
        access = info.context.access
        result, errors = await guarded(info, lambda: info.context.loaders.call(
            orgs.create_user, access, username=input.username, display_name=input.display_name,
            roles=_roles(input.roles)))
        user, secret = result if result else (None, None)
        return UserCredentialPayload(user=User.from_model(user) if user else None,
                                     initial_password=secret.value if secret else None,
                                     user_errors=errors)

    @permissions.mutation(
        "Replace a user's roles. Logged.",
        requires=[("user", "manage")])
    async def set_user_roles(self, info: Info, input: SetUserRolesInput) -> UserPayload:
        user_id = ids.decode(input.user_id, "User", "userId")
        user, errors = await guarded(info, lambda: info.context.loaders.call(
            orgs.set_user_roles, info.context.access, user_id, _roles(input.roles)))
        return UserPayload(user=User.from_model(user) if user else None, user_errors=errors)

    @permissions.mutation(
        "Deactivate a user: their next request is refused. Logged.",
        requires=[("user", "manage")])
    async def deactivate_user(self, info: Info, input: UserIdInput) -> UserPayload:
        return await _set_active(info, input, False)

    @permissions.mutation(
        "Reactivate a user. Logged.",
        requires=[("user", "manage")])
    async def reactivate_user(self, info: Info, input: UserIdInput) -> UserPayload:
        return await _set_active(info, input, True)

    @permissions.mutation(
        "OIDC mode: bind a person to her account at the identity provider (issuer + `sub`); tokens "
        "of that account then act as her, names in the token never do. Once: another account needs "
        "unlinkUserIdentity first. Logged.",
        requires=[("user", "manage")], step_up=True)
    async def link_user_identity(self, info: Info, input: LinkUserIdentityInput) -> UserPayload:
        user_id = ids.decode(input.user_id, "User", "userId")
        user, errors = await guarded(info, lambda: info.context.loaders.call(
            orgs.link_identity, info.context.access, user_id, input.subject))
        return UserPayload(user=User.from_model(user) if user else None, user_errors=errors)

    @permissions.mutation(
        "OIDC mode: remove a person's binding to a provider account; its tokens stop acting as her "
        "at their next request. Logged.",
        requires=[("user", "manage")], step_up=True)
    async def unlink_user_identity(self, info: Info, input: UserIdInput) -> UserPayload:
        user_id = ids.decode(input.user_id, "User", "userId")
        user, errors = await guarded(info, lambda: info.context.loaders.call(
            orgs.unlink_identity, info.context.access, user_id))
        return UserPayload(user=User.from_model(user) if user else None, user_errors=errors)

    @permissions.mutation(
        "Generate a new password for a user (shown once). Logged.",
        requires=[("user", "manage")])
    async def reset_user_password(self, info: Info, input: UserIdInput) -> UserCredentialPayload:
        user_id = ids.decode(input.user_id, "User", "userId")
        result, errors = await guarded(info, lambda: info.context.loaders.call(
            orgs.reset_password, info.context.access, user_id))
        user, secret = result if result else (None, None)
        return UserCredentialPayload(user=User.from_model(user) if user else None,
                                     initial_password=secret.value if secret else None,
                                     user_errors=errors)

    @permissions.mutation(
        "Register a machine client; its secret is shown once. Logged.",
        requires=[("client", "manage")])
    async def create_client(self, info: Info, input: CreateClientInput) -> ClientSecretPayload:
        result, errors = await guarded(info, lambda: info.context.loaders.call(
            orgs.create_client, info.context.access, client_id=input.client_id, name=input.name))
        client, secret = result if result else (None, None)
        return ClientSecretPayload(client=Client.from_model(client) if client else None,
                                   client_secret=secret.value if secret else None,
                                   user_errors=errors)

    @permissions.mutation(
        "Replace a client's secret; the old one stops working at once. Logged.",
        requires=[("client", "manage")])
    async def rotate_client_secret(self, info: Info, input: ClientIdInput) -> ClientSecretPayload:
        id_ = ids.decode(input.id, "Client")
        result, errors = await guarded(info, lambda: info.context.loaders.call(
            orgs.rotate_client_secret, info.context.access, id_))
        client, secret = result if result else (None, None)
        return ClientSecretPayload(client=Client.from_model(client) if client else None,
                                   client_secret=secret.value if secret else None,
                                   user_errors=errors)

    @permissions.mutation(
        "Deactivate a client: its tokens stop working at once. Logged.",
        requires=[("client", "manage")])
    async def deactivate_client(self, info: Info, input: ClientIdInput) -> ClientPayload:
        id_ = ids.decode(input.id, "Client")
        client, errors = await guarded(info, lambda: info.context.loaders.call(
            orgs.set_client_active, info.context.access, id_, False))
        return ClientPayload(client=Client.from_model(client) if client else None,
                             user_errors=errors)

    @permissions.mutation(
        "Add a member organisation to a working group you convene. Logged.",
        requires=[("working_group", "manage"), ("working_group", "read")])
    async def add_working_group_member(
        self, info: Info, input: WorkingGroupMemberInput
    ) -> WorkingGroupPayload:
        return await _membership(info, input, True)

    @permissions.mutation(
        "Remove a member organisation; it loses access at once. Logged.",
        requires=[("working_group", "manage"), ("working_group", "read")])
    async def remove_working_group_member(
        self, info: Info, input: WorkingGroupMemberInput
    ) -> WorkingGroupPayload:
        return await _membership(info, input, False)


async def _set_active(info: Info, input: UserIdInput, active: bool) -> UserPayload:
    user_id = ids.decode(input.user_id, "User", "userId")
    user, errors = await guarded(info, lambda: info.context.loaders.call(
        orgs.set_user_active, info.context.access, user_id, active))
    return UserPayload(user=User.from_model(user) if user else None, user_errors=errors)


async def _membership(info: Info, input: WorkingGroupMemberInput, member: bool) -> WorkingGroupPayload:
    wg_id = ids.decode(input.working_group_id, "WorkingGroup", "workingGroupId")
    org_id = ids.decode(input.organisation_id, "Organisation", "organisationId")
    wg, errors = await guarded(info, lambda: info.context.loaders.call(
        orgs.set_membership, info.context.access, wg_id, org_id, member))
    return WorkingGroupPayload(working_group=WorkingGroup.from_model(wg) if wg else None,
                               user_errors=errors)
