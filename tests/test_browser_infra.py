"""The browser-test machinery itself (tests/browser.py), against pages that exist without the
dashboard: the demo server answers, Chromium renders, screenshots land, axe reports, and the
network guard stops a request that would leave 127.0.0.1."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.browser import (
    SCREENSHOTS,
    NetworkGuard,
    WebSite,
    assert_accessible,
    axe,
    describe,
    shot,
)

pytestmark = pytest.mark.heavy

ACCESSIBLE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Fixture page</title></head><body><main><h1>Safety Net</h1>
<form><label for="q">Search</label><input id="q" name="q"><button>Go</button></form>
<p lang="ar" dir="rtl">مرحبا</p></main></body></html>"""
INACCESSIBLE = """<!doctype html><html><head><meta charset="utf-8"></head>
<body><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><input></body></html>"""


def test_the_demo_server_has_demo_credentials(web_site: WebSite) -> None:
    assert web_site.base_url.startswith("http://127.0.0.1:")
    assert httpx.get(web_site.url("/healthz"), timeout=5).text == "ok"
    assert web_site.password("wpn", "focal")
    assert web_site.her_password("amani")
    assert re.fullmatch(r"\d{6}", web_site.totp_code("wpn", "focal"))
    token = web_site.token("mofa", "caseworker")
    body = web_site.graphql("{ cases(first: 5) { totalCount } }", token=token)
    assert "errors" not in body, body
    assert body["data"]["cases"]["totalCount"] >= 1


def test_chromium_opens_a_page_of_the_server_and_saves_a_screenshot(page: Any) -> None:
    response = page.goto("/healthz")
    assert response is not None and response.status == 200
    assert page.inner_text("body").strip() == "ok"

    # GraphiQL (development mode; a navigation sends Accept: text/html): a real page with
    # scripts and styles, all served locally.
    response = page.goto("/graphql", wait_until="load")
    assert response is not None and response.status == 200
    page.wait_for_selector(".graphiql-container", timeout=20_000)
    path = shot(page, "infra-graphiql")
    assert path.parent == SCREENSHOTS and path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_axe_reports_violations_and_assert_accessible_passes_a_clean_page(page: Any) -> None:
    page.set_content(INACCESSIBLE)
    found = {v["id"]: v["impact"] for v in axe(page)}
    assert found.get("image-alt") == "critical" and found.get("label") == "critical", found
    assert found.get("html-has-lang") == "serious", found
    with pytest.raises(pytest.fail.Exception) as failed:
        assert_accessible(page)
    assert "image-alt" in str(failed.value) and "label" in str(failed.value)

    page.set_content(ACCESSIBLE)
    remaining = assert_accessible(page)
    assert all(v["impact"] not in ("serious", "critical") for v in remaining), describe(remaining)
    shot(page, "infra-axe-fixture")


def test_axe_runs_under_the_servers_content_security_policy(page: Any) -> None:
    """axe is injected over the DevTools protocol, so a strict policy does not stop it: on the
    dashboard's sign-in page (its own tests judge the findings; here only that axe runs)."""
    response = page.goto("/signin")
    assert response is not None and response.status == 200
    assert "content-security-policy" in response.headers
    assert isinstance(axe(page), list)
    shot(page, "infra-signin")


def test_the_network_guard_aborts_and_records_external_requests(
        page: Any, network_guard: NetworkGuard) -> None:
    # A page without the server's Content-Security-Policy (which would stop these first) that
    # pulls in a CDN script, an image, a beacon and a socket: all stopped before the network.
    page.goto("about:blank")
    page.set_content('<script src="https://cdn.example.net/htmx.min.js"></script>'
                     '<img alt="" src="http://198.51.100.9/pixel.gif">', wait_until="load")
    page.evaluate("() => fetch('http://203.0.113.7/beacon').catch(() => null)")
    page.evaluate("""() => new Promise(done => {
        const ws = new WebSocket('wss://push.example.com/socket');
        ws.onclose = ws.onerror = () => done();
        setTimeout(done, 3000);
    })""")
    # a navigation away (last: the browser then shows its error page)
    with pytest.raises(Exception, match=r"ERR_BLOCKED_BY_CLIENT|ERR_FAILED|ERR_NAME_NOT_RESOLVED"):
        page.context.new_page().goto("https://example.org/tracker.js")
    blocked = list(network_guard.blocked)
    assert any("example.org/tracker.js" in b for b in blocked), blocked
    assert any("cdn.example.net" in b for b in blocked), blocked
    assert any("198.51.100.9/pixel.gif" in b for b in blocked), blocked
    assert any("203.0.113.7" in b for b in blocked), blocked
    assert any(b.startswith("WEBSOCKET wss://push.example.com") for b in blocked), blocked
    # loopback is allowed: the page still loads from the server
    assert page.goto("/healthz").ok
    # Provoked on purpose: forget them, or the page fixture fails this test at teardown.
    network_guard.clear()


def test_the_guard_lets_loopback_through_and_nothing_else() -> None:
    assert NetworkGuard.allowed("http://127.0.0.1:8123/graphql")
    assert NetworkGuard.allowed("ws://localhost:8000/graphql")
    assert NetworkGuard.allowed("data:image/png;base64,AAAA")
    assert not NetworkGuard.allowed("https://fonts.googleapis.com/css")
    assert not NetworkGuard.allowed("http://127.0.0.1.example.com/")
    assert not NetworkGuard.allowed("http://10.0.0.1/")
    assert not NetworkGuard.allowed("ftp://127.0.0.1/")
