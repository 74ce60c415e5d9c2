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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Uuid, and_, false, literal, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.models import Case
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
    # Counting for an aggregate report (never shown one by one): the only use of a purpose
    # that releases no record (AGGREGATE_ONLY).
    aggregate: bool = False

    @property
    def releases_records(self) -> bool:
        """Whether this purpose may show a record at all: aggregate purposes only count."""
        return self.aggregate or self.purpose not in AGGREGATE_ONLY


# Purposes whose grants feed aggregate queries only: a record is never released under them.
AGGREGATE_ONLY = frozenset({Purpose.AGGREGATE_REPORTING.value})


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


def _team_ids(scope: CareScope) -> Select[Any]:
    return (select(Case.peacebuilder_id)
            .join(CaseTeamMember, CaseTeamMember.case_id == Case.id)
            .where(CaseTeamMember.org_id == scope.org_id, CaseTeamMember.subject == scope.subject,
                   CaseTeamMember.removed_at.is_(None)))


def visible_peacebuilders(scope: CareScope) -> Select[Any]:
    """SQL for the IDs of peacebuilders whose records this caller may see at all."""
    if scope.mode is Mode.SELF:
        return select(literal(scope.self_peacebuilder_id, Uuid))
    if (scope.mode is Mode.NONE or scope.org_id is None or scope.purpose is None
            or not scope.releases_records):
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
    if (scope.mode in (Mode.NONE, Mode.ANALYST) or scope.org_id is None or scope.purpose is None
            or not scope.releases_records):
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
        scope = replace(scope, glass=False)
    if not pb_ids:
        return {}
    if scope.mode is Mode.SELF:
        return {pb: ALL_CATEGORIES for pb in pb_ids if pb == scope.self_peacebuilder_id}
    if (scope.mode is Mode.NONE or scope.org_id is None or scope.purpose is None
            or not scope.releases_records):
        return {}
    # One read of the rows `visible_peacebuilders` is made of (its `_org_level_ids`, and for
    # TEAM the same team condition): a peacebuilder with a live row is visible and the rows'
    # categories are what is released; an open break-glass adds visibility and every category.
    team = [ConsentAccess.peacebuilder_id.in_(_team_ids(scope))] if scope.mode is Mode.TEAM else []
    out: dict[uuid.UUID, set[str]] = defaultdict(set)
    rows = await session.execute(select(ConsentAccess.peacebuilder_id, ConsentAccess.category).where(
        ConsentAccess.org_id == scope.org_id, ConsentAccess.purpose == scope.purpose,
        ConsentAccess.peacebuilder_id.in_(pb_ids), live_clause(scope.now), *team))
    for pb, category in rows:
        out[pb].add(category)
    if scope.purpose == Purpose.EMERGENCY_RESPONSE and scope.glass:
        glass_team = ([BreakGlass.peacebuilder_id.in_(_team_ids(scope))]
                      if scope.mode is Mode.TEAM else [])
        glass = await session.scalars(select(BreakGlass.peacebuilder_id).where(
            BreakGlass.org_id == scope.org_id, BreakGlass.peacebuilder_id.in_(pb_ids),
            BreakGlass.opened_at <= scope.now, BreakGlass.expires_at > scope.now,
            BreakGlass.closed_at.is_(None), *glass_team))
        for pb in glass:
            out[pb] |= ALL_CATEGORIES
    if scope.mode is Mode.ANALYST:  # the pseudonymous record only, never a category
        return {pb: frozenset() for pb in out}
    return {pb: frozenset(categories) for pb, categories in out.items()}


async def org_holds_consent(session: AsyncSession, org_id: uuid.UUID, pb_id: uuid.UUID,
                            now: datetime) -> bool:
    """Whether any live grant of hers covers the organisation, for any purpose."""
    found = await session.scalar(select(ConsentAccess.id).where(
        ConsentAccess.org_id == org_id, ConsentAccess.peacebuilder_id == pb_id,
        live_clause(now)).limit(1))
    return found is not None
