"""Incidents: reported, acknowledged within a deadline or escalated, and always visible to her.

Guidance 7, 8, 19: nothing ignored, nothing handled ad hoc, no assumptions about the source —
`alleged_source_as_reported` is stored exactly as reported and never filled in.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.access.context import AccessContext
from app.cases import service as cases
from app.db import new_id
from app.errors import BadInput, Conflict, NotFound
from app.escalation import service as escalation
from app.her import sealing
from app.her.notices import NoticeKind, tell_her
from app.notify import service as notify
from app.tables import declared
from app.tables.cases import Case
from app.tables.categories import INCIDENT_CODES, INCIDENT_FIELDS
from app.tables.incidents import (
    AckPolicy,
    CaseEvent,
    Incident,
    IncidentStatus,
    IncidentType,
    ReportChannel,
    Reporter,
    Severity,
)

# Default acknowledgement deadlines (minutes); organisations can set their own.
DEFAULT_ACK_MINUTES = {Severity.CRITICAL: 60, Severity.HIGH: 4 * 60, Severity.MEDIUM: 24 * 60,
                       Severity.LOW: 72 * 60}
REPORTERS = {r.value for r in Reporter}
CHANNELS = {c.value for c in ReportChannel}
MAX_TEXT = 20_000


def event(ctx: AccessContext, case_id: uuid.UUID, kind: str, subject_id: uuid.UUID | None,
          details: dict[str, Any] | None = None) -> None:
    """One step on the case timeline (IDs and codes only)."""
    ctx.session.add(CaseEvent(case_id=case_id, kind=kind, subject_id=subject_id,
                              actor=ctx.principal.subject, org_id=ctx.principal.org_id,
                              details=details, at=ctx.clock.now()))


async def ack_minutes(ctx: AccessContext, org_id: uuid.UUID, severity: str) -> int:
    """The lead organisation's deadline (read as its own setting even when she reports)."""
    custom = await ctx.org_fact(select(AckPolicy.minutes).where(
        AckPolicy.org_id == org_id, AckPolicy.severity == severity))
    return int(custom) if custom else DEFAULT_ACK_MINUTES[Severity(severity)]


async def set_ack_policy(ctx: AccessContext, severity: str, minutes: int) -> int:
    await ctx.require("incident_policy", "manage")
    assert ctx.org_id is not None
    if severity not in {s.value for s in Severity}:
        raise BadInput("Unknown severity.", field="severity")
    if not 1 <= minutes <= 14 * 24 * 60:
        raise BadInput("Between 1 minute and 14 days.", field="minutes")
    row = await ctx.session.scalar(select(AckPolicy).where(AckPolicy.org_id == ctx.org_id,
                                                           AckPolicy.severity == severity))
    if row is None:
        ctx.session.add(AckPolicy(org_id=ctx.org_id, severity=severity, minutes=minutes))
    else:
        row.minutes = minutes
    ctx.record("incident_policy.set", details={"severity": severity, "minutes": minutes})
    return minutes


def _text(value: str | None, field: str) -> str | None:
    if value is not None and len(value) > MAX_TEXT:
        raise BadInput(f"At most {MAX_TEXT} characters.", field=field)
    return value


