"""The dashboard in a real browser (Debian's Chromium through Playwright): sign-in as different
demo people, the declared purpose, languages (Arabic right to left), accessibility (axe: zero
serious or critical violations) and screenshots of each page. Nothing may leave 127.0.0.1 (the
`page` fixture's guard fails the test otherwise). Page families have their own browser tests
(tests/test_web_*.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import NetworkGuard, WebSite, assert_accessible, shot

pytestmark = pytest.mark.heavy


def sign_in_staff(page: Any, site: WebSite, org: str, user: str, *,
                  totp: bool = False) -> None:
    page.goto("/signin")
    form = page.locator("form:has(input[name=who][value=staff])")
    form.get_by_label("Organisation (short name)").fill(org)
    form.get_by_label("Username").fill(user)
    form.get_by_label("Password").fill(site.password(org, user))
    if totp:
        form.get_by_label("Code from your authenticator app (if you have one)").fill(
            site.totp_code(org, user))
    form.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")


def declare(page: Any, purpose: str = "Protection") -> None:
    page.get_by_label(purpose, exact=True).check()
    page.get_by_role("button", name="Declare purpose").click()
    # htmx swaps the page in (hx-boost): wait for the swap, not for a load event.
    expect(page.locator("header .purpose strong")).to_have_text(purpose)


def test_sign_in_page_is_accessible_in_every_language(page: Any, web_site: WebSite, browser: Any,
                                                       network_guard: NetworkGuard) -> None:
    page.goto("/signin")
    assert page.title() == "Sign in — Safety Net"
    assert_accessible(page)
    shot(page, "signin-en")
    for language, title in (("fr-FR", "Se connecter"), ("ar-EG", "تسجيل الدخول"),
                            ("sw-KE", "Ingia"), ("es-ES", "Iniciar sesión")):
        # A browser set to another language (its Accept-Language) gets the page in it.
        context = browser.new_context(base_url=web_site.base_url, locale=language,
                                      service_workers="block")
        network_guard.attach(context)
        try:
            other = context.new_page()
            network_guard.watch(other)
            other.goto("/signin")
            assert other.locator("h1").inner_text() == title
            assert other.evaluate("document.documentElement.lang") == language[:2]
            assert_accessible(other)
            if language.startswith("ar"):
                assert other.evaluate("document.documentElement.dir") == "rtl"
                shot(other, "signin-ar")
        finally:
            context.close()


def test_a_caseworker_declares_a_purpose_before_any_record(page: Any, web_site: WebSite) -> None:
    sign_in_staff(page, web_site, "mofa", "caseworker")
    assert page.url.endswith("/queue")
    # No default purpose: the queue asks first and shows no case.
    assert page.get_by_role("button", name="Declare purpose").is_visible()
    assert page.locator("a[href^='/cases/']").count() == 0
    assert_accessible(page)
    shot(page, "purpose-required")
    declare(page)
    assert page.locator("header .purpose strong").inner_text() == "Protection"
    assert page.locator("a[href^='/cases/']").count() >= 1
    assert_accessible(page)
    shot(page, "queue-caseworker")
    # Nothing of hers in browser storage or in the page title: htmx keeps only the current path
    # (opaque IDs; its page cache is off), nothing else is stored.
    assert page.evaluate("localStorage.length") == 0
    stored = page.evaluate("Object.fromEntries(Object.entries(sessionStorage))")
    assert set(stored) <= {"htmx-current-path-for-history"}
    assert all(value.startswith("/") and len(value) < 200 for value in stored.values())
    assert "Safety Net" in page.title() and "—" in page.title()
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"] == "__Host-sn-session"]
    assert session and session[0]["httpOnly"] and session[0]["secure"]
    assert session[0]["sameSite"] == "Strict"


def test_arabic_is_right_to_left(page: Any, web_site: WebSite) -> None:
    sign_in_staff(page, web_site, "mofa", "caseworker")
    declare(page)
    page.get_by_label("Language").select_option("ar")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    assert page.locator("h1").inner_text() == "قائمة العمل"
    # Right to left: the brand starts at the right edge.
    brand = page.locator(".brand").bounding_box()
    width = page.viewport_size["width"]
    assert brand is not None and brand["x"] > width / 2
    assert_accessible(page)
    shot(page, "queue-arabic-rtl")


def test_a_focal_point_signs_in_with_her_second_factor(page: Any, web_site: WebSite) -> None:
    page.goto("/signin")
    form = page.locator("form:has(input[name=who][value=staff])")
    form.get_by_label("Organisation (short name)").fill("wpn")
    form.get_by_label("Username").fill("focal")
    form.get_by_label("Password").fill(web_site.password("wpn", "focal"))
    form.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")
    # Without the code: the same refusal as a wrong password, no session.
    assert page.get_by_role("alert").is_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "__Host-sn-session"]
    sign_in_staff(page, web_site, "wpn", "focal", totp=True)
    assert page.url.endswith("/queue")
    declare(page)
    assert page.locator("header .who").inner_text().startswith("focal")


def test_she_signs_in_to_her_own_page_in_her_language(page: Any, web_site: WebSite) -> None:
    page.set_viewport_size({"width": 360, "height": 740})  # a phone
    page.goto("/signin")
    form = page.locator("form:has(input[name=who][value=her])")
    form.get_by_label("Login").fill("rosa")
    form.get_by_label("Password").fill(web_site.her_password("rosa"))
    form.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/me")
    assert page.evaluate("document.documentElement.lang") == "es"  # her profile's language
    assert page.locator(".purpose").count() == 0  # she declares no purpose
    assert_accessible(page)
    shot(page, "her-page-phone-es")
    # Staff pages are not hers.
    response = page.goto("/queue")
    assert response is not None and response.status == 404


def test_signing_out_ends_the_session(page: Any, web_site: WebSite) -> None:
    sign_in_staff(page, web_site, "mofa", "caseworker")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.goto("/queue")
    assert page.url.endswith("/signin")
