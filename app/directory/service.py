"""The service directory: what each organisation offers, edited by its own admins, read by the
staff of every organisation (not personal data). The one source of whether an organisation
accepts requests for help from women without a case, and of how long it has to answer a
referral."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.context import AccessContext
from app.directory.languages import ISO_639_1
from app.errors import BadInput, NotFound
from app.orgs import repository as orgs_repo
from app.pagination import Page, PageRequest, paginate
from app.tables.directory import ServiceEntry, ServiceKind

DEFAULT_REFERRAL_HOURS = 72
MAX_REFERRAL_HOURS = 30 * 24
MAX_REGIONS, MAX_LANGUAGES = 20, 20
REGION = re.compile(r"^[\w][\w .'-]{0,59}$")


@dataclass(frozen=True)
class EntryInput:
    services: list[str]
    languages: list[str]
    regions: list[str]
    accepts_help_requests: bool
    referral_response_hours: int | None


def _checked(value: EntryInput) -> tuple[list[str], list[str], list[str], int]:
    kinds = {k.value for k in ServiceKind}
    if any(s not in kinds for s in value.services):
        raise BadInput("Unknown service kind.", field="services")
    languages = [code.strip().lower() for code in value.languages]
    if len(languages) > MAX_LANGUAGES or any(c not in ISO_639_1 for c in languages):
        raise BadInput(f"Languages are ISO 639-1 codes (two letters), at most {MAX_LANGUAGES}.",
                       field="languages")
    regions = [r.strip() for r in value.regions]
    if len(regions) > MAX_REGIONS or any(not REGION.match(r) for r in regions):
        raise BadInput(f"At most {MAX_REGIONS} regions, each 1-60 letters, digits, spaces, "
                       "'.', \"'\" or '-'.", field="regions")
    hours = (DEFAULT_REFERRAL_HOURS if value.referral_response_hours is None
             else value.referral_response_hours)
    if not 1 <= hours <= MAX_REFERRAL_HOURS:
        raise BadInput(f"Referral response time is 1 to {MAX_REFERRAL_HOURS} hours.",
                       field="referralResponseHours")
    return (sorted(set(value.services)), sorted(set(languages)),
            sorted(set(regions), key=str.casefold), hours)


def _search(services: list[str], languages: list[str], regions: list[str]) -> str:
    tags = ([f"s:{s}" for s in services] + [f"l:{c}" for c in languages]
            + [f"r:{r.casefold()}" for r in regions])
    return "|" + "".join(f"{t}|" for t in tags)


async def set_entry(ctx: AccessContext, org_id: uuid.UUID | None, value: EntryInput) -> ServiceEntry:
    """Create or replace the caller's organisation's entry (its admins only); another
    organisation's entry is not found."""
    await ctx.require("service_directory", "manage")
    target = org_id or ctx.org_id
    if target is None or target != ctx.org_id:
        ctx.deny("service_directory.manage", target_type="Organisation", target_id=target,
                 reason="another organisation's directory entry")
        raise NotFound()
    services, languages, regions, hours = _checked(value)
    entry = await ctx.session.get(ServiceEntry, target)
    if entry is None:
        entry = ServiceEntry(org_id=target)
        ctx.session.add(entry)
    entry.services, entry.languages, entry.regions = services, languages, regions
    entry.accepts_help_requests = value.accepts_help_requests
    entry.referral_response_hours = hours
    entry.search = _search(services, languages, regions)
    entry.updated_by, entry.updated_at = ctx.principal.subject, ctx.clock.now()
    await ctx.session.flush()
    ctx.record("service_directory.update", target_type="Organisation", target_id=target,
               details={"services": services, "languages": languages,
                        "accepts_help_requests": value.accepts_help_requests,
                        "referral_response_hours": hours})
    return entry


async def get_entry(ctx: AccessContext, org_id: uuid.UUID) -> ServiceEntry | None:
    """One organisation's entry (None: it has declared none). Any organisation's staff."""
    await ctx.require("service_directory", "read")
    return await ctx.session.get(ServiceEntry, org_id)


async def list_entries(ctx: AccessContext, page: PageRequest, *, service: str | None = None,
                       language: str | None = None, region: str | None = None,
                       accepts_help_requests: bool | None = None) -> Page[ServiceEntry]:
    """Entries of every organisation, filtered. Any organisation's staff."""
    await ctx.require("service_directory", "read")
    query = select(ServiceEntry)
    if service is not None:
        query = query.where(ServiceEntry.search.contains(f"|s:{service}|", autoescape=True))
    if language is not None:
        code = language.strip().lower()
        if code not in ISO_639_1:
            raise BadInput("Languages are ISO 639-1 codes (two letters).", field="language")
        query = query.where(ServiceEntry.search.contains(f"|l:{code}|", autoescape=True))
    if region is not None:
        query = query.where(ServiceEntry.search.contains(f"|r:{region.strip().casefold()}|",
                                                         autoescape=True))
    if accepts_help_requests is not None:
        query = query.where(ServiceEntry.accepts_help_requests.is_(accepts_help_requests))
    return await paginate(ctx.session, query, keys=(ServiceEntry.org_id,), page=page)


async def referral_hours(session: AsyncSession, org_id: uuid.UUID) -> int:
    """How many hours an organisation has to accept or decline a referral."""
    hours = await session.scalar(select(ServiceEntry.referral_response_hours).where(
        ServiceEntry.org_id == org_id))
    return int(hours or DEFAULT_REFERRAL_HOURS)


async def accepts_help(session: AsyncSession, org_id: uuid.UUID) -> bool:
    """Whether an organisation's entry says it accepts requests for help (no entry: no)."""
    return bool(await session.scalar(select(ServiceEntry.accepts_help_requests).where(
        ServiceEntry.org_id == org_id)))


async def seed(session: AsyncSession, org_id: uuid.UUID, value: EntryInput, by: str,
               now: object) -> bool:
    """The demo fixture's entry for an organisation that has none (never overwrites)."""
    if await session.get(ServiceEntry, org_id) is not None:
        return False
    if org_id not in await orgs_repo.orgs_by_ids(session, [org_id]):
        return False
    services, languages, regions, hours = _checked(value)
    session.add(ServiceEntry(org_id=org_id, services=services, languages=languages,
                             regions=regions, accepts_help_requests=value.accepts_help_requests,
                             referral_response_hours=hours,
                             search=_search(services, languages, regions), updated_by=by,
                             updated_at=now))
    return True
