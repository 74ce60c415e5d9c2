"""The queue and the service directory in a real browser (Debian's Chromium through Playwright,
the demo deployment served by uvicorn): a focal point acknowledges an incident from her queue;
another focal point's open queue shows a new incident as it is reported, without a reload,
keeping her focus and announcing it; the queue in Arabic, right to left; the directory's
filters. axe on every page (zero serious or critical), screenshots of each, and nothing leaves
127.0.0.1 (the `page` fixture's guard)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import WebSite, assert_accessible, shot
from tests.test_web_browser import declare, sign_in_staff

pytestmark = pytest.mark.heavy

REPORT = """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
  incident { id status } userErrors { field message code } } }"""
CASES = "{ viewer { organisation { id } } cases(first: 50) { edges { node { id " \
        "leadOrganisation { id } } } } }"
STATUS = "query($id: ID!) { node(id: $id) { ... on Incident { status } } }"


def led_case(site: WebSite, token: str) -> str:
    """A case the token's organisation leads (the demo gives each one)."""
    body = site.graphql(CASES, token=token)
    org = body["data"]["viewer"]["organisation"]["id"]
    return next(e["node"]["id"] for e in body["data"]["cases"]["edges"]
                if e["node"]["leadOrganisation"]["id"] == org)


def report(site: WebSite, token: str, case_id: str, kind: str = "THREATS",
           severity: str = "HIGH") -> str:
    body = site.graphql(REPORT, token=token, variables={"i": {
        "caseId": case_id, "type": kind, "severity": severity, "reportedBy": "herself",
        "reportedVia": "secure_messenger"}})
    assert body["data"]["reportIncident"]["userErrors"] == [], body
    return str(body["data"]["reportIncident"]["incident"]["id"])


def ack_button(page: Any, incident: str) -> Any:
    return page.locator(f"form:has(input[name=incident][value='{incident}']) button")


def test_a_focal_point_acknowledges_an_incident_from_her_queue(
        page: Any, web_site: WebSite) -> None:
    token = web_site.token("unpc", "caseworker")
    incident = report(web_site, token, led_case(web_site, token), kind="SURVEILLANCE")
    sign_in_staff(page, web_site, "unpc", "focal", totp=True)
    declare(page)
    row = page.locator("tr", has=page.locator(f"input[name=incident][value='{incident}']"))
    expect(row).to_have_count(1)
    assert "Surveillance" in row.inner_text() and "SURVEILLANCE" not in row.inner_text()
    assert "Reported, not acknowledged" in row.inner_text()
    assert_accessible(page)
    shot(page, "queue-focal-point")
    ack_button(page, incident).click()
    expect(page.get_by_role("status")).to_contain_text("The incident is acknowledged")
    expect(ack_button(page, incident)).to_have_count(0)  # the queue shows it acknowledged
    assert web_site.graphql(STATUS, token=token, variables={"id": incident})[
        "data"]["node"]["status"] == "ACKNOWLEDGED"
    assert_accessible(page)
    shot(page, "queue-acknowledged")


def test_a_new_incident_appears_live_without_a_reload(page: Any, web_site: WebSite) -> None:
    token = web_site.token("wpn", "caseworker")
    case_id = led_case(web_site, token)
    sign_in_staff(page, web_site, "wpn", "focal", totp=True)
    declare(page)
    expect(page.locator("#queue-live")).to_be_visible()
    # The same document throughout: a reload would lose this marker.
    page.evaluate("window.queueMarker = 'same-document'")
    # She is working in the lists: her focus must stay where it is after the update.
    case_link = page.locator("#queue-live a[data-focus-key^='case-']").first
    case_link.focus()
    focus_key = case_link.get_attribute("data-focus-key")
    # The boosted swap settles a moment after it shows (htmx's settle delay), and app.js then
    # focuses the new page's main region: not when she has already moved into it (under load,
    # a focus set between swap and settle used to be taken away).
    page.evaluate("document.dispatchEvent(new CustomEvent('htmx:afterSettle', "
                  "{detail: {boosted: true}}))")
    assert page.evaluate("document.activeElement.getAttribute('data-focus-key')") == focus_key
    # Wait until the event stream is open before the incident is reported.
    expect(page.locator("#queue-live")).to_have_attribute("data-live", "open")
    incident = report(web_site, token, case_id, kind="SMEAR_CAMPAIGN", severity="CRITICAL")
    row = page.locator("tr", has=page.locator(f"input[name=incident][value='{incident}']"))
    expect(row).to_have_count(1, timeout=20_000)
    assert "Smear campaign" in row.inner_text() and "Critical" in row.inner_text()
    assert page.evaluate("window.queueMarker") == "same-document"
    assert page.evaluate("document.activeElement.getAttribute('data-focus-key')") == focus_key
    expect(page.locator("#queue-announce")).to_have_text("The queue was updated.")
    # The refreshed part works like the page's: its button acknowledges.
    assert ack_button(page, incident).is_enabled()
    assert page.evaluate("localStorage.length") == 0
    assert_accessible(page)
    shot(page, "queue-live-new-incident")


def test_the_queue_in_arabic_is_right_to_left(page: Any, web_site: WebSite) -> None:
    token = web_site.token("mofa", "caseworker")
    report(web_site, token, led_case(web_site, token), kind="CRIMINALISATION")
    sign_in_staff(page, web_site, "mofa", "caseworker")
    declare(page)
    page.get_by_label("Language").select_option("ar")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert page.locator("h1").inner_text() == "قائمة العمل"
    incidents = page.locator("#queue-incidents").locator("xpath=..")
    text = incidents.inner_text()
    assert "التجريم" in text and "CRIMINALISATION" not in text  # the type, as a label
    assert "الحوادث المفتوحة" in page.locator("#queue-incidents").inner_text()
    # Right to left: the table's first column starts at the right.
    first = page.locator("#queue-incidents ~ div table th").first.bounding_box()
    last = page.locator("#queue-incidents ~ div table th").last.bounding_box()
    assert first is not None and last is not None and first["x"] > last["x"]
    assert_accessible(page)
    shot(page, "queue-arabic-rtl")


def test_the_service_directory(page: Any, web_site: WebSite) -> None:
    sign_in_staff(page, web_site, "embassy", "caseworker")
    page.get_by_role("link", name="Service directory").click()
    expect(page.locator("h1")).to_have_text("Service directory")
    # No purpose asked: it holds organisations' offers, nothing of hers.
    assert page.get_by_role("button", name="Declare purpose").count() == 0
    rows = page.locator("table.directory tbody tr")
    assert rows.count() >= 3
    assert_accessible(page)
    shot(page, "directory")
    page.get_by_label("Service", exact=True).select_option("LEGAL_AID")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.directory tbody tr")).to_have_count(1)
    assert "Legal aid" in page.locator("table.directory tbody").inner_text()
    assert "service=LEGAL_AID" in page.url
    page.get_by_label("Service", exact=True).select_option("")
    page.get_by_label("Requests for help").select_option("yes")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.directory tbody tr")).to_have_count(2)
    assert_accessible(page)
    shot(page, "directory-filtered")
