"""Requests for help from women without a case (and often without an account or a network).

She picks one organisation among those whose directory entry accepts such requests and leaves a
short message and how to reach her. Both are sealed with the request's own data key (wrapped by
the KEK, like a peacebuilder's), bound to that organisation and record: only its focal points
open them, and erasing the request destroys the key. The request opens intake there: its focal
points are alerted, and if nobody acknowledges it by its deadline it escalates along the
organisation's chain (the due-item primitive, kind `help_request`).

What she is told never depends on any record: an organisation that does not exist and one that
does not accept requests get the same answer, and no answer names a peacebuilder or a case.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from app import crypto, tenancy
from app.access.context import AccessContext
from app.directory import service as directory
from app.directory.languages import ISO_639_1
from app.errors import BadInput, Conflict, NotFound
from app.escalation import service as escalation
from app.notify import service as notify
from app.pagination import Page, PageRequest, paginate
from app.tables.directory import DueEvent, HelpRequest, ServiceEntry
from app.tables.orgs import Organisation

HELP_REQUEST = "help_request"
ACK_WITHIN = timedelta(hours=4)
MAX_MESSAGE, MAX_CONTACT = 2000, 500
# The one answer for every organisation she cannot write to (missing or not accepting).
NOT_AVAILABLE = ("That organisation does not take requests for help through this service. "
                 "Choose one from the list of organisations that do.")


def _aad(request: HelpRequest, field: str) -> bytes:
    return crypto.associated(request.org_id, "help_requests", request.id, field)


def _label(request_id: uuid.UUID) -> str:
    # The KEK wraps this key for this request only (never confused with a peacebuilder's).
    return f"help-request:{request_id}"


def _keks(ctx: AccessContext) -> crypto.KeyEncryptionKeys:
    keys = ctx.db.keys
    if keys is None:
        raise RuntimeError("no key-encryption keys configured")
    return keys  # type: ignore[no-any-return]


def _text(value: str, limit: int, field: str) -> str:
    value = value.strip()
    if not value or len(value) > limit:
        raise BadInput(f"Write 1 to {limit} characters.", field=field)
    return value


async def submit(ctx: AccessContext, *, org_id: uuid.UUID | None, message: str, contact: str,
                 language: str | None) -> None:
    """Receive a request for help (anyone, no account). Runs its one write in the system scope:
    the caller reaches nothing, and learns nothing but that it was received or refused."""
    message = _text(message, MAX_MESSAGE, "message")
    contact = _text(contact, MAX_CONTACT, "contact")
    code = language.strip().lower() if language else None
    if code is not None and code not in ISO_639_1:
        raise BadInput("Language is an ISO 639-1 code (two letters).", field="language")
    with tenancy.using(tenancy.SYSTEM):
        async with ctx.db.transaction() as session:
            if org_id is None or not await directory.accepts_help(session, org_id):
                refused = True
            else:
                refused = False
                system = AccessContext(principal=ctx.principal, session=session, db=ctx.db,
                                       policy=ctx.policy, clock=ctx.clock,
                                       request_id=ctx.request_id)
                await _open(system, org_id, message, contact, code)
                ctx.cache.setdefault("published", []).extend(system.cache.get("published", []))
    if refused:
        ctx.deny("help_request.submit", target_type="Organisation", target_id=org_id,
                 reason="organisation missing or not accepting requests for help")
        raise BadInput(NOT_AVAILABLE, field="organisationId")


async def _open(ctx: AccessContext, org_id: uuid.UUID, message: str, contact: str,
                language: str | None) -> HelpRequest:
    now = ctx.clock.now()
    request = HelpRequest(id=uuid.uuid4(), org_id=org_id, language=language, status="open",
                          received_at=now, ack_deadline=now + ACK_WITHIN)
    key = crypto.new_data_key()
    request.key_version, request.wrapped_key = _keks(ctx).wrap(key, _label(request.id))
    request.message = crypto.seal(key, _aad(request, "message"), message)
    request.contact = crypto.seal(key, _aad(request, "contact"), contact)
    ctx.session.add(request)
    await ctx.session.flush()
    escalation.start(ctx.session, HELP_REQUEST, request.id, request.ack_deadline)
    recipients = [(s, org_id) for s in await notify.focal_points(ctx.session, org_id)]
    await notify.notify(ctx, recipients, kind="help_request_received", subject_id=request.id,
                        case_id=None, at=now, payload={"help_request": str(request.id),
                                                       "language": language})
    ctx.record("help_request.receive", target_type="HelpRequest", target_id=request.id,
               details={"organisation": str(org_id), "language": language})
    return request


@dataclass(frozen=True)
class Opened:
    """A request with its message and contact opened for a focal point (None once erased)."""

    row: HelpRequest
    message: str | None
    contact: str | None
    events: list[DueEvent]


def _open_fields(ctx: AccessContext, request: HelpRequest) -> tuple[str | None, str | None]:
    if request.wrapped_key is None or request.key_version is None:
        return None, None
    try:
        key = _keks(ctx).unwrap(request.key_version, request.wrapped_key, _label(request.id))
        return (crypto.open_sealed(key, _aad(request, "message"), request.message),
                crypto.open_sealed(key, _aad(request, "contact"), request.contact))
    except (KeyError, ValueError, InvalidTag, crypto.Unreadable):  # fails closed, never plaintext
        return None, None


async def _own(ctx: AccessContext, request_id: uuid.UUID) -> HelpRequest:
    request = await ctx.session.get(HelpRequest, request_id)
    if request is None or request.org_id != ctx.org_id:
        raise NotFound()
    return request


async def list_for_org(ctx: AccessContext, page: PageRequest,
                       status: str | None = None) -> Page[Opened]:
    """The caller's organisation's requests, newest first, opened (its focal points only;
    each opened request is recorded in the access log)."""
    await ctx.require("help_request", "read")
    query = select(HelpRequest).where(HelpRequest.org_id == ctx.org_id)
    if status is not None:
        query = query.where(HelpRequest.status == status)
    found = await paginate(ctx.session, query, keys=(HelpRequest.received_at, HelpRequest.id),
                           page=PageRequest(page.first, page.after, descending=True))
    ids = [r.id for r in found.items]
    events: dict[uuid.UUID, list[DueEvent]] = {i: [] for i in ids}
    if ids:
        for e in await ctx.session.scalars(select(DueEvent).where(
                DueEvent.subject_id.in_(ids), DueEvent.org_id == ctx.org_id)
                .order_by(DueEvent.at, DueEvent.id)):
            events[e.subject_id].append(e)
    items = []
    for r in found.items:
        message, contact = _open_fields(ctx, r)
        if message is not None:
            ctx.record("help_request.read", target_type="HelpRequest", target_id=r.id)
        items.append(Opened(r, message, contact, events[r.id]))
    return Page(items=items, cursors=found.cursors, has_next=found.has_next,
                has_previous=found.has_previous)


async def acknowledge(ctx: AccessContext, request_id: uuid.UUID) -> Opened:
    """A focal point takes it on: the chain stops."""
    await ctx.require("help_request", "manage")
    request = await _own(ctx, request_id)
    if request.status != "open":
        raise Conflict(f"The request is {request.status}.")
    request.status = "acknowledged"
    request.acknowledged_at, request.acknowledged_by = ctx.clock.now(), ctx.principal.subject
    ctx.record("help_request.acknowledge", target_type="HelpRequest", target_id=request.id)
    message, contact = _open_fields(ctx, request)
    return Opened(request, message, contact, [])


async def erase(ctx: AccessContext, request_id: uuid.UUID) -> Opened:
    """Destroy the request's key: its message and contact are unreadable everywhere at once."""
    await ctx.require("help_request", "manage")
    request = await _own(ctx, request_id)
    request.wrapped_key, request.key_version = None, None
    request.status, request.erased_at = "erased", ctx.clock.now()
    ctx.record("help_request.erase", target_type="HelpRequest", target_id=request.id)
    return Opened(request, None, None, [])


