"""The two-person rule, defined once: one person starts an action, a second confirms it.

Used wherever one person alone must not be able to widen who sees her or to destroy what is
hers: consent recorded by staff, her network's link, erasure, break-glass beyond its first hour,
enrolment codes for a second factor. The rule (docs/decisions/0013-consent-integrity.md):

- the first person is a person (never a machine client) of the organisation, holding the
  required role (or, where the action says so, any staff role: a case worker recording the
  consent she gave), signed in with a recent second factor;
- a second active person of the same organisation, holding the same role, other than the first,
  confirms with a recent second factor within the organisation's window (default 24 hours);
- an organisation with no such second person cannot start it (said plainly);
- the request, the confirmation, a refusal and a lapse are each in the access log.

Domains register what happens on confirmation (and on lapse) with `on_confirmed`/`on_lapsed`;
this module never imports them, so it sits below every domain that uses it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.errors import BadInput, Conflict, Forbidden, NotFound
from app.notify import service as notify
from app.operations.service import own_settings
from app.pagination import Page, PageRequest, paginate
from app.tables.confirmations import Confirmation, ConfirmationStatus
from app.tables.operations import OrganisationSettings
from app.tables.orgs import RoleAssignment, User

DEFAULT_WINDOW_HOURS = 24
MIN_WINDOW_HOURS, MAX_WINDOW_HOURS = 1, 168
ROLE_NAMES = {"focal_point": "focal point", "org_admin": "administrator"}

Handler = Callable[[AccessContext, Confirmation], Awaitable[Any]]
_CONFIRMED: dict[str, Handler] = {}
_LAPSED: dict[str, Handler] = {}


def on_confirmed(action: str) -> Callable[[Handler], Handler]:
    """Register what a domain does once `action` is confirmed (in the confirming request)."""
    def register(fn: Handler) -> Handler:
        _CONFIRMED[action] = fn
        return fn
    return register


def on_lapsed(action: str) -> Callable[[Handler], Handler]:
    """Register what a domain does when nobody confirmed `action` in time (or it was declined)."""
    def register(fn: Handler) -> Handler:
        _LAPSED[action] = fn
        return fn
    return register


async def window(ctx: AccessContext, org_id: uuid.UUID) -> timedelta:
    hours = await ctx.session.scalar(select(OrganisationSettings.two_person_hours).where(
        OrganisationSettings.org_id == org_id))
    return timedelta(hours=hours or DEFAULT_WINDOW_HOURS)


async def holders(ctx: AccessContext, org_id: uuid.UUID, role: str) -> list[str]:
    """Subjects of the organisation's active people holding `role` (machine clients never)."""
    subjects = set(await ctx.session.scalars(select(RoleAssignment.subject).where(
        RoleAssignment.org_id == org_id, RoleAssignment.role == role,
        RoleAssignment.subject.like("user:%"))))
    ids = [uuid.UUID(s.split(":", 1)[1]) for s in subjects]
    active = await ctx.session.scalars(select(User.id).where(
        User.id.in_(ids), User.org_id == org_id, User.active.is_(True)))
    return sorted(f"user:{u}" for u in active)


def _role_name(role: str) -> str:
    return ROLE_NAMES.get(role, role.replace("_", " "))


def _require_person_with_role(ctx: AccessContext, role: str, action: str,
                              target_id: uuid.UUID | None) -> None:
    p = ctx.principal
    if p.kind is not PrincipalKind.USER or role not in p.roles:
        ctx.deny(action, target_type="Confirmation" if target_id else None, target_id=target_id,
                 reason=f"two-person rule: needs a person holding {role}")
        raise Forbidden(f"Only a {_role_name(role)} of the organisation can do this.")


