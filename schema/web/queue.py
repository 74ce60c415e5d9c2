"""My organisation's queue: what needs someone's attention now.

Open incidents of the cases my organisation leads (acknowledgement deadline, escalation level,
acknowledge from here), tasks past their due date, risk-assessment reviews coming due and
check-ins due or missed — all read through the API with the person's own token and purpose, so
what the queue shows is what her consent releases to this organisation. The part under the
heading is also served alone (`/queue/fragment`) for the live updates (schema/web/live.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from schema.web import case_labels as labels
from schema.web import core
from schema.web.core import N_, Visit, redirect, render
from schema.web.pages import VIEWER, form_of

VIEWER_WITH_ORG = VIEWER.replace("organisation { name }", "organisation { id name }")
# One document, well within the API's cost budget per request: the cost model counts each
# list of a case as a page of 20, so a queue view costs about 125 per case against the person's
# hourly cost quota (200,000 by default). 25 cases keep a view near 3,100.
PAGE = 25
QUEUE = """query Queue {
  VIEWER
  cases(first: PAGE) {
    pageInfo { hasNextPage }
    edges { node { id status riskLevel openedAt
      leadOrganisation { id }
      incidents { id type severity status reportedAt acknowledgementDeadline acknowledgedAt }
      timeline { kind subjectId data }
      measures { id kind status dueAt owner { id name } }
      currentRiskAssessment { status reviewAt overallLevel }
      checkIns { id dueAt status missedAt }
    } }
  }
}""".replace("VIEWER", VIEWER_WITH_ORG).replace("PAGE", str(PAGE))
ACKNOWLEDGE = """mutation Acknowledge($id: ID!) {
  acknowledgeIncident(input: {incidentId: $id}) {
    incident { id status acknowledgedAt }
    userErrors { field message code }
  }
}"""

OPEN_INCIDENT = ("REPORTED", "ACKNOWLEDGED", "RESPONDING")
OPEN_TASK = ("planned", "in_progress")
REVIEW_AHEAD = timedelta(days=7)  # a review due within a week is on the queue
CHECK_IN_AHEAD = timedelta(hours=24)  # a check-in due within a day is on the queue

# Enum codes as the API answers them -> the label shown (translated where shown).
LABELS: dict[str, dict[str, str]] = {
    "incident_type": labels.INCIDENT_TYPE,
    "severity": labels.LEVEL,
    # The queue says what is waiting: a reported incident is not acknowledged yet.
    "incident_status": {**labels.INCIDENT_STATUS, "REPORTED": N_("Reported, not acknowledged")},
    "measure_kind": labels.MEASURE_KIND,
    "measure_status": labels.MEASURE_STATUS,
    "assessment_status": {
        "DRAFT": N_("Draft"),
        "SHARED_WITH_HER": N_("Shared with her"),
        "AGREED": N_("Agreed"),
        "CONTESTED": N_("Contested"),
        "SUPERSEDED": N_("Superseded"),
    },
    "check_in_status": {
        "PENDING": N_("Due"),
        "DONE": N_("Done"),
        "MISSED": N_("Missed"),
        "LATE": N_("Late"),
        "RESOLVED": N_("Resolved"),
        "ENDED": N_("Ended"),
    },
    "risk": labels.LEVEL,
}


def label(kind: str, code: object) -> str:
    """The untranslated label of an enum code (the template translates it); the code itself
    only for a value this page does not know yet."""
    return LABELS.get(kind, {}).get(str(code), str(code))


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass
class Queue:
    """What the queue shows, sorted: most urgent first in each list."""

    incidents: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    check_ins: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False  # more cases than one page: the lists are not complete

    @property
    def digest(self) -> str:
        """A fingerprint of what the lists show (IDs, codes, times: nothing readable), so the
        page's script swaps and announces only a change."""
        raw = json.dumps(asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha256(raw).hexdigest()[:20]


def escalation_levels(case: dict[str, Any]) -> dict[str, int]:
    """The highest level each incident's escalation reached (its case timeline's
    `incident.escalated` steps, codes only)."""
    levels: dict[str, int] = {}
    for event in case.get("timeline") or []:
        if event.get("kind") != "incident.escalated" or not event.get("subjectId"):
            continue
        level = (event.get("data") or {}).get("level")
        if isinstance(level, int):
            levels[event["subjectId"]] = max(level, levels.get(event["subjectId"], 0))
    return levels


def build(data: dict[str, Any], now: datetime) -> Queue:
    viewer_org = (((data.get("viewer") or {}).get("organisation")) or {}).get("id")
    connection = data.get("cases") or {}
    queue = Queue(more=bool((connection.get("pageInfo") or {}).get("hasNextPage")))
    for edge in connection.get("edges") or []:
        case = edge.get("node") or {}
        if case.get("status") == "CLOSED":
            continue
        ours = ((case.get("leadOrganisation") or {}).get("id")) == viewer_org
        ref = {"id": case["id"], "openedAt": case.get("openedAt")}
        levels = escalation_levels(case)
        open_incidents = [i for i in case.get("incidents") or [] if i["status"] in OPEN_INCIDENT]
        if ours:
            queue.cases.append({**ref, "riskLevel": case.get("riskLevel"),
                                "status": case.get("status"),
                                "openIncidents": len(open_incidents)})
            for incident in open_incidents:
                deadline = _when(incident.get("acknowledgementDeadline"))
                waiting = incident["status"] == "REPORTED"
                queue.incidents.append({
                    **incident, "case": ref, "level": levels.get(incident["id"], 0),
                    "waiting": waiting,
                    "overdue": waiting and deadline is not None and deadline <= now})
        for measure in case.get("measures") or []:
            due = _when(measure.get("dueAt"))
            owner = (measure.get("owner") or {}).get("id")
            if (measure.get("status") in OPEN_TASK and due is not None and due <= now
                    and (owner == viewer_org or (owner is None and ours))):
                queue.tasks.append({**measure, "case": ref})
        assessment = case.get("currentRiskAssessment")
        review = _when((assessment or {}).get("reviewAt"))
        if ours and assessment and review is not None and review <= now + REVIEW_AHEAD:
            queue.reviews.append({**assessment, "case": ref, "overdue": review <= now})
        if ours:
            for check_in in case.get("checkIns") or []:
                due = _when(check_in.get("dueAt"))
                if check_in["status"] == "MISSED" or (
                        check_in["status"] == "PENDING" and due is not None
                        and due <= now + CHECK_IN_AHEAD):
                    queue.check_ins.append({**check_in, "case": ref,
                                            "overdue": due is not None and due <= now})
    # Waiting for acknowledgement first, the earliest deadline first.
    queue.incidents.sort(key=lambda i: (not i["waiting"], i.get("acknowledgementDeadline") or ""))
    queue.tasks.sort(key=lambda t: t.get("dueAt") or "")
    queue.reviews.sort(key=lambda r: r.get("reviewAt") or "")
    queue.check_ins.sort(key=lambda c: (c["status"] != "MISSED", c.get("dueAt") or ""))
    return queue


async def _load(visit: Visit) -> tuple[Queue, Any, dict[str, Any]]:
    answer = await visit.query(QUEUE)
    data = answer.data or {}
    return build(data, visit.runtime.clock.now()), answer, data


def _render(visit: Visit, template: str, queue: Queue, answer: Any, viewer: Any,
            **extra: Any) -> Response:
    return render(visit.request, template, language=visit.language, visit=visit, viewer=viewer,
                  queue=queue, answer=answer, label=label, **extra)


async def queue(visit: Visit) -> Response:
    items, answer, data = await _load(visit)
    done = visit.request.query_params.get("done")
    return _render(visit, "queue.html", items, answer, data.get("viewer"),
                   done=done if done == "acknowledged" else None, problems=[])


async def acknowledge(visit: Visit) -> Response:
    """The API's acknowledgeIncident; back to the queue (its refusal shown on it)."""
    incident_id = str(form_of(visit).get("incident", ""))[:200]
    answer = await visit.query(ACKNOWLEDGE, {"id": incident_id})
    result = (answer.data or {}).get("acknowledgeIncident") or {}
    problems = [str(e.get("message") or "") for e in result.get("userErrors") or []]
    if not problems and answer.errors:
        problems = [""]  # refused as a whole (not found, not allowed): its codes are shown
    if not problems and result.get("incident"):
        return redirect("/queue?done=acknowledged")
    items, page_answer, data = await _load(visit)
    # 200, not 4xx: the boosted form swaps the answer in only on success codes.
    return _render(visit, "queue.html", items, page_answer, data.get("viewer"), done=None,
                   problems=problems, problem_codes=sorted(answer.codes - {"None"}))


async def fragment(request: Request) -> Response:
    """The queue's lists alone, for the live updates. Fetched by the page itself, so it does not
    count as her activity (the idle clock stays); signed out or without a purpose: 401/403 and
    no content (the script then reloads the whole page, which says why)."""
    visit = await core.visit(request, touch=False)
    if visit is None:
        return Response(status_code=401, headers=core.PAGE_HEADERS)
    if visit.is_her:
        return Response(status_code=404, headers=core.PAGE_HEADERS)
    if visit.purpose is None:
        return Response(status_code=403, headers=core.PAGE_HEADERS)
    try:
        items, answer, data = await _load(visit)
    except core.SignedOut:
        return Response(status_code=401, headers=core.PAGE_HEADERS)
    return _render(visit, "queue_part.html", items, answer, data.get("viewer"), alone=True)
