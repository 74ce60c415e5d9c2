"""Auditors' page (/audit): the access log with filters and cursor pages, the signed export as a
download, and the chain's verification against the newest checkpoint.

Everything comes from the API as the auditor: `accessLog`, `accessLogOrganisations` and
`accessLogVerification` through GraphQL, the export from `GET /audit/export` called in process
with her own token and declared purpose (its step-up rule and log entry included). Filters are
in the URL as codes, dates and opaque IDs only (no pseudonym: that would be personal data)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from schema.web import core
from schema.web.audit_actions import ACTIONS
from schema.web.core import N_, Visit, render
from schema.web.pages import VIEWER, form_of, not_found

AUDIT_ROLES = frozenset({"AUDITOR"})
core.NAV.append(("/audit", N_("Access log")))
core.NAV_ROLES["/audit"] = AUDIT_ROLES
PAGE_SIZE = 25
FORMATS = ("jsonl", "csv")
DECISIONS = ("allow", "deny")
DECISION_LABELS = {"allow": N_("Allowed"), "deny": N_("Refused")}
EXPORT_REFUSALS = {
    "STEP_UP_REQUIRED": N_("An export needs a sign-in with your second factor in the last "
                           "15 minutes. Sign out, sign in again with your code, then export."),
    "FORBIDDEN": N_("You may not export this access log."),
    "NOT_FOUND": N_("You may not export this access log."),
}

WHO = "query Who { " + VIEWER + " }"
LOG = """query AccessLog($filter: AccessLogFilter, $after: String, $first: Int) {
  accessLogVerification { state checkpointSize checkpointAt checkpointKeyId checkpointHead
    checkedFrom checkedThrough pending firstBadSeq problems }
  accessLogOrganisations { id name }
  accessLog(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id seq at actor purpose action targetType decision reason
      organisation { name } } }
  }
}"""


def roles_of(viewer: dict[str, Any] | None) -> set[str]:
    return set((viewer or {}).get("roles") or [])


async def viewer_with(visit: Visit, roles: frozenset[str]) -> dict[str, Any] | None:
    """The signed-in person, if she holds one of `roles` (else None: the page is not found)."""
    who = await visit.query(WHO)
    viewer = (who.data or {}).get("viewer")
    return viewer if roles_of(viewer) & roles else None


def ask_purpose(visit: Visit, viewer: dict[str, Any]) -> Response:
    return render(visit.request, "purpose.html", language=visit.language, visit=visit,
                  viewer=viewer, next=visit.request.url.path, needed=True)


def _day(value: object) -> date | None:
    """A date the filters can use: text, and short of the calendar's last day (an end date
    is taken up to the next midnight). Anything else is dropped like a malformed date."""
    if not isinstance(value, str) or not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if day < date.max else None


def filters_of(params: Any) -> dict[str, str]:
    """The page's filters, each checked against what it may be (anything else is dropped)."""
    chosen: dict[str, str] = {}
    for name in ("from", "to"):
        if _day(params.get(name)):
            chosen[name] = str(params.get(name))
    if params.get("decision") in DECISIONS:
        chosen["decision"] = str(params["decision"])
    if params.get("purpose") in core.PURPOSE_ORDER:
        chosen["purpose"] = str(params["purpose"])
    for name in ("actor", "action", "org"):
        value = str(params.get(name) or "").strip()
        if value and len(value) <= 200:
            chosen[name] = value
    return chosen


def _midnight(day: date) -> str:
    return datetime.combine(day, time(0), tzinfo=UTC).isoformat()


def api_filter(chosen: dict[str, str]) -> dict[str, Any]:
    """The page's filters as `AccessLogFilter` (the end date is inclusive on the page)."""
    f: dict[str, Any] = {}
    if "from" in chosen:
        f["since"] = _midnight(date.fromisoformat(chosen["from"]))
    if "to" in chosen:
        f["until"] = _midnight(date.fromisoformat(chosen["to"]) + timedelta(days=1))
    if "decision" in chosen:
        f["decision"] = chosen["decision"]
    if "purpose" in chosen:
        f["purpose"] = chosen["purpose"].upper()
    if "actor" in chosen:
        f["actor"] = chosen["actor"]
    if "action" in chosen:
        f["actionPrefix"] = chosen["action"]
    if "org" in chosen:
        f["organisationId"] = chosen["org"]
    return f


