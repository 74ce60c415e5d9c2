"""Consent grants as events: grant, confirm, narrow, extend, revoke, expire. The state is derived.

Who may record what is one table (app/consent/rules.py, docs/decisions/0013): only she widens
access to her data; her network may act for her; staff record what she said and it waits for
her, her network or a second person (app/confirmations) before it releases anything. A pending
grant has no consent_access rows, so nothing reads it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app import tenancy
from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.access.visibility import Mode
from app.confirmations import service as confirmations
from app.consent import repository as repo
from app.consent import rules
from app.consent.rules import Act, Caller, Result
from app.db import new_id
from app.errors import BadInput, Conflict, Forbidden, NotFound
from app.her import sealing
from app.her.networks import networks_of
from app.her.notices import NoticeKind, tell_her, watch_grant
from app.notify import service as notify
from app.orgs import repository as orgs_repo
from app.orgs import service as orgs_service
from app.tables.categories import DataCategory, EvidenceKind, ObtainedVia, Purpose
from app.tables.confirmations import Confirmation, ConfirmationStatus
from app.tables.consent import ConsentAccess, ConsentEvent, ConsentGrant
from app.tables.orgs import WorkingGroup
from app.tables.peacebuilders import Peacebuilder

RECIPIENT_TYPES = ("organisation", "working_group")
STAFF_METHODS = {ObtainedVia.IN_PERSON, ObtainedVia.WRITTEN, ObtainedVia.VERBAL_WITNESSED}
EVIDENCE_KINDS = frozenset(k.value for k in EvidenceKind)
CONFIRM_GRANT = "consent.grant"

# Whether what she widens herself waits after a code reset her password, and how her networks
# are asked to confirm it: her account (app/peacebuilders/account.py, above consent) registers
# both when imported (decision 0035). With nothing registered her own widening fails loudly
# rather than passing unheld (default deny).
HeldCheck = Callable[[AccessContext], Awaitable[bool]]
HeldAlert = Callable[[AccessContext, uuid.UUID, uuid.UUID], Awaitable[None]]
_her_hold: list[tuple[HeldCheck, HeldAlert]] = []


def on_her_hold(held: HeldCheck, alert: HeldAlert) -> None:
    """Register whether her sign-in is held after a code reset, and the alert to her networks."""
    _her_hold[:] = [(held, alert)]


def _hold() -> tuple[HeldCheck, HeldAlert]:
    if not _her_hold:
        raise RuntimeError("her account's hold is not registered (app.peacebuilders.account)")
    return _her_hold[0]


async def _held(ctx: AccessContext) -> bool:
    held, _ = _hold()
    return await held(ctx)


async def _alert_held(ctx: AccessContext, pb_id: uuid.UUID, grant_id: uuid.UUID) -> None:
    _, alert = _hold()
    await alert(ctx, pb_id, grant_id)


@dataclass(frozen=True)
class Terms:
    categories: frozenset[str]
    purposes: frozenset[str]
    valid_from: datetime
    valid_until: datetime | None


@dataclass(frozen=True)
class Evidence:
    """What staff hold that shows she consented: checked by the second person."""

    kind: str
    reference: str


@dataclass(frozen=True)
class Standing:
    """Who the caller is to her, for consent (`None`: the system itself, e.g. expiry)."""

    caller: Caller | None

    @property
    def acting_for_her(self) -> bool:
        return self.caller is Caller.NETWORK

    @property
    def herself(self) -> bool:
        return self.caller is Caller.HERSELF


SYSTEM_STANDING = Standing(None)


def require_step_up(ctx: AccessContext, who: Standing, action: str, pb_id: uuid.UUID) -> None:
    """Anyone but she herself changes her consent only after a recent second factor."""
    if not who.herself:
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


def _staff_caller(ctx: AccessContext) -> Caller:
    return Caller.MACHINE if ctx.principal.kind is PrincipalKind.CLIENT else Caller.STAFF


async def standing(ctx: AccessContext, pb_id: uuid.UUID, *,
                   action: str | None = None) -> Standing:
    """Who the caller is to her, for consent; NotFound when she is none of their business (the
    attempt logged as a denial of `action`, with her ID, when one is named)."""
    p = ctx.principal
    if p.kind is PrincipalKind.PEACEBUILDER and p.id == pb_id:
        return Standing(Caller.HERSELF)
    if p.kind is PrincipalKind.SYSTEM:
        return SYSTEM_STANDING
    if p.org_id is not None:
        if "focal_point" in p.roles and p.kind is PrincipalKind.USER:
            networks = (await networks_of(ctx.session, [pb_id]))[pb_id]
            if p.org_id in networks:
                return Standing(Caller.NETWORK)
        if ctx.mode in (Mode.FOCAL, Mode.TEAM) and await ctx.consented([pb_id]):
            return Standing(_staff_caller(ctx))
    if action is not None:
        ctx.deny(action, target_type="Peacebuilder", target_id=pb_id,
                 reason="no standing towards her")
    raise NotFound()


def require_self_or_network(ctx: AccessContext, who: Standing, action: str,
                            pb_id: uuid.UUID) -> None:
    """Only she, or her network for her (anyone else refused, and the attempt logged)."""
    if who.caller not in (Caller.HERSELF, Caller.NETWORK):
        ctx.deny(action, target_type="Peacebuilder", target_id=pb_id,
                 reason="only she or her network")
        raise Forbidden()


def _admit(ctx: AccessContext, act: Act, who: Standing, pb_id: uuid.UUID) -> None:
    """Before anything else: a machine never records consent, and anyone but she herself
    needs a recent second factor (both refusals logged)."""
    if who.caller is Caller.MACHINE:
        _decide(ctx, act, who, rules.Facts(), pb_id)
    require_step_up(ctx, who, f"consent.{act.value}", pb_id)


def _decide(ctx: AccessContext, act: Act, who: Standing, facts: rules.Facts,
            pb_id: uuid.UUID) -> Result:
    """The rules' answer; a refusal is logged (with her ID, never values) and raised."""
    if who.caller is None:  # the system itself (expiry, operators' maintenance)
        return Result.LIVE
    decision = rules.decide(act, who.caller, facts)
    if decision.refused:
        ctx.deny(f"consent.{act.value}", target_type="Peacebuilder", target_id=pb_id,
                 reason=f"consent rules: {who.caller.value} may not {act.value} this")
        raise BadInput(decision.message, field=decision.field)
    return decision.result


