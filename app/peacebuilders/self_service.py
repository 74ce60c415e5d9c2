"""What she does herself, signed in: her record, her cases, her grants, copies, corrections."""

from __future__ import annotations

import uuid
from typing import Any

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.consent import repository as consent_repo
from app.consent.categories import PROFILE_FIELDS
from app.consent.models import BreakGlass, ConsentGrant, DataRequest, Notice
from app.db import new_id
from app.errors import BadInput, Forbidden
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


async def data_copy(ctx: AccessContext) -> dict[str, Any]:
    """Everything we hold about her, as data she can keep (logged as an export)."""
    from app.peacebuilders.service import decrypted_profile

    pb = await me(ctx)
    data = await repo.data_of(ctx.session, pb.id)
    profile = await decrypted_profile(ctx, pb.id)
    grants = await my_grants(ctx)
    cases = await _my_cases(ctx)
    ctx.record("data.export", target_type="Peacebuilder", target_id=pb.id,
               details={"by": "herself", "categories": sorted({d.category for d in data.values()})})
    return {
        "pseudonym": pb.pseudonym,
        "preferredLanguage": pb.preferred_language,
        "profile": dict(sorted(profile.items())),
        "cases": cases,
        "consentGrants": [{"id": str(g.id), "recipientType": g.recipient_type,
                           "recipient": str(g.recipient_id), "categories": g.categories,
                           "purposes": g.purposes, "validFrom": g.valid_from.isoformat(),
                           "validUntil": g.valid_until.isoformat() if g.valid_until else None,
                           "revokedAt": g.revoked_at.isoformat() if g.revoked_at else None}
                          for g in grants],
    }


INCIDENT_KEYS = {"description": "description", "alleged_source_as_reported":
                 "allegedSourceAsReported", "location_coarse": "locationCoarse",
                 "location_precise": "locationPrecise"}


async def _my_cases(ctx: AccessContext) -> list[dict[str, Any]]:
    """Her cases and their incidents, every detail opened (null where erased or unreadable),
    through the read path like any other read of them."""
    from app.read import cases as case_read
    from app.read.gate import Want

    want = Want(frozenset({"summary", "incidents"}),
                {"incidents": Want(frozenset(INCIDENT_KEYS))})
    out = []
    for view in await case_read.mine(ctx, want):
        c = view.row
        out.append({"id": str(c.id), "status": c.status, "riskLevel": c.risk_level,
                    "openedAt": c.opened_at.isoformat(),
                    "summary": view.gate.values.get("summary"),
                    "incidents": [{
                        "id": str(i.row.id), "type": i.row.type, "severity": i.row.severity,
                        "status": i.row.status, "reportedAt": i.row.reported_at.isoformat(),
                        **{key: i.gate.values.get(column)
                           for column, key in INCIDENT_KEYS.items()}}
                        for i in view.children.get("incidents", [])]})
    return out


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
