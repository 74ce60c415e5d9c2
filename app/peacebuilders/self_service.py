"""What she does herself, signed in: her record, her cases, her grants, copies, corrections."""

from __future__ import annotations

import uuid
from typing import Any

from app.access.context import AccessContext
from app.access.principal import PrincipalKind
from app.cases import repository as cases_repo
from app.cases.models import Case
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


async def my_cases(ctx: AccessContext) -> list[Case]:
    pb_id = my_id(ctx)
    return (await cases_repo.for_peacebuilders(ctx.session, ctx.care_scope(), [pb_id]))[pb_id]


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
    cases = await my_cases(ctx)
    summaries = await sealing.open_many(ctx, [(sealing.case_ref(c), c.summary) for c in cases])
    incidents = await _my_incidents(ctx, cases)
    ctx.record("data.export", target_type="Peacebuilder", target_id=pb.id,
               details={"by": "herself", "categories": sorted({d.category for d in data.values()})})
    return {
        "pseudonym": pb.pseudonym,
        "preferredLanguage": pb.preferred_language,
        "profile": dict(sorted(profile.items())),
        "cases": [{"id": str(c.id), "status": c.status, "riskLevel": c.risk_level,
                   "openedAt": c.opened_at.isoformat(), "summary": s.value,
                   "incidents": incidents.get(c.id, [])}
                  for c, s in zip(cases, summaries, strict=True)],
        "consentGrants": [{"id": str(g.id), "recipientType": g.recipient_type,
                           "recipient": str(g.recipient_id), "categories": g.categories,
                           "purposes": g.purposes, "validFrom": g.valid_from.isoformat(),
                           "validUntil": g.valid_until.isoformat() if g.valid_until else None,
                           "revokedAt": g.revoked_at.isoformat() if g.revoked_at else None}
                          for g in grants],
    }


async def _my_incidents(ctx: AccessContext, cases: list[Case]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Her incidents with their details opened (null where erased or unreadable)."""
    from app.incidents import service as incidents

    fields = {"description": "description", "alleged_source_as_reported": "allegedSourceAsReported",
              "location_coarse": "locationCoarse", "location_precise": "locationPrecise"}
    rows = await incidents.of_cases(ctx, [c.id for c in cases])
    found = [i for c in cases for i in rows.get(c.id, [])]
    opened = iter(await sealing.open_many(ctx, [
        (sealing.incident_ref(i, my_id(ctx), f), getattr(i, f)) for i in found for f in fields]))
    out: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for i in found:
        out.setdefault(i.case_id, []).append(
            {"id": str(i.id), "type": i.type, "severity": i.severity, "status": i.status,
             "reportedAt": i.reported_at.isoformat(),
             **{key: next(opened).value for key in fields.values()}})
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