async def _tell_her(ctx: AccessContext, who: Standing, pb_id: uuid.UUID, grant_id: uuid.UUID,
                    kind: NoticeKind) -> None:
    """She is never the last to know: consent recorded by someone else is a notice to her."""
    if who.herself:
        return
    await tell_her(ctx, pb_id, kind, subject_id=grant_id,
                   codes={"by": ctx.principal.subject, "acting_for_her": who.acting_for_her})


async def _tell_her_networks(ctx: AccessContext, pb_id: uuid.UUID, kind: str,
                             payload: dict[str, str]) -> None:
    """Her networks' focal points are told too (IDs only), so she has someone on her side."""
    networks = (await networks_of(ctx.session, [pb_id]))[pb_id]
    recipients = [(s, org) for org in networks for s in await notify.focal_points(ctx.session, org)
                  if s != ctx.principal.subject]
    if recipients:
        await notify.notify(ctx, recipients, kind=kind, subject_id=pb_id, case_id=None,
                            at=ctx.clock.now(), payload=payload)


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


def _method(who: Standing, obtained_via: str | None) -> str:
    if who.herself:
        return ObtainedVia.SELF_SERVICE.value
    if who.acting_for_her:
        return ObtainedVia.NETWORK_FOCAL_POINT.value
    try:
        method = ObtainedVia(obtained_via or "")
    except ValueError as exc:
        raise BadInput("Say how her consent was obtained.", field="obtainedVia") from exc
    if method not in STAFF_METHODS:
        raise BadInput("Staff record consent obtained in person, in writing or verbally with a "
                       "witness.", field="obtainedVia")
    return method.value


def _evidence(evidence: Evidence | None) -> Evidence | None:
    if evidence is None:
        return None
    if evidence.kind not in EVIDENCE_KINDS:
        raise BadInput("Evidence is a signed form, a recording or a witness statement.",
                       field="evidence.kind")
    reference = evidence.reference.strip()
    if not reference or len(reference) > 500:
        raise BadInput("Give the evidence's reference (at most 500 characters): where the form "
                       "or recording is kept.", field="evidence.reference")
    return Evidence(evidence.kind, reference)


