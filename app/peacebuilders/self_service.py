"""What she does herself, signed in: her record, her cases, her grants, copies, corrections."""

from __future__ import annotations

import json
import uuid
from typing import Any

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.consent import repository as consent_repo
from app.consent.categories import PROFILE_FIELDS
from app.consent.models import BreakGlass, ConsentGrant, DataRequest, Notice
from app.db import new_id
from app.errors import BadInput, Forbidden, ResponseTooLarge
from app.peacebuilders import repository as repo
from app.peacebuilders import sealing
from app.peacebuilders.models import Peacebuilder


def my_id(ctx: AccessContext) -> uuid.UUID:
    if ctx.principal.kind is not PrincipalKind.PEACEBUILDER:
        raise Forbidden("Only a peacebuilder signed in herself can use this.")
    return ctx.principal.id


async def me(ctx: AccessContext) -> Peacebuilder:
    pb = await ctx.session.get(Peacebuilder, my_id(ctx))
    if pb is None:
        raise Forbidden()
    return pb


async def my_grants(ctx: AccessContext) -> list[ConsentGrant]:
    return await consent_repo.grants_of(ctx.session, my_id(ctx))


async def my_notices(ctx: AccessContext) -> list[Notice]:
    return await consent_repo.notices_of(ctx.session, my_id(ctx))


async def my_break_glass(ctx: AccessContext) -> list[BreakGlass]:
    return await consent_repo.break_glass_of(ctx.session, my_id(ctx))


async def data_copy_head(ctx: AccessContext, *, via: str) -> tuple[dict[str, Any],
                                                                    list[uuid.UUID]]:
    """Her copy without its cases, and the IDs of her cases (each read on its own by
    `case_copy`, so a copy is never held whole in memory). Logged as an export."""
    from sqlalchemy import select

    from app.cases.models import Case
    from app.peacebuilders.service import decrypted_profile

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


# The copy as JSON text in pieces: `{"cases": [` case, case, ... `], ` the rest `}` — the same
# text as json.dumps(whole, ensure_ascii=False, sort_keys=True), since "cases" sorts first.
COPY_OPEN = '{"cases": ['


def copy_case_piece(index: int, case: dict[str, Any]) -> str:
    return (", " if index else "") + json.dumps(case, ensure_ascii=False, sort_keys=True)


def copy_close(head: dict[str, Any]) -> str:
    rest = json.dumps(head, ensure_ascii=False, sort_keys=True)[1:]
    return "]" + (", " + rest if rest != "}" else rest)


async def data_copy(ctx: AccessContext, *, max_bytes: int | None = None) -> str:
    """Her whole copy as one JSON text (the deprecated GraphQL field): ResponseTooLarge once it
    passes `max_bytes`, so it is never built larger than that plus one case."""
    head, case_ids = await data_copy_head(ctx, via="graphql")
    pieces = [COPY_OPEN]
    size = len(COPY_OPEN)
    for index, case_id in enumerate(case_ids):
        piece = copy_case_piece(index, await case_copy(ctx, case_id))
        size += len(piece.encode())
        if max_bytes is not None and size > max_bytes:
            raise ResponseTooLarge(max_bytes)
        pieces.append(piece)
    pieces.append(copy_close(head))
    return "".join(pieces)


INCIDENT_KEYS = {"description": "description", "alleged_source_as_reported":
                 "allegedSourceAsReported", "location_coarse": "locationCoarse",
                 "location_precise": "locationPrecise"}


async def case_copy(ctx: AccessContext, case_id: uuid.UUID) -> dict[str, Any]:
    """One of her cases and its incidents, every detail opened (null where erased or
    unreadable), through the read path like any other read of them."""
    from app.read import cases as case_read
    from app.read.gate import Want

    want = Want(frozenset({"summary", "incidents"}),
                {"incidents": Want(frozenset(INCIDENT_KEYS))})
    [view] = await case_read.mine(ctx, want, only=case_id)
    c = view.row
    return {"id": str(c.id), "status": c.status, "riskLevel": c.risk_level,
            "openedAt": c.opened_at.isoformat(),
            "summary": view.gate.values.get("summary"),
            "incidents": [{
                "id": str(i.row.id), "type": i.row.type, "severity": i.row.severity,
                "status": i.row.status, "reportedAt": i.row.reported_at.isoformat(),
                **{key: i.gate.values.get(column) for column, key in INCIDENT_KEYS.items()}}
                for i in view.children.get("incidents", [])]}


async def request_correction(ctx: AccessContext, field: str, message: str) -> DataRequest:
    pb_id = my_id(ctx)
    if field not in PROFILE_FIELDS and field not in {"summary", "pseudonym", "other"}:
        raise BadInput("Name the field to correct (a profile field, summary or other).",
                       field="field")
    if not message.strip() or len(message) > 2000:
        raise BadInput("Say what is wrong (at most 2000 characters).", field="message")
    request = DataRequest(id=new_id(), peacebuilder_id=pb_id, kind="correction", field=field,
                          requested_by=ctx.principal.subject, created_at=ctx.clock.now())
    request.message = await sealing.seal(ctx, sealing.data_request_ref(request), message.strip(),
                                         input_field="message")
    ctx.session.add(request)
    await ctx.session.flush()
    ctx.record("data.correction_request", target_type="Peacebuilder", target_id=pb_id,
               details={"field": field})
    return request


async def my_requests(ctx: AccessContext) -> list[DataRequest]:
    from sqlalchemy import select

    rows = await ctx.session.scalars(select(DataRequest).where(
        DataRequest.peacebuilder_id == my_id(ctx)).order_by(DataRequest.created_at))
    return list(rows)
