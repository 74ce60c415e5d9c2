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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    Uuid,
    and_,
    case,
    distinct,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    union,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.tables import integrity
from app.tables.cases import Case
from app.tables.categories import DataCategory, Purpose
from app.tables.consent import BreakGlass, CaseTeamMember, ConsentAccess
from app.tables.orgs import WorkingGroupMember
from app.tables.peacebuilders import Peacebuilder

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


# A member since before the coverage was set, without a break: leaving ends access at once,
# and rejoining later does not bring it back until she extends the grant. It has no parameter:
# built once (SQLAlchemy elements are immutable), not in every request's decision.
_MEMBERSHIP = or_(ConsentAccess.via_working_group_id.is_(None), select(WorkingGroupMember.id).where(
    WorkingGroupMember.working_group_id == ConsentAccess.via_working_group_id,
    WorkingGroupMember.org_id == ConsentAccess.org_id,
    WorkingGroupMember.joined_at <= ConsentAccess.covered_at,
    WorkingGroupMember.left_at.is_(None)).exists())


def live_clause(now: datetime) -> Any:
    return and_(
        ConsentAccess.valid_from <= now,
        or_(ConsentAccess.valid_until.is_(None), ConsentAccess.valid_until > now),
        _MEMBERSHIP,
    )


# Categories as bits, so one SQL aggregate can say what is released per record: a record's mask
# is the sum of the distinct bits of its live rows (NULL: no live row, so not visible).
CATEGORY_BITS: dict[str, int] = {c.value: 1 << i for i, c in enumerate(DataCategory)}
ALL_MASK = (1 << len(CATEGORY_BITS)) - 1


# A consent row's category as its bit (built once: it has no parameter).
_CATEGORY_BIT = case(dict(CATEGORY_BITS), value=ConsentAccess.category, else_=0)


def categories_of(mask: int | None) -> frozenset[str] | None:
    """The categories a mask releases (None: the record is not visible)."""
    if mask is None:
        return None
    return frozenset(c for c, bit in CATEGORY_BITS.items() if mask & bit)


def _releases_nothing(scope: CareScope) -> bool:
    return (scope.mode is Mode.NONE or scope.org_id is None or scope.purpose is None
            or not scope.releases_records)