async def _facts(ctx: AccessContext, who: Standing, recipient_type: str,
                 recipient_id: uuid.UUID, categories: frozenset[str] | list[str],
                 purposes: frozenset[str] | list[str], pb: Peacebuilder,
                 evidence: bool = False) -> rules.Facts:
    own = recipient_type == "organisation" and recipient_id == ctx.org_id
    itself = own
    if who.acting_for_her and recipient_type == "working_group":
        # A group the network belongs to is the network too: it would read what it grants.
        members = (await orgs_repo.current_members(ctx.session, [recipient_id]))[recipient_id]
        itself = ctx.org_id in members
    return rules.Facts(to_own_organisation=own, to_the_network_itself=itself,
                       protected=rules.protected(categories, purposes),
                       she_has_login=pb.has_login, evidence=evidence,
                       counting_only=set(purposes) == {Purpose.AGGREGATE_REPORTING.value})


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
    evidence: Evidence | None = None,
    intake: bool = False,
) -> ConsentGrant:
    """Record a grant: in force at once when she (or her network) records it; otherwise pending
    until confirmed (rules.py). `intake` is her consent recorded as her file is opened: the
    caller already decided it may (peacebuilders.record_intake)."""
    if ctx.principal.duress_of is not None:
        return _duress_no_op(ctx, peacebuilder_id, recipient_type, recipient_id, categories,
                             purposes, valid_from, valid_until)
    who = (Standing(_staff_caller(ctx)) if intake
           else await standing(ctx, peacebuilder_id, action="consent.grant"))
    act = Act.INTAKE if intake else Act.GRANT
    _admit(ctx, act, who, peacebuilder_id)
    pb = await _peacebuilder(ctx, peacebuilder_id)
    now = ctx.clock.now()
    terms = Terms(parse_categories(categories), parse_purposes(purposes), valid_from or now,
                  valid_until)
    if terms.valid_until is not None and terms.valid_until <= terms.valid_from:
        raise BadInput("validUntil must be after validFrom.", field="validUntil")
    if note is not None and len(note) > 2000:
        raise BadInput("Note is limited to 2000 characters.", field="note")
    proof = _evidence(evidence)
    result = _decide(ctx, act, who, await _facts(ctx, who, recipient_type, recipient_id,
                                           terms.categories, terms.purposes, pb,
                                           proof is not None), peacebuilder_id)
    covered = await _covered(ctx, recipient_type, recipient_id)
    counting_only = terms.purposes == {Purpose.AGGREGATE_REPORTING.value}
    if (recipient_type == "working_group" and who.caller is not Caller.HERSELF
            and not counting_only):  # counts widen no one's knowledge of her
        # Widening who knows on someone else's initiative: a current joint risk assessment of
        # her open cases first (guidance 7). She herself is never stopped from sharing.
        from app.access import risk_gates

        await risk_gates.require_for_peacebuilder(ctx, peacebuilder_id, "working_group_grant",
                                                  field="recipientWorkingGroupId")
    if not intake:  # only once the rules let this caller record it: no hint of other grants
        await _refuse_duplicate(ctx, peacebuilder_id, recipient_type, recipient_id, terms, now)
    awaiting = None if result is Result.LIVE else result.value
    # In the days after a code set her password, what her login widens waits for her network
    # (or a second factor she enrolled before): whoever issued the code could be signed in.
    hold = who.herself and awaiting is None and await _held(ctx)
    if hold:
        awaiting = HELD
    event = ConsentEvent(
        grant_id=uuid.uuid4(), peacebuilder_id=peacebuilder_id, kind="grant",
        recipient_type=recipient_type, recipient_id=recipient_id,
        categories=sorted(terms.categories), purposes=sorted(terms.purposes),
        valid_from=terms.valid_from, valid_until=terms.valid_until, covered_org_ids=covered,
        obtained_via=_method(who, obtained_via), recorded_by=ctx.principal.subject,
        recorded_by_org_id=ctx.principal.org_id, acting_for_her=who.acting_for_her, note=note,
        awaiting=awaiting, at=now)
    state = await _append(ctx, event)
    ctx.record("consent.grant", target_type="ConsentGrant", target_id=state.id,
               details=_audit_terms(event))
    if result is Result.AWAITS_SECOND_PERSON:
        assert proof is not None
        await _ask_second_person(ctx, state, proof)
    if hold:
        await _alert_held(ctx, peacebuilder_id, state.id)
    if awaiting is not None:
        await tell_her(ctx, peacebuilder_id, NoticeKind.CONSENT_AWAITS_CONFIRMATION,
                       subject_id=state.id,
                       codes={"by": ctx.principal.subject, "awaiting": awaiting})
    else:
        await _tell_her(ctx, who, peacebuilder_id, state.id, NoticeKind.CONSENT_GRANTED_BY_OTHERS)
    return state


