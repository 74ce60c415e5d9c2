"""The dashboard over HTTP: sign-in, the session cookie, CSRF, headers, purpose, revocation.
(The browser tests drive the same pages in Chromium: tests/test_web_browser.py.)"""

from __future__ import annotations

import pytest

from tests.conftest import Env
from tests.web_support import (
    browser,
    csrf_of,
    declare_purpose,
    set_her_password,
    set_staff_password,
    sign_in_her,
    sign_in_staff,
)

pytestmark = pytest.mark.anyio


async def test_signed_out_pages_go_to_sign_in(env: Env) -> None:
    async with browser(env) as client:
        for path in ("/", "/queue"):
            response = await client.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/signin"
        # Her pages lead to the neutral page instead (Back after her quick exit).
        response = await client.get("/me")
        assert response.status_code == 303 and response.headers["location"] == "/weather"
        page = await client.get("/signin")
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text and "style=" not in page.text


async def test_staff_sign_in_declares_purpose_then_sees_the_queue(env: Env) -> None:
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as client:
        response = await sign_in_staff(client, "unpc", "caseworker")
        assert response.status_code == 303, response.text
        cookie = response.headers["set-cookie"]
        assert "__Host-sn-session=" in cookie
        for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
            assert flag.lower() in cookie.lower()
        queue = await client.get("/queue")
        # No default purpose: the page asks for one and shows no record.
        assert queue.status_code == 200 and 'name="purpose"' in queue.text
        assert "/cases/" not in queue.text
        await declare_purpose(client)
        queue = await client.get("/queue")
        assert queue.status_code == 200 and "/cases/" in queue.text
        assert "Protection" in queue.text  # the declared purpose is shown on every page


async def test_a_form_without_the_session_token_changes_nothing(env: Env) -> None:
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as client:
        await sign_in_staff(client, "unpc", "caseworker")
        refused = await client.post("/purpose", data={"purpose": "media", "next": "/queue"})
        assert refused.status_code == 403
        forged = await client.post("/purpose", data={"csrf": "0" * 64, "purpose": "media"})
        assert forged.status_code == 403
        page = await client.get("/purpose")
        cross_site = await client.post("/purpose", data={"csrf": csrf_of(page.text),
                                                         "purpose": "media"},
                                       headers={"origin": "https://evil.example"})
        assert cross_site.status_code == 403
        page = await client.get("/purpose")
        assert 'value="media" checked' not in page.text


async def test_sign_in_refusals_are_one_answer(env: Env) -> None:
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as client:
        wrong = await sign_in_staff(client, "unpc", "caseworker", password="nope-nope-nope")
        unknown = await sign_in_staff(client, "unpc", "nobody-here", password="nope-nope-nope")
        assert wrong.status_code == unknown.status_code == 401
        assert "do not match" in wrong.text and "do not match" in unknown.text
        assert "__Host-sn-session" not in wrong.headers.get("set-cookie", "")


async def test_sign_out_everywhere_through_the_api_ends_the_browser_session(env: Env) -> None:
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as client:
        await sign_in_staff(client, "unpc", "caseworker")
        await declare_purpose(client)
        assert (await client.get("/queue")).status_code == 200
        # The same person signs out everywhere from another device (the API).
        from tests.test_auth import login_token
        from tests.web_support import PASSWORD

        token = await login_token(env, "unpc", "caseworker", PASSWORD)
        body = await env.gql("mutation { signOut(input: {everywhere: true}) { sessionsEnded } }",
                             token=token)
        assert body["data"]["signOut"]["sessionsEnded"] >= 2
        after = await client.get("/queue")
        assert after.status_code == 303 and after.headers["location"] == "/signin"


async def test_she_signs_in_to_her_page_in_her_language(env: Env) -> None:
    await set_her_password(env, "rosa")
    async with browser(env) as client:
        response = await sign_in_her(client, "rosa")
        assert response.status_code == 303
        home = await client.get("/", follow_redirects=True)
        assert str(home.url).endswith("/me")
        assert 'lang="es"' in home.text
        assert (await client.get("/queue")).status_code == 404  # staff pages are not hers


async def test_the_page_follows_the_chosen_language(env: Env) -> None:
    await set_staff_password(env, "unpc", "caseworker")
    async with browser(env) as client:
        await sign_in_staff(client, "unpc", "caseworker")
        await declare_purpose(client)
        queue = await client.get("/queue")
        changed = await client.post("/language", data={
            "csrf": csrf_of(queue.text), "language": "ar", "next": "/queue"},
            headers={"origin": "https://test"})
        assert changed.status_code == 303 and changed.headers["location"] == "/queue"
        arabic = await client.get("/queue")
        assert 'lang="ar" dir="rtl"' in arabic.text and "قائمة العمل" in arabic.text


@pytest.mark.parametrize("value", ["/\t/evil.example", "/\n/evil.example", "/ /x", "/\x7f",
                                   "//evil.example", "/\\evil.example", "https://evil.example"])
def test_a_way_back_is_a_plain_local_path(value: str) -> None:
    # Browsers drop a tab or newline inside a URL: "/<tab>/evil" would be "//evil", off-site.
    from schema.web.core import safe_next

    assert safe_next(value, "/queue") == "/queue"
    assert safe_next("/cases?after=abc", "/queue") == "/cases?after=abc"
