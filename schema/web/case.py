"""Case pages: the cases my organisation may reach, one case, and my working groups' shared view.

Everything comes from the API in process (`visit.query`), so what a page shows is what the
API released for this person, purpose and moment: a revoked grant is gone at the next load.
A field the API withholds reads "not shared with you" with the API's reason; a whole section
(risk assessment, proceedings...) that her consent does not release says so too, rather than
looking empty. A case that does not exist and one that is not yours give the same page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from schema.web import case_labels as labels
from schema.web import core, pages
from schema.web.core import N_, Visit, render
from schema.web.pages import VIEWER

core.NAV.append(("/cases", N_("Cases")))
core.NAV.append(("/groups", N_("Working groups")))

PAGE_SIZE = 20
MAX_PAGE_SIZE = 50
# The API's cursors are URL-safe base64 (at most 2000 characters): anything else never reaches it.
CURSOR = re.compile(r"^[A-Za-z0-9_\-]{1,2000}={0,2}$")
STATUSES = {"open": "OPEN", "on_hold": "ON_HOLD", "closed": "CLOSED"}
# Answers that all mean "no such case for you" (a malformed ID included): one 404 page.
NOTHING_THERE = frozenset({"NOT_FOUND", "BAD_USER_INPUT", "FORBIDDEN", "None"})
GRANTS_PER_DOCUMENT = 12  # aliases per document (the API allows 15)

WITHHELD = "withheld { field category reason }"

# `viewer` goes in a document of its own (WHO): beside a field the API refuses at once (a bad
# cursor or ID), its organisation's loader races the request's rollback on the one session and
# the API answers 503 (SQLite) or fails (PostgreSQL) instead of a clean error (reported).
CASES = """query Cases($first: Int, $after: String, $filter: CaseFilter) {
  cases(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id status riskLevel openedAt updatedAt
      leadOrganisation { name } peacebuilder { pseudonym } } }
  }
}"""
WHO = "query Who { " + VIEWER + " }"

CASE = """query Case($id: ID!) {
  case(id: $id) {
    id status riskLevel openedAt closedAt updatedAt summary WITHHELD
    leadOrganisation { id name }
    peacebuilder { id pseudonym }
    incidents { id type severity status reportedAt occurredAt acknowledgementDeadline
      acknowledgedAt description locationCoarse WITHHELD }
    currentRiskAssessment { id status overallLevel reasoning reviewAt answeredAt answeredBy
      herView WITHHELD threats { id likelihood impact facts WITHHELD } }
    measures { id kind status dueAt threatId planKind description owner { name }
      ownerPerson { displayName } WITHHELD }
    proceedings { id kind nextHearingAt updatedAt details WITHHELD }
    hearings { id proceedingId scheduledAt status }
    timeline { kind at actor subjectId organisation { name } }
  }
}""".replace("WITHHELD", WITHHELD)

GRANT_FIELDS = """id status categories purposes validFrom validUntil revokedAt recipientType
  recipientOrganisation { name } recipientWorkingGroup { id }"""
REFERRAL_FIELDS = """id purpose status createdAt respondBy caseId
  fromOrganisation { name } toOrganisation { name }"""
AROUND = """query CaseAround {
  incoming: referrals(incoming: true) { REFERRAL }
  outgoing: referrals(incoming: false) { REFERRAL }
  workingGroups(first: 100) { edges { node { id name } } }
}""".replace("REFERRAL", REFERRAL_FIELDS)
AROUND_WITH_GRANTS = """query CaseAround($pb: ID!) {
  incoming: referrals(incoming: true) { REFERRAL }
  outgoing: referrals(incoming: false) { REFERRAL }
  workingGroups(first: 100) { edges { node { id name } } }
  consentGrants(peacebuilderId: $pb) { GRANT }
}""".replace("REFERRAL", REFERRAL_FIELDS).replace("GRANT", GRANT_FIELDS)

GROUPS = """query Groups {
  VIEWER
  workingGroups(first: 100) { edges { node { id name convener { name } members { name } } } }
}""".replace("VIEWER", VIEWER)
GROUP = """query Group($id: ID!) {
  workingGroup(id: $id) { id name convener { name } members { name } }
}"""
SHARED_CANDIDATES = """query SharedCandidates {
  cases(first: 50, filter: {status: OPEN}) { edges { node { id status riskLevel openedAt
    leadOrganisation { name } peacebuilder { id pseudonym } } } }
}"""


def withheld_of(obj: dict[str, Any] | None) -> dict[str, str]:
    """field -> the API's reason, for one consent-gated object."""
    return {w["field"]: w["reason"] for w in ((obj or {}).get("withheld") or [])}