HELD = "reset_hold"  # awaiting: her network's confirmation, after a code reset her password


def _duress_no_op(ctx: AccessContext, pb_id: uuid.UUID, recipient_type: str,
                  recipient_id: uuid.UUID, categories: list[str], purposes: list[str],
                  valid_from: datetime | None, valid_until: datetime | None) -> ConsentGrant:
    """A grant asked for in a duress session: nothing is recorded or released; the answer looks
    like a grant waiting for confirmation. Logged as duress (auditors see it, she does not)."""
    now = ctx.clock.now()
    ctx.record("consent.grant.duress", target_type="Peacebuilder", target_id=ctx.principal.duress_of,
               decision="deny", reason="duress session: nothing recorded")
    return ConsentGrant(id=uuid.uuid4(), peacebuilder_id=pb_id, recipient_type=recipient_type,
                        recipient_id=recipient_id, categories=sorted(set(categories)),
                        purposes=sorted(set(purposes)), valid_from=valid_from or now,
                        valid_until=valid_until, covered_org_ids=[],
                        obtained_via=ObtainedVia.SELF_SERVICE.value, covered_at=now,
                        revoked_at=None, created_at=now, updated_at=now, confirmed_at=None,
                        awaiting=Result.AWAITS_SECOND_PERSON.value)


async def _refuse_duplicate(ctx: AccessContext, pb_id: uuid.UUID, recipient_type: str,
                            recipient_id: uuid.UUID, terms: Terms, now: datetime) -> None:
    """A second grant with the same recipient, categories and purposes while one is in force
    would make revoking one leave the access in place: refused, pointing to the one to change
    instead. (Pending ones release nothing; several may wait for her or a second person.)"""
    for g in await repo.grants_of(ctx.session, pb_id):
        if (g.revoked_at is None and g.confirmed_at is not None
                and (g.valid_until is None or g.valid_until > now)
                and g.recipient_type == recipient_type and g.recipient_id == recipient_id
                and frozenset(g.categories) == terms.categories
                and frozenset(g.purposes) == terms.purposes):
            raise Conflict("A grant with these categories and purposes for this recipient is "
                           "already in force: extend, narrow or revoke that one instead of "
                           "recording a second.")


async def _ask_second_person(ctx: AccessContext, state: ConsentGrant, proof: Evidence) -> None:
    assert ctx.org_id is not None
    confirmation = Confirmation(id=new_id(), org_id=ctx.org_id, peacebuilder_id=state.peacebuilder_id)
    sealed = await sealing.seal(ctx, sealing.confirmation_ref(confirmation, "evidence"),
                                proof.reference, input_field="evidence")
    await confirmations.request(
        ctx, action=CONFIRM_GRANT, target_id=state.id, peacebuilder_id=state.peacebuilder_id,
        any_staff_may_ask=True, confirmation_id=confirmation.id, evidence_kind=proof.kind,
        evidence=sealed)


async def _grant_or_not_found(ctx: AccessContext, grant_id: uuid.UUID,
                              action: str, *, lock: bool = False) -> ConsentGrant:
    """The grant, or NOT_FOUND — logged, with her ID when there is one. `lock`: for a change,
    locked until the transaction ends, so concurrent changes apply one after the other and a
    change that arrives after a revoke sees it (CONFLICT)."""
    current = await (repo.lock_grant if lock else repo.grant)(ctx.session, grant_id)
    if current is None:
        her = await ctx.whose(select(ConsentGrant.peacebuilder_id).where(
            ConsentGrant.id == grant_id))
        ctx.deny(action, target_type="Peacebuilder" if her else "ConsentGrant",
                 target_id=her or grant_id, reason="no such grant within reach",
                 details={"grant": str(grant_id)})
        raise NotFound()
    return current


