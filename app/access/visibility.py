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
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    String,
    Uuid,
    and_,
    bindparam,
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

from app.db import UTCDateTime
from app.db import rows as db_rows
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
    # The SQL built for this scope names its values as parameters (`bound()`, `params()`)
    # instead of carrying them: a statement built once per `shape()` and run with each
    # request's own values.
    is_bound: bool = False

    @property
    def releases_records(self) -> bool:
        """Whether this purpose may show a record at all: aggregate purposes only count."""
        return self.aggregate or self.purpose not in AGGREGATE_ONLY


# Purposes whose grants feed aggregate queries only: a record is never released under them.
AGGREGATE_ONLY = frozenset({Purpose.AGGREGATE_REPORTING.value})


@dataclass(frozen=True)
class _Values:
    """What the decision's SQL compares with: a scope's own values, or named parameters."""

    org: Any
    purpose: Any
    now: Any
    subject: Any
    me: Any


# Required: a statement built from a bound scope and run without `params()` fails; it never
# runs with values left over from the request it was first built for (it carries none).
_BOUND = _Values(org=bindparam("vis_org", type_=Uuid(), required=True),
                 purpose=bindparam("vis_purpose", type_=String(), required=True),
                 now=bindparam("vis_now", type_=UTCDateTime(), required=True),
                 subject=bindparam("vis_subject", type_=String(), required=True),
                 me=bindparam("vis_me", type_=Uuid(), required=True))


def _values(scope: CareScope) -> _Values:
    if scope.is_bound:
        return _BOUND
    return _Values(scope.org_id, scope.purpose, scope.now, scope.subject,
                   literal(scope.self_peacebuilder_id, Uuid))


def shape(scope: CareScope) -> tuple[Any, ...]:
    """Everything the decision's SQL is built from apart from the values `params()` gives:
    two scopes of the same shape build the same statement from `bound()`. (Every branch below
    reads only these.)"""
    return (scope.mode, scope.glass, scope.aggregate, scope.org_id is None,
            scope.purpose is None, scope.purpose == Purpose.EMERGENCY_RESPONSE,
            scope.purpose in AGGREGATE_ONLY)


def bound(scope: CareScope) -> CareScope:
    """The scope whose SQL names its values as parameters: run it with `params(scope)`."""
    return replace(scope, is_bound=True)


def params(scope: CareScope) -> dict[str, Any]:
    """The values of a bound scope's parameters, for this request."""
    return {"vis_org": scope.org_id, "vis_purpose": scope.purpose, "vis_now": scope.now,
            "vis_subject": scope.subject, "vis_me": scope.self_peacebuilder_id}


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

    One row per woman is checked (whichever comes first: any of hers justifies her only if it
    verifies); only women whose first row fails have their other rows read, so the cost follows
    the number of women, not of rows."""
    if scope.org_id is None or scope.purpose is None:
        return set()
    first = await db_rows(session, first_rows(), params(scope))
    return await verified_from_first(session, scope, first.all())  # fetched at once


async def verified_from_first(session: AsyncSession, scope: CareScope,
                              first: Iterable[Any]) -> set[uuid.UUID]:
    """`verified_org_level_ids` given the rows `first_rows()` returned for this scope (read
    already, e.g. in admission's one statement with the caller; rows or plain tuples of its
    columns): the same checks, the same follow-up reads."""
    if scope.org_id is None or scope.purpose is None:
        return set()
    key = integrity.key_of(session)
    found: set[uuid.UUID] = set()
    doubtful: set[uuid.UUID] = set()
    her = integrity.position("consent_access", "peacebuilder_id")
    for row in first:
        (found if integrity.intact_selected(key, "consent_access", row) else doubtful).add(
            row[her])
    if doubtful:
        where = (ConsentAccess.org_id == scope.org_id, ConsentAccess.purpose == scope.purpose,
                 live_clause(scope.now))
        others = await db_rows(session, select(*integrity.columns("consent_access")).where(
            *where, ConsentAccess.peacebuilder_id.in_(doubtful)))
        found |= {row.peacebuilder_id for row in others
                  if integrity.intact_selected(key, "consent_access", row)}
    if scope.purpose == Purpose.EMERGENCY_RESPONSE and scope.glass:
        glass = await db_rows(session, select(*integrity.columns("break_glass")).where(
            BreakGlass.org_id == scope.org_id, BreakGlass.opened_at <= scope.now,
            BreakGlass.expires_at > scope.now, BreakGlass.closed_at.is_(None)))
        found |= {row.peacebuilder_id for row in glass
                  if integrity.intact_selected(key, "break_glass", row)}
    return found


_FIRST_ROWS: list[Select[Any]] = []


def first_rows() -> Select[Any]:
    """Admission's statement (every request on PostgreSQL), built once: each woman's first live
    consent row for the organisation and purpose, with what its MAC covers (`integrity.columns`
    order). Its parameters are those of `params()` for `vis_org`, `vis_purpose` and `vis_now`."""
    if not _FIRST_ROWS:
        v = _BOUND
        _FIRST_ROWS.append(
            select(*integrity.columns("consent_access"))
            .where(ConsentAccess.org_id == v.org, ConsentAccess.purpose == v.purpose,
                   live_clause(v.now))
            .ext(distinct_on(ConsentAccess.peacebuilder_id))
            # No tie-break on `id`: `ix_consent_access_lookup` (org, purpose, peacebuilder)
            # then serves the order, without a sort of every live row, where the planner
            # prices random reads as an SSD's (random_page_cost 1.1); the row checked first
            # decides nothing on its own.
            .order_by(ConsentAccess.peacebuilder_id))
    return _FIRST_ROWS[0]


def _team_ids(scope: CareScope) -> Select[Any]:
    v = _values(scope)
    return (select(Case.peacebuilder_id)
            .join(CaseTeamMember, CaseTeamMember.case_id == Case.id)
            .where(CaseTeamMember.org_id == v.org, CaseTeamMember.subject == v.subject,
                   CaseTeamMember.removed_at.is_(None)))


def _grant_rows(scope: CareScope) -> list[Any]:
    """The live consent rows that release something to this caller (need-to-know included)."""
    v = _values(scope)
    clauses = [ConsentAccess.org_id == v.org, ConsentAccess.purpose == v.purpose,
               live_clause(v.now)]
    if scope.mode is Mode.TEAM:
        clauses.append(ConsentAccess.peacebuilder_id.in_(_team_ids(scope)))
    return clauses


def _glass_rows(scope: CareScope) -> list[Any] | None:
    """The open break-glass rows that count for this caller (None: none can count). The one
    place break-glass enters a decision: emergency response only, every category."""
    if scope.purpose != Purpose.EMERGENCY_RESPONSE or not scope.glass:
        return None
    v = _values(scope)
    clauses = [BreakGlass.org_id == v.org, BreakGlass.opened_at <= v.now,
               BreakGlass.expires_at > v.now, BreakGlass.closed_at.is_(None)]
    if scope.mode is Mode.TEAM:
        clauses.append(BreakGlass.peacebuilder_id.in_(_team_ids(scope)))
    return clauses


def visible_peacebuilders(scope: CareScope) -> Select[Any]:
    """SQL for the IDs of peacebuilders whose records this caller may see at all."""
    if scope.mode is Mode.SELF:
        return select(_values(scope).me)
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
        return case((pb == _values(scope).me, ALL_MASK), else_=null())
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
        return select(_values(scope).me)
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
