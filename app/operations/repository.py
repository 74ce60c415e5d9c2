"""SQL for registered operations and organisation settings, scoped to the caller's organisation."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import OrgScope
from app.tables.operations import OrganisationSettings, RegisteredOperation


def operations_query(scope: OrgScope):  # type: ignore[no-untyped-def]
    return select(RegisteredOperation).where(RegisteredOperation.org_id.in_(scope))


async def operation_by_hash(session: AsyncSession, scope: OrgScope,
                            sha256: str) -> RegisteredOperation | None:
    return await session.scalar(operations_query(scope).where(RegisteredOperation.sha256 == sha256))


async def operation_in_scope(session: AsyncSession, scope: OrgScope,
                             id_: uuid.UUID) -> RegisteredOperation | None:
    return await session.scalar(operations_query(scope).where(RegisteredOperation.id == id_))


async def settings_of(session: AsyncSession, scope: OrgScope) -> OrganisationSettings | None:
    return await session.scalar(select(OrganisationSettings).where(
        OrganisationSettings.org_id.in_(scope)))


async def admission(session: AsyncSession, org_id: uuid.UUID,
                    sha256: str | None) -> tuple[bool, str | None]:
    """(only registered operations?, the registered document for sha256) in one statement."""
    only = (select(OrganisationSettings.only_registered_operations)
            .where(OrganisationSettings.org_id == org_id).scalar_subquery())
    columns: list[Any] = [only]
    if sha256 is not None:
        columns.append(select(RegisteredOperation.document).where(
            RegisteredOperation.org_id == org_id, RegisteredOperation.sha256 == sha256)
            .scalar_subquery())
    row = (await session.execute(select(*columns))).one()
    return bool(row[0]), (row[1] if sha256 is not None else None)