async def confirm(ctx: AccessContext, grant_id: uuid.UUID) -> ConsentGrant:
    """She (or her network, acting for her) brings a pending grant into force."""
    current = await _grant_or_not_found(ctx, grant_id, "consent.confirm", lock=True)
    who = await standing(ctx, current.peacebuilder_id, action="consent.confirm")
    _seen_or_not_found(ctx, who, current, "consent.confirm")
    _admit(ctx, Act.CONFIRM, who, current.peacebuilder_id)
    if who.caller is Caller.STAFF:
        ctx.deny("consent.confirm", target_type="Peacebuilder", target_id=current.peacebuilder_id,
                 reason="staff confirm as the second person only")
        raise BadInput("Staff confirm a grant as the second person (confirmTwoPerson), never "
                       "through this mutation.")
    pb = await _peacebuilder(ctx, current.peacebuilder_id)
    _decide(ctx, Act.CONFIRM, who, await _facts(ctx, who, current.recipient_type, current.recipient_id,
                                          current.categories, current.purposes, pb),
            current.peacebuilder_id)
    if who.herself and current.revoked_at is None and current.confirmed_at is None \
            and await _held(ctx):
        # Held after a reset: it stays pending until her network (or an earlier factor) confirms.
        await _alert_held(ctx, current.peacebuilder_id, current.id)
        return current
    state = await _confirm(ctx, who, current)
    pending = await confirmations.pending_of(ctx, action=CONFIRM_GRANT, target_id=current.id)
    if pending is not None:  # she decided herself: the second person's check is not needed
        await confirmations.end(ctx, pending, ConfirmationStatus.CANCELLED)
    return state


async def _confirm(ctx: AccessContext, who: Standing, current: ConsentGrant) -> ConsentGrant:
    if current.revoked_at is not None:
        raise Conflict("This grant was revoked or withdrawn; record a new one.")
    if current.confirmed_at is not None:
        raise Conflict("This grant is already in force.")
    event = _next_event(ctx, current, "confirm", who)
    state = await _append(ctx, event)
    ctx.record("consent.confirm", target_type="ConsentGrant", target_id=state.id,
               details=_audit_terms(event))
    await _tell_her(ctx, who, current.peacebuilder_id, state.id,
                    NoticeKind.CONSENT_CONFIRMED_BY_OTHERS)
    await _tell_her_networks(ctx, current.peacebuilder_id, "consent_confirmed",
                             {"grant": str(state.id), "peacebuilder": str(state.peacebuilder_id)})
    return state


@confirmations.on_confirmed(CONFIRM_GRANT)
async def _second_person_confirmed(ctx: AccessContext, c: Confirmation) -> None:
    """Two people of the recipient confirmed, against the evidence, a grant she gave it."""
    assert c.peacebuilder_id is not None
    await ctx.reach([c.peacebuilder_id])  # decided: this transaction now writes her consent
    current = await repo.lock_grant(ctx.session, c.target_id)
    if current is None:
        raise NotFound()
    pb = await _peacebuilder(ctx, current.peacebuilder_id)
    who = Standing(Caller.STAFF)
    _decide(ctx, Act.CONFIRM, who,
            await _facts(ctx, who, current.recipient_type, current.recipient_id, current.categories,
                   current.purposes, pb, c.evidence is not None),
            current.peacebuilder_id)
    await _confirm(ctx, who, current)


@confirmations.on_lapsed(CONFIRM_GRANT)
async def _second_person_missing(ctx: AccessContext, c: Confirmation) -> None:
    """Declined, or nobody confirmed in time: the pending grant is withdrawn."""
    assert c.peacebuilder_id is not None
    await ctx.reach([c.peacebuilder_id])
    current = await repo.lock_grant(ctx.session, c.target_id)
    if current is None or current.revoked_at is not None or current.confirmed_at is not None:
        return
    event = _next_event(ctx, current, "revoke", SYSTEM_STANDING)
    await _append(ctx, event)
    ctx.record("consent.withdraw", target_type="ConsentGrant", target_id=current.id,
               details={**_audit_terms(event), "confirmation": c.status})


