"""Her pseudonymous record as the read path produces it, with its decision and, when selected,
her profile fields (only those released, opened with her key) and her cases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from app import crypto
from app.access.context import AccessContext
from app.access.gate import Gate, Want
from app.access.visibility import categories_of, released_mask, visible_peacebuilders
from app.db import rows as db_rows
from app.errors import BadInput, NotFound
from app.her import keys as pb_keys
from app.her import sealing
from app.pagination import Page, PageRequest, paginate
from app.peacebuilders import repository as repo
from app.tables.categories import PROFILE_FIELDS
from app.tables.peacebuilders import Peacebuilder, PeacebuilderDatum

if TYPE_CHECKING:
    from app.read.cases import CaseView

COLUMNS = [Peacebuilder.id, Peacebuilder.pseudonym, Peacebuilder.preferred_language,
           Peacebuilder.created_at, Peacebuilder.registered_by_org_id]


@dataclass(slots=True)
class PeacebuilderView:
    id: uuid.UUID
    pseudonym: str
    preferred_language: str
    created_at: Any
    registered_by_org_id: uuid.UUID
    gate: Gate
    cases: list[CaseView] | None = field(default=None)


def _view(row: Any, released: frozenset[str] | None) -> PeacebuilderView:
    return PeacebuilderView(row.id, row.pseudonym, row.preferred_language, row.created_at,
                            row.registered_by_org_id, Gate(row.id, released))


def _query(ctx: AccessContext) -> Any:
    scope = ctx.care_scope()
    return select(*COLUMNS, released_mask(scope, Peacebuilder.id).label("mask")).where(
        Peacebuilder.id.in_(visible_peacebuilders(scope)))


async def page(ctx: AccessContext, page_request: PageRequest, want: Want, *,
               network_id: uuid.UUID | None = None,
               field_equals: tuple[str, str] | None = None) -> Page[PeacebuilderView]:
    """Visible peacebuilders by pseudonym; `field_equals` filters on a sensitive profile field
    among the records whose category the caller may read."""
    await ctx.require("peacebuilder", "read")
    query = _query(ctx)
    if network_id is not None:
        query = repo.in_network(query, network_id)
    if field_equals is not None:
        name, value = field_equals
        if name not in PROFILE_FIELDS:
            raise BadInput("Unknown profile field.", field="field")
        query = repo.with_field_value(query, ctx.care_scope(), name, PROFILE_FIELDS[name].value,
                                      crypto.lookup(pb_keys.lookup_key(ctx), name, value))
    result = await paginate(ctx.session, query, keys=(Peacebuilder.pseudonym, Peacebuilder.id),
                            page=page_request, rows=True, run=db_rows)
    views = [_view(r, categories_of(r.mask)) for r in result.items]
    await _complete(ctx, views, want)
    return Page(items=views, cursors=result.cursors, has_next=result.has_next,
                has_previous=result.has_previous)


async def by_ids(ctx: AccessContext, ids: list[uuid.UUID],
                 want: Want) -> dict[uuid.UUID, PeacebuilderView]:
    """Visible peacebuilders among `ids` (absent ones are simply missing): one statement."""
    if not ids or not ctx.can("peacebuilder", "read"):
        return {}
    rows = (await db_rows(ctx.session, _query(ctx).where(Peacebuilder.id.in_(ids)))).all()
    views = [_view(r, categories_of(r.mask)) for r in rows]
    await _complete(ctx, views, want)
    return {v.id: v for v in views}


async def one(ctx: AccessContext, pb_id: uuid.UUID, want: Want) -> PeacebuilderView:
    """One peacebuilder whose record the caller may see; otherwise not found (logged)."""
    await ctx.require("peacebuilder", "read")
    found = (await by_ids(ctx, [pb_id], want)).get(pb_id)
    if found is None:
        # Logged with her ID so she and auditors see the attempt; the caller learns nothing.
        ctx.deny("peacebuilder.read", target_type="Peacebuilder", target_id=pb_id,
                 reason=ctx.redaction_reason().value)
        raise NotFound()
    return found


async def written(ctx: AccessContext, pb_id: uuid.UUID, want: Want) -> PeacebuilderView:
    """Her record as a mutation of this request left it, decided like any read."""
    scope = ctx.care_scope()
    row = (await ctx.session.execute(select(*COLUMNS, released_mask(scope, Peacebuilder.id)
                                            .label("mask")).where(Peacebuilder.id == pb_id))).one()
    view = _view(row, categories_of(row.mask))
    await _complete(ctx, [view], want)
    return view


async def attach(ctx: AccessContext, rows: list[tuple[Any, Gate]],
                 want: Want) -> dict[uuid.UUID, PeacebuilderView]:
    """Her record read along with a level of cases (columns `pb_*`), under their decision."""
    views: dict[uuid.UUID, PeacebuilderView] = {}
    for row, gate in rows:
        if row.peacebuilder_id not in views:
            views[row.peacebuilder_id] = PeacebuilderView(
                row.peacebuilder_id, row.pb_pseudonym, row.pb_preferred_language,
                row.pb_created_at, row.pb_registered_by_org_id,
                Gate(row.peacebuilder_id, gate.released))
    await _complete(ctx, list(views.values()), want)
    return views


async def _complete(ctx: AccessContext, views: list[PeacebuilderView], want: Want) -> None:
    """The selected nested levels: her profile fields (one statement), her cases (one)."""
    profile = want.child("profile")
    if profile is not None and views:
        await _profiles(ctx, views, [f for f in PROFILE_FIELDS if f in profile])
    cases = want.child("cases")
    if cases is not None and views:
        from app.read import cases as cases_read

        found = await cases_read.of_peacebuilders(ctx, {v.id: v.gate for v in views}, cases)
        for v in views:
            v.cases = found[v.id]


async def _profiles(ctx: AccessContext, views: list[PeacebuilderView], fields: list[str]) -> None:
    wanted = {v.id: v for v in views
              if any(v.gate.releases(PROFILE_FIELDS[f].value) for f in fields)}
    if not wanted:
        return
    stored = await db_rows(
        ctx.session,
        select(PeacebuilderDatum.peacebuilder_id, PeacebuilderDatum.field, PeacebuilderDatum.value)
        .where(PeacebuilderDatum.peacebuilder_id.in_(list(wanted)),
               PeacebuilderDatum.field.in_(fields)))
    by_pb: dict[uuid.UUID, list[tuple[str, str]]] = {}
    for pb, name, token in stored:
        by_pb.setdefault(pb, []).append((name, token))
    keys = await pb_keys.of(ctx, list(by_pb))
    for pb, items in by_pb.items():
        v = wanted[pb]
        sealing.fill(v.gate, keys.get(pb), [
            (name, PROFILE_FIELDS[name].value,
             sealing.profile_ref(pb, v.registered_by_org_id, name), token)
            for name, token in items])
