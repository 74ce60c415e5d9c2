"""What she does herself, signed in: her record, her cases, her grants, copies, corrections."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.consent import repository as consent_repo
from app.errors import BadInput, Forbidden, ResponseTooLarge
from app.notify.inbox import cursor_of, parse_cursor
from app.pagination import MAX_PAGE
from app.peacebuilders import repository as repo
from app.peacebuilders.notice_text import NoticeText, language_of, render
from app.tables.consent import BreakGlass, ConsentGrant, DataRequest, Notice
from app.tables.peacebuilders import Peacebuilder


def my_id(ctx: AccessContext) -> uuid.UUID:
    if ctx.principal.kind is not PrincipalKind.PEACEBUILDER:
        raise Forbidden("Only a peacebuilder signed in herself can use this.")
    return ctx.principal.id


async def me(ctx: AccessContext) -> Peacebuilder:
    if ctx.principal.duress_of is not None:
        # A duress session's record: empty, never stored, nothing of hers (decision 0027).
        now = ctx.clock.now()
        return Peacebuilder(id=my_id(ctx), pseudonym=ctx.principal.name, preferred_language="en",
                            registered_by_org_id=uuid.UUID(int=0), created_at=now,
                            has_login=True, updated_at=now)
    pb = await ctx.session.get(Peacebuilder, my_id(ctx))
    if pb is None:
        raise Forbidden()
    return pb


async def my_grants(ctx: AccessContext) -> list[ConsentGrant]:
    return await consent_repo.grants_of(ctx.session, my_id(ctx))


@dataclass(frozen=True, slots=True)
class NoticeView:
    """One of her notices with its words in her language and its cursor."""

    notice: Notice
    text: NoticeText
    cursor: str


def notice_cursor(n: Notice) -> str:
    """The inbox's cursor format (created_at and id): one parser for both."""
    return cursor_of(n)  # type: ignore[arg-type]


def _view(n: Notice, language: str) -> NoticeView:
    return NoticeView(n, render(n.kind, n.details, n.created_at, language), notice_cursor(n))


async def my_notices(ctx: AccessContext, *, after: str | None = None, first: int | None = None,
                     language: str | None = None) -> list[NoticeView]:
    """Her notices, oldest first, after a cursor (what her subscription replays), at most
    `first` (all when not given), each in her language unless another is asked for."""
    if first is not None and not 0 <= first <= MAX_PAGE:
        raise BadInput(f"first must be between 0 and {MAX_PAGE}.", field="first")
    pb = await me(ctx)
    lang = language_of(pb.preferred_language, language)
    since = parse_cursor(after) if after else None
    rows = await consent_repo.notices_of(ctx.session, pb.id, after=since, limit=first)
    return [_view(n, lang) for n in rows]


async def my_notice(ctx: AccessContext, notice_id: uuid.UUID,
                    language: str | None = None) -> NoticeView | None:
    """One notice of hers (her subscription reads each as it is published); None if not hers."""
    pb = await me(ctx)
    found = await ctx.session.get(Notice, notice_id)
    if found is None or found.peacebuilder_id != pb.id:
        return None
    return _view(found, language_of(pb.preferred_language, language))


async def my_break_glass(ctx: AccessContext) -> list[BreakGlass]:
    return await consent_repo.break_glass_of(ctx.session, my_id(ctx))


async def data_copy_head(ctx: AccessContext, *, via: str) -> tuple[dict[str, Any],
                                                                    list[uuid.UUID]]:
    """Her copy without its cases, and the IDs of her cases (each read on its own by
    `case_copy`, so a copy is never held whole in memory). Logged as an export."""
    from sqlalchemy import select

    from app.peacebuilders.service import decrypted_profile
    from app.tables.cases import Case

    pb = await me(ctx)
    data = await repo.data_of(ctx.session, pb.id)
    profile = await decrypted_profile(ctx, pb.id)
    grants = await my_grants(ctx)
    case_ids = list(await ctx.session.scalars(select(Case.id).where(
        Case.peacebuilder_id == pb.id).order_by(Case.opened_at, Case.id)))
    ctx.record("data.export", target_type="Peacebuilder", target_id=pb.id,
               details={"by": "herself", "via": via,
                        "categories": sorted({d.category for d in data.values()})})
    return {
        "pseudonym": pb.pseudonym,
        "preferredLanguage": pb.preferred_language,
        "profile": dict(sorted(profile.items())),
        "consentGrants": [{"id": str(g.id), "recipientType": g.recipient_type,
                           "recipient": str(g.recipient_id), "categories": g.categories,
                           "purposes": g.purposes, "validFrom": g.valid_from.isoformat(),
                           "validUntil": g.valid_until.isoformat() if g.valid_until else None,
                           "revokedAt": g.revoked_at.isoformat() if g.revoked_at else None}
                          for g in grants],
    }, case_ids


