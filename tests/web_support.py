"""Helpers for dashboard tests over HTTP (httpx against the real ASGI app, HTTPS base URL so
the Secure session cookie is kept) and in the browser (tests/browser.py)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from app.auth.passwords import hash_password
from app.orgs import repository as orgs_repo  # noqa: F401  (fixture contract: orgs exist)
from app.tables.consent import PeacebuilderAccount
from tests.conftest import Env

PASSWORD = "dashboard-pass-0123"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def set_staff_password(env: Env, org: str, username: str,
                             password: str = PASSWORD) -> None:
    from app.auth import principals

    async with env.runtime.db.transaction() as session:
        user = await principals.find_user(session, org, username)
        assert user is not None
        user.password_hash = hash_password(password)


async def set_her_password(env: Env, login: str, password: str = PASSWORD) -> None:
    async with env.runtime.db.transaction() as session:
        account = await session.scalar(select(PeacebuilderAccount).where(
            PeacebuilderAccount.login == login))
        assert account is not None
        account.password_hash = hash_password(password)


def browser(env: Env) -> httpx.AsyncClient:
    """A fresh 'browser' on the same app: its own cookie jar, HTTPS like production."""
    transport = env.client._transport  # the app's ASGI transport
    return httpx.AsyncClient(transport=transport, base_url="https://test",
                             headers={"accept-language": "en"})


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in_staff(client: httpx.AsyncClient, org: str, username: str,
                        password: str = PASSWORD, totp: str | None = None) -> httpx.Response:
    page = await client.get("/signin")
    token = csrf_of(page.text)
    form: dict[str, Any] = {"csrf": token, "who": "staff", "organisation": org,
                            "username": username, "password": password}
    if totp:
        form["totp"] = totp
    return await client.post("/signin", data=form, headers={"origin": "https://test"})


async def sign_in_her(client: httpx.AsyncClient, login: str,
                      password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/signin")
    token = csrf_of(page.text)
    return await client.post("/signin", data={"csrf": token, "who": "her", "login": login,
                                              "password": password},
                             headers={"origin": "https://test"})


async def declare_purpose(client: httpx.AsyncClient, purpose: str = "protection",
                          back: str = "/queue") -> httpx.Response:
    page = await client.get(f"/purpose?next={back}")
    return await client.post("/purpose", data={"csrf": csrf_of(page.text), "purpose": purpose,
                                               "next": back},
                             headers={"origin": "https://test"})
