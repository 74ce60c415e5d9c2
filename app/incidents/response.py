"""The response: measures and tasks, her approvals for public acts, referrals, proceedings."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.access import risk_gates
from app.access.context import AccessContext
from app.access.visibility import live_clause
from app.cases import service as cases
from app.consent.service import on_narrowed, require_self_or_network, standing
from app.db import new_id
from app.directory import service as directory
from app.errors import BadInput, Conflict, NotFound
from app.escalation import service as escalation
from app.her import sealing
from app.her.notices import MeasureNotDoneReason, NoticeKind, tell_her
from app.incidents.service import event
from app.notify import service as notify
from app.orgs import repository as orgs_repo
from app.peacebuilders import account as her_account
from app.tables.cases import Case
from app.tables.categories import PROCEEDING_CATEGORY, RESPONSE_CATEGORY, Purpose
from app.tables.consent import ConsentAccess
from app.tables.incidents import (
    Approval,
    CaseEvent,
    Incident,
    Measure,
    MeasureKind,
    MeasureStatus,
    Proceeding,
    ProceedingKind,
    PublicAct,
    Referral,
    ReferralAction,
    ScheduledStep,
)

PUBLIC_ACTS = {a.value for a in PublicAct}
# Invariant 6: a measure of one of these kinds is her public act; it needs her live approval of
# that act (the measure kind is the act's name), when it is planned and when it is carried out.
PUBLIC_MEASURES = {MeasureKind.PUBLIC_STATEMENT.value, MeasureKind.MEDIA_CONTACT.value,
                   MeasureKind.RECOGNITION.value}
REMIND_BEFORE = timedelta(hours=24)

# What a dated next hearing starts: justice schedules the hearing so it is reminded and its
# outcome owed (app/justice/service.py registers it; decision 0035: incidents never import the
# domains built on them).
HearingScheduler = Callable[[AccessContext, Proceeding, datetime], Awaitable[None]]
_NEXT_HEARING: list[HearingScheduler] = []


def on_next_hearing(fn: HearingScheduler) -> HearingScheduler:
    """Register what follows `recordProceeding(nextHearingAt:)`."""
    _NEXT_HEARING.append(fn)
    return fn


async def record_approval(ctx: AccessContext, pb_id: uuid.UUID, act: str, description: str,
                          org_id: uuid.UUID) -> Approval:
    """She approves one public act by one organisation (or her network's focal point records
    it, acting for her): only that organisation can use it, once, for that act."""
    who = await standing(ctx, pb_id, action="approval.record")
    require_self_or_network(ctx, who, "approval.record", pb_id)
    if who.herself and await her_account.held(ctx):
        # A public act exposes her more than any grant: in the days after a code set her
        # password (whoever issued it could be signed in as her), only her network records it.
        ctx.deny("approval.record", target_type="Peacebuilder", target_id=pb_id,
                 reason="held after a code reset")
        raise BadInput("For a few days after a code set your password, approving a public act "
                       "waits for your network: ask your network's focal point to record it, "
                       "or sign in with the second factor you enrolled before.", field="act")
    if act not in PUBLIC_ACTS:
        raise BadInput("Act is public_statement, media_contact or recognition.", field="act")
    if org_id not in await orgs_repo.orgs_by_ids(ctx.session, [org_id]):
        raise BadInput("No such organisation.", field="organisationId")
    if not description.strip() or len(description) > 5000:
        raise BadInput("Describe the act she approves (at most 5000 characters).",
                       field="description")
    approval = Approval(id=new_id(), peacebuilder_id=pb_id, act=act, org_id=org_id,
                        recorded_by=ctx.principal.subject, acting_for_her=who.acting_for_her,
                        approved_at=ctx.clock.now())
    sealed = await sealing.seal(ctx, sealing.approval_ref(approval), description.strip())
    assert sealed is not None
    approval.description = sealed
    ctx.session.add(approval)
    await ctx.session.flush()
    ctx.record("approval.record", target_type="Peacebuilder", target_id=pb_id,
               details={"approval": str(approval.id), "act": act,
                        "organisation": str(org_id), "acting_for_her": who.acting_for_her})
    return approval


async def add_measure(
    ctx: AccessContext,
    *,
    case_id: uuid.UUID,
    kind: str,
    owner_org_id: uuid.UUID | None,
    due_at: datetime | None,
    description: str | None,
    incident_id: uuid.UUID | None = None,
    approval_id: uuid.UUID | None = None,
    owner_user_id: uuid.UUID | None = None,
) -> Measure:
    await ctx.require("measure", "manage")
    case = await cases.get(ctx, case_id)
    if kind not in {k.value for k in MeasureKind}:
        raise BadInput("Unknown measure.", field="kind")
    owner = owner_org_id or ctx.org_id
    assert owner is not None
    if incident_id is not None:
        incident = await ctx.session.get(Incident, incident_id)
        if incident is None or incident.case_id != case.id:
            raise NotFound()
    if owner not in await orgs_repo.orgs_by_ids(ctx.session, [owner]):
        raise BadInput("No such organisation.", field="ownerOrganisationId")
    await require_owner_covered(ctx, case.id, case.peacebuilder_id, owner)
    if owner_user_id is not None:
        await check_owner_person(ctx, owner, owner_user_id)
    if description and RESPONSE_CATEGORY.value not in (await ctx.released([case.peacebuilder_id])
                                                         ).get(case.peacebuilder_id, ()):
        raise BadInput("Her consent does not let you record details for this purpose.",
                       field="description")
    if kind in PUBLIC_MEASURES:
        approval = await ctx.session.get(Approval, approval_id) if approval_id else None
        if (approval is None or approval.peacebuilder_id != case.peacebuilder_id
                or approval.used_by is not None):
            ctx.deny(f"measure.{kind}", target_type="Case", target_id=case.id,
                     reason="no approval of hers for this act, or one bound to another measure")
            raise BadInput(f"A {kind.replace('_', ' ')} needs her recorded approval for it.",
                           field="approvalId")
        if not await _live_approval(ctx, approval, kind, case.id):
            raise BadInput(f"A {kind.replace('_', ' ')} needs her recorded approval for it.",
                           field="approvalId")
        # Before making the relationship public: a current joint risk assessment too
        # (guidance 7), whatever she approved.
        await risk_gates.require_current(ctx, case, "public_act", field="kind")
    measure = Measure(id=new_id(), case_id=case.id, incident_id=incident_id, kind=kind,
                      owner_org_id=owner, owner_user_id=owner_user_id, due_at=due_at,
                      status="planned",
                      approval_id=approval_id if kind in PUBLIC_MEASURES else None,
                      created_by=ctx.principal.subject, created_at=ctx.clock.now())
    measure.description = await sealing.seal(
        ctx, sealing.measure_ref(measure, case.peacebuilder_id), description)
    ctx.session.add(measure)
    await ctx.session.flush()
    if kind in PUBLIC_MEASURES and approval_id:
        approval = await ctx.session.get(Approval, approval_id)
        assert approval is not None
        approval.used_by = measure.id  # bound: no other measure uses it; used once done
    if due_at is not None:
        ctx.session.add(ScheduledStep(kind="task_reminder", subject_id=measure.id, step=1,
                                      due_at=max(due_at - REMIND_BEFORE, ctx.clock.now())))
        # Still open when it falls due: it escalates along its owner's chain.
        escalation.start(ctx.session, TASK_OVERDUE, measure.id, due_at)
    event(ctx, case.id, "measure.added", measure.id, {"kind": kind, "owner": str(owner),
                                                       "named_owner": owner_user_id is not None})
    ctx.record("measure.add", target_type="Case", target_id=case.id,
               details={"measure": str(measure.id), "kind": kind,
                        **({"owner_person": str(owner_user_id)} if owner_user_id else {})})
    return measure


# Roles of a person who can own a task (act on it and be reminded and escalated to).
OWNER_ROLES = frozenset({"focal_point", "caseworker", "org_admin"})
NO_SUCH_OWNER = ("Name an active person of the owner organisation who can act on tasks (a "
                 "focal point, case worker or administrator). Only the owner organisation names "
                 "its own people.")


async def check_owner_person(ctx: AccessContext, owner: uuid.UUID, user_id: uuid.UUID) -> None:
    """The named owner is an active person of the owner organisation who can act. Only that
    organisation names its people: one refusal for every other case, so nothing is learnt
    about another organisation's people (whether an ID exists, is active, or what it holds)."""
    ok = False
    if owner == ctx.org_id:
        user = await orgs_repo.user_in_scope(ctx.session, ctx.own_scope(), user_id)
        ok = (user is not None and user.active
              and bool(await orgs_repo.roles_of(ctx.session, owner, user.subject) & OWNER_ROLES))
    if not ok:
        ctx.deny("measure.owner_person", target_type="User", target_id=user_id,
                 reason="not an active person of the owner organisation who can act")
        raise BadInput(NO_SUCH_OWNER, field="ownerUserId")


