"""Mutations for joint risk assessments and her protection plan."""

from __future__ import annotations

from typing import Any

import strawberry

from app.read import children
from app.read.children import RowView
from app.risk import plan as risk_plan
from app.risk import service as risk
from schema import ids, permissions
from schema.common import UserError, guarded
from schema.context import Info
from schema.gated import want_of
from schema.incidents.types import Measure, MeasurePayload
from schema.permissions import Who
from schema.risk.types import (
    AnswerRiskAssessmentInput,
    ConfirmRiskAssessmentInput,
    DesignateCoveredFamilyInput,
    DraftRiskAssessmentInput,
    RiskAssessment,
    RiskAssessmentIdInput,
    RiskAssessmentPayload,
    SetMeasurePlanInput,
)


async def _payload(info: Info, row: Any, errors: list[UserError], *,
                  confirmation: Any = None) -> RiskAssessmentPayload:
    """Map a service's result to the payload: the assessment as the read path decides it for
    this caller, with its threats (no rule of the domain here: those are app/risk/service.py's)."""
    confirmation_id = (strawberry.ID(ids.encode("Confirmation", confirmation.id))
                       if confirmation is not None else None)
    if row is None:
        return RiskAssessmentPayload(assessment=None, confirmation_id=confirmation_id,
                                     user_errors=errors)
    access = info.context.access
    want = want_of(info, "assessment")
    view: RowView = await info.context.loaders.call(children.written, access,
                                                    "risk_assessments", row, want)
    threats: list[RowView] = []
    below = want.child("threats")
    if below is not None:
        found = await info.context.loaders.call(children.of_cases, access, "risk_threats",
                                                {row.case_id: view.gate}, below)
        threats = found[row.case_id]
    return RiskAssessmentPayload(assessment=RiskAssessment.from_view(view, threats),
                                 confirmation_id=confirmation_id, user_errors=errors)


