"""Consent grants as events: grant, narrow, extend, revoke, expire. The current state is derived.

Who may record what:
- she herself (signed in) for any of her grants;
- a focal point of a peacebuilders' network she belongs to, acting for her (recorded as such);
- staff who can see her record for the declared purpose (focal point or case team) may record a
  consent she gave them in person, in writing or verbally with a witness, and may narrow or
  revoke any of her grants (less access is always safe).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.access.visibility import Mode
from app.consent import repository as repo
from app.consent.categories import DataCategory, ObtainedVia, Purpose
from app.consent.models import ConsentAccess, ConsentEvent, ConsentGrant, Notice
from app.db import new_id
from app.errors import BadInput, Conflict, Forbidden, NotFound
from app.orgs import repository as orgs_repo
from app.orgs.models import WorkingGroup
from app.peacebuilders import repository as pb_repo
from app.peacebuilders import sealing
from app.peacebuilders.models import Peacebuilder

RECIPIENT_TYPES = ("organisation", "working_group")
STAFF_METHODS = {ObtainedVia.IN_PERSON, ObtainedVia.WRITTEN, ObtainedVia.VERBAL_WITNESSED}


@dataclass(frozen=True)
class Terms:
    categories: frozenset[str]
    purposes: frozenset[str]
    valid_from: datetime
    valid_until: datetime | None


@dataclass(frozen=True)
class Standing:
    kind: str  # "self", "network", "staff"

    @property
    def acting_for_her(self) -> bool:
        return self.kind == "network"


def require_step_up(ctx: AccessContext, who: Standing, action: str, pb_id: uuid.UUID) -> None:
    """Anyone but she herself changes her consent only after a recent second factor."""
    if who.kind != "self":
        ctx.require_recent_mfa(action, target_type="Peacebuilder", target_id=pb_id)


def parse_categories(values: list[str]) -> frozenset[str]:
    allowed = {c.value for c in DataCategory}
    unknown = sorted(set(values) - allowed)
    if unknown or not values:
        raise BadInput("Name at least one data category; unknown: " + ", ".join(unknown)
                       if unknown else "Name at least one data category.", field="categories")
    return frozenset(values)


def parse_purposes(values: list[str]) -> frozenset[str]:
    allowed = {p.value for p in Purpose}
    unknown = sorted(set(values) - allowed)
    if unknown or not values:
        raise BadInput("Name at least one purpose; unknown: " + ", ".join(unknown)
                       if unknown else "Name at least one purpose.", field="purposes")
    return frozenset(values)


async def standing(ctx: AccessContext, pb_id: uuid.UUID) -> Standing:
    """Who the caller is to her, for consent; NotFound when she is none of their business."""
    p = ctx.principal
    if p.kind is PrincipalKind.PEACEBUILDER:
        if p.id == pb_id:
            return Standing("self")
        raise NotFound()
    if p.kind is PrincipalKind.SYSTEM:
        return Standing("staff")
    if p.org_id is None:
        raise NotFound()
    if "focal_point" in p.roles:
        networks = (await pb_repo.networks_of(ctx.session, [pb_id]))[pb_id]
        if p.org_id in networks:
            return Standing("network")
    if ctx.mode in (Mode.FOCAL, Mode.TEAM) and await ctx.consented([pb_id]):
        return Standing("staff")
    raise NotFound()


STAFF_FORBIDDEN_PURPOSES = {Purpose.MEDIA.value, Purpose.PUBLIC_RECOGNITION.value}


def _staff_limits(ctx: AccessContext, who: Standing, recipient_type: str,
                  recipient_id: uuid.UUID, purposes: frozenset[str]) -> None:
    """Staff record only what she gave their own organisation, never public acts: anything else
    is hers (or her network's) to decide."""
    if who.kind != "staff" or ctx.principal.kind is PrincipalKind.SYSTEM:
        return
    if recipient_type != "organisation" or recipient_id != ctx.org_id:
        raise BadInput("Staff record consent she gave their own organisation; she or her "
                       "network records it for others.", field="recipient")
    if purposes & STAFF_FORBIDDEN_PURPOSES:
        raise BadInput("Media and public recognition need her own consent (she or her network "
                       "records it).", field="purposes")


def _tell_her(ctx: AccessContext, who: Standing, pb_id: uuid.UUID, grant_id: uuid.UUID,
              kind: str) -> None:
    """She is never the last to know: consent recorded by someone else is a notice to her."""
    if who.kind == "self":
        return
    ctx.session.add(Notice(peacebuilder_id=pb_id, kind=f"consent_{kind}_by_others",
                           details={"grant": str(grant_id), "by": ctx.principal.subject,
                                    "acting_for_her": who.acting_for_her},
                           created_at=ctx.clock.now()))


async def _peacebuilder(ctx: AccessContext, pb_id: uuid.UUID) -> Peacebuilder:
    pb = await ctx.session.get(Peacebuilder, pb_id)
    if pb is None:
        raise NotFound()
    return pb


async def _covered(ctx: AccessContext, recipient_type: str, recipient_id: uuid.UUID) -> list[str]:
    if recipient_type == "organisation":
        if recipient_id not in await orgs_repo.orgs_by_ids(ctx.session, [recipient_id]):
            raise BadInput("No such organisation.", field="recipient")
        return [str(recipient_id)]
    if recipient_type == "working_group":
        wg = await ctx.session.get(WorkingGroup, recipient_id)
        if wg is None:
            raise BadInput("No such working group.", field="recipient")
        members = (await orgs_repo.current_members(ctx.session, [recipient_id]))[recipient_id]
        return sorted(str(m) for m in members)
    raise BadInput("Recipient must be an organisation or a working group.", field="recipient")


def _method(standing: Standing, obtained_via: str | None) -> str:
    if standing.kind == "self":
        return ObtainedVia.SELF_SERVICE.value
    if standing.kind == "network":
        return ObtainedVia.NETWORK_FOCAL_POINT.value
    try:
        method = ObtainedVia(obtained_via or "")
    except ValueError as exc:
        raise BadInput("Say how her consent was obtained.", field="obtainedVia") from exc
    if method not in STAFF_METHODS:
        raise BadInput("Staff record consent obtained in person, in writing or verbally with a "
                       "witness.", field="obtainedVia")
    return method.value


async def grant(
    ctx: AccessContext,
    *,
    peacebuilder_id: uuid.UUID,
    recipient_type: str,
    recipient_id: uuid.UUID,
    categories: list[str],
    purposes: list[str],
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    obtained_via: str | None = None,
    note: str | None = None,
    intake: bool = False,
) -> ConsentGrant:
    """Record a new grant. `intake` is the consent recorded when her file is opened."""
    who = Standing("staff") if intake else await standing(ctx, peacebuilder_id)
    if not intake:  # intake consent is part of opening her file, not a change to her consent
        require_step_up(ctx, who, "consent.grant", peacebuilder_id)
    await _peacebuilder(ctx, peacebuilder_id)
    now = ctx.clock.now()
    terms = Terms(parse_categories(categories), parse_purposes(purposes), valid_from or now,
                  valid_until)
    if terms.valid_until is not None and terms.valid_until <= terms.valid_from:
        raise BadInput("validUntil must be after validFrom.", field="validUntil")
    if note is not None and len(note) > 2000:
        raise BadInput("Note is limited to 2000 characters.", field="note")
    if not intake:
        _staff_limits(ctx, who, recipient_type, recipient_id, terms.purposes)
    covered = await _covered(ctx, recipient_type, recipient_id)
    event = ConsentEvent(
        grant_id=uuid.uuid4(), peacebuilder_id=peacebuilder_id, kind="grant",
        recipient_type=recipient_type, recipient_id=recipient_id,
        categories=sorted(terms.categories), purposes=sorted(terms.purposes),
        valid_from=terms.valid_from, valid_until=terms.valid_until, covered_org_ids=covered,
        obtained_via=_method(who, obtained_via), recorded_by=ctx.principal.subject,
        recorded_by_org_id=ctx.principal.org_id, acting_for_her=who.acting_for_her, note=note,
        at=now)
    state = await _append(ctx, event)
    _tell_her(ctx, who, peacebuilder_id, state.id, "granted")
    ctx.record("consent.grant", target_type="ConsentGrant", target_id=state.id,
               details=_audit_terms(event))
    return state


async def change(
    ctx: AccessContext,
    grant_id: uuid.UUID,
    kind: str,
    *,
    categories: list[str] | None = None,
    purposes: list[str] | None = None,
    valid_until: datetime | None = None,
    obtained_via: str | None = None,
    note: str | None = None,
) -> ConsentGrant:
    """Narrow (only ever less), extend (more, or longer; refreshes a group's members) or revoke."""
    current = await repo.grant(ctx.session, grant_id)
    if current is None:
        raise NotFound()
    who = await standing(ctx, current.peacebuilder_id)
    if who.kind == "staff" and ctx.principal.kind is not PrincipalKind.SYSTEM and not (
            current.recipient_type == "organisation" and current.recipient_id == ctx.org_id):
        # Staff change only grants to their own organisation; others' are hers to change.
        raise NotFound()
    require_step_up(ctx, who, f"consent.{kind}", current.peacebuilder_id)
    now = ctx.clock.now()
    if current.revoked_at is not None:
        raise Conflict("This grant was revoked; record a new grant instead.")
    cats, purps = frozenset(current.categories), frozenset(current.purposes)
    until, covered = current.valid_until, list(current.covered_org_ids)
    method = current.obtained_via
    if kind == "narrow":
        cats -= frozenset(categories or [])
        purps -= frozenset(purposes or [])
        if valid_until is not None:
            if current.valid_until is not None and valid_until > current.valid_until:
                raise BadInput("Narrowing cannot lengthen a grant; extend it.", field="validUntil")
            until = valid_until
        if not cats or not purps:
            raise BadInput("Narrowing would leave nothing; revoke the grant instead.",
                           field="categories" if not cats else "purposes")
    elif kind == "extend":
        cats |= parse_categories(categories) if categories else frozenset()
        purps |= parse_purposes(purposes) if purposes else frozenset()
        if valid_until is not None:
            until = valid_until
        if who.kind in ("self", "network"):
            # Only she (or her network for her) extends a group grant to its current members.
            covered = await _covered(ctx, current.recipient_type, current.recipient_id)
        _staff_limits(ctx, who, current.recipient_type, current.recipient_id, purps)
        method = _method(who, obtained_via)
    elif kind != "revoke":
        raise BadInput("Unknown change.", field="kind")
    if until is not None and until <= current.valid_from:
        raise BadInput("validUntil must be after validFrom.", field="validUntil")
    event = ConsentEvent(
        grant_id=current.id, peacebuilder_id=current.peacebuilder_id, kind=kind,
        recipient_type=current.recipient_type, recipient_id=current.recipient_id,
        categories=sorted(cats), purposes=sorted(purps), valid_from=current.valid_from,
        valid_until=until, covered_org_ids=covered, obtained_via=method,
        recorded_by=ctx.principal.subject, recorded_by_org_id=ctx.principal.org_id,
        acting_for_her=who.acting_for_her, note=note, at=now)
    state = await _append(ctx, event)
    if kind == "extend":
        _tell_her(ctx, who, current.peacebuilder_id, state.id, "extended")
    ctx.record(f"consent.{kind}", target_type="ConsentGrant", target_id=state.id,
               details=_audit_terms(event))
    return state


async def revoke_all(ctx: AccessContext, pb_id: uuid.UUID) -> list[ConsentGrant]:
    """Revoke every live grant of hers in one step (she, or her network acting for her)."""
    who = await standing(ctx, pb_id)
    require_self_or_network(who)
    require_step_up(ctx, who, "consent.revoke_all", pb_id)
    revoked = []
    for g in await repo.grants_of(ctx.session, pb_id):
        if g.revoked_at is None:
            revoked.append(await change(ctx, g.id, "revoke"))
    return revoked


async def expire_due(ctx: AccessContext) -> int:
    """Append an `expire` event to grants whose validity ended (access already ended then)."""
    now = ctx.clock.now()
    due = await repo.ended_unrevoked(ctx.session, now)
    for g in due:
        event = ConsentEvent(
            grant_id=g.id, peacebuilder_id=g.peacebuilder_id, kind="expire",
            recipient_type=g.recipient_type, recipient_id=g.recipient_id,
            categories=list(g.categories), purposes=list(g.purposes), valid_from=g.valid_from,
            valid_until=g.valid_until, covered_org_ids=list(g.covered_org_ids),
            obtained_via=g.obtained_via, recorded_by=ctx.principal.subject,
            recorded_by_org_id=None, acting_for_her=False, note=None, at=now)
        await _append(ctx, event)
        ctx.record("consent.expire", target_type="ConsentGrant", target_id=g.id)
    return len(due)


def replay(events: list[ConsentEvent]) -> dict[str, Any]:
    """The current state of one grant, from its events alone."""
    if not events or events[0].kind != "grant":
        raise ValueError("a grant's history starts with a grant event")
    first, last = events[0], events[-1]
    return {
        "id": first.grant_id, "peacebuilder_id": first.peacebuilder_id,
        "recipient_type": first.recipient_type, "recipient_id": first.recipient_id,
        "categories": list(last.categories), "purposes": list(last.purposes),
        "valid_from": last.valid_from, "valid_until": last.valid_until,
        "covered_org_ids": list(last.covered_org_ids), "obtained_via": last.obtained_via,
        "covered_at": [e.at for e in events if e.kind in ("grant", "extend")][-1],
        "revoked_at": next((e.at for e in events if e.kind in ("revoke", "expire")), None),
        "created_at": first.at, "updated_at": last.at,
    }


async def _append(ctx: AccessContext, event: ConsentEvent) -> ConsentGrant:
    """Store the event and bring the projection (grant row + access rows) up to date."""
    ctx.forget_decisions()  # decisions cached earlier in this request are stale now
    history = await repo.events_of(ctx.session, event.grant_id)
    event.version = len(history) + 1
    if event.note is not None:  # free text that may name her: sealed with her key
        event.id = event.id or new_id()
        event.note = await sealing.seal(ctx, sealing.consent_note_ref(event), event.note,
                                        input_field="note")
    ctx.session.add(event)
    await ctx.session.flush()
    state = replay([*history, event])
    current = await repo.grant(ctx.session, event.grant_id)
    if current is None:
        current = ConsentGrant(**state)
        ctx.session.add(current)
    else:
        for key, value in state.items():
            setattr(current, key, value)
    await ctx.session.flush()
    rows: list[ConsentAccess] = []
    if current.revoked_at is None:
        wg = current.recipient_id if current.recipient_type == "working_group" else None
        for org in current.covered_org_ids:
            for category in current.categories:
                for purpose in current.purposes:
                    rows.append(ConsentAccess(
                        grant_id=current.id, peacebuilder_id=current.peacebuilder_id,
                        org_id=uuid.UUID(org), via_working_group_id=wg,
                        covered_at=current.covered_at, category=category,
                        purpose=purpose, valid_from=current.valid_from,
                        valid_until=current.valid_until))
    await repo.replace_access_rows(ctx.session, current.id, rows)
    await ctx.session.flush()
    return current


def _audit_terms(event: ConsentEvent) -> dict[str, Any]:
    return {"peacebuilder": str(event.peacebuilder_id), "recipient_type": event.recipient_type,
            "recipient": str(event.recipient_id), "categories": event.categories,
            "purposes": event.purposes, "acting_for_her": event.acting_for_her,
            "obtained_via": event.obtained_via}


async def grants_for(ctx: AccessContext, pb_id: uuid.UUID) -> list[ConsentGrant]:
    """All her grants, live and ended: for her, her network's focal points, or staff with standing."""
    await standing(ctx, pb_id)
    return await repo.grants_of(ctx.session, pb_id)


async def events_for(ctx: AccessContext, grant_id: uuid.UUID) -> list[ConsentEvent]:
    current = await repo.grant(ctx.session, grant_id)
    if current is None:
        raise NotFound()
    await standing(ctx, current.peacebuilder_id)
    return await repo.events_of(ctx.session, grant_id)


async def notify_new_member(ctx: AccessContext, wg_id: uuid.UUID, org_id: uuid.UUID) -> None:
    """Tell each woman with a live grant to the group that it has a new member (not covered)."""
    for g in await repo.live_wg_grants(ctx.session, wg_id):
        ctx.session.add(Notice(peacebuilder_id=g.peacebuilder_id, kind="working_group_new_member",
                               details={"grant": str(g.id), "working_group": str(wg_id),
                                        "organisation": str(org_id)},
                               created_at=ctx.clock.now()))


def require_self_or_network(who: Standing) -> None:
    if who.kind not in ("self", "network"):
        raise Forbidden()


async def receipt(ctx: AccessContext, grant_id: uuid.UUID, language: str | None) -> str:
    """Her consent receipt, in her preferred language unless another is asked for."""
    from app.consent.receipt import render

    current = await repo.grant(ctx.session, grant_id)
    if current is None:
        raise NotFound()
    await standing(ctx, current.peacebuilder_id)
    pb = await _peacebuilder(ctx, current.peacebuilder_id)
    if current.recipient_type == "organisation":
        org = (await orgs_repo.orgs_by_ids(ctx.session, [current.recipient_id]))[current.recipient_id]
        name = org.name
    else:
        wg = await ctx.session.get(WorkingGroup, current.recipient_id)
        name = wg.name if wg else "-"
    ctx.record("consent.receipt", target_type="ConsentGrant", target_id=current.id)
    return render(current, recipient_name=name, language=language or pb.preferred_language,
                  now=ctx.clock.now())