async def assign_measure(ctx: AccessContext, measure_id: uuid.UUID,
                         owner_user_id: uuid.UUID | None) -> Measure:
    """The owner organisation names (or clears) the person who owns an open task: her reminders
    and the overdue escalation start with her, then its chain."""
    await ctx.require("measure", "manage")
    measure = await ctx.session.get(Measure, measure_id)
    if measure is None:
        raise NotFound()
    await cases.get(ctx, measure.case_id)
    if measure.owner_org_id != ctx.org_id:
        raise NotFound()
    if measure.status not in OPEN_TASK:
        raise Conflict(f"The task is {measure.status}.")
    if owner_user_id is not None:
        await check_owner_person(ctx, measure.owner_org_id, owner_user_id)
    measure.owner_user_id = owner_user_id
    event(ctx, measure.case_id, "measure.owner_named", measure.id,
          {"named_owner": owner_user_id is not None})
    ctx.record("measure.assign", target_type="Case", target_id=measure.case_id,
               details={"measure": str(measure.id),
                        "owner_person": str(owner_user_id) if owner_user_id else None})
    return measure


@dataclass(frozen=True, slots=True)
class OwnerPerson:
    """A task's named owner as the caller may see her: her ID to the owner and the lead
    organisation, her display name only to her own organisation."""

    user_id: uuid.UUID
    display_name: str | None


