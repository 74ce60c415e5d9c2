"""Gates (guidance 7: before making the relationship public, before widening who knows): a
public act, a new referral and a new grant to a working group need a current risk assessment of
the case younger than the acting organisation's maximum age (tenants/
`risk_assessment_max_age_days`, default 90). Emergency response under an open break-glass is
never gated; that it passed ungated is logged."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from app.access.context import AccessContext
from app.errors import BadInput
from app.tables.cases import Case
from app.tables.categories import Purpose
from app.tables.consent import BreakGlass
from app.tables.operations import OrganisationSettings
from app.tables.risk import ANSWERED, RiskAssessment

DEFAULT_MAX_AGE_DAYS = 90


class RiskAssessmentRequired(BadInput):
    """The act needs a current, recent enough joint risk assessment of the case."""

    code = "RISK_ASSESSMENT_REQUIRED"


async def max_age(ctx: AccessContext, org_id: uuid.UUID) -> timedelta:
    days = await ctx.org_fact(select(OrganisationSettings.risk_max_age_days).where(
        OrganisationSettings.org_id == org_id))
    return timedelta(days=int(days or DEFAULT_MAX_AGE_DAYS))


async def _break_glass_open(ctx: AccessContext, pb_id: uuid.UUID) -> uuid.UUID | None:
    if ctx.purpose != Purpose.EMERGENCY_RESPONSE.value or ctx.org_id is None:
        return None
    now = ctx.clock.now()
    found: uuid.UUID | None = await ctx.session.scalar(select(BreakGlass.id).where(
        BreakGlass.peacebuilder_id == pb_id, BreakGlass.org_id == ctx.org_id,
        BreakGlass.closed_at.is_(None), BreakGlass.expires_at > now).limit(1))
    return found


async def require_current(ctx: AccessContext, case: Case, act: str, *,
                          field: str | None = None) -> None:
    """Refuse `act` (a code: public_act, referral, working_group_grant) on `case` without a
    current assessment younger than the caller's organisation's maximum age."""
    glass = await _break_glass_open(ctx, case.peacebuilder_id)
    if glass is not None:
        ctx.record("risk_gate.break_glass", target_type="Case", target_id=case.id,
                   details={"act": act, "break_glass": str(glass)})
        return
    org = ctx.org_id or case.lead_org_id
    oldest = ctx.clock.now() - await max_age(ctx, org)
    answered_at = await ctx.session.scalar(select(RiskAssessment.answered_at).where(
        RiskAssessment.case_id == case.id, RiskAssessment.status.in_(ANSWERED))
        .order_by(RiskAssessment.answered_at.desc()).limit(1))
    if answered_at is not None and answered_at >= oldest:
        return
    ctx.deny(f"risk_gate.{act}", target_type="Case", target_id=case.id,
             reason="no current risk assessment" if answered_at is None
             else "risk assessment older than the organisation's maximum age")
    raise RiskAssessmentRequired(
        "This needs a current joint risk assessment of the case, agreed or contested by her, "
        "younger than your organisation's maximum age: assess the risk with her first.",
        field=field)


async def require_for_peacebuilder(ctx: AccessContext, pb_id: uuid.UUID, act: str, *,
                                   field: str | None = None) -> None:
    """The gate for an act on her rather than on one case: each of her open cases."""
    for case in await ctx.session.scalars(select(Case).where(
            Case.peacebuilder_id == pb_id, Case.status != "closed")):
        await require_current(ctx, case, act, field=field)
