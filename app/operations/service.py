"""Registered operations: partner agencies' documents by SHA-256, and the allow-list switch.

The GraphQL edge checks documents (parse, limits, validation) before `register` is called; this
module stores and answers "may this organisation run this document?".
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from app.access.context import AccessContext
from app.errors import BadInput, NotFound
from app.operations import repository as repo
from app.pagination import Page, PageRequest, paginate
from app.tables.operations import OrganisationSettings, RegisteredOperation

MAX_NAME = 120


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass(frozen=True)
class Admission:
    only_registered: bool
    # The registered document for the hash asked about (None: not registered here).
    document: str | None


async def admission(ctx: AccessContext, sha256: str | None) -> Admission:
    """What the caller's organisation accepts; peacebuilders belong to none (no allow-list)."""
    if ctx.org_id is None:
        return Admission(only_registered=False, document=None)
    only, document = await repo.admission(ctx.session, ctx.org_id, sha256)
    return Admission(only_registered=only, document=document)


async def register(ctx: AccessContext, document: str, name: str | None) -> RegisteredOperation:
    """Register a checked document for the caller's organisation (idempotent). Logged."""
    await ctx.require("operation", "manage")
    assert ctx.org_id is not None
    if name is not None and len(name) > MAX_NAME:
        raise BadInput(f"The name is limited to {MAX_NAME} characters.", field="name")
    digest = sha256_of(document)
    existing = await repo.operation_by_hash(ctx.session, ctx.own_scope(), digest)
    if existing is not None:
        return existing
    op = RegisteredOperation(org_id=ctx.org_id, sha256=digest, name=name, document=document,
                             created_by=ctx.principal.subject, created_at=ctx.clock.now())
    ctx.session.add(op)
    await ctx.session.flush()
    ctx.record("operation.register", target_type="RegisteredOperation", target_id=op.id,
               details={"sha256": digest})
    return op


async def unregister(ctx: AccessContext, id_: uuid.UUID) -> RegisteredOperation:
    await ctx.require("operation", "manage")
    op = await repo.operation_in_scope(ctx.session, ctx.own_scope(), id_)
    if op is None:
        raise NotFound()
    await ctx.session.delete(op)
    await ctx.session.flush()
    ctx.record("operation.unregister", target_type="RegisteredOperation", target_id=op.id,
               details={"sha256": op.sha256})
    return op


async def list_operations(ctx: AccessContext, page: PageRequest) -> Page[RegisteredOperation]:
    await ctx.require("operation", "manage")
    return await paginate(ctx.session, repo.operations_query(ctx.own_scope()),
                          keys=(RegisteredOperation.created_at, RegisteredOperation.id), page=page)


async def only_registered(ctx: AccessContext) -> bool:
    await ctx.require("operation", "manage")
    found = await repo.settings_of(ctx.session, ctx.own_scope())
    return bool(found and found.only_registered_operations)


async def own_settings(ctx: AccessContext) -> OrganisationSettings:
    """The caller's organisation's settings row, made on its first change. The caller has been
    checked for the setting it changes; the row holds every organisation-wide setting."""
    assert ctx.org_id is not None
    found = await repo.settings_of(ctx.session, ctx.own_scope())
    if found is None:
        found = OrganisationSettings(org_id=ctx.org_id, only_registered_operations=False)
        ctx.session.add(found)
    return found


async def set_only_registered(ctx: AccessContext, enabled: bool) -> bool:
    """Accept only registered operations from the caller's organisation (or stop). Logged."""
    await ctx.require("operation", "manage")
    found = await own_settings(ctx)
    found.only_registered_operations = enabled
    found.updated_by, found.updated_at = ctx.principal.subject, ctx.clock.now()
    await ctx.session.flush()
    ctx.record("operation.policy", target_type="Organisation", target_id=ctx.org_id,
               details={"only_registered_operations": enabled})
    return enabled


async def get_operation(ctx: AccessContext, operation_id: uuid.UUID) -> RegisteredOperation:
    """One registered operation (`node(id:)`), as `operationPolicy.operations` lists it."""
    await ctx.require("operation", "manage")
    found = await ctx.session.scalar(repo.operations_query(ctx.own_scope())
                                     .where(RegisteredOperation.id == operation_id))
    if found is None:
        raise NotFound()
    return found