async def owner_person(ctx: AccessContext, measure: Measure) -> OwnerPerson | None:
    """Who owns a task the caller reads (None: no one named, or not the caller's to know)."""
    if measure.owner_user_id is None or ctx.org_id is None:
        return None
    if ctx.org_id == measure.owner_org_id:
        user = await orgs_repo.user_in_scope(ctx.session, ctx.own_scope(), measure.owner_user_id)
        return OwnerPerson(measure.owner_user_id, user.display_name if user else None)
    lead = await ctx.session.scalar(select(Case.lead_org_id).where(Case.id == measure.case_id))
    return OwnerPerson(measure.owner_user_id, None) if lead == ctx.org_id else None


async def set_measure_status(ctx: AccessContext, measure_id: uuid.UUID, status: str,
                             reason: str | None = None) -> Measure:
    """The owner moves a measure on: planned -> in progress -> done, or not done (cancelled,
    with a reason code kept on it); done and not done are final. She is told either way."""
    await ctx.require("measure", "manage")
    measure = await ctx.session.get(Measure, measure_id)
    if measure is None:
        raise NotFound()
    case = await cases.get(ctx, measure.case_id)
    if measure.owner_org_id != ctx.org_id:
        raise NotFound()
    if status not in {s.value for s in MeasureStatus}:
        raise BadInput("Status is planned, in_progress, done or cancelled.", field="status")
    reasons = ", ".join(r.value for r in MeasureNotDoneReason)
    if reason is not None and (status != "cancelled"
                               or reason not in {r.value for r in MeasureNotDoneReason}):
        raise BadInput(f"A reason goes with status cancelled: one of {reasons}.",
                       field="reason")
    if status == "cancelled" and reason is None:
        raise BadInput(f"Say why it was not done: one of {reasons}.", field="reason")
    if measure.status in FINAL_TASK and status != measure.status:
        raise Conflict(f"The measure is already {measure.status}: add a new one instead.")
    used = None
    if status == "done" and measure.kind in PUBLIC_MEASURES and measure.status != "done":
        # Carried out only while her approval of the act still stands (she may withdraw it
        # until then); it is used from now on, and she is told.
        approval = (await ctx.session.get(Approval, measure.approval_id)
                    if measure.approval_id else None)
        if approval is None or not await _live_approval(ctx, approval, measure.kind,
                                                        measure.case_id):
            raise BadInput(f"Her approval of this {measure.kind.replace('_', ' ')} was "
                           "withdrawn or is missing: it cannot be carried out.", field="status")
        approval.used_at = ctx.clock.now()
        used = approval
    before, measure.status = measure.status, status
    measure.not_done_reason = reason if status == "cancelled" else None
    details = {"status": status, **({"reason": reason} if reason else {})}
    event(ctx, measure.case_id, "measure.status", measure.id, details)
    if used is not None:
        await tell_her(ctx, case.peacebuilder_id, NoticeKind.APPROVAL_USED, case_id=case.id,
                       subject_id=used.id, codes={"act": used.act, "organisation": used.org_id})
    ctx.record("measure.status", target_type="Case", target_id=measure.case_id,
               details={"measure": str(measure.id), **details})
    if status != before and status in ("done", "cancelled"):
        done = status == "done"
        await tell_her(ctx, case.peacebuilder_id,
                       NoticeKind.MEASURE_DONE if done else NoticeKind.MEASURE_NOT_DONE,
                       case_id=case.id, subject_id=measure.id,
                       codes={} if done else {"reason": reason})
    return measure


