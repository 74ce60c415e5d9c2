"""What she does herself, signed in: her record, her cases, her grants, copies, corrections."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.consent import repository as consent_repo
from app.errors import BadInput, Forbidden
from app.notify.inbox import cursor_of, parse_cursor
from app.pagination import MAX_PAGE
from app.peacebuilders.notice_text import NoticeText, language_of, render
from app.tables.consent import BreakGlass, ConsentGrant, DataRequest, Notice
from app.tables.peacebuilders import Peacebuilder


def my_id(ctx: AccessContext) -> uuid.UUID:
    if ctx.principal.kind is not PrincipalKind.PEACEBUILDER:
        raise Forbidden("Only a peacebuilder signed in herself can use this.")
    return ctx.principal.id


async def me(ctx: AccessContext) -> Peacebuilder:
    if ctx.principal.duress_of is not None:
        # A duress session's record: empty, never stored, nothing of hers (decision 0027).
        now = ctx.clock.now()
        return Peacebuilder(id=my_id(ctx), pseudonym=ctx.principal.name, preferred_language="en",
                            registered_by_org_id=uuid.UUID(int=0), created_at=now,
                            has_login=True, updated_at=now)
    pb = await ctx.session.get(Peacebuilder, my_id(ctx))
    if pb is None:
        raise Forbidden()
    return pb


async def my_grants(ctx: AccessContext) -> list[ConsentGrant]:
    return await consent_repo.grants_of(ctx.session, my_id(ctx))


@dataclass(frozen=True, slots=True)
class NoticeView:
    """One of her notices with its words in her language and its cursor."""

    notice: Notice
    text: NoticeText
    cursor: str


def notice_cursor(n: Notice) -> str:
    """The inbox's cursor format (created_at and id): one parser for both."""
    return cursor_of(n)  # type: ignore[arg-type]


def _view(n: Notice, language: str) -> NoticeView:
    return NoticeView(n, render(n.kind, n.details, n.created_at, language), notice_cursor(n))


async def my_notices(ctx: AccessContext, *, after: str | None = None, first: int | None = None,
                     language: str | None = None) -> list[NoticeView]:
    """Her notices, oldest first, after a cursor (what her subscription replays), at most
    `first` (all when not given), each in her language unless another is asked for."""
    if first is not None and not 0 <= first <= MAX_PAGE:
        raise BadInput(f"first must be between 0 and {MAX_PAGE}.", field="first")
    pb = await me(ctx)
    lang = language_of(pb.preferred_language, language)
    since = parse_cursor(after) if after else None
    rows = await consent_repo.notices_of(ctx.session, pb.id, after=since, limit=first)
    return [_view(n, lang) for n in rows]


async def my_notice(ctx: AccessContext, notice_id: uuid.UUID,
                    language: str | None = None) -> NoticeView | None:
    """One notice of hers (her subscription reads each as it is published); None if not hers."""
    pb = await me(ctx)
    found = await ctx.session.get(Notice, notice_id)
    if found is None or found.peacebuilder_id != pb.id:
        return None
    return _view(found, language_of(pb.preferred_language, language))


async def my_break_glass(ctx: AccessContext) -> list[BreakGlass]:
    return await consent_repo.break_glass_of(ctx.session, my_id(ctx))


async def my_requests(ctx: AccessContext) -> list[DataRequest]:
    from sqlalchemy import select

    rows = await ctx.session.scalars(select(DataRequest).where(
        DataRequest.peacebuilder_id == my_id(ctx)).order_by(DataRequest.created_at))
    return list(rows)
