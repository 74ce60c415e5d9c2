"""Her copy of everything we hold about her: `me { dataCopy }` and GET /me/data-copy.

Read through the read path (her cases, their incidents and her risk and safety records, each
level decided once), so it lives here, above the domains it reads (decision 0035).

GET /me/data-copy streams the same JSON document `me { dataCopy }` gives, written as it is read
— each case, and each batch of 20 of its incidents, in a transaction of its own — so its size
never depends on what a replica can hold in memory. Only she can download it (a peacebuilder's
own token; no purpose needed); the download is in the access log (`data.export`, via download)
before any byte of it leaves.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app.access.context import AccessContext
from app.auth.edge import request_context
from app.errors import AppError, ResponseTooLarge
from app.peacebuilders import repository as repo
from app.peacebuilders.self_service import me, my_grants


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
    from app.access.gate import Want
    from app.read import cases as case_read
    from app.read import children

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
    from app.access.gate import Want
    from app.read import children

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


STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404}


def _refuse(exc: AppError) -> JSONResponse:
    return JSONResponse({"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]},
                        status_code=STATUS.get(exc.code, 400))


async def data_copy_endpoint(request: Request) -> Response:
    try:
        async with request_context(request) as ctx:
            head, case_ids = await data_copy_head(ctx, via="download")
    except AppError as exc:
        return _refuse(exc)

    async def body() -> AsyncIterator[bytes]:
        async for piece in copy_pieces(head, case_ids,
                                       lambda: request_context(request)):
            yield piece.encode()

    return StreamingResponse(body(), media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="my-data.json"',
        "Cache-Control": "no-store"})