# The copy as JSON text in pieces, the same text as json.dumps(whole, ensure_ascii=False,
# sort_keys=True): "cases" sorts first in the copy, "id" then "incidents" first in a case, so
# both lists can be written as they are read, a batch of incidents at a time.
COPY_OPEN = '{"cases": ['
INCIDENT_BATCH = 20
Contexts = Callable[[], AbstractAsyncContextManager[AccessContext]]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def copy_close(head: dict[str, Any]) -> str:
    rest = _json(head)[1:]
    return "]" + (", " + rest if rest != "}" else rest)


async def copy_pieces(head: dict[str, Any], case_ids: list[uuid.UUID],
                      contexts: Contexts) -> AsyncIterator[str]:
    """Her copy as text, piece by piece; each case, and each batch of its incidents, read in
    a unit of work of `contexts` (one per piece for a download, the request's for GraphQL),
    so no more than one batch is held at a time."""
    from app.read import cases as case_read
    from app.read import children
    from app.read.gate import Want

    yield COPY_OPEN
    for index, case_id in enumerate(case_ids):
        async with contexts() as ctx:
            [view] = await case_read.mine(ctx, Want(frozenset({"summary"}), {}), only=case_id)
            # Her risk and safety records (issue 19), opened with her key: read here, in the
            # case's unit of work (they are few per case; incidents are the long list).
            safety = await risk_and_safety(ctx, case_id, view.gate)
        c = view.row
        rest = {"status": c.status, "riskLevel": c.risk_level,
                "openedAt": c.opened_at.isoformat(), "summary": view.gate.values.get("summary"),
                "riskAndSafety": safety}
        yield f'{", " if index else ""}{{"id": {_json(str(c.id))}, "incidents": ['
        after: tuple[Any, ...] | None = None
        written = 0
        want = Want(frozenset(INCIDENT_KEYS), {})
        while True:
            async with contexts() as ctx:
                batch = (await children.of_cases(ctx, "incidents", {case_id: view.gate}, want,
                                                 after=after, limit=INCIDENT_BATCH))[case_id]
            for i in batch:
                yield (", " if written else "") + _json(_incident(i))
                written += 1
            if len(batch) < INCIDENT_BATCH:
                break
            after = (batch[-1].row.reported_at, batch[-1].row.id)
        yield "], " + _json(rest)[1:]
    yield copy_close(head)


async def data_copy(ctx: AccessContext, *, max_bytes: int | None = None) -> str:
    """Her whole copy as one JSON text (the deprecated GraphQL field): ResponseTooLarge once it
    passes `max_bytes`, so it is never built larger than that plus one batch."""
    head, case_ids = await data_copy_head(ctx, via="graphql")

    @asynccontextmanager
    async def same() -> AsyncIterator[AccessContext]:
        yield ctx

    pieces: list[str] = []
    size = 0
    async for piece in copy_pieces(head, case_ids, same):
        size += len(piece.encode())
        if max_bytes is not None and size > max_bytes:
            raise ResponseTooLarge(max_bytes)
        pieces.append(piece)
    return "".join(pieces)


