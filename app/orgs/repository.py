"""SQL for organisations, people, clients, roles and working groups."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import OrgScope
from app.auth.principals import user_in_scope as user_in_scope  # identity needs it too
from app.tables.orgs import (
    Client,
    Organisation,
    PolicyState,
    RoleAssignment,
    User,
    WorkingGroup,
    WorkingGroupMember,
)


async def orgs_by_ids(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Organisation]:
    rows = await session.scalars(select(Organisation).where(Organisation.id.in_(list(ids))))
    return {org.id: org for org in rows}


async def org_by_slug(session: AsyncSession, slug: str) -> Organisation | None:
    return await session.scalar(select(Organisation).where(Organisation.slug == slug))


def orgs_query():  # type: ignore[no-untyped-def]
    return select(Organisation)


async def user_by_username(session: AsyncSession, org_id: uuid.UUID, username: str) -> User | None:
    return await session.scalar(select(User).where(User.org_id == org_id, User.username == username))


def users_query(scope: OrgScope):  # type: ignore[no-untyped-def]
    return select(User).where(User.org_id.in_(scope))


async def client_by_client_id(session: AsyncSession, client_id: str) -> Client | None:
    return await session.scalar(select(Client).where(Client.client_id == client_id))


async def client_in_scope(session: AsyncSession, scope: OrgScope, id_: uuid.UUID) -> Client | None:
    return await session.scalar(select(Client).where(Client.id == id_, Client.org_id.in_(scope)))


def clients_query(scope: OrgScope):  # type: ignore[no-untyped-def]
    return select(Client).where(Client.org_id.in_(scope))


async def roles_of(session: AsyncSession, org_id: uuid.UUID, subject: str) -> set[str]:
    rows = await session.scalars(select(RoleAssignment.role).where(
        RoleAssignment.org_id == org_id, RoleAssignment.subject == subject))
    return set(rows)


async def roles_by_subjects(
    session: AsyncSession, subjects: list[str]
) -> dict[str, list[str]]:
    rows = await session.execute(select(RoleAssignment.subject, RoleAssignment.role).where(
        RoleAssignment.subject.in_(subjects)).order_by(RoleAssignment.role))
    out: dict[str, list[str]] = {s: [] for s in subjects}
    for subject, role in rows:
        out[subject].append(role)
    return out


async def set_roles(
    session: AsyncSession, org_id: uuid.UUID, subject: str, roles: set[str]
) -> tuple[set[str], set[str]]:
    """Make the subject's roles exactly `roles`; returns (added, removed)."""
    current = await roles_of(session, org_id, subject)
    added, removed = roles - current, current - roles
    for role in added:
        session.add(RoleAssignment(org_id=org_id, subject=subject, role=role))
    if removed:
        for row in await session.scalars(select(RoleAssignment).where(
                RoleAssignment.org_id == org_id, RoleAssignment.subject == subject,
                RoleAssignment.role.in_(removed))):
            await session.delete(row)
    if added or removed:
        await bump_policy_version(session)
    return added, removed


async def bump_policy_version(session: AsyncSession) -> None:
    result = await session.execute(
        update(PolicyState).where(PolicyState.id == 1).values(version=PolicyState.version + 1))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(PolicyState(id=1, version=1))
    await session.flush()


async def wg_by_slug(session: AsyncSession, slug: str) -> WorkingGroup | None:
    return await session.scalar(select(WorkingGroup).where(WorkingGroup.slug == slug))


def working_groups_query(org_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """Working groups the organisation convenes or currently belongs to."""
    member = select(WorkingGroupMember.working_group_id).where(
        WorkingGroupMember.org_id == org_id, WorkingGroupMember.left_at.is_(None))
    return select(WorkingGroup).where(
        (WorkingGroup.convener_org_id == org_id) | WorkingGroup.id.in_(member))


async def current_members(
    session: AsyncSession, wg_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    rows = await session.execute(
        select(WorkingGroupMember.working_group_id, WorkingGroupMember.org_id)
        .where(WorkingGroupMember.working_group_id.in_(wg_ids),
               WorkingGroupMember.left_at.is_(None))
        .order_by(WorkingGroupMember.joined_at))
    out: dict[uuid.UUID, list[uuid.UUID]] = {w: [] for w in wg_ids}
    for wg_id, org_id in rows:
        out[wg_id].append(org_id)
    return out


async def end_membership(
    session: AsyncSession, wg_id: uuid.UUID, org_id: uuid.UUID, at: datetime
) -> None:
    await session.execute(update(WorkingGroupMember).where(
        WorkingGroupMember.working_group_id == wg_id, WorkingGroupMember.org_id == org_id,
        WorkingGroupMember.left_at.is_(None)).values(left_at=at))
