"""Browser tests' support (issue 22): a real server with the demo data, Debian's Chromium driven by
Playwright, a network guard, screenshots and an axe-core accessibility check.

Fixtures (registered in tests/conftest.py; the browser ones skip when Chromium or Playwright is
missing, and fail instead with SAFETY_NET_REQUIRE_SERVICES=1):

    web_site   (session)  WebSite: `python3 dev.py run` on a fresh embedded SQLite file, served by
                          uvicorn on 127.0.0.1 at a free port: .base_url, .url(path),
                          .password(org, user), .totp_code(org, user), .her_password(pseudonym),
                          .token(org, user),
                          .graphql(query, token=..., variables=..., purpose=...), .log (its output).
    browser    (module)   a Playwright sync Browser: Debian's Chromium (executable_path), headless.
    network_guard         NetworkGuard of the test's page: .blocked (requests that tried to leave
                          127.0.0.1; the test fails at teardown if any), .clear(),
                          .console_errors, .page_errors (uncaught JS errors also fail at teardown).
    page                  a Page in a fresh context (no cookies) whose base_url is the server's, so
                          `page.goto("/healthz")` works; every request is routed through the guard.

Helpers: shot(page, name) -> Path (a full-page PNG under test-artifacts/screenshots/),
axe(page) -> violations, assert_accessible(page) (fails on any serious or critical violation).
The tests are synchronous (Playwright's sync API runs its own event loop; an `async def` test
cannot use it) and belong under @pytest.mark.heavy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.deploy_support import free_port, stop, unavailable, wait_ready

REPO_ROOT = Path(__file__).resolve().parent.parent
# Test artefacts (gitignored): CI keeps this folder. SAFETY_NET_TEST_ARTIFACTS moves it.
ARTIFACTS = Path(os.environ.get("SAFETY_NET_TEST_ARTIFACTS", str(REPO_ROOT / "test-artifacts")))
SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_SCRIPT = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# Hosts a page may talk to. Everything else is aborted before it reaches the network.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# axe impacts that fail a page (issue 22: zero serious or critical violations).
BLOCKING_IMPACTS = ("serious", "critical")
SERVER_START_TIMEOUT = 60.0  # seconds for /readyz after `serve` starts
DEMO_TIMEOUT = 300.0  # seconds for migrate + tenants + demo data + passwords (argon2)


# --- the server --------------------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    """This checkout's `safety-net` command (not whatever the venv's editable install points at)."""
    return [sys.executable, "-m", "app.cli", *args]


def site_env(root: Path, base_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of `python3 dev.py run` with its data in `root`: embedded SQLite, the
    repository's tenants, the built-in issuer, development mode. No SAFETY_NET_* of the caller's
    leaks in (a developer's PostgreSQL URL, production mode)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SAFETY_NET_") and k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": f"sqlite+aiosqlite:///{root / 'safety-net.db'}",
        "SAFETY_NET_DATA_DIR": str(root),
        "SAFETY_NET_TENANTS_DIR": str(REPO_ROOT / "tenants"),
        "SAFETY_NET_ISSUER_URL": base_url,
        "SAFETY_NET_PUBLIC_URL": base_url,
        "SAFETY_NET_LOG_LEVEL": "WARNING",
        **(extra or {}),
    })
    return env


@dataclass
class WebSite:
    """One running server with the demo data; what a browser test needs to sign in and check."""

    base_url: str
    root: Path
    env: dict[str, str]
    log: Path
    credentials: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def password(self, org: str, user: str) -> str:
        """A demo staff member's generated password, e.g. password("wpn", "focal")."""
        return str(self.credentials["users"][f"{org}/{user}"])

    def totp_code(self, org: str, user: str, *, steps_ahead: int = 0) -> str:
        """The current second-factor code of a demo focal point, admin or auditor (their seed is
        in the credentials file). A code is accepted once: a second sign-in by the same person
        within 30 s needs steps_ahead=1 (if the server accepts the next step) or a wait."""
        from app.auth import totp

        seed = str(self.credentials["totp"][f"{org}/{user}"])
        return totp.code_at(seed, totp.step_of(time.time()) + steps_ahead)

    def her_password(self, pseudonym: str) -> str:
        """A demo peacebuilder's own password (login = pseudonym), e.g. her_password("amani")."""
        return str(self.credentials["peacebuilders"][pseudonym])

    def token(self, org: str, user: str) -> str:
        """An access token for a staff member (acr "mfa"), from the `safety-net token` command:
        for setting up or checking data through the API beside what the browser does."""
        done = subprocess.run(_cli("token", "--org", org, "--user", user), env=self.env,
                              cwd=self.root, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip().splitlines()[-1]

    def graphql(self, query: str, *, token: str, variables: dict[str, Any] | None = None,
                purpose: str = "protection") -> dict[str, Any]:
        """One GraphQL request over HTTP; returns the whole body (data and errors)."""
        response = httpx.post(self.url("/graphql"), timeout=30,
                              json={"query": query, "variables": variables or {}},
                              headers={"Authorization": f"Bearer {token}",
                                       "Safety-Net-Purpose": purpose})
        assert response.status_code in (200, 400), response.text[:2000]
        body: dict[str, Any] = response.json()
        return body

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextlib.contextmanager
def running_site(root: Path, extra_env: dict[str, str] | None = None) -> Iterator[WebSite]:
    """`safety-net demo` then `safety-net serve` (what `python3 dev.py run` does) on a free
    port of 127.0.0.1; stopped on exit. extra_env adds or overrides settings."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = site_env(root, base_url, extra_env)
    try:
        demo = subprocess.run(_cli("demo"), env=env, cwd=root, capture_output=True, text=True,
                              timeout=DEMO_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`safety-net demo` took longer than {DEMO_TIMEOUT}s")
    if demo.returncode != 0:
        pytest.fail(f"`safety-net demo` exited {demo.returncode}:\n{demo.stdout[-2000:]}\n"
                    f"{demo.stderr[-3000:]}")
    site = WebSite(base_url, root, env, root / "server.log",
                   json.loads((root / "demo-credentials.json").read_text()))
    with site.log.open("w") as log:
        proc = subprocess.Popen(_cli("serve", "--host", "127.0.0.1", "--port", str(port)),
                                env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        try:
            wait_ready(base_url, proc, SERVER_START_TIMEOUT)
        except BaseException:
            print(site.log_tail())
            raise
        yield site
    finally:
        stop(proc)


# --- the browser -------------------------------------------------------------------------------


def chromium_path() -> str | None:
    """Debian's Chromium (Playwright's own browser download is impossible here).
    SAFETY_NET_CHROMIUM names another binary."""
    named = os.environ.get("SAFETY_NET_CHROMIUM")
    if named:
        return shutil.which(named)
    return shutil.which("chromium") or shutil.which("chromium-browser")


NO_CHROMIUM = ("no Chromium: install Debian's `chromium` package (.ci/run does), or name the "
               "binary in SAFETY_NET_CHROMIUM")


# Defence in depth beside the request routing: the browser resolves no host name but loopback,
# and runs none of Chromium's own background traffic (updates, safe browsing, metrics).
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


@dataclass
class NetworkGuard:
    """Aborts and records every request of a browser context that is not for 127.0.0.1 or
    localhost (issue 22: no request leaves 127.0.0.1). Also keeps the page's console errors
    (a Content-Security-Policy violation shows there) and uncaught script errors."""

    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @staticmethod
    def allowed(url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return True  # never leaves the browser
        return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOOPBACK

    def on_route(self, route: Any) -> None:
        url = route.request.url
        if self.allowed(url):
            route.continue_()
        else:
            self.blocked.append(f"{route.request.method} {url}")
            route.abort("blockedbyclient")

    def on_websocket(self, ws: Any) -> None:
        if self.allowed(ws.url):
            ws.connect_to_server()
        else:
            self.blocked.append(f"WEBSOCKET {ws.url}")
            ws.close()

    def attach(self, context: Any) -> None:
        context.route("**/*", self.on_route)
        context.route_web_socket(re.compile(".*"), self.on_websocket)

    def watch(self, page: Any) -> None:
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def clear(self) -> None:
        """Forget what was blocked (for a test that provokes an external request on purpose)."""
        self.blocked.clear()


def launch(playwright: Any) -> Any:
    path = chromium_path()
    if path is None:
        unavailable(NO_CHROMIUM)
    return playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)


@pytest.fixture(scope="session")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSite]:
    """The demo deployment served by a real uvicorn, shared by the session's browser tests
    (tests that change data use their own, uniquely named objects or a fresh site)."""
    with running_site(tmp_path_factory.mktemp("web-site")) as site:
        yield site


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, one per test module (a session-wide Playwright would keep its event loop alive
    under the suite's async tests)."""
    if chromium_path() is None:
        unavailable(NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (it is in requirements.lock: python3 dev.py test)")
    with sync_playwright() as playwright:
        instance = launch(playwright)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def network_guard() -> NetworkGuard:
    return NetworkGuard()


@pytest.fixture
def page(browser: Any, network_guard: NetworkGuard, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies, English, a desktop viewport) and its first page.
    New pages of the same context (page.context.new_page()) are guarded too."""
    # Asked for only now: a session fixture would be set up before the module's browser, and
    # a missing Chromium would skip only after the demo site had been built.
    web_site: WebSite = request.getfixturevalue("web_site")
    context = browser.new_context(base_url=web_site.base_url, locale="en-GB",
                                  viewport={"width": 1280, "height": 900},
                                  service_workers="block")
    context.set_default_timeout(15_000)
    network_guard.attach(context)
    context.on("page", network_guard.watch)
    tab = context.new_page()
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):
                shot(tab, f"FAILED-{request.node.name}")
        context.close()
    problems = []
    if network_guard.blocked:
        problems.append("requests that would have left 127.0.0.1 (aborted):\n  "
                        + "\n  ".join(network_guard.blocked))
    if network_guard.page_errors:
        problems.append("uncaught script errors:\n  " + "\n  ".join(network_guard.page_errors))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keeps the call phase's report on the item, so `page` saves a screenshot of a failure."""
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


# --- screenshots and accessibility -------------------------------------------------------------


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Saves a PNG of the page as a test artefact and returns its path. The name says what the
    screenshot shows (e.g. "queue-wpn-focal-en"); it becomes the file name."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:120] or "page"
    path = SCREENSHOTS / f"{safe}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def axe(page: Any, *, selector: str | None = None, options: dict[str, Any] | None = None
        ) -> list[dict[str, Any]]:
    """Runs the vendored axe-core on the page (or on `selector`) and returns its violations
    (dicts with id, impact, help, helpUrl, nodes[].target and failureSummary). Injected over the
    DevTools protocol, so the page's Content-Security-Policy need not allow it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT.read_text())
    run_options = {"resultTypes": ["violations"], **(options or {})}
    violations: list[dict[str, Any]] = page.evaluate(
        "async ([selector, options]) => (await axe.run(selector ? document.querySelector(selector)"
        " : document, options)).violations", [selector, run_options])
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    """Readable: one block per rule with the elements it found."""
    lines = []
    for v in violations:
        lines.append(f"[{v.get('impact')}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:10]:
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {' '.join(map(str, node['target']))}: {summary[:300]}")
        if len(v["nodes"]) > 10:
            lines.append(f"    ... and {len(v['nodes']) - 10} more elements")
    return "\n".join(lines)


def assert_accessible(page: Any, *, selector: str | None = None,
                      options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Fails on any serious or critical axe violation; returns all violations (the minor and
    moderate ones too, for the accessibility figures)."""
    violations = axe(page, selector=selector, options=options)
    blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        title = page.title()
        pytest.fail(f"axe: {len(blocking)} serious/critical violation(s) on {page.url} "
                    f"(title {title!r}):\n{describe(blocking)}", pytrace=False)
    return violations


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.2) -> Any:
    """Polls a function until it returns something true (for server-side effects)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