def _next_event(ctx: AccessContext, current: ConsentGrant, kind: str, who: Standing,
                **changes: Any) -> ConsentEvent:
    """The grant's next event: its current terms, with `changes`."""
    terms: dict[str, Any] = {
        "categories": sorted(current.categories), "purposes": sorted(current.purposes),
        "valid_from": current.valid_from, "valid_until": current.valid_until,
        "covered_org_ids": list(current.covered_org_ids), "obtained_via": current.obtained_via,
        "note": None, **changes}
    return ConsentEvent(
        grant_id=current.id, peacebuilder_id=current.peacebuilder_id, kind=kind,
        recipient_type=current.recipient_type, recipient_id=current.recipient_id,
        recorded_by=ctx.principal.subject, recorded_by_org_id=ctx.principal.org_id,
        acting_for_her=who.acting_for_her, awaiting=None, at=ctx.clock.now(), **terms)


# What other domains do once her consent releases less (narrowed, revoked, expired): e.g. flag
# open tasks whose owner can no longer see them. Registered by those domains (this module never
# imports them), run in the same transaction as the change.
Narrowed = Callable[[AccessContext, uuid.UUID], Awaitable[None]]
_NARROWED: list[Narrowed] = []


def on_narrowed(fn: Narrowed) -> Narrowed:
    _NARROWED.append(fn)
    return fn


async def _after_narrowing(ctx: AccessContext, pb_id: uuid.UUID) -> None:
    for fn in _NARROWED:
        await fn(ctx, pb_id)


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
    """Narrow (only ever less), extend (more, or longer; refreshes a group's members) or revoke
    (of a pending grant: withdraw it)."""
    try:
        act = {"narrow": Act.NARROW, "extend": Act.EXTEND, "revoke": Act.REVOKE}[kind]
    except KeyError as exc:
        raise BadInput("Unknown change.", field="kind") from exc
    current = await _grant_or_not_found(ctx, grant_id, f"consent.{kind}", lock=True)
    who = await standing(ctx, current.peacebuilder_id, action=f"consent.{kind}")
    _seen_or_not_found(ctx, who, current, f"consent.{kind}")
    _admit(ctx, act, who, current.peacebuilder_id)
    if current.revoked_at is not None:
        raise Conflict("This grant was revoked; record a new grant instead.")
    cats, purps = frozenset(current.categories), frozenset(current.purposes)
    until, covered = current.valid_until, list(current.covered_org_ids)
    method = current.obtained_via
    if act is Act.NARROW:
        cats -= frozenset(categories or [])
        purps -= frozenset(purposes or [])
        if valid_until is not None:
            if current.valid_until is not None and valid_until > current.valid_until:
                raise BadInput("Narrowing cannot lengthen a grant; extend it.", field="validUntil")
            until = valid_until
        if not cats or not purps:
            raise BadInput("Narrowing would leave nothing; revoke the grant instead.",
                           field="categories" if not cats else "purposes")
    elif act is Act.EXTEND:
        if who.herself and await _held(ctx):
            ctx.deny("consent.extend", target_type="Peacebuilder",
                     target_id=current.peacebuilder_id, reason="held after a code reset")
            raise BadInput("For a few days after a code set your password, widening consent "
                           "waits for your network: record a new grant (your network confirms "
                           "it), or sign in with the second factor you enrolled before.")
        cats |= parse_categories(categories) if categories else frozenset()
        purps |= parse_purposes(purposes) if purposes else frozenset()
        if valid_until is not None:
            until = valid_until
    pb = await _peacebuilder(ctx, current.peacebuilder_id)
    _decide(ctx, act, who, await _facts(ctx, who, current.recipient_type, current.recipient_id, cats,
                                  purps, pb), current.peacebuilder_id)
    if act is Act.EXTEND:
        # Only she (or her network for her) extends, so a group grant covers its members now.
        covered = await _covered(ctx, current.recipient_type, current.recipient_id)
        method = _method(who, obtained_via)
    if until is not None and until <= current.valid_from:
        raise BadInput("validUntil must be after validFrom.", field="validUntil")
    event = _next_event(ctx, current, kind, who, categories=sorted(cats), purposes=sorted(purps),
                        valid_until=until, covered_org_ids=covered, obtained_via=method,
                        note=note)
    state = await _append(ctx, event)
    if act is Act.EXTEND:
        await _tell_her(ctx, who, current.peacebuilder_id, state.id,
                        NoticeKind.CONSENT_EXTENDED_BY_OTHERS)
    ctx.record(f"consent.{kind}", target_type="ConsentGrant", target_id=state.id,
               details=_audit_terms(event))
    if act is Act.REVOKE and current.confirmed_at is None:
        pending = await confirmations.pending_of(ctx, action=CONFIRM_GRANT, target_id=current.id)
        if pending is not None:  # withdrawn: nothing is left to confirm
            await confirmations.end(ctx, pending, ConfirmationStatus.CANCELLED)
    if act in (Act.NARROW, Act.REVOKE):
        await _after_narrowing(ctx, current.peacebuilder_id)
    return state