async def _live_approval(ctx: AccessContext, approval: Approval, act: str,
                         case_id: uuid.UUID) -> bool:
    """The one check of invariant 6: her approval is of this act, names the caller's
    organisation, and is neither withdrawn nor used. A refusal is logged (IDs only)."""
    live = (approval.act == act and approval.org_id == ctx.org_id
            and approval.revoked_at is None and approval.used_at is None)
    if not live:
        ctx.deny(f"measure.{act}", target_type="Case", target_id=case_id,
                 reason="no live approval of hers for this act",
                 details={"approval": str(approval.id)})
    return live


async def my_approvals(ctx: AccessContext) -> list[tuple[Approval, str | None]]:
    """Every approval she gave (or her network recorded for her), with its text opened with
    her key (None if it cannot be read: erased). Herself only."""
    from app.peacebuilders.self_service import my_id

    pb_id = my_id(ctx)
    rows = list(await ctx.session.scalars(select(Approval).where(
        Approval.peacebuilder_id == pb_id).order_by(Approval.approved_at, Approval.id)))
    opened = await sealing.open_many(ctx, [(sealing.approval_ref(a), a.description)
                                           for a in rows])
    ctx.record("approval.list", target_type="Peacebuilder", target_id=pb_id,
               details={"approvals": len(rows)})
    return [(a, o.value) for a, o in zip(rows, opened, strict=True)]


