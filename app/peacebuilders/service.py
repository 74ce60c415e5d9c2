"""Registering and updating peacebuilders; her sensitive fields are stored by category."""

from __future__ import annotations

import re
import uuid

from app.access.context import AccessContext
from app.consent.categories import PROFILE_FIELDS
from app.errors import BadInput, Conflict, NotFound
from app.orgs import repository as orgs_repo
from app.orgs.models import OrgKind
from app.pagination import Page, PageRequest, paginate
from app.peacebuilders import repository as repo
from app.peacebuilders.models import Peacebuilder, PeacebuilderDatum

PSEUDONYM = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


async def get(ctx: AccessContext, pb_id: uuid.UUID) -> Peacebuilder:
    """One peacebuilder the caller's organisation may reach; otherwise not found."""
    await ctx.require("peacebuilder", "read")
    found = (await repo.by_ids(ctx.session, ctx.own_scope(), [pb_id])).get(pb_id)
    if found is None:
        raise NotFound()
    return found


async def by_ids(ctx: AccessContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, Peacebuilder]:
    """Batch load of reachable peacebuilders (absent ones are simply missing)."""
    if not ctx.can("peacebuilder", "read"):
        return {}
    return await repo.by_ids(ctx.session, ctx.own_scope(), ids)


async def list_(
    ctx: AccessContext, page: PageRequest, *, network_id: uuid.UUID | None = None
) -> Page[Peacebuilder]:
    await ctx.require("peacebuilder", "read")
    query = repo.query(ctx.own_scope())
    if network_id is not None:
        query = repo.in_network(query, network_id)
    return await paginate(ctx.session, query, keys=(Peacebuilder.pseudonym, Peacebuilder.id),
                          page=page)


async def networks_of(ctx: AccessContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    return await repo.networks_of(ctx.session, ids)


async def _validated_networks(ctx: AccessContext, network_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    orgs = await orgs_repo.orgs_by_ids(ctx.session, network_ids)
    for org_id in network_ids:
        org = orgs.get(org_id)
        if org is None or org.kind != OrgKind.PEACEBUILDERS_NETWORK:
            raise BadInput("Each network must be a peacebuilders' network organisation.",
                           field="networkIds")
    return set(network_ids)


def _validated_profile(profile: dict[str, str | None]) -> dict[str, str | None]:
    for name, value in profile.items():
        if name not in PROFILE_FIELDS:
            raise BadInput("Unknown profile field.", field=f"profile.{name}")
        if value is not None and len(value) > 2000:
            raise BadInput("Value too long (2000 characters at most).", field=f"profile.{name}")
    return profile


async def create(
    ctx: AccessContext,
    *,
    pseudonym: str,
    preferred_language: str = "en",
    network_ids: list[uuid.UUID] | None = None,
    profile: dict[str, str | None] | None = None,
) -> Peacebuilder:
    """Register a peacebuilder under a pseudonym, with her sensitive fields stored apart."""
    await ctx.require("peacebuilder", "create")
    assert ctx.org_id is not None
    if not PSEUDONYM.match(pseudonym):
        raise BadInput("Pseudonym must be 2-64 lowercase letters, digits or '-'.",
                       field="pseudonym")
    if not LANGUAGE.match(preferred_language):
        raise BadInput("Preferred language must be a language tag such as 'en' or 'ar'.",
                       field="preferredLanguage")
    networks = await _validated_networks(ctx, network_ids or [])
    fields = _validated_profile(profile or {})
    if await repo.pseudonym_taken(ctx.session, ctx.org_id, pseudonym):
        raise Conflict("Your organisation already uses this pseudonym.")
    now = ctx.clock.now()
    pb = Peacebuilder(pseudonym=pseudonym, preferred_language=preferred_language,
                      registered_by_org_id=ctx.org_id, created_at=now, updated_at=now)
    ctx.session.add(pb)
    await ctx.session.flush()
    await repo.set_networks(ctx.session, pb.id, networks)
    written = await _write_profile(ctx, pb, fields)
    ctx.record("peacebuilder.create", target_type="Peacebuilder", target_id=pb.id,
               details={"categories": written})
    return pb


async def update(
    ctx: AccessContext,
    pb_id: uuid.UUID,
    *,
    preferred_language: str | None = None,
    network_ids: list[uuid.UUID] | None = None,
    profile: dict[str, str | None] | None = None,
) -> Peacebuilder:
    """Change her record; a profile value of null removes that field."""
    await ctx.require("peacebuilder", "update")
    pb = await get(ctx, pb_id)
    if preferred_language is not None:
        if not LANGUAGE.match(preferred_language):
            raise BadInput("Preferred language must be a language tag such as 'en' or 'ar'.",
                           field="preferredLanguage")
        pb.preferred_language = preferred_language
    if network_ids is not None:
        await repo.set_networks(ctx.session, pb.id, await _validated_networks(ctx, network_ids))
    written = await _write_profile(ctx, pb, _validated_profile(profile or {}))
    pb.updated_at = ctx.clock.now()
    ctx.record("peacebuilder.update", target_type="Peacebuilder", target_id=pb.id,
               details={"categories": written, "networks_changed": network_ids is not None})
    return pb


async def _write_profile(
    ctx: AccessContext, pb: Peacebuilder, fields: dict[str, str | None]
) -> list[str]:
    """Store each field under its category; returns the categories touched (never values)."""
    if not fields:
        return []
    existing = await repo.data_of(ctx.session, pb.id)
    now = ctx.clock.now()
    for name, value in fields.items():
        datum = existing.get(name)
        if value is None:
            if datum is not None:
                await ctx.session.delete(datum)
        elif datum is None:
            ctx.session.add(PeacebuilderDatum(peacebuilder_id=pb.id, field=name, value=value,
                                              category=PROFILE_FIELDS[name].value, updated_at=now))
        else:
            datum.value, datum.updated_at = value, now
    await ctx.session.flush()
    return sorted({PROFILE_FIELDS[name].value for name in fields})