def export_params(chosen: dict[str, str]) -> dict[str, str]:
    """The same filters as `GET /audit/export` takes them (it has no organisation or action)."""
    out: dict[str, str] = {}
    if "from" in chosen:
        out["from"] = _midnight(date.fromisoformat(chosen["from"]))
    if "to" in chosen:
        out["to"] = _midnight(date.fromisoformat(chosen["to"]) + timedelta(days=1))
    for name in ("decision", "purpose", "actor"):
        if name in chosen:
            out[name] = chosen[name]
    return out


async def audit_log(visit: Visit) -> Response:
    viewer = await viewer_with(visit, AUDIT_ROLES)
    if viewer is None:
        return not_found(visit.request, visit)
    if visit.purpose is None:
        return ask_purpose(visit, viewer)
    return await _log_page(visit, viewer, filters_of(visit.request.query_params))


async def _log_page(visit: Visit, viewer: dict[str, Any], chosen: dict[str, str], *,
                    export_error: str | None = None, status: int = 200) -> Response:
    after = visit.request.query_params.get("after") or None
    answer = await visit.query(LOG, {"filter": api_filter(chosen), "after": after,
                                     "first": PAGE_SIZE})
    if "FORBIDDEN" in answer.codes:
        return not_found(visit.request, visit)
    data = answer.data or {}
    log = data.get("accessLog") or {}
    entries = [edge["node"] for edge in (log.get("edges") or [])]
    info = log.get("pageInfo") or {}
    next_url = (f"/audit?{urlencode({**chosen, 'after': info['endCursor']})}"
                if info.get("hasNextPage") and info.get("endCursor") else None)
    first_url = f"/audit?{urlencode(chosen)}" if after else None
    unknown_org = "NOT_FOUND" in answer.codes and "org" in chosen
    return render(visit.request, "audit.html", language=visit.language, visit=visit,
                  viewer=viewer, answer=None if unknown_org else answer, entries=entries,
                  total=log.get("totalCount"), chosen=chosen, next_url=next_url,
                  first_url=first_url, verification=data.get("accessLogVerification"),
                  organisations=data.get("accessLogOrganisations") or [],
                  decision_labels=DECISION_LABELS, action_labels=ACTIONS, unknown_org=unknown_org,
                  export_error=export_error, formats=FORMATS, status=status,
                  filtered=bool(chosen))


async def download(visit: Visit) -> Response:
    """POST (CSRF-checked): the API's export, as the auditor, handed to the browser as a file."""
    viewer = await viewer_with(visit, AUDIT_ROLES)
    if viewer is None:
        return not_found(visit.request, visit)
    if visit.purpose is None:
        return ask_purpose(visit, viewer)
    form = form_of(visit)
    chosen = filters_of(form)
    fmt = str(form.get("format", "jsonl"))
    if fmt not in FORMATS:
        fmt = "jsonl"
    from app.audit.http import export_endpoint

    status, body, headers = await internal_get(
        visit, export_endpoint, "/audit/export", {"format": fmt, **export_params(chosen)})
    if status != 200:
        try:
            code = str(json.loads(body)["errors"][0]["extensions"]["code"])
        except (ValueError, KeyError, IndexError, TypeError):
            code = ""
        message = EXPORT_REFUSALS.get(code, N_("The export could not be made. Nothing was "
                                               "exported. Try again."))
        return await _log_page(visit, viewer, chosen, export_error=message,
                               status=403 if code in EXPORT_REFUSALS else 400)
    out = {"Content-Disposition": f'attachment; filename="access-log.{fmt}"',
           "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "default-src 'none'; sandbox"}
    if "x-safety-net-checkpoint" in headers:
        out["X-Safety-Net-Checkpoint"] = headers["x-safety-net-checkpoint"]
    return Response(body, media_type=headers.get("content-type", "application/octet-stream"),
                    headers=out)


async def internal_get(visit: Visit, endpoint: Any, path: str, params: dict[str, str]
                       ) -> tuple[int, bytes, dict[str, str]]:
    """Call one of the API's own HTTP endpoints in process, as the browser's person (her
    token and declared purpose as headers): the same checks and log entries as for a client."""
    outer: Request = visit.request
    headers = [(b"authorization", b"Bearer " + visit.browser.tokens.access.encode())]
    if visit.purpose:
        headers.append((b"safety-net-purpose", visit.purpose.encode()))
    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "root_path": "", "query_string": urlencode(params).encode(), "headers": headers,
        "http_version": "1.1", "scheme": outer.url.scheme, "client": outer.scope.get("client"),
        "server": outer.scope.get("server"), "app": outer.app, "state": {},
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    response = await endpoint(Request(scope, receive))
    return (response.status_code, bytes(response.body),
            {k.lower(): v for k, v in response.headers.items()})