async def request(
    ctx: AccessContext,
    *,
    action: str,
    target_id: uuid.UUID,
    peacebuilder_id: uuid.UUID | None,
    required_role: str = "focal_point",
    any_staff_may_ask: bool = False,
    confirmation_id: uuid.UUID | None = None,
    reason: str | None = None,
    evidence_kind: str | None = None,
    evidence: str | None = None,
) -> Confirmation:
    """Start a two-person action; `reason`/`evidence` arrive already sealed by the domain."""
    if any_staff_may_ask:
        if ctx.principal.kind is not PrincipalKind.USER:
            ctx.deny(action, reason="two-person rule: needs a person")
            raise Forbidden("Only a person of the organisation can do this.")
    else:
        _require_person_with_role(ctx, required_role, action, None)
    ctx.require_recent_mfa(action, target_type="Peacebuilder" if peacebuilder_id else None,
                           target_id=peacebuilder_id)
    assert ctx.org_id is not None
    others = [s for s in await holders(ctx, ctx.org_id, required_role)
              if s != ctx.principal.subject]
    if not others:
        ctx.deny(action, target_type="Peacebuilder" if peacebuilder_id else None,
                 target_id=peacebuilder_id, reason="two-person rule: no second person")
        raise BadInput(f"This needs a second {_role_name(required_role)} of your organisation "
                       f"to confirm it (two-person rule), and your organisation has no other "
                       f"active {_role_name(required_role)}. Designate one first.")
    now = ctx.clock.now()
    found = Confirmation(
        id=confirmation_id or uuid.uuid4(), org_id=ctx.org_id, action=action,
        target_id=target_id, peacebuilder_id=peacebuilder_id, required_role=required_role,
        requested_by=ctx.principal.subject, requested_at=now,
        expires_at=now + await window(ctx, ctx.org_id), reason=reason,
        evidence_kind=evidence_kind, evidence=evidence, status=ConfirmationStatus.PENDING.value)
    ctx.session.add(found)
    await ctx.session.flush()
    # The other holders are asked (IDs and the action only, never anything about her).
    await notify.notify(ctx, [(s, ctx.org_id) for s in others], kind="confirmation_requested",
                        subject_id=found.id, case_id=None, at=now,
                        payload={"confirmation": str(found.id), "action": action})
    ctx.record("two_person.request", target_type="Confirmation", target_id=found.id,
               details=_details(found))
    return found


def _details(c: Confirmation) -> dict[str, Any]:
    out: dict[str, Any] = {"action": c.action, "target": str(c.target_id)}
    if c.peacebuilder_id is not None:
        out["peacebuilder"] = str(c.peacebuilder_id)
    return out


async def _own(ctx: AccessContext, confirmation_id: uuid.UUID) -> Confirmation:
    found = await ctx.session.get(Confirmation, confirmation_id)
    if found is None or ctx.org_id is None or found.org_id != ctx.org_id:
        # Another organisation's request (or none): not found, and the attempt logged.
        ctx.deny("two_person.confirm", target_type="Confirmation", target_id=confirmation_id,
                 reason="no such request in the caller's organisation")
        raise NotFound()
    return found


async def confirm(ctx: AccessContext, confirmation_id: uuid.UUID) -> Confirmation:
    """The second person confirms; the domain's action then takes effect in this request."""
    c = await _own(ctx, confirmation_id)
    _require_person_with_role(ctx, c.required_role, "two_person.confirm", c.id)
    if ctx.principal.subject == c.requested_by:
        ctx.deny("two_person.confirm", target_type="Confirmation", target_id=c.id,
                 reason="two-person rule: the same person cannot confirm")
        raise Forbidden("A second person must confirm this: not the one who asked.")
    ctx.require_recent_mfa("two_person.confirm", target_type="Confirmation", target_id=c.id)
    await _still_pending(ctx, c)
    handler = _CONFIRMED.get(c.action)
    if handler is None:  # fail closed: an action nobody handles confirms nothing
        raise RuntimeError(f"no handler for confirmed action {c.action}")
    c.status, c.decided_by, c.decided_at = (ConfirmationStatus.CONFIRMED.value,
                                            ctx.principal.subject, ctx.clock.now())
    ctx.record("two_person.confirm", target_type="Confirmation", target_id=c.id,
               details=_details(c))
    await ctx.session.flush()
    await handler(ctx, c)
    return c


async def decline(ctx: AccessContext, confirmation_id: uuid.UUID) -> Confirmation:
    """A holder of the role says no (the person who asked withdraws it the same way)."""
    c = await _own(ctx, confirmation_id)
    _require_person_with_role(ctx, c.required_role, "two_person.decline", c.id)
    await _still_pending(ctx, c)
    withdrawn = ctx.principal.subject == c.requested_by
    await end(ctx, c, ConfirmationStatus.CANCELLED if withdrawn else ConfirmationStatus.DECLINED)
    return c


