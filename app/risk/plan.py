"""Her protection plan: the case's measures (app/incidents/response.py, with their owners, due
dates, statuses and overdue escalation) extended with the threat each addresses, its part of the
plan (day to day, preventive protocol, emergency protocol), its cost as a decimal with currency
and funding source, and the family members she designated that it covers — category
risk_assessment; the funding source and family are sealed with her key."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.access.context import AccessContext
from app.cases import service as cases
from app.consent.service import Caller, standing
from app.errors import BadInput, NotFound
from app.her import sealing
from app.incidents.service import event
from app.risk.refs import plan_ref
from app.tables.cases import Case
from app.tables.categories import RISK_CATEGORY
from app.tables.incidents import Measure
from app.tables.risk import PlanKind, RiskThreat

CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_COST = Decimal("1000000000")
MAX_FAMILY = 20


@dataclass(frozen=True, slots=True)
class PlanIn:
    threat_id: uuid.UUID | None = None
    plan_kind: str | None = None
    cost_amount: str | None = None
    cost_currency: str | None = None
    funding_source: str | None = None
    covered_family: list[str] | None = None


def _cost(amount: str | None, currency: str | None) -> tuple[str | None, str | None]:
    if amount is None and currency is None:
        return None, None
    if amount is None or currency is None or not CURRENCY.match(currency):
        raise BadInput("A cost is an amount with its ISO 4217 currency (e.g. 1200.50 KES).",
                       field="costCurrency" if amount is not None else "costAmount")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise BadInput("A decimal amount, e.g. 1200.50.", field="costAmount") from None
    exponent = value.as_tuple().exponent
    if (not value.is_finite() or value < 0 or value > MAX_COST
            or (isinstance(exponent, int) and exponent < -2)):
        raise BadInput("A decimal amount from 0, at most two decimals.", field="costAmount")
    return str(value), currency


def _family(names: list[str] | None) -> list[str]:
    family = [f.strip() for f in names or [] if f.strip()]
    if len(family) > MAX_FAMILY or any(len(f) > 200 for f in family):
        raise BadInput(f"At most {MAX_FAMILY} family members she designates.",
                       field="coveredFamily")
    return family


async def _seal_family(ctx: AccessContext, measure: Measure, pb: uuid.UUID,
                       family: list[str]) -> None:
    measure.covered_family = await sealing.seal(
        ctx, plan_ref(measure, pb, "covered_family"),
        json.dumps(family, ensure_ascii=False) if family else None)


async def designate_family(ctx: AccessContext, measure_id: uuid.UUID,
                           names: list[str]) -> Measure:
    """She herself (or her network's focal point for her, after step-up) names the family
    members a measure of her plan covers, in her words: no outside definition of family."""
    measure = await ctx.session.get(Measure, measure_id)
    if measure is None:
        raise NotFound()
    case = await ctx.session.get(Case, measure.case_id)
    assert case is not None
    pb = case.peacebuilder_id
    who = await standing(ctx, pb, action="measure.family")
    if who.caller not in (Caller.HERSELF, Caller.NETWORK):
        ctx.deny("measure.family", target_type="Peacebuilder", target_id=pb,
                 reason="only she or her network")
        raise NotFound()
    if who.caller is Caller.NETWORK:
        ctx.require_recent_mfa("measure.family", target_type="Peacebuilder", target_id=pb)
    family = _family(names)
    await _seal_family(ctx, measure, pb, family)
    details = {"measure": str(measure.id), "family_covered": len(family),
               "by": "herself" if who.herself else "her_network"}
    event(ctx, case.id, "measure.family_designated", measure.id, details)
    ctx.record("measure.family", target_type="Case", target_id=case.id, details=details)
    return measure


async def set_plan(ctx: AccessContext, measure_id: uuid.UUID, spec: PlanIn) -> Measure:
    """Tie a measure of the case to her plan (the lead organisation, or the measure's owner)."""
    await ctx.require("measure", "manage")
    measure = await ctx.session.get(Measure, measure_id)
    if measure is None:
        raise NotFound()
    case = await cases.get(ctx, measure.case_id)
    if ctx.org_id not in (case.lead_org_id, measure.owner_org_id):
        raise NotFound()
    pb = case.peacebuilder_id
    if RISK_CATEGORY.value not in (await ctx.released([pb])).get(pb, ()):
        ctx.deny("measure.plan", target_type="Case", target_id=case.id,
                 reason="consent does not cover risk_assessment")
        raise BadInput("Her consent does not cover her protection plan for this purpose.",
                       field="measureId")
    if spec.threat_id is not None:
        threat = await ctx.session.get(RiskThreat, spec.threat_id)
        if threat is None or threat.case_id != case.id:
            raise BadInput("A threat of this case's risk assessment.", field="threatId")
    if spec.plan_kind is not None and spec.plan_kind not in {k.value for k in PlanKind}:
        raise BadInput("Day to day, preventive protocol or emergency protocol.", field="planKind")
    amount, currency = _cost(spec.cost_amount, spec.cost_currency)
    funding = (spec.funding_source or "").strip() or None
    if funding is not None and len(funding) > 2000:
        raise BadInput("At most 2000 characters.", field="fundingSource")
    family = _family(spec.covered_family)
    measure.threat_id, measure.plan_kind = spec.threat_id, spec.plan_kind
    measure.cost_amount, measure.cost_currency = amount, currency
    measure.funding_source = await sealing.seal(ctx, plan_ref(measure, pb, "funding_source"),
                                                funding)
    if spec.covered_family is not None:  # unchanged when omitted: she may have named them
        await _seal_family(ctx, measure, pb, family)
    details = {"measure": str(measure.id), "threat": str(spec.threat_id) if spec.threat_id
               else None, "plan_kind": spec.plan_kind, "costed": amount is not None,
               **({"family_covered": len(family)} if spec.covered_family is not None else {})}
    event(ctx, case.id, "measure.planned", measure.id, details)
    ctx.record("measure.plan", target_type="Case", target_id=case.id, details=details)
    return measure