@strawberry.type
class RiskMutations:
    @permissions.mutation(
        "Write the draft joint risk assessment of a case your organisation leads: threats "
        "(facts, pattern, objective, the source as she reports it, feasibility, likelihood and "
        "impact), vulnerabilities, capacities, the overall level with its reasoning, context, "
        "her own analysis, and a mandatory review date. Her consent must release "
        "`risk_assessment` to your organisation. Logged (never the text).",
        requires=[("risk_assessment", "manage"), ("case", "read")], purpose=True)
    async def draft_risk_assessment(self, info: Info,
                                    input: DraftRiskAssessmentInput) -> RiskAssessmentPayload:
        case_id = ids.decode(input.case_id, "Case", "caseId")
        spec = risk.DraftIn(
            level=input.level.value, review_at=input.review_at,
            threats=[risk.ThreatIn(
                likelihood=t.likelihood.value, impact=t.impact.value, facts=t.facts,
                pattern=t.pattern, objective=t.objective,
                source_as_reported=t.source_as_reported, feasibility=t.feasibility)
                for t in input.threats],
            vulnerabilities=input.vulnerabilities, capacities=input.capacities,
            reasoning=input.reasoning, context_notes=input.context_notes,
            her_analysis=input.her_analysis)
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            risk.draft, info.context.access, case_id, spec))
        return await _payload(info, row, errors)

    @permissions.mutation(
        "Share the draft with her for her answer (she is told; without a login, her networks' "
        "focal points). Logged.",
        requires=[("risk_assessment", "manage"), ("case", "read")], purpose=True)
    async def share_risk_assessment(self, info: Info,
                                    input: RiskAssessmentIdInput) -> RiskAssessmentPayload:
        assessment_id = ids.decode(input.id, "RiskAssessment")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            risk.share, info.context.access, assessment_id))
        return await _payload(info, row, errors)

    @permissions.mutation(
        "Her answer through her own channel (signed in herself), or her network's focal point's "
        "for her (recorded as such): agree, or contest with her view (kept beside the "
        "organisation's). Either makes it current: the case's `riskLevel` becomes its level, "
        "the previous one is superseded and its review is due at its date. Logged.",
        who=Who.HER_SIDE, purpose=True, step_up=True,
        when="the step-up applies to her network's focal point, not to her")
    async def answer_risk_assessment(self, info: Info,
                                     input: AnswerRiskAssessmentInput) -> RiskAssessmentPayload:
        assessment_id = ids.decode(input.id, "RiskAssessment")
        row, errors = await guarded(info, lambda: info.context.loaders.call(
            risk.answer, info.context.access, assessment_id, agree=input.agree,
            her_view=input.her_view, her_analysis=input.her_analysis))
        return await _payload(info, row, errors)

    @permissions.mutation(
        "She has no account and no network: record how she was consulted; it becomes current "
        "once a second focal point of your organisation confirms (confirmTwoPerson). Logged.",
        requires=[("risk_assessment", "manage"), ("case", "read")], step_up=True,
        who=Who.STAFF_PEOPLE, purpose=True, when="only a focal point may ask")
    async def confirm_risk_assessment_without_her(
            self, info: Info, input: ConfirmRiskAssessmentInput) -> RiskAssessmentPayload:
        assessment_id = ids.decode(input.id, "RiskAssessment")
        found, errors = await guarded(info, lambda: info.context.loaders.call(
            risk.confirm_without_her, info.context.access, assessment_id,
            consulted_how=input.consulted_how.value))
        asked, row = found if found is not None else (None, None)
        return await _payload(info, row, errors, confirmation=asked)

    @permissions.mutation(
        "Tie a measure of the case to her protection plan: the threat it addresses, its part of "
        "the plan, its cost (decimal with currency) and funding source, the family members she "
        "designates that it covers. For the lead or the owner organisation; her consent must "
        "release `risk_assessment` to it. Logged (never the text).",
        requires=[("measure", "manage"), ("case", "read")], purpose=True)
    async def set_measure_plan(self, info: Info, input: SetMeasurePlanInput) -> MeasurePayload:
        measure_id = ids.decode(input.measure_id, "Measure", "measureId")
        threat_id = (ids.decode(input.threat_id, "RiskThreat", "threatId")
                     if input.threat_id else None)
        spec = risk_plan.PlanIn(
            threat_id=threat_id, plan_kind=input.plan_kind.value if input.plan_kind else None,
            cost_amount=input.cost_amount, cost_currency=input.cost_currency,
            funding_source=input.funding_source, covered_family=input.covered_family)
        measure, errors = await guarded(info, lambda: info.context.loaders.call(
            risk_plan.set_plan, info.context.access, measure_id, spec))
        if measure is None:
            return MeasurePayload(measure=None, user_errors=errors)
        view = await info.context.loaders.call(children.written, info.context.access,
                                               "measures", measure, want_of(info, "measure"))
        return MeasurePayload(measure=Measure.from_view(view), user_errors=errors)

    @permissions.mutation(
        "She herself (through her own channel), or her network's focal point for her, names "
        "the family members a measure of her plan covers, in her words — no outside definition "
        "of family. Sealed with her key, category `risk_assessment`. Logged (a count, never the "
        "names).",
        who=Who.HER_SIDE, step_up=True, purpose=True,
        when="the step-up applies to her network's focal point, not to her")
    async def designate_covered_family(self, info: Info,
                                       input: DesignateCoveredFamilyInput) -> MeasurePayload:
        measure_id = ids.decode(input.measure_id, "Measure", "measureId")
        measure, errors = await guarded(info, lambda: info.context.loaders.call(
            risk_plan.designate_family, info.context.access, measure_id, input.family))
        if measure is None:
            return MeasurePayload(measure=None, user_errors=errors)
        view = await info.context.loaders.call(children.written, info.context.access,
                                               "measures", measure, want_of(info, "measure"))
        return MeasurePayload(measure=Measure.from_view(view), user_errors=errors)
