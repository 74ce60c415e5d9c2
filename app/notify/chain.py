"""An organisation's escalation chain: who is alerted, level after level, until someone acts.

Declared per organisation in `tenants/` (`escalation:`; validated by app/tenants/schema.py) and
stored in its settings; the default below when it declares none. Levels name people by what
they are now — its active focal points, whoever is on duty on its rota at that moment, its
head of protection — so deactivated people, role changes and hand-overs take effect at the
next level, never later. It lives with notify, which finds whom an alert reaches; app/escalation
schedules the levels and builds on it (decision 0035).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.tables.escalation import DutyShift
from app.tables.operations import OrganisationSettings
from app.tables.orgs import RoleAssignment, User


class Level(enum.StrEnum):
    FOCAL_POINTS = "focal_points"
    ON_DUTY = "on_duty"
    HEAD_OF_PROTECTION = "head_of_protection"
    ADMINISTRATORS = "administrators"


# Minutes each level has to act before the next one is alerted. The first level is alerted at
# the item's own deadline (an incident's acknowledgement deadline, a task's due date).
DEFAULT_CHAIN: list[dict[str, Any]] = [
    {"to": Level.FOCAL_POINTS.value, "minutes": 60},
    {"to": Level.ON_DUTY.value, "minutes": 30},
    {"to": Level.HEAD_OF_PROTECTION.value, "minutes": 30},
]
# Roles that may receive an escalation (and so must hold anyone the chain names).
ESCALATION_ROLES = ("focal_point", "org_admin")
MIN_MINUTES, MAX_MINUTES = 1, 7 * 24 * 60


async def chain_of(session: AsyncSession, org_id: uuid.UUID) -> tuple[list[dict[str, Any]],
                                                                       str | None]:
    """(levels, the head of protection's subject) of an organisation."""
    declared = await session.scalar(select(OrganisationSettings.escalation).where(
        OrganisationSettings.org_id == org_id))
    if not declared or not declared.get("levels"):
        return DEFAULT_CHAIN, (declared or {}).get("head_of_protection")
    return list(declared["levels"]), declared.get("head_of_protection")


async def active_with_roles(session: AsyncSession, org_id: uuid.UUID,
                            roles: tuple[str, ...]) -> list[str]:
    """Subjects of the organisation's people holding one of `roles`, less those deactivated.

    The scheduler (as the system) sees every person, so a chain level is exact. A request of
    another organisation sees role rows but, under row-level security, not that organisation's
    people: those it cannot see are kept, and delivery decides (`inbox.deliverable` refuses a
    deactivated recipient), so nothing reaches a deactivated person either way."""
    subjects = set(await session.scalars(select(RoleAssignment.subject).where(
        RoleAssignment.org_id == org_id, RoleAssignment.role.in_(roles))))
    ids = {uuid.UUID(s.split(":", 1)[1]): s for s in subjects if s.startswith("user:")}
    if not ids:
        return []
    inactive = set(await session.scalars(select(User.id).where(
        User.id.in_(list(ids)), User.active.is_(False))))
    return sorted(s for i, s in ids.items() if i not in inactive)


async def recipients(session: AsyncSession, org_id: uuid.UUID, level: str, head: str | None,
                     now: datetime) -> list[str]:
    """The active people a level names now (may be empty: the level is then skipped)."""
    if level == Level.FOCAL_POINTS:
        return await active_with_roles(session, org_id, ("focal_point",))
    if level == Level.ADMINISTRATORS:
        return await active_with_roles(session, org_id, ("org_admin",))
    if level == Level.HEAD_OF_PROTECTION:
        if not head:
            return []
        return [head] if head in await active_with_roles(session, org_id, ESCALATION_ROLES) else []
    if level == Level.ON_DUTY:
        on_duty = set(await session.scalars(select(DutyShift.subject).where(
            DutyShift.org_id == org_id, DutyShift.starts_at <= now, DutyShift.ends_at > now)))
        if not on_duty:
            return []
        return sorted(on_duty & set(await active_with_roles(session, org_id, ESCALATION_ROLES)))
    return []