async def verified_org_level_ids(session: AsyncSession, scope: CareScope) -> set[uuid.UUID]:
    """`_org_level_ids` (the peacebuilders the organisation holds live consent or an open
    break-glass for), each justified by a row whose MAC verifies (app/tables/integrity.py):
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


def _grant_rows(scope: CareScope) -> list[Any]:
    """The live consent rows that release something to this caller (need-to-know included)."""
    clauses = [ConsentAccess.org_id == scope.org_id, ConsentAccess.purpose == scope.purpose,
               live_clause(scope.now)]
    if scope.mode is Mode.TEAM:
        clauses.append(ConsentAccess.peacebuilder_id.in_(_team_ids(scope)))
    return clauses


def _glass_rows(scope: CareScope) -> list[Any] | None:
    """The open break-glass rows that count for this caller (None: none can count). The one
    place break-glass enters a decision: emergency response only, every category."""
    if scope.purpose != Purpose.EMERGENCY_RESPONSE or not scope.glass:
        return None
    clauses = [BreakGlass.org_id == scope.org_id, BreakGlass.opened_at <= scope.now,
               BreakGlass.expires_at > scope.now, BreakGlass.closed_at.is_(None)]
    if scope.mode is Mode.TEAM:
        clauses.append(BreakGlass.peacebuilder_id.in_(_team_ids(scope)))
    return clauses


def visible_peacebuilders(scope: CareScope) -> Select[Any]:
    """SQL for the IDs of peacebuilders whose records this caller may see at all."""
    if scope.mode is Mode.SELF:
        return select(literal(scope.self_peacebuilder_id, Uuid))
    if _releases_nothing(scope):
        return select(ConsentAccess.peacebuilder_id).where(false())
    granted = select(ConsentAccess.peacebuilder_id).where(*_grant_rows(scope))
    glass = _glass_rows(scope)
    if glass is None:
        return granted
    return select(union(granted, select(BreakGlass.peacebuilder_id).where(*glass))
                  .subquery().c[0])


def released_mask(scope: CareScope, pb: Any) -> Any:
    """SQL for what is released of the record whose peacebuilder is in column `pb`, per row: a
    bit mask of categories, 0 for a pseudonymous record only, NULL when it is not visible. The
    same rows as `visible_peacebuilders`: a record is visible exactly when its mask is not NULL."""
    if scope.mode is Mode.SELF:
        return case((pb == literal(scope.self_peacebuilder_id, Uuid), ALL_MASK), else_=null())
    if _releases_nothing(scope):
        return null()
    granted = (select(func.sum(distinct(_CATEGORY_BIT))).where(ConsentAccess.peacebuilder_id == pb,
                                                     *_grant_rows(scope))
               .scalar_subquery())
    glass = _glass_rows(scope)
    mask: Any = granted
    if glass is not None:
        mask = case((exists().where(BreakGlass.peacebuilder_id == pb, *glass), ALL_MASK),
                    else_=granted)
    if scope.mode is Mode.ANALYST:  # the pseudonymous record only, never a category
        return case((mask.is_not(None), 0), else_=null())
    return mask


def with_category(scope: CareScope, category: str) -> Select[Any]:
    """IDs of visible peacebuilders whose `category` this caller may read (for filters)."""
    if scope.mode is Mode.SELF:
        return select(literal(scope.self_peacebuilder_id, Uuid))
    if _releases_nothing(scope) or scope.mode is Mode.ANALYST:
        return select(ConsentAccess.peacebuilder_id).where(false())
    granted = select(ConsentAccess.peacebuilder_id).where(*_grant_rows(scope),
                                                          ConsentAccess.category == category)
    glass = _glass_rows(scope)
    if glass is None:
        return granted
    return select(union(granted, select(BreakGlass.peacebuilder_id).where(*glass))
                  .subquery().c[0])


async def categories_for(
    session: AsyncSession, scope: CareScope, pb_ids: list[uuid.UUID], *,
    consent_only: bool = False,
) -> dict[uuid.UUID, frozenset[str]]:
    """Categories released to this caller per visible peacebuilder (absent = not visible), in
    one statement (`released_mask`). `consent_only` ignores break-glass (which opens reading,
    never standing to record consent)."""
    if consent_only:
        scope = replace(scope, glass=False)
    if not pb_ids:
        return {}
    if scope.mode is Mode.SELF:
        return {pb: ALL_CATEGORIES for pb in pb_ids if pb == scope.self_peacebuilder_id}
    if _releases_nothing(scope):
        return {}
    rows = await session.execute(select(Peacebuilder.id, released_mask(scope, Peacebuilder.id))
                                 .where(Peacebuilder.id.in_(pb_ids)))
    return {pb: cats for pb, mask in rows if (cats := categories_of(mask)) is not None}


async def org_holds_consent(session: AsyncSession, org_id: uuid.UUID, pb_id: uuid.UUID,
                            now: datetime, *, directly: bool = False,
                            category: str | None = None) -> bool:
    """Whether any live grant of hers covers the organisation, for any purpose (`directly`:
    one she gave the organisation itself, not a working group it belongs to; `category`: for
    that data category)."""
    via = [ConsentAccess.via_working_group_id.is_(None)] if directly else []
    of = [ConsentAccess.category == category] if category is not None else []
    found = await session.scalar(select(ConsentAccess.id).where(
        ConsentAccess.org_id == org_id, ConsentAccess.peacebuilder_id == pb_id,
        live_clause(now), *via, *of).limit(1))
    return found is not None
