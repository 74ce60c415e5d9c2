"""Registering and updating peacebuilders; her sensitive fields are stored by category."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from app import crypto
from app.access.context import AccessContext
from app.consent import service as consent
from app.consent.rules import PROTECTED_CATEGORIES
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.her import keys as pb_keys
from app.her import sealing
from app.her.networks import networks_of as her_networks
from app.orgs import repository as orgs_repo
from app.peacebuilders import repository as repo
from app.tables.categories import DEFAULT_CATEGORIES, PROFILE_FIELDS, DataCategory, Purpose
from app.tables.consent import ConsentGrant
from app.tables.orgs import OrgKind
from app.tables.peacebuilders import Peacebuilder, PeacebuilderDatum

PSEUDONYM = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


async def get(ctx: AccessContext, pb_id: uuid.UUID, *, org_level: bool = False) -> Peacebuilder:
    """One peacebuilder whose record the caller may see under consent; otherwise not found.

    `org_level` judges the caller as its organisation's focal point would be judged (a case
    worker opening a case is not on its team yet)."""
    await ctx.require("peacebuilder", "read")
    scope = ctx.org_care_scope() if org_level else ctx.care_scope()
    found = (await repo.by_ids(ctx.session, scope, [pb_id])).get(pb_id)
    if found is None:
        # Logged with her ID so she and auditors see the attempt; the caller learns nothing.
        ctx.deny("peacebuilder.read", target_type="Peacebuilder", target_id=pb_id,
                 reason=ctx.redaction_reason().value)
        raise NotFound()
    return found


def field_aad(org_id: uuid.UUID, pb_id: uuid.UUID, field: str) -> bytes:
    return sealing.profile_ref(pb_id, org_id, field).aad


PerPerson = dict[uuid.UUID, dict[str, str]]


async def _open_all(ctx: AccessContext,
                    stored: dict[uuid.UUID, dict[str, str]]) -> tuple[PerPerson, PerPerson]:
    """Decrypt their fields: (values, problems). Erased, tampered or unsealed ones are never
    values (never someone else's, never as stored)."""
    wanted = [pb for pb, fields in stored.items() if fields]
    if not wanted:
        return {}, {}
    owners = await repo.owners(ctx.session, wanted)
    items = [(sealing.profile_ref(pb, owners[pb], name), token)
             for pb in wanted for name, token in stored[pb].items()]
    values: PerPerson = {}
    problems: PerPerson = {}
    for (ref, _), opened in zip(items, await sealing.open_many(ctx, items), strict=True):
        if opened.value is not None:
            values.setdefault(ref.peacebuilder_id, {})[ref.field] = opened.value
        elif opened.problem is not None:
            problems.setdefault(ref.peacebuilder_id, {})[ref.field] = opened.problem
    return values, problems


async def decrypted_profile(ctx: AccessContext, pb_id: uuid.UUID) -> dict[str, str]:
    """All her fields, decrypted — for her own copy of her data only."""
    data = await repo.data_of(ctx.session, pb_id)
    values, _ = await _open_all(ctx, {pb_id: {name: d.value for name, d in data.items()}})
    return values.get(pb_id, {})


async def networks_of(ctx: AccessContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    return await her_networks(ctx.session, ids)


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
    intake_consent: IntakeConsent | None = None,
) -> Registered:
    """Register a peacebuilder under a pseudonym, with her sensitive fields stored apart and
    the consent she gave the registering organisation (required)."""
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
    intake = intake_consent or IntakeConsent(obtained_via="")
    if await repo.pseudonym_taken(ctx.session, ctx.org_id, pseudonym):
        raise Conflict("Your organisation already uses this pseudonym.")
    now = ctx.clock.now()
    pb = Peacebuilder(id=new_id(), pseudonym=pseudonym, preferred_language=preferred_language,
                      registered_by_org_id=ctx.org_id, created_at=now, updated_at=now)
    # Decided: this transaction registers her. The database lets it reach her new record (and
    # her key, profile, networks and intake consent written next) only once told, as for
    # break-glass: registering her gives no standing of its own (docs/decisions/0015).
    await ctx.reach([pb.id])
    if ctx.db.dialect != "postgresql":  # no row-level security: pseudonym_taken saw every row
        ctx.session.add(pb)
        await ctx.session.flush()
    else:
        try:  # (a SAVEPOINT on SQLite's driver could commit the request's work early)
            async with ctx.session.begin_nested():  # flushes what is pending, then SAVEPOINT
                ctx.session.add(pb)
                await ctx.session.flush()
        except IntegrityError as exc:
            # The pseudonym of a woman it registered but may no longer see (she revoked it).
            raise Conflict("Your organisation already uses this pseudonym.") from exc
    await pb_keys.create(ctx, pb.id)
    # Named now; a network acts for her only once she (or two of us) confirmed it.
    await repo.add_networks(ctx.session, pb.id, networks)
    written = await _write_profile(ctx, pb, fields)
    ctx.record("peacebuilder.create", target_type="Peacebuilder", target_id=pb.id,
               details={"categories": written})
    grant = await record_intake(ctx, pb.id, intake)
    return Registered(pb, grant, await record_counting(ctx, pb.id, intake))


@dataclass(frozen=True)
class Registered:
    """A new peacebuilder and her intake grant (pending until confirmed)."""

    peacebuilder: Peacebuilder
    intake: ConsentGrant
    counting: list[ConsentGrant]


@dataclass(frozen=True)
class IntakeConsent:
    """Her consent to the registering (lead) organisation, recorded when her file is opened."""

    obtained_via: str
    categories: list[str] | None = None
    purposes: list[str] | None = None
    valid_until: datetime | None = None
    note: str | None = None
    evidence: consent.Evidence | None = None
    # Her plain choice "count me, anonymously, in the statistics of ...": recipients as
    # ("organisation" | "working_group", id), e.g. the overseeing NHRI.
    counted_by: list[tuple[str, uuid.UUID]] = field(default_factory=list)


# What the monitoring tables count (app/monitoring/tables.py): released for counting only.
COUNTING_CATEGORIES = (DataCategory.INCIDENT_DETAILS.value, DataCategory.LOCATION_COARSE.value,
                       DataCategory.LEGAL.value)
MAX_COUNTED_BY = 10


# What intake covers when no categories are named: never contact or location, and nothing
# that only she can bring into force, so a second person can confirm it against the evidence.
INTAKE_DEFAULT_CATEGORIES = DEFAULT_CATEGORIES - PROTECTED_CATEGORIES


async def record_intake(ctx: AccessContext, pb_id: uuid.UUID,
                        intake: IntakeConsent) -> ConsentGrant:
    """The lead organisation's own access rests on this grant, like anyone else's: recorded by
    its staff, it waits for her, her network or a second person (app/consent/rules.py)."""
    assert ctx.org_id is not None
    return await consent.grant(
        ctx, peacebuilder_id=pb_id, recipient_type="organisation", recipient_id=ctx.org_id,
        categories=intake.categories or sorted(INTAKE_DEFAULT_CATEGORIES),
        purposes=intake.purposes or [Purpose.PROTECTION.value, Purpose.EMERGENCY_RESPONSE.value],
        valid_until=intake.valid_until, obtained_via=intake.obtained_via, note=intake.note,
        evidence=intake.evidence, intake=True)


async def record_counting(ctx: AccessContext, pb_id: uuid.UUID,
                          intake: IntakeConsent) -> list[ConsentGrant]:
    """One grant per recipient she chose to be counted by: purpose aggregate_reporting alone
    (counts, never her record), the categories the declared tables count, the intake's method,
    evidence and end; pending until confirmed, like the intake grant."""
    field_name = "intakeConsent.countedBy"
    if len(intake.counted_by) > MAX_COUNTED_BY:
        raise BadInput(f"At most {MAX_COUNTED_BY} recipients.", field=field_name)
    if len(set(intake.counted_by)) != len(intake.counted_by):
        raise BadInput("A recipient is named twice.", field=field_name)
    grants = []
    for recipient_type, recipient_id in intake.counted_by:
        try:
            grants.append(await consent.grant(
                ctx, peacebuilder_id=pb_id, recipient_type=recipient_type,
                recipient_id=recipient_id, categories=list(COUNTING_CATEGORIES),
                purposes=[Purpose.AGGREGATE_REPORTING.value], valid_until=intake.valid_until,
                obtained_via=intake.obtained_via, note=intake.note, evidence=intake.evidence,
                intake=True))
        except BadInput as exc:
            raise BadInput(exc.message, field=field_name) from exc
    return grants


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
    if profile:
        released = (await ctx.released([pb.id])).get(pb.id, frozenset())
        for name in profile:
            if name in PROFILE_FIELDS and PROFILE_FIELDS[name].value not in released:
                # Writing a field you may not read could overwrite what you cannot see.
                raise NotFound()
    if preferred_language is not None:
        if not LANGUAGE.match(preferred_language):
            raise BadInput("Preferred language must be a language tag such as 'en' or 'ar'.",
                           field="preferredLanguage")
        pb.preferred_language = preferred_language
    if network_ids is not None:
        # Her networks act for her: only she decides them, at registration (with her) or herself.
        raise BadInput("Her networks are set when she is registered, with her; staff cannot "
                       "change them.", field="networkIds")
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
    data_key = await sealing.data_key(ctx, pb.id, "profile")
    now = ctx.clock.now()
    lookup_key = pb_keys.lookup_key(ctx)
    for name, value in fields.items():
        datum = existing.get(name)
        sealed = (crypto.seal(data_key, sealing.profile_ref(pb.id, pb.registered_by_org_id,
                                                            name).aad, value)
                  if value is not None else None)
        index = crypto.lookup(lookup_key, name, value) if value is not None else None
        if sealed is None:
            if datum is not None:
                await ctx.session.delete(datum)
        elif datum is None:
            ctx.session.add(PeacebuilderDatum(peacebuilder_id=pb.id, field=name, value=sealed,
                                              lookup=index, category=PROFILE_FIELDS[name].value,
                                              updated_at=now))
        else:
            datum.value, datum.lookup, datum.updated_at = sealed, index, now
    await ctx.session.flush()
    return sorted({PROFILE_FIELDS[name].value for name in fields})