async def revoke_all(ctx: AccessContext, pb_id: uuid.UUID) -> list[ConsentGrant]:
    """Revoke every grant of hers in one step, pending ones too (she, or her network for her)."""
    who = await standing(ctx, pb_id, action="consent.revoke_all")
    _admit(ctx, Act.REVOKE_ALL, who, pb_id)
    _decide(ctx, Act.REVOKE_ALL, who, rules.Facts(), pb_id)
    revoked = []
    for g in await repo.grants_of(ctx.session, pb_id):
        if g.revoked_at is None:
            revoked.append(await change(ctx, g.id, "revoke"))
    return revoked


async def expire_due(ctx: AccessContext) -> int:
    """Append an `expire` event to grants whose validity ended (access already ended then)."""
    now = ctx.clock.now()
    due = await repo.ended_unrevoked(ctx.session, now)
    expired = 0
    for due_grant in due:
        g = await repo.lock_grant(ctx.session, due_grant.id)  # revoked meanwhile: nothing to do
        if g is None or g.revoked_at is not None:
            continue
        event = _next_event(ctx, g, "expire", SYSTEM_STANDING)
        event.recorded_by_org_id = None
        await _append(ctx, event)
        ctx.record("consent.expire", target_type="ConsentGrant", target_id=g.id)
        await _after_narrowing(ctx, g.peacebuilder_id)
        expired += 1
    return expired


def replay(events: list[ConsentEvent]) -> dict[str, Any]:
    """The current state of one grant, from its events alone."""
    if not events or events[0].kind != "grant":
        raise ValueError("a grant's history starts with a grant event")
    first, last = events[0], events[-1]
    if first.awaiting is None:
        confirmed_at: datetime | None = first.at
    else:
        confirmed_at = next((e.at for e in events if e.kind == "confirm"), None)
    return {
        "id": first.grant_id, "peacebuilder_id": first.peacebuilder_id,
        "recipient_type": first.recipient_type, "recipient_id": first.recipient_id,
        "categories": list(last.categories), "purposes": list(last.purposes),
        "valid_from": last.valid_from, "valid_until": last.valid_until,
        "covered_org_ids": list(last.covered_org_ids), "obtained_via": last.obtained_via,
        "covered_at": [e.at for e in events if e.kind in ("grant", "extend")][-1],
        "revoked_at": next((e.at for e in events if e.kind in ("revoke", "expire")), None),
        "created_at": first.at, "updated_at": last.at,
        "confirmed_at": confirmed_at,
        "awaiting": first.awaiting if confirmed_at is None else None,
    }


async def _append(ctx: AccessContext, event: ConsentEvent) -> ConsentGrant:
    """Store the event and bring the projection (grant row + access rows) up to date. Only a
    grant in force (confirmed, not revoked) has access rows: nothing else releases anything."""
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
    # In force from now, or its end moved: she is warned before it ends (scheduled).
    ends_anew = current is None or current.confirmed_at is None or (
        state.get("valid_until") != current.valid_until)
    if current is None:
        current = ConsentGrant(**state)
        ctx.session.add(current)
    else:
        for key, value in state.items():
            setattr(current, key, value)
    await ctx.session.flush()
    rows: list[ConsentAccess] = []
    if current.revoked_at is None and current.confirmed_at is not None:
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
    if ends_anew:
        await watch_grant(ctx.session, current, ctx.clock.now())
    await ctx.session.flush()
    return current


def _audit_terms(event: ConsentEvent) -> dict[str, Any]:
    return {"peacebuilder": str(event.peacebuilder_id), "recipient_type": event.recipient_type,
            "recipient": str(event.recipient_id), "categories": event.categories,
            "purposes": event.purposes, "acting_for_her": event.acting_for_her,
            "obtained_via": event.obtained_via}