async def _still_pending(ctx: AccessContext, c: Confirmation) -> None:
    if c.status != ConfirmationStatus.PENDING:
        raise Conflict(f"This was already {c.status}.")
    if ctx.clock.now() >= c.expires_at:
        await end(ctx, c, ConfirmationStatus.LAPSED)
        raise Conflict("Nobody confirmed this in time: it lapsed. Start it again if still needed.")


async def end(ctx: AccessContext, c: Confirmation, status: ConfirmationStatus) -> None:
    """Close a pending confirmation without confirming it (declined, withdrawn, lapsed, or
    overtaken because she decided herself); the domain undoes what waited on it."""
    if c.status != ConfirmationStatus.PENDING:
        return
    c.status, c.decided_at = status.value, ctx.clock.now()
    if status is not ConfirmationStatus.LAPSED:
        c.decided_by = ctx.principal.subject
    ctx.record(f"two_person.{status.value}", target_type="Confirmation", target_id=c.id,
               details=_details(c))
    await ctx.session.flush()
    handler = _LAPSED.get(c.action)
    if handler is not None and status is not ConfirmationStatus.CANCELLED:
        await handler(ctx, c)


async def pending_of(ctx: AccessContext, *, action: str,
                     target_id: uuid.UUID) -> Confirmation | None:
    return await ctx.session.scalar(select(Confirmation).where(
        Confirmation.action == action, Confirmation.target_id == target_id,
        Confirmation.status == ConfirmationStatus.PENDING.value))


async def lapse_due(ctx: AccessContext, now: datetime) -> int:
    """Background: close every pending confirmation whose window has passed (logged)."""
    # Every replica runs this: a row another replica is closing is skipped, not closed twice.
    due = list(await ctx.session.scalars(select(Confirmation).where(
        Confirmation.status == ConfirmationStatus.PENDING.value,
        Confirmation.expires_at <= now).limit(200).with_for_update(skip_locked=True)))
    for c in due:
        await end(ctx, c, ConfirmationStatus.LAPSED)
    return len(due)


async def list_(ctx: AccessContext, page: PageRequest, *,
                only_pending: bool = True) -> Page[Confirmation]:
    """Confirmations of the caller's organisation for a role the caller holds (or asked)."""
    p = ctx.principal
    if p.kind is not PrincipalKind.USER or ctx.org_id is None:
        raise Forbidden("Only people of an organisation confirm its actions.")
    query = select(Confirmation).where(
        Confirmation.org_id == ctx.org_id,
        or_(Confirmation.required_role.in_(sorted(p.roles)),
            Confirmation.requested_by == p.subject))
    if only_pending:
        query = query.where(Confirmation.status == ConfirmationStatus.PENDING.value,
                            Confirmation.expires_at > ctx.clock.now())
    return await paginate(ctx.session, query, keys=(Confirmation.requested_at, Confirmation.id),
                          page=page)


async def set_window(ctx: AccessContext, hours: int) -> int:
    """The organisation's confirmation window, in hours. Org admins; logged."""
    await ctx.require("organisation", "manage_settings")
    assert ctx.org_id is not None
    if not MIN_WINDOW_HOURS <= hours <= MAX_WINDOW_HOURS:
        raise BadInput(f"The window is {MIN_WINDOW_HOURS} to {MAX_WINDOW_HOURS} hours.",
                       field="hours")
    found = await own_settings(ctx)
    found.two_person_hours = hours
    found.updated_by, found.updated_at = ctx.principal.subject, ctx.clock.now()
    await ctx.session.flush()
    ctx.record("two_person.window", target_type="Organisation", target_id=ctx.org_id,
               details={"hours": hours})
    return hours


async def one(ctx: AccessContext, confirmation_id: uuid.UUID) -> Confirmation:
    """One confirmation (`node(id:)`), to whoever `confirmations` lists it for."""
    p = ctx.principal
    if p.kind is not PrincipalKind.USER or ctx.org_id is None:
        raise NotFound()
    found = await ctx.session.scalar(select(Confirmation).where(
        Confirmation.id == confirmation_id, Confirmation.org_id == ctx.org_id,
        or_(Confirmation.required_role.in_(sorted(p.roles)),
            Confirmation.requested_by == p.subject)))
    if found is None:
        raise NotFound()
    return found
