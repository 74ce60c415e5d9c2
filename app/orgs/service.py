"""Organisations, their people, machine clients, roles and working groups."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import AccessContext
from app.auth import enrolment, sessions
from app.auth.passwords import hash_password, hash_secret, new_secret
from app.errors import BadInput, Conflict, NotFound
from app.orgs import repository as repo
from app.pagination import Page, PageRequest, paginate
from app.tables.orgs import Client, Organisation, Role, User, WorkingGroup, WorkingGroupMember

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{2,79}$")
PERSON_ROLES = {r.value for r in Role} - {Role.MACHINE_CLIENT.value}


@dataclass(frozen=True)
class IssuedSecret:
    """A generated credential, returned once and never stored in clear."""

    value: str


async def get_org(ctx: AccessContext, org_id: uuid.UUID) -> Organisation:
    """One organisation (the directory of organisations is visible to every staff member)."""
    await ctx.require("organisation", "read")
    org = (await repo.orgs_by_ids(ctx.session, [org_id])).get(org_id)
    if org is None:
        raise NotFound()
    return org


async def list_orgs(ctx: AccessContext, page: PageRequest, kind: str | None = None) -> Page[Organisation]:
    """The directory of organisations, by slug."""
    await ctx.require("organisation", "read")
    query = repo.orgs_query()
    if kind:
        query = query.where(Organisation.kind == kind)
    return await paginate(ctx.session, query, keys=(Organisation.slug, Organisation.id), page=page)


async def orgs_by_ids(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Organisation]:
    """Batch load for dataloaders; organisations are a public directory."""
    return await repo.orgs_by_ids(session, ids)


async def list_users(ctx: AccessContext, page: PageRequest) -> Page[User]:
    """People of the caller's own organisation."""
    await ctx.require("user", "read")
    return await paginate(ctx.session, repo.users_query(ctx.own_scope()),
                          keys=(User.username, User.id), page=page)


async def get_user(ctx: AccessContext, user_id: uuid.UUID) -> User:
    await ctx.require("user", "read")
    user = await repo.user_in_scope(ctx.session, ctx.own_scope(), user_id)
    if user is None:
        raise NotFound()
    return user


def _check_roles(roles: list[str], allowed: set[str]) -> set[str]:
    unknown = sorted(set(roles) - allowed)
    if unknown:
        raise BadInput(f"Unknown role(s): {', '.join(unknown)}.", field="roles")
    return set(roles)


async def create_user(
    ctx: AccessContext, *, username: str, display_name: str, roles: list[str]
) -> tuple[User, IssuedSecret]:
    """Create a person in the caller's organisation with a generated initial password."""
    await ctx.require("user", "manage")
    assert ctx.org_id is not None
    if not USERNAME.match(username):
        raise BadInput("Username must be 1-64 lowercase letters, digits, '.', '_' or '-'.",
                       field="username")
    if not display_name.strip():
        raise BadInput("Display name is required.", field="displayName")
    wanted = _check_roles(roles, PERSON_ROLES)
    if await repo.user_by_username(ctx.session, ctx.org_id, username):
        raise Conflict("A user with this username already exists.")
    password = IssuedSecret(new_secret())
    user = User(org_id=ctx.org_id, username=username, display_name=display_name.strip(),
                password_hash=hash_password(password.value),
                password_set_by=ctx.principal.subject, active=True,
                created_at=ctx.clock.now())
    ctx.session.add(user)
    await ctx.session.flush()
    await repo.set_roles(ctx.session, ctx.org_id, user.subject, wanted)
    ctx.record("user.create", target_type="User", target_id=user.id,
               details={"roles": sorted(wanted)})
    return user, password


async def set_user_roles(ctx: AccessContext, user_id: uuid.UUID, roles: list[str]) -> User:
    await ctx.require("user", "manage")
    user = await _managed_user(ctx, user_id)
    assert ctx.org_id is not None
    if user.id == ctx.principal.id:
        raise BadInput("You cannot change your own roles; another admin must.", field="userId")
    added, removed = await repo.set_roles(ctx.session, ctx.org_id, user.subject,
                                          _check_roles(roles, PERSON_ROLES))
    ctx.record("user.roles", target_type="User", target_id=user.id,
               details={"added": sorted(added), "removed": sorted(removed)})
    return user