async def report(
    ctx: AccessContext,
    *,
    case_id: uuid.UUID,
    type: str,
    severity: str,
    reported_by: str,
    reported_via: str,
    occurred_at: datetime | None = None,
    description: str | None = None,
    alleged_source_as_reported: str | None = None,
    location_coarse: str | None = None,
    location_precise: str | None = None,
    region_code: str | None = None,
    source_category: str | None = None,
) -> Incident:
    """Record an incident on a case the caller can see; the lead organisation's focal points
    and the case team are alerted, and acknowledgement is due by the deadline. She reports on
    her own cases (another woman's is not found): recorded as reported by herself, with no
    organisation, under the lead organisation's deadline and chain like any other."""
    await ctx.require("incident", "create")
    case = await cases.get(ctx, case_id)
    if ctx.herself:
        reported_by = "herself"
    if type not in {t.value for t in IncidentType}:
        raise BadInput("Unknown incident type.", field="type")
    if severity not in {s.value for s in Severity}:
        raise BadInput("Unknown severity.", field="severity")
    if reported_by not in REPORTERS:
        raise BadInput("reportedBy is one of " + ", ".join(sorted(REPORTERS)) + ".",
                       field="reportedBy")
    if reported_via not in CHANNELS:
        raise BadInput("reportedVia is one of " + ", ".join(sorted(CHANNELS)) + ".",
                       field="reportedVia")
    values = {"description": description, "alleged_source_as_reported": alleged_source_as_reported,
              "location_coarse": location_coarse, "location_precise": location_precise}
    released = (await ctx.released([case.peacebuilder_id])).get(case.peacebuilder_id, frozenset())
    for name, value in values.items():
        _text(value, name)
        if value is not None and INCIDENT_FIELDS[name].value not in released:
            raise BadInput("Her consent does not let you record this field for this purpose.",
                           field=name)
    codes = _codes(region_code, source_category)
    for name, value in codes.items():
        if value is not None and INCIDENT_CODES[name].value not in released:
            raise BadInput("Her consent does not let you record this field for this purpose.",
                           field="regionCode" if name == "region_code" else "sourceCategory")
    now = ctx.clock.now()
    minutes = await ack_minutes(ctx, case.lead_org_id, severity)
    incident = Incident(
        id=new_id(), case_id=case.id, type=type, severity=severity,
        status=IncidentStatus.REPORTED.value, occurred_at=occurred_at, reported_by=reported_by,
        reported_via=reported_via, reporting_org_id=ctx.org_id,  # None: herself
        recorded_by=ctx.principal.subject,
        reported_at=now, ack_deadline=now + timedelta(minutes=minutes), **codes)
    for name, value in values.items():  # sealed with her key, bound to this incident and field
        setattr(incident, name, await sealing.seal(
            ctx, sealing.incident_ref(incident, case.peacebuilder_id, name), value))
    ctx.session.add(incident)
    await ctx.session.flush()
    # Unacknowledged at its deadline, it escalates along the lead organisation's chain.
    escalation.start(ctx.session, ESCALATION, incident.id, incident.ack_deadline)
    event(ctx, case.id, "incident.reported", incident.id, {"severity": severity, "type": type})
    ctx.record("incident.report", target_type="Incident", target_id=incident.id,
               details={"case": str(case.id), "peacebuilder": str(case.peacebuilder_id),
                        "categories": sorted({INCIDENT_FIELDS[n].value for n, v in values.items()
                                              if v is not None})})
    recipients = [(s, case.lead_org_id) for s in await notify.focal_points(ctx.session,
                                                                         case.lead_org_id)]
    recipients += [(s, case.lead_org_id) for s in await team_of_lead(ctx, case)]
    await notify.notify(ctx, recipients, kind="incident_reported", subject_id=incident.id,
                        case_id=case.id, payload={"incident": str(incident.id),
                                                  "case": str(case.id), "severity": severity,
                                                  "reported_by": reported_by},
                        at=now)
    for hook in _ON_REPORTED:
        await hook(ctx, case, incident)
    return incident


def _codes(region_code: str | None, source_category: str | None) -> dict[str, str | None]:
    """The monitoring codes as declared (app/tables/declared.py), or a BadInput."""
    if region_code is not None:
        region_code = region_code.strip().upper()
        if region_code not in declared.region_codes():
            raise BadInput("regionCode is one of the declared regions: "
                           + ", ".join(sorted(declared.region_codes())) + ".", field="regionCode")
    if source_category is not None and source_category not in declared.SOURCE_CATEGORIES:
        raise BadInput("sourceCategory is one of " + ", ".join(declared.SOURCE_CATEGORIES) + ".",
                       field="sourceCategory")
    return {"region_code": region_code, "source_category": source_category}


# What other domains do when an incident is reported (app/risk: a serious one starts a
# reassessment), registered by them so this module imports none of them.
Reported = Callable[[AccessContext, Case, Incident], Awaitable[None]]
_ON_REPORTED: list[Reported] = []


def on_reported(fn: Reported) -> Reported:
    _ON_REPORTED.append(fn)
    return fn


async def team_of_lead(ctx: AccessContext, case: Case) -> list[str]:
    from app.consent import repository as consent_repo

    return [m.subject for m in await consent_repo.team_of(ctx.session, case.id, case.lead_org_id)]