async def withdraw_approval(ctx: AccessContext, approval_id: uuid.UUID) -> Approval:
    """She withdraws an approval not yet used: the act cannot be carried out (a measure bound
    to it can no longer be marked done). The organisation it named is told (IDs only)."""
    from app.peacebuilders.self_service import my_id

    pb_id = my_id(ctx)
    approval = await ctx.session.get(Approval, approval_id)
    if approval is None or approval.peacebuilder_id != pb_id:
        raise NotFound()
    if approval.used_at is not None:
        raise Conflict("This approval was already used: the act was carried out.")
    if approval.revoked_at is None:
        now = ctx.clock.now()
        approval.revoked_at = now
        ctx.record("approval.withdraw", target_type="Peacebuilder", target_id=pb_id,
                   details={"approval": str(approval.id), "act": approval.act,
                            "measure": str(approval.used_by) if approval.used_by else None})
        if approval.org_id is not None:
            payload = {"approval": str(approval.id), "act": approval.act}
            if approval.used_by is not None:
                payload["measure"] = str(approval.used_by)
            await notify.notify(ctx, [(s, approval.org_id) for s in await notify.focal_points(
                ctx.session, approval.org_id)], kind="approval_withdrawn",
                subject_id=approval.id, case_id=None, at=now, payload=payload)
    return approval


async def _consents_to(ctx: AccessContext, pb_id: uuid.UUID, org_id: uuid.UUID, purpose: str,
                       category: str | None = None) -> bool:
    """Whether her live consent covers `org_id` for `purpose` (and `category`, when given)."""
    found = await ctx.session.scalar(select(ConsentAccess.id).where(
        ConsentAccess.peacebuilder_id == pb_id, ConsentAccess.org_id == org_id,
        ConsentAccess.purpose == purpose,
        *([ConsentAccess.category == category] if category else []),
        live_clause(ctx.clock.now())).limit(1))
    return found is not None


async def require_owner_covered(ctx: AccessContext, case_id: uuid.UUID, pb_id: uuid.UUID,
                                owner: uuid.UUID) -> None:
    """A task given to another organisation is a referral under the hood: her consent must let
    that organisation see the task (its category) for this request's purpose, or the owner
    could never read, update or be reminded of it. The refusal names no category of hers."""
    if owner == ctx.org_id:
        return
    purpose = ctx.purpose
    if purpose is None or not await _consents_to(ctx, pb_id, owner, purpose,
                                                 RESPONSE_CATEGORY.value):
        ctx.deny("measure.owner", target_type="Case", target_id=case_id,
                 reason="owner organisation not covered by her consent",
                 details={"owner": str(owner)})
        raise BadInput("Her consent does not cover that organisation for this purpose, so it "
                       "cannot own a task on this case.", field="ownerOrganisationId")


async def refer(ctx: AccessContext, *, case_id: uuid.UUID, to_org_id: uuid.UUID, purpose: str,
                request: str | None) -> Referral:
    """Ask another organisation to act: only where she consented to it for that purpose."""
    await ctx.require("referral", "manage")
    case = await cases.get(ctx, case_id)
    if purpose not in {p.value for p in Purpose}:
        raise BadInput("Unknown purpose.", field="purpose")
    if to_org_id == ctx.org_id or to_org_id not in await orgs_repo.orgs_by_ids(ctx.session, [to_org_id]):
        raise BadInput("Refer to another organisation.", field="toOrganisationId")
    if not await _consents_to(ctx, case.peacebuilder_id, to_org_id, purpose):
        ctx.deny("referral.create", target_type="Case", target_id=case.id,
                 reason="no consent for that recipient and purpose",
                 details={"peacebuilder": str(case.peacebuilder_id), "to": str(to_org_id)})
        raise BadInput("She has not consented to that organisation for this purpose.",
                       field="toOrganisationId")
    # Before widening who knows: a current joint risk assessment (guidance 7).
    await risk_gates.require_current(ctx, case, "referral", field="caseId")
    now = ctx.clock.now()
    referral = Referral(id=new_id(), case_id=case.id, from_org_id=ctx.org_id,
                        to_org_id=to_org_id, purpose=purpose, status="pending",
                        created_by=ctx.principal.subject, created_at=now, updated_at=now)
    # The recipient has its declared time (directory) to accept or decline, then its chain owes it.
    respond_by = now + timedelta(hours=await directory.referral_hours(ctx.session, to_org_id))
    referral.respond_by = respond_by
    referral.request = await sealing.seal(
        ctx, sealing.referral_ref(referral, case.peacebuilder_id, "request"), request)
    ctx.session.add(referral)
    await ctx.session.flush()
    escalation.start(ctx.session, REFERRAL_UNANSWERED, referral.id, respond_by)
    event(ctx, case.id, "referral.created", referral.id, {"to": str(to_org_id), "purpose": purpose,
                                                          "respond_by": respond_by.isoformat()})
    ctx.record("referral.create", target_type="Case", target_id=case.id,
               details={"referral": str(referral.id), "to": str(to_org_id),
                        "peacebuilder": str(case.peacebuilder_id)})
    recipients = [(s, to_org_id) for s in await notify.focal_points(ctx.session, to_org_id)]
    await notify.notify(ctx, recipients, kind="referral_received", subject_id=referral.id,
                        case_id=case.id, at=now,
                        payload={"referral": str(referral.id), "case": str(case.id),
                                 "purpose": purpose, "respond_by": respond_by.isoformat()})
    return referral


