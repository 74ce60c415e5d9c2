"""Her own pages (issue 22): her cases and incidents, who saw her data, her consent and
approvals, her risk assessments and plan, her check-in, her notices, and the quick exit.

Built for a phone on a slow connection: a light base (`her_base.html`) without htmx, a few small
sub-pages, plain forms that work without script. Every change goes through the API's own
mutations as herself (revokeConsent, confirmConsent, withdrawApproval, answerRiskAssessment,
checkIn, signOut), after the CSRF check of `page()`. Results come back as a fixed code in the
redirect (`?done=revoked`), never as data; IDs travel in the form body, not in the URL.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.auth import web as browsers
from schema.web import core, history_texts, i18n
from schema.web.core import N_, Visit, redirect, render
from schema.web.pages import form_of

# Quick exit: what the browser must forget, then a page that says nothing about us.
CLEAR_SITE_DATA = '"cache", "cookies", "storage"'
NEUTRAL_PATH = core.NEUTRAL_PATH
HER_PAGES = (("/me", N_("Overview")), ("/me/consent", N_("My consent")),
             ("/me/safety", N_("My safety")), ("/me/history", N_("Who saw my data")))
HISTORY_PAGE = 20
NOTICES_SHOWN = 10

# Enum codes as she reads them (never a raw code like HIGH on her page).
LABELS: dict[str, str] = {
    # incident types
    "PHYSICAL_ATTACK": N_("Physical attack"), "ONLINE_HARASSMENT": N_("Online harassment"),
    "THREATS": N_("Threats"),
    "LEGAL_ADMINISTRATIVE_HARASSMENT": N_("Legal or administrative harassment"),
    "CRIMINALISATION": N_("Criminalisation"), "SURVEILLANCE": N_("Surveillance"),
    "THREATS_TO_FAMILY_OR_COLLEAGUES": N_("Threats to family or colleagues"),
    "DETENTION": N_("Detention"), "SEXUAL_VIOLENCE": N_("Sexual violence"),
    "SMEAR_CAMPAIGN": N_("Smear campaign"), "OTHER": N_("Other"),
    # incident status
    "REPORTED": N_("Reported, waiting for acknowledgement"), "ACKNOWLEDGED": N_("Acknowledged"),
    "RESPONDING": N_("Being acted on"), "RESOLVED": N_("Resolved"),
    # levels (severity, risk)
    "LOW": N_("Low"), "MEDIUM": N_("Medium"), "HIGH": N_("High"), "CRITICAL": N_("Critical"),
    # case status
    "OPEN": N_("Open"), "ON_HOLD": N_("On hold"), "CLOSED": N_("Closed"),
    # data categories
    "IDENTITY": N_("Your identity"), "CONTACT": N_("Your contact details"),
    "LOCATION_COARSE": N_("Your region"), "LOCATION_PRECISE": N_("Your exact location"),
    "FAMILY": N_("Your family"), "HEALTH": N_("Your health"),
    "INCIDENT_DETAILS": N_("Incident details"), "LEGAL": N_("Legal matters"),
    "FINANCIAL": N_("Money matters"), "TRAVEL": N_("Travel"),
    "RISK_ASSESSMENT": N_("Risk assessment"),
    # purposes (the API's codes; core's labels are keyed by the lower-case form)
    **{code.upper(): label for code, label in core.PURPOSE_LABELS.items()},
    # grant status
    "PENDING": N_("Waiting for confirmation"), "LIVE": N_("In force"),
    "NOT_YET_VALID": N_("Not yet in force"), "EXPIRED": N_("Ended"), "REVOKED": N_("Revoked"),
    # approval status and acts
    "BOUND": N_("Planned with it"), "USED": N_("Used"), "WITHDRAWN": N_("Withdrawn"),
    "public_statement": N_("Public statement"), "media_contact": N_("Media contact"),
    "recognition": N_("Recognition"),
    # risk assessment status
    "DRAFT": N_("Draft"), "SHARED_WITH_HER": N_("Waiting for your answer"),
    "AGREED": N_("You agreed"), "CONTESTED": N_("You contested it"),
    "SUPERSEDED": N_("Replaced by a newer one"),
    # check-in channels and status
    "APP": N_("This page"), "PHONE_CALL": N_("Phone call"), "SMS": N_("Text message"),
    "SECURE_MESSENGER": N_("Secure messenger"), "IN_PERSON": N_("In person"),
    "NETWORK": N_("Your network"), "ACTIVE": N_("Active"), "ENDED": N_("Ended"),
    # access decisions
    "allow": N_("Allowed"), "deny": N_("Refused"),
}
# A check-in's status (its PENDING is not a grant's).
CHECK_IN_LABELS: dict[str, str] = {
    "PENDING": N_("Not yet done"), "DONE": N_("Done"), "MISSED": N_("Missed"),
    "LATE": N_("Done late"), "RESOLVED": N_("Missed, then followed up"), "ENDED": N_("Ended"),
}
# What a finished action says (the `done` code of the redirect).
DONE = {
    "revoked": N_("The consent is revoked. It stops now."),
    "confirmed": N_("The consent is confirmed."),
    "withdrawn": N_("Your approval is withdrawn."),
    "approved": N_("Your approval is recorded. Only that organisation can use it, once."),
    "answered": N_("Your answer is recorded."),
    "checked_in": N_("Your check-in is recorded. Thank you."),
    "failed": N_("Nothing was changed. Reload the page and try again."),
}

CASES = """me {
  cases { id status riskLevel openedAt closedAt leadOrganisation { name }
    incidents { id type severity status reportedAt acknowledgementDeadline acknowledgedAt }
    checkInSchedules { id status channel intervalMinutes } }
  caseOverview(language: $lang) { caseId language lines }
  notices(language: $lang) { id title text createdAt }
}"""
OVERVIEW = "query($lang: String) { " + CASES + " }"
CONSENT = """query { me {
  cases { leadOrganisation { id name } }
  consentGrants { id status recipientType categories purposes validFrom validUntil revokedAt
    awaiting recipientOrganisation { id name } recipientWorkingGroup { id } coveredOrganisations { name } }
  approvals { id act status approvedAt usedAt withdrawnAt description organisation { name } }
} }"""
SAFETY = """query($lang: String) { me {
  cases { id
    riskAssessments { id status overallLevel reviewAt isCurrent herView herAnalysis }
    checkInSchedules { id status channel intervalMinutes }
    checkIns { id status dueAt checkedInAt } }
  riskOverview(language: $lang) { caseId language lines }
  safetyOverview(language: $lang) { caseId language lines }
} }"""
HISTORY = """query($after: String, $first: Int) {
  accessHistory(first: $first, after: $after) {
    edges { node { at purpose decision description organisation { name } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
REVOKE = """mutation($g: ID!) { revokeConsent(input: {grantId: $g}) {
  grant { id status } userErrors { code } } }"""
CONFIRM = """mutation($g: ID!) { confirmConsent(input: {grantId: $g}) {
  grant { id status } userErrors { code } } }"""
RECORD_APPROVAL = """mutation($i: RecordApprovalInput!) { recordApproval(input: $i) {
  approval { id status } userErrors { code } } }"""
WITHDRAW = """mutation($a: ID!) { withdrawApproval(input: {approvalId: $a}) {
  approval { id status } userErrors { code } } }"""
ANSWER = """mutation($i: AnswerRiskAssessmentInput!) { answerRiskAssessment(input: $i) {
  assessment { id status } userErrors { code } } }"""
CHECK_IN = """mutation($s: ID!) { checkIn(input: {scheduleId: $s, by: HER}) {
  checkIn { id status } userErrors { code } } }"""
SIGN_OUT = "mutation { signOut(input: {everywhere: false}) { sessionsEnded } }"
FIELD_MAX = 200  # the API's limit for herView / herAnalysis
DESCRIPTION_MAX = 5000  # the API's limit for what an approval covers
PUBLIC_ACTS = ("public_statement", "media_contact", "recognition")
REVOCABLE = ("LIVE", "NOT_YET_VALID", "PENDING")  # the grants her page offers to revoke
# Her navigation, also for the shared error page when it is hers (error.html).
core.env.globals["her_pages"] = HER_PAGES


def _page(visit: Visit, template: str, answer: Any, **context: Any) -> Response:
    done = visit.request.query_params.get("done")
    return render(visit.request, template, language=visit.language, visit=visit, viewer=None,
                  answer=answer, labels=LABELS,
                  done=DONE.get(done or ""), failed=done == "failed", **context)


def _active_schedules(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Whatever channel was agreed, she may always check in herself, signed in (the API's rule).
    return [s for c in cases for s in c.get("checkInSchedules") or []
            if s.get("status") == "ACTIVE"]


async def me(visit: Visit) -> Response:
    """Her cases, their incidents and where each stands, her check-in, her latest notices."""
    answer = await visit.query(OVERVIEW, {"lang": visit.language})
    mine = (answer.data or {}).get("me") or {}
    cases = mine.get("cases") or []
    overview = {o["caseId"]: o for o in mine.get("caseOverview") or []}
    notices = list(reversed(mine.get("notices") or []))[:NOTICES_SHOWN]
    return _page(visit, "me.html", answer, cases=cases, overview=overview, notices=notices,
                 schedules=_active_schedules(cases))


async def consent(visit: Visit) -> Response:
    """Her grants (revoke; confirm one waiting for her) and her approvals (withdraw)."""
    answer = await visit.query(CONSENT)
    mine = (answer.data or {}).get("me") or {}
    grants = mine.get("consentGrants") or []
    live = [g for g in grants if g["status"] in REVOCABLE]
    ended = [g for g in grants if g not in live]
    # The organisations she may approve a public act for: those she already deals with.
    known = [c["leadOrganisation"] for c in mine.get("cases") or []]
    known += [g["recipientOrganisation"] for g in live if g.get("recipientOrganisation")]
    organisations = sorted({o["id"]: o for o in known if o}.values(), key=lambda o: o["name"])
    return _page(visit, "me_consent.html", answer, live=live, ended=ended,
                 approvals=mine.get("approvals") or [], organisations=organisations,
                 acts=PUBLIC_ACTS, description_max=DESCRIPTION_MAX)


async def safety(visit: Visit) -> Response:
    """Her risk assessments and plan in plain language (agree or contest), her check-ins."""
    answer = await visit.query(SAFETY, {"lang": visit.language})
    mine = (answer.data or {}).get("me") or {}
    cases = mine.get("cases") or []
    waiting = [a for c in cases for a in c.get("riskAssessments") or []
               if a["status"] == "SHARED_WITH_HER"]
    current = [a for c in cases for a in c.get("riskAssessments") or [] if a.get("isCurrent")]
    checkins = sorted((ci for c in cases for ci in c.get("checkIns") or []),
                      key=lambda ci: ci.get("dueAt") or "", reverse=True)[:5]
    return _page(visit, "me_safety.html", answer, waiting=waiting, current=current,
                 risk=mine.get("riskOverview") or [], safety=mine.get("safetyOverview") or [],
                 schedules=_active_schedules(cases), checkins=checkins, field_max=FIELD_MAX,
                 check_in_labels=CHECK_IN_LABELS)


async def history(visit: Visit) -> Response:
    """Who accessed her data, when and why (the API's access history, newest first)."""
    after = visit.request.query_params.get("after") or None
    answer = await visit.query(HISTORY, {"after": after, "first": HISTORY_PAGE})
    found = (answer.data or {}).get("accessHistory") or {}
    entries = [e["node"] for e in found.get("edges") or []]
    info = found.get("pageInfo") or {}
    return _page(visit, "me_history.html", answer, entries=entries,
                 describe=history_texts.describe,
                 next_cursor=info.get("endCursor") if info.get("hasNextPage") else None,
                 first_page=after is None)


async def _act(visit: Visit, document: str, variables: dict[str, Any], field: str,
               back: str, done: str) -> Response:
    answer = await visit.query(document, variables)
    result = (answer.data or {}).get(field) or {}
    ok = not answer.errors and not result.get("userErrors")
    return redirect(f"{back}?done={done if ok else 'failed'}")


def _id(visit: Visit, name: str) -> str:
    return str(form_of(visit).get(name, "")).strip()[:200]


async def revoke(visit: Visit) -> Response:
    """First her confirmation, on a page that says to whom and what stops being shared (with a
    way back); only the confirming form (`confirm=yes`) revokes. No script: two plain forms."""
    grant_id = _id(visit, "grant")
    if form_of(visit).get("confirm") == "yes":
        return await _act(visit, REVOKE, {"g": grant_id}, "revokeConsent", "/me/consent",
                          "revoked")
    answer = await visit.query(CONSENT)
    grants = ((answer.data or {}).get("me") or {}).get("consentGrants") or []
    # Her own grants only (the API answers no other woman's): anything else is "failed".
    grant = next((g for g in grants if g["id"] == grant_id and g["status"] in REVOCABLE), None)
    if grant is None:
        return redirect("/me/consent?done=failed")
    return _page(visit, "me_consent_revoke.html", answer, grant=grant)


async def confirm(visit: Visit) -> Response:
    return await _act(visit, CONFIRM, {"g": _id(visit, "grant")}, "confirmConsent",
                      "/me/consent", "confirmed")


async def withdraw(visit: Visit) -> Response:
    return await _act(visit, WITHDRAW, {"a": _id(visit, "approval")}, "withdrawApproval",
                      "/me/consent", "withdrawn")


async def record_approval(visit: Visit) -> Response:
    form = form_of(visit)
    act = str(form.get("act", ""))
    text = str(form.get("description", "")).strip()
    if act not in PUBLIC_ACTS or not text or len(text) > DESCRIPTION_MAX:
        return redirect("/me/consent?done=failed")
    return await _act(visit, RECORD_APPROVAL, {"i": {
        "act": act, "description": text, "organisationId": _id(visit, "organisation")}},
        "recordApproval", "/me/consent", "approved")


async def answer_risk(visit: Visit) -> Response:
    form = form_of(visit)
    agree = form.get("answer") == "agree"
    variables: dict[str, Any] = {"id": _id(visit, "assessment"), "agree": agree}
    view = str(form.get("her_view", "")).strip()[:FIELD_MAX]
    if view:
        variables["herView"] = view
    if not agree and not view:
        return redirect("/me/safety?done=failed")  # contesting needs her view (the API's rule)
    return await _act(visit, ANSWER, {"i": variables}, "answerRiskAssessment", "/me/safety",
                      "answered")


async def check_in(visit: Visit) -> Response:
    back = core.safe_next(str(form_of(visit).get("next", "")), "/me")
    back = back if back in dict(HER_PAGES) else "/me"
    return await _act(visit, CHECK_IN, {"s": _id(visit, "schedule")}, "checkIn", back,
                      "checked_in")


async def quick_exit(request: Request) -> Response:
    """Ends her session here and now (the API's signOut, then the browser session), tells the
    browser to forget this site (Clear-Site-Data) and moves on to a page with nothing of ours.
    A plain link works without script; no CSRF token is needed: the session cookie is
    SameSite=Strict, so only our own pages can end it, and ending it is always safe."""
    visit = await core.visit(request)
    if visit is not None:
        try:
            await visit.query(SIGN_OUT)
        except core.SignedOut:
            pass  # already ended elsewhere: nothing to sign out
        await browsers.close_browser(visit.runtime, visit.browser.id)
    response = redirect(NEUTRAL_PATH)
    response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
    core.clear_session_cookie(response, request)
    return response


async def neutral(request: Request) -> Response:
    """A plain weather page: no name, no logo, no request to anywhere else."""
    language = i18n.negotiate(request.headers.get("accept-language"))
    return render(request, "neutral.html", language=language, viewer=None)