async def set_user_active(ctx: AccessContext, user_id: uuid.UUID, active: bool) -> User:
    """Deactivation takes effect on the user's next request: tokens are checked against it."""
    await ctx.require("user", "manage")
    user = await _managed_user(ctx, user_id)
    if user.id == ctx.principal.id and not active:
        raise BadInput("You cannot deactivate yourself.", field="id")
    user.active = active
    if not active:
        await enrolment.void(ctx, user.id, why="deactivated")
        # Her sessions end for good: reactivation does not bring them back.
        await sessions.revoke_subject(ctx.session, user.subject, "deactivated", ctx.clock.now())
    ctx.record("user.activate" if active else "user.deactivate", target_type="User",
               target_id=user.id)
    return user


async def reset_password(ctx: AccessContext, user_id: uuid.UUID) -> tuple[User, IssuedSecret]:
    await ctx.require("user", "manage")
    user = await _managed_user(ctx, user_id)
    password = IssuedSecret(new_secret())
    user.password_hash = hash_password(password.value)
    await sessions.revoke_subject(ctx.session, user.subject, "password reset", ctx.clock.now())
    # Whoever holds the new password must not also hold a code issued before it.
    user.password_set_by = ctx.principal.subject
    await enrolment.void(ctx, user.id, why="password reset")
    ctx.record("user.reset_password", target_type="User", target_id=user.id)
    return user, password


async def link_identity(ctx: AccessContext, user_id: uuid.UUID, subject: str) -> User:
    """OIDC mode: bind a person of the organisation to her account at the provider (its `sub`;
    the issuer is the deployment's). Once: a different account needs an unlink first, logged.
    Requires `user:manage` and a recent second factor (a link is who may act as her)."""
    await ctx.require("user", "manage")
    ctx.require_recent_mfa("user.link_identity", target_type="User", target_id=user_id)
    user = await _managed_user(ctx, user_id)
    await bind_identity(ctx, user, subject)
    return user


async def bind_identity(ctx: AccessContext, user: User, subject: str, *,
                        via: str | None = None) -> None:
    """The binding itself (also the operator's `safety-net users link-identity`)."""
    issuer = ctx.external_issuer
    if not issuer:
        raise BadInput("Provider accounts are linked in OIDC mode only.", field="subject")
    subject = subject.strip()
    if not subject or len(subject) > 255:
        raise BadInput("The provider account's `sub`: 1-255 characters.", field="subject")
    if user.oidc_subject is not None:
        raise Conflict("This person is already linked to a provider account: unlink it first.")
    user.oidc_issuer, user.oidc_subject = issuer, subject
    try:
        async with ctx.session.begin_nested():
            await ctx.session.flush()
    except IntegrityError as exc:
        raise Conflict("That provider account is already linked to someone.") from exc
    ctx.record("user.link_identity", target_type="User", target_id=user.id,
               details={"via": via} if via else None)


async def unlink_identity(ctx: AccessContext, user_id: uuid.UUID) -> User:
    """Remove her binding: tokens of that provider account stop mapping to her at once."""
    await ctx.require("user", "manage")
    ctx.require_recent_mfa("user.unlink_identity", target_type="User", target_id=user_id)
    user = await _managed_user(ctx, user_id)
    user.oidc_issuer = user.oidc_subject = None
    ctx.record("user.unlink_identity", target_type="User", target_id=user.id)
    return user


async def _managed_user(ctx: AccessContext, user_id: uuid.UUID) -> User:
    user = await repo.user_in_scope(ctx.session, ctx.own_scope(), user_id)
    if user is None:
        raise NotFound()
    return user


async def list_clients(ctx: AccessContext, page: PageRequest) -> Page[Client]:
    await ctx.require("client", "manage")
    return await paginate(ctx.session, repo.clients_query(ctx.own_scope()),
                          keys=(Client.client_id, Client.id), page=page)


async def create_client(
    ctx: AccessContext, *, client_id: str, name: str
) -> tuple[Client, IssuedSecret]:
    """Register a machine client for the caller's organisation; the secret is shown once."""
    await ctx.require("client", "manage")
    assert ctx.org_id is not None
    if not CLIENT_ID.match(client_id):
        raise BadInput("Client ID must be 3-80 lowercase letters, digits, '.', '_' or '-'.",
                       field="clientId")
    if not name.strip():
        raise BadInput("Name is required.", field="name")
    if await repo.client_by_client_id(ctx.session, client_id):
        raise Conflict("A client with this ID already exists.")
    secret = IssuedSecret(new_secret())
    now = ctx.clock.now()
    client = Client(org_id=ctx.org_id, client_id=client_id, name=name.strip(),
                    secret_hash=hash_secret(secret.value), secret_rotated_at=now, active=True,
                    created_at=now)
    ctx.session.add(client)
    await ctx.session.flush()
    await repo.set_roles(ctx.session, ctx.org_id, client.subject, {Role.MACHINE_CLIENT.value})
    ctx.record("client.create", target_type="Client", target_id=client.id)
    return client, secret