@dataclass(frozen=True)
class Released:
    """What her consent releases to this caller for the declared purpose, from the grants the
    API shows (to label an empty section: nothing recorded, or nothing shared with you)."""

    categories: frozenset[str]
    need_to_know: bool

    def reason(self, category: str) -> str | None:
        if self.need_to_know:
            return "NEED_TO_KNOW"
        return None if category in self.categories else "CONSENT_DOES_NOT_COVER"


def released_by(grants: list[dict[str, Any]], purpose: str | None,
                case: dict[str, Any]) -> Released:
    wanted = (purpose or "").upper()
    categories = {c for g in grants if g.get("status") == "LIVE" and wanted in (g.get("purposes")
                                                                                 or [])
                  for c in g.get("categories") or []}
    need_to_know = "NEED_TO_KNOW" in withheld_of(case).values()
    return Released(frozenset(categories), need_to_know)


def not_found(visit: Visit) -> Response:
    """The one not-found page for every ID under /cases and /groups: rendered as if for the
    list's path, so nothing of the asked ID (nor whether it exists) changes a byte."""
    scope = {**visit.request.scope, "path": "/cases", "raw_path": b"/cases", "query_string": b""}
    return pages.not_found(Request(scope, visit.request.receive), visit)


def _size(value: str | None) -> int:
    try:
        return max(1, min(MAX_PAGE_SIZE, int(value or PAGE_SIZE)))
    except ValueError:
        return PAGE_SIZE


async def cases(visit: Visit) -> Response:
    """GET /cases?status=open&after=<API cursor>&size=20"""
    params = visit.request.query_params
    status = params.get("status", "")
    after = params.get("after") or None
    if after is not None and not CURSOR.match(after):
        after = None
    size = _size(params.get("size"))
    variables: dict[str, Any] = {"first": size, "after": after,
                                 "filter": {"status": STATUSES[status]} if status in STATUSES
                                 else None}
    who = await visit.query(WHO)
    answer = await visit.query(CASES, variables)
    data = answer.data or {}
    connection = data.get("cases") or {}
    rows = [edge["node"] for edge in connection.get("edges") or []]
    page_info = connection.get("pageInfo") or {}
    base = {k: v for k, v in (("status", status if status in STATUSES else ""),
                              ("size", str(size) if size != PAGE_SIZE else "")) if v}
    cursor = page_info.get("endCursor") if page_info.get("hasNextPage") else None
    return render(visit.request, "cases.html", language=visit.language, visit=visit,
                  viewer=(who.data or {}).get("viewer"), cases=rows, answer=answer, labels=labels,
                  statuses=STATUSES, chosen=status, total=connection.get("totalCount"),
                  first_url=None if after is None else _url(base),
                  next_url=_url({**base, "after": cursor}) if cursor else None,
                  status=400 if answer.errors and not rows else 200)


def _url(params: dict[str, str]) -> str:
    return "/cases" + ("?" + urlencode(params) if params else "")


async def case_page(visit: Visit) -> Response:
    """GET /cases/{id}: the API's global ID."""
    case_id = str(visit.request.path_params["id"])
    if len(case_id) > 200:
        return not_found(visit)
    who = await visit.query(WHO)
    answer = await visit.query(CASE, {"id": case_id})
    data = answer.data or {}
    case = data.get("case")
    if not case:
        if answer.codes - NOTHING_THERE:
            return render(visit.request, "error.html", language=visit.language, visit=visit,
                          viewer=None, status=503, kind="unavailable")
        return not_found(visit)
    pb = case.get("peacebuilder") or {}
    if pb.get("id"):
        around = await visit.query(AROUND_WITH_GRANTS, {"pb": pb["id"]})
    else:
        around = await visit.query(AROUND)
    side = around.data or {}
    grants = side.get("consentGrants") or []
    groups = {e["node"]["id"]: e["node"]["name"]
              for e in ((side.get("workingGroups") or {}).get("edges") or [])}
    referrals = [r for r in (side.get("incoming") or []) + (side.get("outgoing") or [])
                 if r.get("caseId") == case["id"]]
    assessment = case.get("currentRiskAssessment")
    threats = {t["id"]: i for i, t in enumerate((assessment or {}).get("threats") or [], 1)}
    now = visit.runtime.clock.now()
    overdue = {i["id"] for i in case.get("incidents") or [] if not i.get("acknowledgedAt")
               and datetime.fromisoformat(i["acknowledgementDeadline"]) < now}
    hearings: dict[str, list[dict[str, Any]]] = {}
    for hearing in case.get("hearings") or []:
        hearings.setdefault(hearing["proceedingId"], []).append(hearing)
    return render(visit.request, "case.html", language=visit.language, visit=visit,
                  viewer=(who.data or {}).get("viewer"), case=case, answer=answer,
                  labels=labels, withheld_of=withheld_of, grants=grants, groups=groups,
                  referrals=referrals, threats=threats, hearings=hearings, overdue=overdue,
                  details_of=details_of, actor_of=actor_of,
                  released=released_by(grants, visit.purpose, case))


