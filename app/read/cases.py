"""Cases as the read path produces them: `cases`, `case(id)`, `node(id)`, a peacebuilder's cases
and her own cases all come from here, each row with its decision.

A page is one statement: the cases the caller may see (the visible set, decided in SQL), each
with its released categories (`released_mask`), her pseudonymous record and her wrapped data key
when they are selected. Nested levels (her record, the incidents) add one statement each, however
long the page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, Uuid, bindparam, select

from app.access import visibility
from app.access.context import AccessContext
from app.access.gate import Gate, Want
from app.access.visibility import CareScope, categories_of, released_mask
from app.cases import repository as repo
from app.cases.repository import CaseFilter
from app.db import rows as db_rows
from app.errors import NotFound
from app.her import keys as pb_keys
from app.her import sealing
from app.pagination import Page, PageRequest, paginate
from app.read import children
from app.read import peacebuilders as pb_read
from app.read.columns import fast_uuids
from app.tables.cases import Case
from app.tables.categories import CASE_FIELDS
from app.tables.peacebuilders import DataKey, Peacebuilder

PLAIN = [c for c in Case.__table__.c if c.name not in CASE_FIELDS]
HER = [Peacebuilder.pseudonym.label("pb_pseudonym"),
       Peacebuilder.registered_by_org_id.label("pb_registered_by_org_id"),
       Peacebuilder.preferred_language.label("pb_preferred_language"),
       Peacebuilder.created_at.label("pb_created_at")]
KEY = [DataKey.kek_version.label("key_version"), DataKey.wrapped.label("key_wrapped")]


@dataclass(slots=True)
class CaseView:
    """One case with its decision, its opened summary and the nested levels selected."""

    row: Any
    gate: Gate
    peacebuilder: pb_read.PeacebuilderView | None = None
    # The rows below it that were selected: incidents, measures, proceedings, timeline.
    children: dict[str, list[children.RowView]] = field(default_factory=dict)


def _plan(want: Want) -> tuple[tuple[str, ...], bool, bool]:
    """What the rows must carry for this selection: the sealed columns selected, whether her
    record is joined, and whether her key is (something sealed will be opened)."""
    sealed = tuple(name for name in CASE_FIELDS if name in want)
    her = want.child("peacebuilder") is not None
    profile = her and (want.children["peacebuilder"].child("profile") is not None)
    key = bool(sealed) or profile or any(
        child.opened(below) for name, child in children.CHILDREN.items()
        if (below := children.wanted(name, want)) is not None)
    return sealed, her, key


def _columns(ctx: AccessContext, want: Want) -> tuple[list[Any], bool, bool]:
    """The page's columns: what is selected, its decision, and her key when something sealed
    will be opened. Returns (columns, joins her record, joins her key)."""
    sealed, her, key = _plan(want)
    return _columns_of(ctx.care_scope(), sealed, her, key), her, key


def _columns_of(scope: CareScope, sealed: tuple[str, ...], her: bool, key: bool) -> list[Any]:
    cols: list[Any] = [*PLAIN, released_mask(scope, Case.peacebuilder_id).label("mask")]
    cols += [Case.__table__.c[name] for name in sealed]
    if her:
        cols += HER
    if key:
        cols += KEY
    return fast_uuids(cols)


# `case(id)`'s statements, built once per shape of the decision and of the selection, from a
# bound scope: each request runs one with its own values (`visibility.params`) and the case ID.
# What varies per request is only ever a parameter, so a statement cannot carry a request's
# values into another's.
_ONE: dict[tuple[Any, ...], Select[Any]] = {}
CASE_ID = bindparam("case_id", type_=Uuid(), required=True)


_PAGE: dict[tuple[Any, ...], tuple[list[Any], Select[Any]]] = {}


def _page_parts(scope: CareScope, filters: CaseFilter | None, dialect: str,
                sealed: tuple[str, ...], her: bool, key: bool) -> tuple[list[Any], Select[Any]]:
    """A page's columns (with its decision) and the query choosing its cases, from a bound
    scope (run with `visibility.params`): built once per shape, unless filters are given
    (their values are the request's: built for it alone)."""
    template = visibility.bound(scope)
    if filters is not None:
        return _columns_of(template, sealed, her, key), repo.page_query(
            template, filters, dialect=dialect, columns=[Case.id, Case.opened_at])
    cache_key = (visibility.shape(scope), dialect, sealed, her, key)
    found = _PAGE.get(cache_key)
    if found is None:
        found = (_columns_of(template, sealed, her, key),
                 repo.page_query(template, None, dialect=dialect,
                                 columns=[Case.id, Case.opened_at]))
        _PAGE[cache_key] = found
    return found


def _one_statement(scope: CareScope, dialect: str, sealed: tuple[str, ...], her: bool,
                   key: bool) -> Select[Any]:
    cache_key = (visibility.shape(scope), dialect, sealed, her, key)
    found = _ONE.get(cache_key)
    if found is None:
        template = visibility.bound(scope)
        found = _joined(repo.one_query(template, CASE_ID, dialect=dialect,
                                       columns=_columns_of(template, sealed, her, key)),
                        her, key)
        _ONE[cache_key] = found
    return found


def _joined(query: Select[Any], her: bool, key: bool) -> Select[Any]:
    if her:
        query = query.join(Peacebuilder, Peacebuilder.id == Case.peacebuilder_id)
    if key:
        query = query.outerjoin(DataKey, DataKey.peacebuilder_id == Case.peacebuilder_id)
    return query


async def page(ctx: AccessContext, page_request: PageRequest, filters: CaseFilter | None,
               want: Want) -> Page[CaseView]:
    """A page of the cases the caller may reach, newest first by default."""
    await ctx.require("case", "read")
    sealed, her, key = _plan(want)
    scope = ctx.care_scope()
    # The page's cases are chosen first (IDs and order keys only); their decision, her record
    # and key are computed for those rows alone, not for every visible case the sort reads
    # (SQLite evaluated the mask's subquery for each of them before sorting).
    cols, chosen = _page_parts(scope, filters, ctx.db.dialect, sealed, her, key)

    def rows_of(limited: Select[Any]) -> Select[Any]:
        ids = limited.subquery("page")
        return _joined(select(*cols).select_from(Case).join(ids, ids.c.id == Case.id), her, key)

    result = await paginate(ctx.session, chosen, keys=(Case.opened_at, Case.id),
                            page=page_request, rows=True, then=rows_of,
                            params=visibility.params(scope), run=db_rows)
    views = await _views(ctx, list(result.items), want, her, key)
    return Page(items=views, cursors=result.cursors, has_next=result.has_next,
                has_previous=result.has_previous)


async def count(ctx: AccessContext, filters: CaseFilter | None) -> int:
    return await repo.count(ctx.session, repo.query(ctx.care_scope(), filters))


async def one(ctx: AccessContext, case_id: uuid.UUID, want: Want) -> CaseView:
    """One case the caller may see; any other is not found (the attempt is logged)."""
    await ctx.require("case", "read")
    sealed, her, key = _plan(want)
    scope = ctx.care_scope()
    statement = _one_statement(scope, ctx.db.dialect, sealed, her, key)
    rows = list((await db_rows(ctx.session, statement,
                               {**visibility.params(scope), "case_id": case_id})).all())
    if not rows:
        owner = await repo.peacebuilder_of(ctx.session, case_id)
        ctx.deny("case.read", target_type="Case", target_id=case_id,
                 reason=ctx.redaction_reason().value,
                 details={"peacebuilder": str(owner)} if owner else None)
        raise NotFound()
    return (await _views(ctx, rows, want, her, key))[0]


async def written(ctx: AccessContext, case_id: uuid.UUID, want: Want) -> CaseView:
    """A case this request just wrote (a mutation's answer): decided like any read, so a field
    her consent does not release is withheld even from the organisation that wrote it."""
    cols, her, key = _columns(ctx, want)
    rows = list((await db_rows(ctx.session, _joined(select(*cols).where(Case.id == case_id),
                                                    her, key))).all())
    return (await _views(ctx, rows, want, her, key))[0]


async def of_peacebuilders(ctx: AccessContext, gates: dict[uuid.UUID, Gate],
                           want: Want, *, only: uuid.UUID | None = None
                           ) -> dict[uuid.UUID, list[CaseView]]:
    """The cases of already-decided peacebuilders (one statement): every case of a woman the
    caller may see is visible to it, under her decision."""
    out: dict[uuid.UUID, list[CaseView]] = {pb: [] for pb in gates}
    if not gates or not ctx.can("case", "read"):
        return out
    sealed = [name for name in CASE_FIELDS if name in want]
    cols = fast_uuids([*PLAIN, *(Case.__table__.c[name] for name in sealed)])
    query = select(*cols).where(Case.peacebuilder_id.in_(list(gates)))
    if only is not None:
        query = query.where(Case.id == only)
    rows = list((await db_rows(ctx.session, query.order_by(Case.opened_at, Case.id))).all())
    views = await _views(ctx, rows, want, False, False,
                         decided={pb: gate.released for pb, gate in gates.items()})
    for v in views:
        out[v.row.peacebuilder_id].append(v)
    return out


async def mine(ctx: AccessContext, want: Want, *, only: uuid.UUID | None = None
               ) -> list[CaseView]:
    """Her own cases (she signed in herself), or the one `only` names: everything of hers is
    released to her."""
    from app.access.visibility import ALL_CATEGORIES
    from app.peacebuilders.self_service import my_id

    me = my_id(ctx)
    return (await of_peacebuilders(ctx, {me: Gate(me, ALL_CATEGORIES)}, want, only=only))[me]


async def _views(ctx: AccessContext, rows: list[Any], want: Want, her: bool, key: bool, *,
                 decided: dict[uuid.UUID, frozenset[str] | None] | None = None) -> list[CaseView]:
    """Rows -> views: the decision from the row's mask (or the level above), the summary opened
    only where released and selected, then one statement per nested level."""
    if key:
        pb_keys.unwrap(ctx, {r.peacebuilder_id: (r.key_version, r.key_wrapped) for r in rows})
    sealed = [name for name in CASE_FIELDS if name in want]
    keys = await pb_keys.of(ctx, list({r.peacebuilder_id for r in rows})) if sealed else {}
    views = []
    for r in rows:
        released = decided[r.peacebuilder_id] if decided is not None else categories_of(r.mask)
        gate = Gate(r.peacebuilder_id, released)
        sealing.fill(gate, keys.get(r.peacebuilder_id), [
            (name, CASE_FIELDS[name].value, sealing.case_ref(r, name), getattr(r, name))
            for name in sealed])
        views.append(CaseView(r, gate))
    her_want = want.child("peacebuilder")
    if her_want is not None and views:
        if her:
            found = await pb_read.attach(ctx, [(v.row, v.gate) for v in views], her_want)
        else:
            found = await pb_read.by_ids(ctx, list({v.row.peacebuilder_id for v in views}),
                                         her_want)
        for v in views:
            v.peacebuilder = found.get(v.row.peacebuilder_id)
    for name in children.CHILDREN:
        below = children.wanted(name, want)
        if below is not None and views:
            found_rows = await children.of_cases(ctx, name, {v.row.id: v.gate for v in views},
                                                 below)
            for v in views:
                v.children[name] = found_rows[v.row.id]
    return views


async def below(ctx: AccessContext, name: str, row_id: uuid.UUID, want: Want) -> children.RowView:
    """One row below a case by its ID (`node(id:)`), decided as when it is read through its
    case: the case must be visible and the row's category released, else it is not found."""
    # Refused before the lookup, as `one` refuses: a refusal only for IDs that exist would tell
    # a caller who may not read cases which do (SQLite has no row-level security to hide them).
    await ctx.require("case", "read")
    model = children.CHILDREN[name].model
    case_id = await ctx.session.scalar(select(model.case_id).where(model.id == row_id))
    if case_id is None:
        raise NotFound()
    view = await one(ctx, case_id, Want(frozenset({name}), {name: want}))
    for found in view.children.get(name, []):
        if found.row.id == row_id:
            return found
    raise NotFound()