async def rotate_client_secret(ctx: AccessContext, id_: uuid.UUID) -> tuple[Client, IssuedSecret]:
    """Replace the secret; the old one stops working at once."""
    await ctx.require("client", "manage")
    client = await _managed_client(ctx, id_)
    secret = IssuedSecret(new_secret())
    client.secret_hash = hash_secret(secret.value)
    client.secret_rotated_at = ctx.clock.now()
    ctx.record("client.rotate_secret", target_type="Client", target_id=client.id)
    return client, secret


async def set_client_active(ctx: AccessContext, id_: uuid.UUID, active: bool) -> Client:
    await ctx.require("client", "manage")
    client = await _managed_client(ctx, id_)
    client.active = active
    ctx.record("client.activate" if active else "client.deactivate", target_type="Client",
               target_id=client.id)
    return client


async def _managed_client(ctx: AccessContext, id_: uuid.UUID) -> Client:
    client = await repo.client_in_scope(ctx.session, ctx.own_scope(), id_)
    if client is None:
        raise NotFound()
    return client


async def roles_by_subjects(ctx: AccessContext, subjects: list[str]) -> dict[str, list[str]]:
    return await repo.roles_by_subjects(ctx.session, subjects)


async def list_working_groups(ctx: AccessContext, page: PageRequest) -> Page[WorkingGroup]:
    """Working groups the caller's organisation convenes or belongs to."""
    await ctx.require("working_group", "read")
    assert ctx.org_id is not None
    return await paginate(ctx.session, repo.working_groups_query(ctx.org_id),
                          keys=(WorkingGroup.slug, WorkingGroup.id), page=page)


async def get_working_group(ctx: AccessContext, wg_id: uuid.UUID) -> WorkingGroup:
    await ctx.require("working_group", "read")
    assert ctx.org_id is not None
    wg = await ctx.session.scalar(
        repo.working_groups_query(ctx.org_id).where(WorkingGroup.id == wg_id))
    if wg is None:
        raise NotFound()
    return wg


async def members_of(ctx: AccessContext, wg_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    return await repo.current_members(ctx.session, wg_ids)


# Who hears that an organisation joined a working group: consent registers telling the women
# with a live grant to the group (decision 0035: organisations sit below consent).
MemberJoined = Callable[[AccessContext, uuid.UUID, uuid.UUID], Awaitable[None]]
_member_joined: list[MemberJoined] = []


def on_member_joined(fn: MemberJoined) -> MemberJoined:
    """Register what follows a new member organisation of a working group."""
    _member_joined.append(fn)
    return fn


async def set_membership(
    ctx: AccessContext, wg_id: uuid.UUID, org_id: uuid.UUID, member: bool
) -> WorkingGroup:
    """The convener's admin adds or removes a member organisation; leaving ends access at once."""
    await ctx.require("working_group", "manage")
    wg = await get_working_group(ctx, wg_id)
    if wg.convener_org_id != ctx.org_id:
        raise NotFound()
    if org_id not in await repo.orgs_by_ids(ctx.session, [org_id]):
        raise NotFound()
    current = (await repo.current_members(ctx.session, [wg.id]))[wg.id]
    now = ctx.clock.now()
    if member and org_id not in current:
        ctx.session.add(WorkingGroupMember(working_group_id=wg.id, org_id=org_id, joined_at=now))
        ctx.record("working_group.join", target_type="WorkingGroup", target_id=wg.id,
                   details={"org": str(org_id)})
        # A newcomer is not covered by grants made before it joined; she is told of it.
        for joined in _member_joined:
            await joined(ctx, wg.id, org_id)
    elif not member and org_id in current:
        await repo.end_membership(ctx.session, wg.id, org_id, now)
        ctx.record("working_group.leave", target_type="WorkingGroup", target_id=wg.id,
                   details={"org": str(org_id)})
    await ctx.session.flush()
    return wg


async def get_client(ctx: AccessContext, client_row_id: uuid.UUID) -> Client:
    """One machine client of the caller's organisation (`node(id:)`), as `clients` lists it."""
    await ctx.require("client", "manage")
    found = await ctx.session.scalar(repo.clients_query(ctx.own_scope())
                                     .where(Client.id == client_row_id))
    if found is None:
        raise NotFound()
    return found
