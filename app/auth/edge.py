"""Admitting a request: who is calling, and what the database will let its transaction touch.

Used by /graphql, the HTTP endpoints outside GraphQL (exports, attachments), every
subscription delivery and every alert email (as its recipient), so each unit of work is decided
the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app import tenancy
from app.access.context import AccessContext, Admission
from app.access.principal import Principal
from app.access.unit import context_for
from app.auth import mfa
from app.auth.principals import expected, recipient, resolve
from app.auth.tokens import Claims
from app.errors import Unauthenticated, UnknownPurpose
from app.logs import request_id_var
from app.tables.categories import Purpose
from app.tenancy import Tenancy

if TYPE_CHECKING:  # app.runtime builds the Mailer, which asks this module (app.notify.inbox)
    from app.runtime import Runtime


PURPOSES = frozenset(p.value for p in Purpose)


def runtime_context(runtime: Runtime, session: AsyncSession, principal: Principal, *,
                    request_id: str, purpose: str | None) -> AccessContext:
    return context_for(runtime, session, principal, request_id=request_id, purpose=purpose)


def bearer_token(value: object) -> str | None:
    """The token of an `Authorization: Bearer <token>` value (scheme in any case), else None.
    The one parser: /graphql, subscriptions, exports, attachments, metrics."""
    scheme, _, token = str(value or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def parse_purpose(raw: object) -> str | None:
    """The declared purpose (any case, surrounding spaces ignored), None when none is declared;
    UnknownPurpose for anything else. The one parser: the `Safety-Net-Purpose` header and the
    subscription's `connection_init` alike."""
    if raw is None:
        return None
    purpose = raw.strip().lower() if isinstance(raw, str) else None
    if purpose not in PURPOSES:
        raise UnknownPurpose()
    return purpose


async def admit(runtime: Runtime, claims: Claims, purpose: str | None,
                request_id: str | None = None, *,
                session: AsyncSession | None = None) -> tuple[Principal, Tenancy]:
    """Resolve the principal (still active?) and decide its tenancy, in a short transaction of
    its own in the system scope: sign-in data and the policy are read across organisations.

    `session`: the request's own session, not begun yet. Where the database has no row-level
    security (SQLite) there is no scope to switch and nothing is decided in SQL, so admission's
    reads run in it rather than in a second session and transaction; on PostgreSQL it is
    ignored (admission stays the background role's, in the system scope)."""
    now = runtime.clock.now()
    mfa_roles = mfa.mfa_roles(runtime.settings)
    # PostgreSQL: the caller and what her tenancy is decided from, in one statement.
    admission = (expected(runtime.policy, claims, purpose, now, mfa_roles=mfa_roles)
                 if runtime.db.dialect == "postgresql" else None)

    async def principal_of(session: AsyncSession) -> Principal:
        return await resolve(session, runtime.policy, claims, mfa_roles=mfa_roles, now=now,
                             admission=admission)

    shared = session if session is not None and runtime.db.dialect != "postgresql" else None
    return await _decide(runtime, principal_of, purpose, request_id, shared, admission)


async def _decide(runtime: Runtime, principal_of: Callable[[AsyncSession], Awaitable[Principal]],
                  purpose: str | None, request_id: str | None,
                  shared: AsyncSession | None = None,
                  admission: Admission | None = None) -> tuple[Principal, Tenancy]:
    with tenancy.using(tenancy.SYSTEM):
        if shared is not None:
            return await _decided(runtime, shared, principal_of, purpose, request_id, admission)
        async with runtime.db.transaction() as session:
            return await _decided(runtime, session, principal_of, purpose, request_id, admission)


async def _decided(runtime: Runtime, session: AsyncSession,
                   principal_of: Callable[[AsyncSession], Awaitable[Principal]],
                   purpose: str | None, request_id: str | None,
                   admission: Admission | None) -> tuple[Principal, Tenancy]:
    principal = await principal_of(session)
    ctx = runtime_context(runtime, session, principal,
                          request_id=request_id or request_id_var.get(), purpose=purpose)
    return principal, await ctx.decide_tenancy(admission)


@asynccontextmanager
async def unit_of_work(runtime: Runtime, claims: Claims, purpose: str | None,
                       request_id: str) -> AsyncIterator[AccessContext]:
    """An AccessContext in one transaction under the caller's decided tenancy (commits when the
    block ends); its denials and reads are logged afterwards under the same tenancy."""
    principal, decided = await admit(runtime, claims, purpose, request_id)
    async with _work(runtime, principal, decided, purpose, request_id) as access:
        yield access


@asynccontextmanager
async def recipient_unit_of_work(runtime: Runtime, subject: str, purpose: str | None,
                                 request_id: str) -> AsyncIterator[AccessContext]:
    """The same, as the recipient of an alert rather than a caller: for deliveries she did not
    request (email). Raises Unauthenticated if she is no longer an active user."""
    async def principal_of(session: AsyncSession) -> Principal:
        return await recipient(session, runtime.policy, subject)

    principal, decided = await _decide(runtime, principal_of, purpose, request_id)
    async with _work(runtime, principal, decided, purpose, request_id) as access:
        yield access


@asynccontextmanager
async def _work(runtime: Runtime, principal: Principal, decided: Tenancy, purpose: str | None,
                request_id: str) -> AsyncIterator[AccessContext]:
    from app.access.log import write_deferred

    access: AccessContext | None = None
    with tenancy.using(decided):
        try:
            async with runtime.db.transaction() as session:
                access = runtime_context(runtime, session, principal, request_id=request_id,
                                         purpose=purpose)
                yield access
        finally:
            if access is not None:
                access.flush_reads()
                await write_deferred(runtime.db, access.deferred)


@asynccontextmanager
async def request_context(request: Request) -> AsyncIterator[AccessContext]:
    """An AccessContext for the request, in one transaction that commits when the block ends;
    denials are written afterwards in their own transaction."""
    runtime: Runtime = request.app.state.runtime
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthenticated()
    claims = await runtime.verify_token(token)
    try:
        purpose = parse_purpose(request.headers.get("safety-net-purpose"))
    except UnknownPurpose:
        await refuse_purpose(runtime, claims, request_id_var.get())
        raise
    async with unit_of_work(runtime, claims, purpose, request_id_var.get()) as access:
        yield access


async def refuse_purpose(runtime: Runtime, claims: Claims, request_id: str) -> None:
    """An undeclared use (e.g. intelligence gathering) is refused and the attempt logged, as on
    /graphql."""
    async with unit_of_work(runtime, claims, None, request_id) as access:
        access.deny("request.purpose", reason="unknown purpose")