@escalation.due_item(HELP_REQUEST)
async def _unacknowledged(session: Any, request_id: uuid.UUID) -> escalation.Due | None:
    """An open request past its acknowledgement deadline owes its organisation's chain."""
    request = await session.get(HelpRequest, request_id)
    if request is None or request.status != "open":
        return None
    return escalation.Due(HELP_REQUEST, None, request.org_id, None,
                          {"help_request": str(request.id),
                           "ack_deadline": request.ack_deadline.isoformat()})


@dataclass(frozen=True)
class Desk:
    """An organisation that takes requests for help: what she needs to pick it."""

    org: Organisation
    entry: ServiceEntry


async def desks(session: Any) -> list[Desk]:
    """Every organisation whose entry accepts requests for help (public: each chose to be
    found); bounded by the number of organisations."""
    rows = await session.execute(select(Organisation, ServiceEntry).join(
        ServiceEntry, ServiceEntry.org_id == Organisation.id).where(
        ServiceEntry.accepts_help_requests.is_(True)).order_by(Organisation.slug).limit(500))
    return [Desk(o, e) for o, e in rows]


async def help_desks(ctx: AccessContext) -> list[Desk]:
    """The public list (read in the system scope: the caller has no organisation)."""
    with tenancy.using(tenancy.SYSTEM):
        async with ctx.db.transaction() as session:
            return await desks(session)


async def one(ctx: AccessContext, request_id: uuid.UUID) -> Opened:
    """One request of the caller's organisation (`node(id:)`), opened as `helpRequests` opens
    it (and its reading recorded)."""
    await ctx.require("help_request", "read")
    request = await _own(ctx, request_id)
    events = list(await ctx.session.scalars(select(DueEvent).where(
        DueEvent.subject_id == request.id, DueEvent.org_id == ctx.org_id)
        .order_by(DueEvent.at, DueEvent.id)))
    message, contact = _open_fields(ctx, request)
    if message is not None:
        ctx.record("help_request.read", target_type="HelpRequest", target_id=request.id)
    return Opened(request, message, contact, events)