TRANSITIONS: dict[str, tuple[str | None, str, str]] = {
    ReferralAction.ACCEPT: ("pending", "accepted", "to"),
    ReferralAction.DECLINE: ("pending", "declined", "to"),
    ReferralAction.COMPLETE: ("accepted", "completed", "to"),
    ReferralAction.REVOKE: (None, "revoked", "from")}


async def move_referral(ctx: AccessContext, referral_id: uuid.UUID, action: str,
                        outcome: str | None = None) -> Referral:
    await ctx.require("referral", "manage")
    referral = await ctx.session.get(Referral, referral_id)
    if referral is None or action not in TRANSITIONS:
        raise NotFound()
    before, after, side = TRANSITIONS[action]
    party = referral.to_org_id if side == "to" else referral.from_org_id
    if party != ctx.org_id:
        raise NotFound()
    case = await cases.get(ctx, referral.case_id)  # the recipient sees it only under her consent
    if before is not None and referral.status != before:
        raise Conflict(f"The referral is {referral.status}.")
    if action == "revoke" and referral.status in ("completed", "declined", "revoked"):
        raise Conflict(f"The referral is {referral.status}.")
    referral.status = after
    if outcome:
        referral.outcome = await sealing.seal(
            ctx, sealing.referral_ref(referral, case.peacebuilder_id, "outcome"), outcome)
    referral.updated_at = ctx.clock.now()
    event(ctx, case.id, f"referral.{after}", referral.id)
    ctx.record(f"referral.{action}", target_type="Case", target_id=case.id,
               details={"referral": str(referral.id)})
    told = {"accepted": NoticeKind.REFERRAL_ACCEPTED, "declined": NoticeKind.REFERRAL_DECLINED}
    if after in told:  # the outcome text stays on the referral (sealed), not in her notice
        await tell_her(ctx, case.peacebuilder_id, told[after], case_id=case.id,
                       subject_id=referral.id, codes={"organisation": referral.to_org_id})
    return referral


@dataclass(frozen=True, slots=True)
class ReferralView:
    """A referral with the decision for its text: what her consent releases to the caller now
    (the request and outcome are incident details; None: the case is not visible)."""

    row: Referral
    peacebuilder_id: uuid.UUID
    released: frozenset[str] | None


async def referral_views(ctx: AccessContext, rows: list[Referral]) -> list[ReferralView]:
    """Decide once for all the referrals of an answer (one statement for their cases, one for
    the decision): the recipient reads the request only while the consent that allowed the
    referral still releases incident details to it."""
    if not rows:
        return []
    pbs = dict((await ctx.session.execute(select(Case.id, Case.peacebuilder_id).where(
        Case.id.in_({r.case_id for r in rows})))).all())
    released = await ctx.released(list(set(pbs.values())))
    return [ReferralView(r, pbs[r.case_id], released.get(pbs[r.case_id])) for r in rows]