async def _incident(ctx: AccessContext, incident_id: uuid.UUID) -> tuple[Incident, Case]:
    incident = await ctx.session.get(Incident, incident_id)
    if incident is None:
        raise NotFound()
    case = await cases.get(ctx, incident.case_id)  # consent + need-to-know decide, or not found
    if incident.id not in {i.id for i in (await of_cases(ctx, [case.id]))[case.id]}:
        raise NotFound()  # no consent to incident details
    return incident, case


async def get(ctx: AccessContext, incident_id: uuid.UUID) -> Incident:
    return (await _incident(ctx, incident_id))[0]


async def acknowledge(ctx: AccessContext, incident_id: uuid.UUID) -> Incident:
    """The lead organisation acknowledges: escalation steps still pending will not fire."""
    await ctx.require("incident", "update")
    incident, case = await _incident(ctx, incident_id)
    if case.lead_org_id != ctx.org_id:
        raise NotFound()
    if incident.acknowledged_at is not None:
        return incident
    incident.acknowledged_at = ctx.clock.now()
    incident.acknowledged_by = ctx.principal.subject
    incident.status = IncidentStatus.ACKNOWLEDGED.value
    event(ctx, case.id, "incident.acknowledged", incident.id)
    ctx.record("incident.acknowledge", target_type="Incident", target_id=incident.id)
    await tell_her(ctx, case.peacebuilder_id, NoticeKind.INCIDENT_ACKNOWLEDGED, case_id=case.id,
                   subject_id=incident.id)
    return incident


async def set_status(ctx: AccessContext, incident_id: uuid.UUID, status: str) -> Incident:
    await ctx.require("incident", "update")
    incident, case = await _incident(ctx, incident_id)
    if case.lead_org_id != ctx.org_id:
        raise NotFound()
    if status not in {s.value for s in IncidentStatus} or status == IncidentStatus.REPORTED:
        raise BadInput("Status is ACKNOWLEDGED, RESPONDING or RESOLVED.", field="status")
    if incident.acknowledged_at is None and status != IncidentStatus.ACKNOWLEDGED:
        raise Conflict("Acknowledge the incident first.")
    if status != incident.status:
        told = (NoticeKind.INCIDENT_ACKNOWLEDGED if incident.acknowledged_at is None
                else NoticeKind.INCIDENT_STATUS_CHANGED)
        if incident.acknowledged_at is None:
            incident.acknowledged_at = ctx.clock.now()
            incident.acknowledged_by = ctx.principal.subject
        incident.status = status
        event(ctx, case.id, "incident.status", incident.id, {"status": status})
        ctx.record("incident.status", target_type="Incident", target_id=incident.id,
                   details={"status": status})
        await tell_her(ctx, case.peacebuilder_id, told, case_id=case.id, subject_id=incident.id,
                       codes={"status": status})
    return incident


async def of_cases(ctx: AccessContext, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Incident]]:
    """Incidents of cases the caller may see, for those holding her consent to incident details
    (she herself always sees every incident's status)."""
    from app.access.visibility import Mode

    cases_seen = await _visible_cases_rows(ctx, case_ids)
    released = await ctx.released(list({c.peacebuilder_id for c in cases_seen.values()}))
    details = INCIDENT_FIELDS["description"].value
    visible = {cid for cid, case in cases_seen.items()
               if ctx.mode is Mode.SELF or details in released.get(case.peacebuilder_id, ())}
    rows = await ctx.session.scalars(select(Incident).where(Incident.case_id.in_(list(visible)))
                                     .order_by(Incident.reported_at, Incident.id))
    out: dict[uuid.UUID, list[Incident]] = {c: [] for c in case_ids}
    for incident in rows:
        out[incident.case_id].append(incident)
    return out


async def _visible_cases_rows(ctx: AccessContext, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, Case]:
    from app.cases import repository as cases_repo

    return await cases_repo.by_ids(ctx.session, ctx.care_scope(), case_ids)


ESCALATION = "escalation"


@escalation.due_item(ESCALATION)
async def _unacknowledged(session: Any, incident_id: uuid.UUID) -> escalation.Due | None:
    """An incident owes its lead organisation's chain until it is acknowledged."""
    incident = await session.get(Incident, incident_id)
    if incident is None or incident.acknowledged_at is not None:
        return None
    case = await session.get(Case, incident.case_id)
    if case is None:
        return None
    return escalation.Due("incident", case.id, case.lead_org_id, case.peacebuilder_id,
                          {"incident": str(incident.id), "case": str(case.id),
                           "severity": incident.severity})