def _seen_or_not_found(ctx: AccessContext, who: Standing, g: ConsentGrant, action: str) -> None:
    """A grant not naming the caller's organisation is none of its business (logged)."""
    if not _may_see_grant(ctx, who, g):
        ctx.deny(action, target_type="Peacebuilder", target_id=g.peacebuilder_id,
                 reason="a grant to another recipient")
        raise NotFound()


def _may_see_grant(ctx: AccessContext, who: Standing, g: ConsentGrant) -> bool:
    """She and her network see all her grants; an organisation only those naming it (directly
    or through a group it was covered in), never her grants to others."""
    if who.caller in (None, Caller.HERSELF, Caller.NETWORK):
        return True
    if g.recipient_type == "organisation":
        return g.recipient_id == ctx.org_id
    return str(ctx.org_id) in g.covered_org_ids


async def grants_for(ctx: AccessContext, pb_id: uuid.UUID) -> list[ConsentGrant]:
    """Her grants, live and ended: all of them for her and her network's focal points; for an
    organisation with standing, the grants naming it."""
    who = await standing(ctx, pb_id, action="consent.grants_read")
    return [g for g in await repo.grants_of(ctx.session, pb_id) if _may_see_grant(ctx, who, g)]


async def _grant_seen(ctx: AccessContext, grant_id: uuid.UUID) -> ConsentGrant:
    current = await _grant_or_not_found(ctx, grant_id, "consent.grant_read")
    who = await standing(ctx, current.peacebuilder_id, action="consent.grant_read")
    _seen_or_not_found(ctx, who, current, "consent.grant_read")
    return current


async def events_for(ctx: AccessContext, grant_id: uuid.UUID) -> list[ConsentEvent]:
    if ctx.principal.duress_of is not None:
        return []  # a duress session's no-op grant has no history (nor has anything it sees)
    current = await _grant_seen(ctx, grant_id)
    return await repo.events_of(ctx.session, current.id)


@orgs_service.on_member_joined
async def notify_new_member(ctx: AccessContext, wg_id: uuid.UUID, org_id: uuid.UUID) -> None:
    """Tell each woman with a live grant to the group that it has a new member (not covered).
    The convener's admin may hold no consent of hers: which grants name the group is read in the
    system scope (IDs only, never returned), and her notices are written with the tenancy
    widened to those women for that write only."""
    live = await _system_rows(ctx, select(ConsentGrant.id, ConsentGrant.peacebuilder_id).where(
        ConsentGrant.recipient_type == "working_group", ConsentGrant.recipient_id == wg_id,
        ConsentGrant.revoked_at.is_(None)).order_by(ConsentGrant.id))
    if not live:
        return
    async with ctx.peek({pb for _, pb in live}):
        for grant_id, pb_id in live:
            await tell_her(ctx, pb_id, NoticeKind.WORKING_GROUP_NEW_MEMBER, subject_id=grant_id,
                           codes={"working_group": wg_id, "organisation": org_id})


async def _system_rows(ctx: AccessContext, statement: Any) -> list[Any]:
    if ctx.db.dialect != "postgresql":
        return list(await ctx.session.execute(statement))
    with tenancy.using(tenancy.SYSTEM):
        async with ctx.db.transaction() as session:
            return list(await session.execute(statement))


async def receipt(ctx: AccessContext, grant_id: uuid.UUID, language: str | None) -> str:
    """Her consent receipt, in her preferred language unless another is asked for."""
    from app.consent.receipt import render

    current = await _grant_seen(ctx, grant_id)
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


async def grant_awaiting(ctx: AccessContext, c: Confirmation) -> ConsentGrant | None:
    """The grant a two-person request of the caller's organisation is about: the second person
    reads its terms to decide (her data stays closed: terms are categories and purposes)."""
    if c.action != CONFIRM_GRANT or c.org_id != ctx.org_id or c.peacebuilder_id is None:
        return None
    async with ctx.peek([c.peacebuilder_id]):
        return await repo.grant(ctx.session, c.target_id)


async def grant_seen(ctx: AccessContext, grant_id: uuid.UUID) -> ConsentGrant:
    """One grant (`node(id:)`), to whoever may see it in `consentGrants`; else not found."""
    return await _grant_seen(ctx, grant_id)
