"""Authenticating one HTTP request outside GraphQL (exports), the same way /graphql does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request

from app.access.context import AccessContext
from app.auth import mfa
from app.auth.principals import resolve
from app.consent.categories import Purpose
from app.errors import BadInput, Unauthenticated
from app.logs import request_id_var
from app.runtime import Runtime


@asynccontextmanager
async def request_context(request: Request) -> AsyncIterator[AccessContext]:
    """An AccessContext for the request, in one transaction that commits when the block ends;
    denials are written afterwards in their own transaction."""
    from app.audit.service import write_deferred

    runtime: Runtime = request.app.state.runtime
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    claims = await runtime.verify_token(token.strip())
    purpose = request.headers.get("safety-net-purpose")
    if purpose is not None and purpose not in {p.value for p in Purpose}:
        raise BadInput("Unknown purpose.", field="Safety-Net-Purpose")
    access: AccessContext | None = None
    try:
        async with runtime.db.transaction() as session:
            principal = await resolve(session, runtime.policy, claims,
                                      mfa_roles=mfa.mfa_roles(runtime.settings))
            access = AccessContext(principal=principal, session=session, db=runtime.db,
                                   policy=runtime.policy, clock=runtime.clock,
                                   request_id=request_id_var.get(), purpose=purpose,
                                   **mfa.step_up(runtime.settings))
            yield access
    finally:
        if access is not None:
            access.flush_reads()
            await write_deferred(runtime.db, access.deferred)