def _at(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _opened_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# Her risk and safety records in her copy: per list, the rows' clear columns and the sealed ones
# (opened with her key), under the names the API uses.
SAFETY_LISTS: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    # key in her copy: (child, clear column -> key, sealed column -> key)
    "riskAssessments": ("risk_assessments", {
        "id": "id", "status": "status", "level": "level", "review_at": "reviewAt",
        "shared_at": "sharedAt", "answered_at": "answeredAt", "answered_by": "answeredBy",
        "consulted_how": "consultedHow", "superseded_by": "supersededBy"}, {
        "vulnerabilities": "vulnerabilities", "capacities": "capacities",
        "reasoning": "reasoning", "context_notes": "contextNotes",
        "her_analysis": "herAnalysis", "her_view": "herView"}),
    "riskThreats": ("risk_threats", {
        "id": "id", "assessment_id": "assessment", "position": "position",
        "likelihood": "likelihood", "impact": "impact"}, {
        "facts": "facts", "pattern": "pattern", "objective": "objective",
        "source_as_reported": "sourceAsReported", "feasibility": "feasibility"}),
    "protectionPlan": ("measures", {
        "id": "id", "kind": "kind", "owner_org_id": "ownerOrganisation", "due_at": "dueAt",
        "status": "status", "not_done_reason": "notDoneReason", "threat_id": "threat",
        "plan_kind": "planKind", "cost_amount": "costAmount", "cost_currency": "costCurrency"}, {
        "description": "description", "funding_source": "fundingSource",
        "covered_family": "coveredFamily"}),
    "checkInSchedules": ("check_in_schedules", {
        "id": "id", "status": "status", "interval_minutes": "intervalMinutes",
        "channel": "channel", "agreed_via": "agreedVia", "missed_action": "missedAction",
        "ended_at": "endedAt"}, {
        "safety_contact": "safetyContact", "missed_action_notes": "missedActionNotes"}),
    "checkIns": ("check_ins", {
        "id": "id", "schedule_id": "schedule", "due_at": "dueAt", "status": "status",
        "checked_in_at": "checkedInAt", "checked_in_by": "checkedInBy",
        "resolution": "resolution"}, {}),
    "securityAssessments": ("security_assessments", {
        "id": "id", "subject": "subject", "assessed_at": "assessedAt",
        "follow_up_at": "followUpAt", "followed_up_at": "followedUpAt", "status": "status"}, {
        "assets": "assets", "vulnerabilities": "vulnerabilities",
        "recommendations": "recommendations"}),
    "consultations": ("consultations", {
        "id": "id", "held_at": "heldAt", "consulted": "consulted",
        "organisations": "organisations"}, {
        "topics": "topics", "risks_raised": "risksRaised", "follow_ups": "followUps"}),
    "consultationFollowUps": ("consultation_follow_ups", {
        "id": "id", "consultation_id": "consultation", "position": "position",
        "owner_org_id": "ownerOrganisation", "due_at": "dueAt", "status": "status",
        "done_at": "doneAt"}, {}),
}
SEALED_JSON = {"covered_family", "recommendations", "follow_ups"}


def _clear(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    return _at(value) if hasattr(value, "isoformat") else value


async def risk_and_safety(ctx: AccessContext, case_id: uuid.UUID, gate: Any) -> dict[str, Any]:
    """Her joint risk assessments and their threats, her protection plan, her check-in
    schedules and check-ins, digital security assessments, consultations and their follow-ups:
    everything of hers below one case, opened with her key."""
    from app.read import children
    from app.read.gate import Want

    out: dict[str, Any] = {}
    for key, (name, clear, sealed) in SAFETY_LISTS.items():
        rows = (await children.of_cases(ctx, name, {case_id: gate},
                                        Want(frozenset(sealed), {})))[case_id]
        if name == "measures":  # her plan: the measures tied to it
            rows = [r for r in rows if r.row.plan_kind is not None or r.row.threat_id]
        out[key] = [{**{k: _clear(getattr(r.row, c)) for c, k in clear.items()},
                     **{k: (_opened_json(r.gate.values.get(c)) if c in SEALED_JSON
                            else r.gate.values.get(c)) for c, k in sealed.items()}}
                    for r in rows]
    return out


INCIDENT_KEYS = {"description": "description", "alleged_source_as_reported":
                 "allegedSourceAsReported", "location_coarse": "locationCoarse",
                 "location_precise": "locationPrecise"}


def _incident(i: Any) -> dict[str, Any]:
    return {"id": str(i.row.id), "type": i.row.type, "severity": i.row.severity,
            "status": i.row.status, "reportedAt": i.row.reported_at.isoformat(),
            **{key: i.gate.values.get(column) for column, key in INCIDENT_KEYS.items()}}


async def my_requests(ctx: AccessContext) -> list[DataRequest]:
    from sqlalchemy import select

    rows = await ctx.session.scalars(select(DataRequest).where(
        DataRequest.peacebuilder_id == my_id(ctx)).order_by(DataRequest.created_at))
    return list(rows)
