"""The auditors' and monitoring pages in a real browser (Chromium through Playwright): an auditor
filters the access log, downloads the signed export and sees the chain verified; an analyst
releases a monitoring table and sees its table and chart (uPlot's canvas), the printable report,
and the page in Arabic, right to left. axe on every page (zero serious or critical violations),
screenshots of each, and nothing leaves 127.0.0.1 (the `page` fixture's guard)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import NetworkGuard, WebSite, assert_accessible, shot
from tests.test_web_browser import declare, sign_in_staff

pytestmark = pytest.mark.heavy


def test_the_auditor_filters_downloads_and_sees_the_chain_verified(page: Any,
                                                                  web_site: WebSite) -> None:
    sign_in_staff(page, web_site, "nhri", "auditor", totp=True)
    page.goto("/audit")
    declare(page, "Protection")
    expect(page.locator("h1")).to_have_text("Access log")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Access log")).to_be_visible()
    expect(nav.get_by_role("link", name="Monitoring")).to_have_count(0)
    assert page.title() == "Access log — Safety Net"
    # The export signs a checkpoint covering it: download it, then the page verifies against it.
    page.get_by_label("Format").select_option("jsonl")
    with page.expect_download() as caught:
        page.get_by_role("button", name="Download export").click()
    download = caught.value
    assert download.suggested_filename == "access-log.jsonl"
    lines = open(download.path(), encoding="utf-8").read().splitlines()
    assert json.loads(lines[0])["type"] == "checkpoint"
    assert any(json.loads(line)["type"] == "entry" for line in lines[1:])
    page.goto("/audit")
    expect(page.locator("#chain-state")).to_have_attribute("data-state", "verified")
    expect(page.locator("#chain-state strong")).to_have_text("Verified")
    assert page.locator("table.log tbody tr").count() >= 1
    assert_accessible(page)
    shot(page, "audit-log-verified")
    # A caseworker of an overseen organisation asks the API for the log: refused, and logged.
    refused = web_site.graphql("{ accessLog { totalCount } }",
                               token=web_site.token("mofa", "caseworker"))
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Filters: refusals only, of actions starting with "audit_log" (its own export was allowed).
    page.get_by_label("Decision").select_option("deny")
    page.get_by_label("Action starts with").fill("audit_log")
    page.get_by_role("button", name="Show entries").click()
    expect(page).to_have_url(re.compile(r"decision=deny"))
    expect(page.get_by_label("Decision")).to_have_value("deny")
    rows = page.locator("table.log tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.evaluate_all("rs => rs.every(r => r.classList.contains('deny'))")
    assert "Ministry of Foreign Affairs" in rows.first.inner_text()
    assert_accessible(page)
    shot(page, "audit-filtered")
    # The filtered export downloads as CSV with the same filters.
    page.get_by_label("Format").select_option("csv")
    with page.expect_download() as caught:
        page.get_by_role("button", name="Download export").click()
    assert caught.value.suggested_filename == "access-log.csv"
    text = open(caught.value.path(), encoding="utf-8").read()
    assert text.startswith("seq,id,at,") and ",allow," not in text
    # Nothing kept in browser storage.
    assert page.evaluate("localStorage.length") == 0


def release(page: Any, table: str, period: str) -> None:
    page.get_by_label("Table", exact=True).select_option(label=table)
    page.get_by_label("Period", exact=True).fill(period)
    page.get_by_role("button", name="Release", exact=True).click()
    page.wait_for_load_state("load")


def test_monitoring_tables_charts_report_and_arabic(page: Any, web_site: WebSite,
                                                    network_guard: NetworkGuard) -> None:
    sign_in_staff(page, web_site, "nhri", "analyst")
    page.goto("/monitoring")
    declare(page, "Aggregate reporting (counts only)")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Monitoring")).to_be_visible()
    expect(nav.get_by_role("link", name="Access log")).to_have_count(0)
    release(page, "Women reporting incidents, by region and type", "2025-Q3")
    expect(page.locator("#release-done")).to_be_visible()
    heading = page.get_by_role("heading", name=re.compile("by region and type — 2025-Q3"))
    expect(heading).to_be_visible()
    table = page.locator("table.figures").first
    expect(table.get_by_role("rowheader", name="Turkana")).to_be_visible()
    turkana = table.locator("tr", has=page.get_by_role("rowheader", name="Turkana"))
    expect(turkana.locator("td").first).to_have_text("no data")
    # The chart: uPlot's canvas, drawn by our own script from the data-chart attribute.
    canvas = page.locator("figure[data-chart] canvas").first
    expect(canvas).to_be_visible()
    assert canvas.bounding_box()["width"] > 200
    assert page.locator("figure[data-chart][data-drawn='1']").count() >= 1
    assert_accessible(page)
    shot(page, "monitoring-report")
    # On a phone's width the page keeps its width: the wide tables scroll in their containers.
    page.set_viewport_size({"width": 360, "height": 780})
    page.reload()  # drawn for the phone's width, as a phone loads it
    expect(page.locator("figure[data-chart][data-drawn='1']").first).to_be_attached()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    wide = page.locator(".table-wrap").evaluate_all(
        "ws => ws.filter(w => w.scrollWidth > w.clientWidth + 1).length")
    assert wide >= 1, "the figures table is wider than a phone: it scrolls in its container"
    assert_accessible(page)
    shot(page, "monitoring-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    # A second table of the same period, then the printable report of the period.
    release(page, "Women reporting incidents, by type and severity", "2025-Q3")
    expect(page.locator("figure[data-chart] canvas")).to_have_count(2)
    page.get_by_role("link", name="Printable report").click()
    page.wait_for_load_state("load")
    expect(page.locator("h1")).to_have_text("Monitoring report 2025-Q3")
    shot(page, "monitoring-printable")
    # From another page through the navigation (an htmx swap, not a page load): the charts
    # are drawn too, uPlot fetched from this server only.
    page.goto("/queue")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Monitoring").click()
    expect(page.locator("h1")).to_have_text("Monitoring")
    expect(page.locator("figure[data-chart] canvas")).to_have_count(2)
    # No policy violation: uPlot styles its elements from script, never with inline markup.
    assert not [e for e in network_guard.console_errors if "Content Security Policy" in e]
    # Arabic, right to left: the same tables and charts.
    page.get_by_label("Language").select_option("ar")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("h1")).to_have_text("الرصد")
    expect(page.locator("figure[data-chart] canvas").first).to_be_visible()
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    assert page.get_by_text("لا بيانات").count() >= 1
    assert_accessible(page)
    shot(page, "monitoring-arabic-rtl")
