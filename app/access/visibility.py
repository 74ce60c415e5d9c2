"""What of a peacebuilder's data this request may see: the consent half of the one decision.

A record (her pseudonymous record and her cases) is visible to an organisation only while a
live consent grant covers that organisation — directly or through a working group it still
belongs to — for the request's declared purpose, or an accountable break-glass is open. Inside
the organisation, need-to-know applies: focal points and the case team see the categories the
grant names, analysts see the pseudonymous record only, everyone else nothing.

`CareScope` is minted only by `AccessContext.care_scope()`; repositories take it and call
`visible_peacebuilders()` so an unfiltered query cannot be written by accident.
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Uuid, and_, false, literal, or_, select, union
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.models import Case
from app.consent import integrity
from app.consent.categories import DataCategory, Purpose
from app.consent.models import BreakGlass, CaseTeamMember, ConsentAccess
from app.orgs.models import WorkingGroupMember

ALL_CATEGORIES = frozenset(c.value for c in DataCategory)


class Mode(enum.StrEnum):
    SELF = "self"  # the peacebuilder herself: her own record, everything
    FOCAL = "focal"  # focal point: what the grant allows, on every case of the organisation
    TEAM = "team"  # case worker / machine client: only on cases whose team they are on
    ANALYST = "analyst"  # pseudonymous records only, never a category
    NONE = "none"  # admins, auditors, anyone else: no case content


class Redaction(enum.StrEnum):
    """Why a field is null. None of them tells whether a value exists."""

    NO_PURPOSE = "NO_PURPOSE_DECLARED"
    NOT_COVERED = "CONSENT_DOES_NOT_COVER"
    NEED_TO_KNOW = "NEED_TO_KNOW"


@dataclass(frozen=True)
class CareScope:
    org_id: uuid.UUID | None
    subject: str
    purpose: str | None
    now: datetime
    mode: Mode
    self_peacebuilder_id: uuid.UUID | None = None
    glass: bool = True  # whether an open break-glass counts


def live_clause(now: datetime) -> Any:
    # A member since before the coverage was set, without a break: leaving ends access at once,
    # and rejoining later does not bring it back until she extends the grant.
    membership = select(WorkingGroupMember.id).where(
        WorkingGroupMember.working_group_id == ConsentAccess.via_working_group_id,
        WorkingGroupMember.org_id == ConsentAccess.org_id,
        WorkingGroupMember.joined_at <= ConsentAccess.covered_at,
        WorkingGroupMember.left_at.is_(None)).exists()
    return and_(
        ConsentAccess.valid_from <= now,
        or_(ConsentAccess.valid_until.is_(None), ConsentAccess.valid_until > now),
        or_(ConsentAccess.via_working_group_id.is_(None), membership),
    )


def _org_level_ids(scope: CareScope) -> Select[Any]:
    """Peacebuilders the organisation as a whole holds live consent (or break-glass) for."""
    granted = select(ConsentAccess.peacebuilder_id).where(
        ConsentAccess.org_id == scope.org_id, ConsentAccess.purpose == scope.purpose,
        live_clause(scope.now))
    if scope.purpose != Purpose.EMERGENCY_RESPONSE or not scope.glass:
        return granted
    glass = select(BreakGlass.peacebuilder_id).where(
        BreakGlass.org_id == scope.org_id, BreakGlass.opened_at <= scope.now,
        BreakGlass.expires_at > scope.now, BreakGlass.closed_at.is_(None))
    return select(union(granted, glass).subquery().c[0])


async def verified_org_level_ids(session: AsyncSession, scope: CareScope) -> set[uuid.UUID]:
    """`_org_level_ids` (the peacebuilders the organisation holds live consent or an open
    break-glass for), each justified by a row whose MAC verifies (app/consent/integrity.py):
    what admission hands to row-level security as the decided set, so a consent row that got
    into the table without the application's key reaches nobody (PostgreSQL: DISTINCT ON).

    One row per woman is checked (the first in ID order); only women whose first row fails
    have their other rows read, so the cost follows the number of women, not of rows."""
    if scope.org_id is None or scope.purpose is None:
        return set()
    key = integrity.key_of(session)
    where = (ConsentAccess.org_id == scope.org_id, ConsentAccess.purpose == scope.purpose,
             live_clause(scope.now))
    first = await session.execute(
        select(*integrity.columns("consent_access")).where(*where)
        .ext(distinct_on(ConsentAccess.peacebuilder_id))
        .order_by(ConsentAccess.peacebuilder_id, ConsentAccess.id))
    found: set[uuid.UUID] = set()
    doubtful: set[uuid.UUID] = set()
    for row in first:
        (found if integrity.intact(key, "consent_access", row) else doubtful).add(
            row.peacebuilder_id)
    if doubtful:
        others = await session.execute(select(*integrity.columns("consent_access")).where(
            *where, ConsentAccess.peacebuilder_id.in_(doubtful)))
        found |= {row.peacebuilder_id for row in others
                  if integrity.intact(key, "consent_access", row)}
    if scope.purpose == Purpose.EMERGENCY_RESPONSE and scope.glass:
        glass = await session.execute(select(*integrity.columns("break_glass")).where(
            BreakGlass.org_id == scope.org_id, BreakGlass.opened_at <= scope.now,
            BreakGlass.expires_at > scope.now, BreakGlass.closed_at.is_(None)))
        found |= {row.peacebuilder_id for row in glass if integrity.intact(key, "break_glass", row)}
    return found


def _team_ids(scope: CareScope) -> Select[Any]:
    return (select(Case.peacebuilder_id)
            .join(CaseTeamMember, CaseTeamMember.case_id == Case.id)
            .where(CaseTeamMember.org_id == scope.org_id, CaseTeamMember.subject == scope.subject,
                   CaseTeamMember.removed_at.is_(None)))


def visible_peacebuilders(scope: CareScope) -> Select[Any]:
    """SQL for the IDs of peacebuilders whose records this caller may see at all."""
    if scope.mode is Mode.SELF:
        return select(literal(scope.self_peacebuilder_id, Uuid))
    if scope.mode is Mode.NONE or scope.org_id is None or scope.purpose is None:
        return select(ConsentAccess.peacebuilder_id).where(false())
    ids = _org_level_ids(scope)
    if scope.mode is Mode.TEAM:
        sub = ids.subquery()
        return select(sub.c[0]).where(sub.c[0].in_(_team_ids(scope)))
    return ids


def with_category(scope: CareScope, category: str) -> Select[Any]:
    """IDs of visible peacebuilders whose `category` this caller may read (for filters)."""
    if scope.mode is Mode.SELF:
        return select(literal(scope.self_peacebuilder_id, Uuid))
    if scope.mode in (Mode.NONE, Mode.ANALYST) or scope.org_id is None or scope.purpose is None:
        return select(ConsentAccess.peacebuilder_id).where(false())
    granted = select(ConsentAccess.peacebuilder_id).where(
        ConsentAccess.org_id == scope.org_id, ConsentAccess.purpose == scope.purpose,
        ConsentAccess.category == category, live_clause(scope.now))
    if scope.purpose == Purpose.EMERGENCY_RESPONSE:
        glass = select(BreakGlass.peacebuilder_id).where(
            BreakGlass.org_id == scope.org_id, BreakGlass.opened_at <= scope.now,
            BreakGlass.expires_at > scope.now, BreakGlass.closed_at.is_(None))
        granted = select(union(granted, glass).subquery().c[0])
    sub = granted.subquery()
    return select(sub.c[0]).where(sub.c[0].in_(visible_peacebuilders(scope)))


async def categories_for(
    session: AsyncSession, scope: CareScope, pb_ids: list[uuid.UUID], *,
    consent_only: bool = False,
) -> dict[uuid.UUID, frozenset[str]]:
    """Categories released to this caller per visible peacebuilder (absent = not visible).
    `consent_only` ignores break-glass (which opens reading, never standing to record consent)."""
    if consent_only and scope.purpose == Purpose.EMERGENCY_RESPONSE:
        scope = CareScope(org_id=scope.org_id, subject=scope.subject, purpose=scope.purpose,
                          now=scope.now, mode=scope.mode,
                          self_peacebuilder_id=scope.self_peacebuilder_id, glass=False)
    if not pb_ids:
        return {}
    if scope.mode is Mode.SELF:
        return {pb: ALL_CATEGORIES for pb in pb_ids if pb == scope.self_peacebuilder_id}
    if scope.mode is Mode.NONE or scope.org_id is None or scope.purpose is None:
        return {}
    # One read of the rows `visible_peacebuilders` is made of (its `_org_level_ids`, and for
    # TEAM the same team condition): a peacebuilder with a live row is visible and the rows'
    # categories are what is released; an open break-glass adds visibility and every category.
    # Every row released from carries the application's MAC, checked here: a row that got into
    # the table some other way releases nothing (app/consent/integrity.py).
    key = integrity.key_of(session)
    team = [ConsentAccess.peacebuilder_id.in_(_team_ids(scope))] if scope.mode is Mode.TEAM else []
    out: dict[uuid.UUID, set[str]] = defaultdict(set)
    rows = await session.execute(select(*integrity.columns("consent_access")).where(
        ConsentAccess.org_id == scope.org_id, ConsentAccess.purpose == scope.purpose,
        ConsentAccess.peacebuilder_id.in_(pb_ids), live_clause(scope.now), *team))
    for row in rows:
        if integrity.intact(key, "consent_access", row):
            out[row.peacebuilder_id].add(row.category)
    if scope.purpose == Purpose.EMERGENCY_RESPONSE and scope.glass:
        glass_team = ([BreakGlass.peacebuilder_id.in_(_team_ids(scope))]
                      if scope.mode is Mode.TEAM else [])
        glass = await session.execute(select(*integrity.columns("break_glass")).where(
            BreakGlass.org_id == scope.org_id, BreakGlass.peacebuilder_id.in_(pb_ids),
            BreakGlass.opened_at <= scope.now, BreakGlass.expires_at > scope.now,
            BreakGlass.closed_at.is_(None), *glass_team))
        for row in glass:
            if integrity.intact(key, "break_glass", row):
                out[row.peacebuilder_id] |= ALL_CATEGORIES
    if scope.mode is Mode.ANALYST:  # the pseudonymous record only, never a category
        return {pb: frozenset() for pb in out}
    return {pb: frozenset(categories) for pb, categories in out.items()}