def details_of(raw: str | None) -> list[tuple[str, str]]:
    """A proceeding's recorded details (a JSON object) as label/value pairs, in order."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return [("", raw)]
    if not isinstance(value, dict):
        return [("", str(value))]
    return [(str(k).replace("_", " "), v if isinstance(v, str) else json.dumps(v))
            for k, v in value.items()]


def actor_of(entry: dict[str, Any]) -> str:
    """Who made a timeline change, without a person's identifier: her, an organisation, the
    service."""
    if str(entry.get("actor", "")).startswith("peacebuilder:"):
        return "her"
    if entry.get("organisation"):
        return "organisation"
    return "service"


async def _shared_cases(visit: Visit, group_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """For each group: the open cases I can see that her live consent shares with it, with the
    categories it covers. Her grants come from the API, a few women per document."""
    found = await visit.query(SHARED_CANDIDATES)
    nodes = [e["node"] for e in (((found.data or {}).get("cases") or {}).get("edges") or [])]
    by_pb: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        pb_id = (node.get("peacebuilder") or {}).get("id")
        if pb_id:
            by_pb.setdefault(pb_id, []).append(node)
    shared: dict[str, list[dict[str, Any]]] = {g: [] for g in group_ids}
    women = list(by_pb)
    for start in range(0, len(women), GRANTS_PER_DOCUMENT):
        chunk = women[start:start + GRANTS_PER_DOCUMENT]
        params = ", ".join(f"$p{i}: ID!" for i in range(len(chunk)))
        fields = " ".join(f"g{i}: consentGrants(peacebuilderId: $p{i}) {{ {GRANT_FIELDS} }}"
                          for i in range(len(chunk)))
        answer = await visit.query(f"query Shared({params}) {{ {fields} }}",
                                   {f"p{i}": pb for i, pb in enumerate(chunk)})
        for i, pb in enumerate(chunk):
            for grant in (answer.data or {}).get(f"g{i}") or []:
                group = (grant.get("recipientWorkingGroup") or {}).get("id")
                if grant.get("status") != "LIVE" or group not in shared:
                    continue
                for node in by_pb[pb]:
                    shared[group].append({"case": node, "grant": grant})
    return shared


async def groups(visit: Visit) -> Response:
    """GET /groups: the working groups my organisation belongs to or convenes, and what is
    shared with each."""
    answer = await visit.query(GROUPS)
    data = answer.data or {}
    found = [e["node"] for e in ((data.get("workingGroups") or {}).get("edges") or [])]
    shared = await _shared_cases(visit, [g["id"] for g in found]) if found else {}
    return render(visit.request, "groups.html", language=visit.language, visit=visit,
                  viewer=data.get("viewer"), groups=found, shared=shared, answer=answer,
                  labels=labels, single=False)


async def group_page(visit: Visit) -> Response:
    """GET /groups/{id}: one working group and what is shared with it."""
    group_id = str(visit.request.path_params["id"])
    if len(group_id) > 200:
        return not_found(visit)
    who = await visit.query(WHO)
    answer = await visit.query(GROUP, {"id": group_id})
    data = answer.data or {}
    group = data.get("workingGroup")
    if not group:
        return not_found(visit)
    shared = await _shared_cases(visit, [group["id"]])
    return render(visit.request, "groups.html", language=visit.language, visit=visit,
                  viewer=(who.data or {}).get("viewer"), groups=[group], shared=shared,
                  answer=answer,
                  labels=labels, single=True)