async def referrals_for(ctx: AccessContext, incoming: bool) -> list[ReferralView]:
    if ctx.org_id is None:
        return []
    column = Referral.to_org_id if incoming else Referral.from_org_id
    rows = list(await ctx.session.scalars(select(Referral).where(column == ctx.org_id)
                                          .order_by(Referral.created_at)))
    visible = {c for c in await _visible_case_ids(ctx, [r.case_id for r in rows])}
    return await referral_views(ctx, [r for r in rows if r.case_id in visible])


async def _visible_case_ids(ctx: AccessContext, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    from app.cases import repository as cases_repo

    return set(await cases_repo.by_ids(ctx.session, ctx.care_scope(), ids))


PROCEEDING_FIELDS: dict[str, set[str]] = {
    ProceedingKind.INVESTIGATION: {"authority", "reference", "stage"},
    ProceedingKind.DETENTION: {"place", "conditions", "visits", "legal_representation",
                               "due_process_concerns", "release_negotiations"},
}


async def record_proceeding(ctx: AccessContext, *, case_id: uuid.UUID, kind: str,
                            data: dict[str, Any], next_hearing_at: datetime | None,
                            proceeding_id: uuid.UUID | None = None) -> Proceeding:
    """Add or update an investigation/prosecution or a detention watch; each change is on the
    timeline she sees (category `legal`)."""
    await ctx.require("proceeding", "manage")
    case = await cases.get(ctx, case_id)
    if kind not in PROCEEDING_FIELDS:
        raise BadInput("Kind is investigation or detention.", field="kind")
    unknown = set(data) - PROCEEDING_FIELDS[kind]
    if unknown:
        raise BadInput("Unknown field(s): " + ", ".join(sorted(unknown)), field="data")
    if PROCEEDING_CATEGORY.value not in (await ctx.released([case.peacebuilder_id])).get(
            case.peacebuilder_id, ()):
        raise NotFound()
    now = ctx.clock.now()
    if proceeding_id is None:
        proceeding = Proceeding(id=new_id(), case_id=case.id, kind=kind,
                                next_hearing_at=next_hearing_at, org_id=ctx.org_id,
                                created_at=now, updated_at=now)
        proceeding.data = await sealing.seal_json(
            ctx, sealing.proceeding_ref(proceeding, case.peacebuilder_id), data, input_field="data")
        ctx.session.add(proceeding)
        await ctx.session.flush()
    else:
        found = await ctx.session.get(Proceeding, proceeding_id)
        if found is None or found.case_id != case.id:
            raise NotFound()
        proceeding = found
        ref = sealing.proceeding_ref(proceeding, case.peacebuilder_id)
        await sealing.data_key(ctx, case.peacebuilder_id, "data")  # erased: refused as such
        opened = await sealing.open_one(ctx, ref, sealing.json_token(proceeding.data))
        if opened.problem is not None:
            # Erased, or failed its integrity check: never merge onto what cannot be read.
            raise Conflict("The recorded details cannot be read; record a new proceeding.")
        proceeding.data = await sealing.seal_json(
            ctx, ref, {**(sealing.open_json(opened) or {}), **data}, input_field="data")
        proceeding.next_hearing_at = next_hearing_at or proceeding.next_hearing_at
        proceeding.updated_at = now
    if next_hearing_at is not None:  # a dated hearing: reminded before, its outcome owed after
        for scheduled in _NEXT_HEARING:
            await scheduled(ctx, proceeding, next_hearing_at)
    event(ctx, case.id, f"{kind}.updated", proceeding.id,
          {"fields": sorted(data), "next_hearing_at": next_hearing_at.isoformat()
           if next_hearing_at else None})
    ctx.record("proceeding.record", target_type="Case", target_id=case.id,
               details={"proceeding": str(proceeding.id), "kind": kind, "fields": sorted(data)})
    return proceeding


OPEN_TASK = ("planned", "in_progress")
FINAL_TASK = ("done", "cancelled")


@on_narrowed
async def flag_uncovered_tasks(ctx: AccessContext, pb_id: uuid.UUID) -> None:
    """Her consent now releases less: an open task whose owner organisation can no longer see it
    (no live grant of the task's category, for any purpose) is flagged to the lead organisation
    — once per task, on the timeline and in its focal points' inboxes (IDs only)."""
    rows = (await ctx.session.execute(select(Measure, Case.lead_org_id).join(
        Case, Case.id == Measure.case_id).where(
        Case.peacebuilder_id == pb_id, Measure.status.in_(OPEN_TASK),
        Measure.owner_org_id != Case.lead_org_id))).all()
    now = ctx.clock.now()
    for measure, lead in rows:
        covered = await ctx.session.scalar(select(ConsentAccess.id).where(
            ConsentAccess.peacebuilder_id == pb_id, ConsentAccess.org_id == measure.owner_org_id,
            ConsentAccess.category == RESPONSE_CATEGORY.value, live_clause(now)).limit(1))
        if covered is not None:
            continue
        flagged = await ctx.session.scalar(select(CaseEvent.id).where(
            CaseEvent.kind == "measure.owner_uncovered", CaseEvent.subject_id == measure.id))
        if flagged is not None:
            continue
        event(ctx, measure.case_id, "measure.owner_uncovered", measure.id,
              {"owner": str(measure.owner_org_id)})
        payload = {"measure": str(measure.id), "case": str(measure.case_id),
                   "owner": str(measure.owner_org_id)}
        await notify.notify(ctx, [(s, lead) for s in await notify.focal_points(ctx.session, lead)],
                            kind="task_owner_uncovered", subject_id=measure.id,
                            case_id=measure.case_id, at=now, payload=payload)
        ctx.record("measure.owner_uncovered", target_type="Case", target_id=measure.case_id,
                   details=payload)


TASK_OVERDUE = "task_overdue"


@escalation.due_item(TASK_OVERDUE)
async def _overdue(session: Any, measure_id: uuid.UUID) -> escalation.Due | None:
    """An open task past its due date owes its owner organisation's chain."""
    measure = await session.get(Measure, measure_id)
    if measure is None or measure.status not in OPEN_TASK:
        return None
    case = await session.get(Case, measure.case_id)
    if case is None:
        return None
    return escalation.Due("measure", case.id, measure.owner_org_id, case.peacebuilder_id,
                          {"measure": str(measure.id), "case": str(case.id),
                           "due_at": measure.due_at.isoformat() if measure.due_at else None},
                          owner=measure.owner_user_id)


REFERRAL_UNANSWERED = "referral"


@escalation.due_item(REFERRAL_UNANSWERED)
async def _unanswered(session: Any, referral_id: uuid.UUID) -> escalation.Due | None:
    """A referral still pending at its deadline owes the recipient organisation's chain (until
    it is accepted, declined or revoked)."""
    referral = await session.get(Referral, referral_id)
    if referral is None or referral.status != "pending":
        return None
    case = await session.get(Case, referral.case_id)
    if case is None:
        return None
    return escalation.Due("referral", case.id, referral.to_org_id, case.peacebuilder_id,
                          {"referral": str(referral.id), "case": str(case.id)})


async def referral_one(ctx: AccessContext, referral_id: uuid.UUID) -> ReferralView:
    """One referral (`node(id:)`): to its sender or recipient, as listed in `referrals`."""
    row = await ctx.session.get(Referral, referral_id)
    if (row is None or ctx.org_id is None or ctx.org_id not in (row.to_org_id, row.from_org_id)
            or row.case_id not in await _visible_case_ids(ctx, [row.case_id])):
        raise NotFound()
    return (await referral_views(ctx, [row]))[0]
