"""The queue and the service directory over HTTP (httpx against the real app, both databases):
who sees which incidents, acknowledging from the queue (CSRF, the API's refusals), the live
stream's and the fragment's refusals and session clock, the directory's filters.
(The browser tests drive the same pages in Chromium: tests/test_web_queue_browser.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app import tenancy
from app.auth import web as browsers
from app.clock import FrozenClock
from app.scheduler import run_due
from app.tables.auth import WebSession
from tests.conftest import BACKENDS, Env, build_env
from tests.factories import current_assessment
from tests.test_consent import INTAKE_CATEGORIES, new_peacebuilder
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

REPORT = """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
  incident { id status } userErrors { field message code } } }"""
INCIDENT = "query($id: ID!) { node(id: $id) { ... on Incident { status acknowledgedAt } } }"
SUMMARY = "Queue test: threatened after the market forum."


async def report(env: Env, case_id: str, org: str, severity: str = "CRITICAL") -> str:
    body = await env.gql(REPORT, {"i": {
        "caseId": case_id, "type": "THREATS", "severity": severity, "reportedBy": "herself",
        "reportedVia": "secure_messenger", "description": "Messages after the forum."}},
        as_=(org, "caseworker"))
    assert body["data"]["reportIncident"]["userErrors"] == [], body
    return str(body["data"]["reportIncident"]["incident"]["id"])


async def status_of(env: Env, org: str, incident_id: str) -> str | None:
    body = await env.gql(INCIDENT, {"id": incident_id}, as_=(org, "focal"))
    node = (body.get("data") or {}).get("node")
    return node["status"] if node else None


async def signed_in(env: Env, client: httpx.AsyncClient, org: str) -> None:
    await set_staff_password(env, org, "caseworker")
    response = await sign_in_staff(client, org, "caseworker")
    assert response.status_code == 303, response.text
    await declare_purpose(client)


async def test_a_caseworker_sees_her_organisations_incidents_only(env: Env) -> None:
    pb = await new_peacebuilder(env, "fund", summary=SUMMARY)
    incident = await report(env, pb["case"], "fund")
    async with browser(env) as fund, browser(env) as wpn:
        await signed_in(env, fund, "fund")
        await signed_in(env, wpn, "wpn")
        page = await fund.get("/queue")
        assert page.status_code == 200
        assert f'value="{incident}"' in page.text and f'/cases/{pb["case"]}' in page.text
        # Codes as translated labels, never the raw code.
        assert "Threats" in page.text and "Critical" in page.text
        assert ">CRITICAL<" not in page.text and ">THREATS<" not in page.text
        assert "Reported, not acknowledged" in page.text and "Acknowledge" in page.text
        # Nothing of hers in the title, no summary or description on the queue.
        assert re.search(r"<title>Queue — Safety Net</title>", page.text)
        assert SUMMARY not in page.text and "Messages after the forum" not in page.text
        assert page.headers["cache-control"] == "no-store"
        assert 'href="/directory"' in page.text  # the directory's nav entry
        # Another organisation's queue: no trace of the incident or its case.
        other = await wpn.get("/queue")
        assert other.status_code == 200
        assert incident not in other.text and pb["case"] not in other.text
        fragment = await wpn.get("/queue/fragment")
        assert fragment.status_code == 200 and incident not in fragment.text


async def test_acknowledging_from_the_queue(env: Env) -> None:
    pb = await new_peacebuilder(env, "fund")
    incident = await report(env, pb["case"], "fund", severity="HIGH")
    async with browser(env) as fund, browser(env) as wpn:
        await signed_in(env, fund, "fund")
        await signed_in(env, wpn, "wpn")
        page = await fund.get("/queue")
        token = csrf_of(page.text)
        # Without the form token, or from another site: refused, nothing changed.
        refused = await fund.post("/queue/acknowledge", data={"incident": incident},
                                  headers={"origin": "https://test"})
        assert refused.status_code == 403
        forged = await fund.post("/queue/acknowledge", data={"incident": incident,
                                                             "csrf": token},
                                 headers={"origin": "https://evil.example"})
        assert forged.status_code == 403
        assert await status_of(env, "fund", incident) == "REPORTED"
        # Another organisation cannot acknowledge it: the API's refusal is shown, nothing changed.
        other = await wpn.get("/queue")
        tried = await wpn.post("/queue/acknowledge", data={"incident": incident,
                                                           "csrf": csrf_of(other.text)},
                               headers={"origin": "https://test"})
        assert tried.status_code == 200 and "could not be acknowledged" in tried.text
        assert await status_of(env, "fund", incident) == "REPORTED"
        # Her own organisation's caseworker acknowledges it.
        done = await fund.post("/queue/acknowledge", data={"incident": incident, "csrf": token},
                               headers={"origin": "https://test"})
        assert done.status_code == 303 and done.headers["location"] == "/queue?done=acknowledged"
        assert await status_of(env, "fund", incident) == "ACKNOWLEDGED"
        after = await fund.get(done.headers["location"])
        assert "The incident is acknowledged" in after.text
        assert f'value="{incident}"' not in after.text  # no acknowledge form for it any more
        # Once more: the API's answer is shown, not a crash.
        again = await fund.post("/queue/acknowledge", data={"incident": incident, "csrf": token},
                                headers={"origin": "https://test"})
        assert again.status_code in (200, 303)
        garbage = await fund.post("/queue/acknowledge", data={"incident": "not-an-id",
                                                              "csrf": token},
                                  headers={"origin": "https://test"})
        assert garbage.status_code == 200 and "could not be acknowledged" in garbage.text


async def test_the_live_stream_and_fragment_need_a_session(env: Env) -> None:
    async with browser(env) as client:
        for path in ("/queue/live", "/queue/fragment"):
            response = await client.get(path, headers={"accept": "text/event-stream"})
            assert response.status_code == 401
            assert "text/event-stream" not in response.headers.get("content-type", "")
        # A forged cookie is no session either.
        client.cookies.set("__Host-sn-session", "x" * 43, domain="test.local")  # how httpx files host "test"
        assert (await client.get("/queue/live")).status_code == 401
    async with browser(env) as client:
        await set_staff_password(env, "unpc", "caseworker")
        await sign_in_staff(client, "unpc", "caseworker")
        # Signed in, but no purpose declared yet: no stream, no lists.
        assert (await client.get("/queue/live")).status_code == 403
        assert (await client.get("/queue/fragment")).status_code == 403
    async with browser(env) as client:
        await set_her_password(env, "rosa")
        await sign_in_her(client, "rosa")
        assert (await client.get("/queue/live")).status_code == 404
        assert (await client.get("/queue/fragment")).status_code == 404
        assert (await client.get("/directory")).status_code == 404


async def _last_seen(env: Env, client: httpx.AsyncClient | str) -> Any:
    secret = client if isinstance(client, str) else client.cookies.get("__Host-sn-session")
    assert secret
    with tenancy.using(tenancy.SYSTEM):
        async with env.runtime.db.transaction() as session:
            return await session.scalar(select(WebSession.last_seen_at).where(
                WebSession.id == browsers.session_id(secret)))


async def test_the_fragment_does_not_keep_the_session_alive(env: Env) -> None:
    async with browser(env) as client:
        await signed_in(env, client, "unpc")
        page = await client.get("/queue")
        seen = await _last_seen(env, client)
        fragment = await client.get("/queue/fragment")
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert fragment.headers["cache-control"] == "no-store"
        # The same lists as the page's part.
        assert 'id="queue-incidents"' in fragment.text and 'id="queue-incidents"' in page.text
        assert await _last_seen(env, client) == seen  # the page's own refresh is not activity
        await client.get("/queue")
        assert await _last_seen(env, client) >= seen  # a page she opens is


async def test_the_directory(env: Env) -> None:
    async with browser(env) as client:
        await set_staff_password(env, "unpc", "caseworker")
        await sign_in_staff(client, "unpc", "caseworker")
        # No purpose needed: the directory holds organisations' offers, nothing of hers.
        page = await client.get("/directory")
        assert page.status_code == 200
        assert "<title>Service directory — Safety Net</title>" in page.text
        assert 'aria-current="page"' in page.text
        for label in ("Psychosocial support", "Emergency grants", "Legal aid"):
            assert label in page.text
        assert ">LEGAL_AID<" not in page.text
        legal = await client.get("/directory", params={"service": "LEGAL_AID"})
        assert "Legal aid" in legal.text and "Emergency grants" not in legal.text.split(
            "<table", 1)[-1]
        # The filter form keeps what was chosen and offers the way back to everything.
        assert '<option value="LEGAL_AID" selected>' in legal.text
        assert '<a href="/directory">Clear filters</a>' in legal.text
        assert '<a href="/directory">Clear filters</a>' not in page.text
        assert 'role="search"' in page.text
        accepting = await client.get("/directory", params={"accepts": "yes", "language": "ar"})
        body = accepting.text.split("<table", 1)[-1]
        assert "Psychosocial support" in body and "Security protection" not in body
        nothing = await client.get("/directory", params={"region": "Nowhere at all"})
        assert "No organisation matches these filters." in nothing.text
        # Unknown filter values are ignored, not passed on.
        odd = await client.get("/directory", params={"service": "SPYING", "accepts": "maybe"})
        assert odd.status_code == 200 and "Psychosocial support" in odd.text
        french = await client.post("/language", data={"csrf": csrf_of(page.text),
                                                      "language": "fr", "next": "/directory"},
                                   headers={"origin": "https://test"})
        assert french.status_code == 303
        page = await client.get("/directory")
        assert 'lang="fr"' in page.text and "Aide juridique" in page.text


async def _focal_session(env: Env, org: str) -> str:
    """A focal point's browser session with a declared purpose (her sign-in, second factor
    included, is tested in tests/test_web.py and the browser tests): the cookie's secret."""
    runtime = env.runtime
    token = await env.token(org, "focal")
    claims = await runtime.verify_token(token)
    secret = await browsers.open_browser(
        runtime, subject=claims.subject, language="en", lifetime=timedelta(hours=1),
        tokens=browsers.Tokens(token, None, runtime.clock.now() + timedelta(minutes=10)))
    opened = await browsers.load(runtime, secret)
    assert opened is not None
    await browsers.update_browser(runtime, opened, purpose="protection")
    return secret


class Stream:
    """GET /queue/live on the app itself (ASGI), read as it arrives; a browser that goes away
    is an `http.disconnect`."""

    def __init__(self, env: Env, secret: str, last_event_id: str | None = None) -> None:
        self.app = env.client._transport.app  # type: ignore[attr-defined]
        self.secret = secret
        self.last_event_id = last_event_id
        self.gone = asyncio.Event()
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.text = ""

    async def _receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            await self.chunks.put(message.get("body", b""))

    def start(self) -> asyncio.Task[None]:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "http_version": "1.1", "method": "GET", "scheme": "https", "path": "/queue/live",
                 "raw_path": b"/queue/live", "root_path": "", "query_string": b"",
                 "headers": [(b"host", b"test"), (b"accept", b"text/event-stream"),
                             (b"cookie", f"__Host-sn-session={self.secret}".encode()),
                             *([(b"last-event-id", self.last_event_id.encode())]
                               if self.last_event_id else [])],
                 "client": ("127.0.0.1", 1234), "server": ("test", 443)}
        return asyncio.create_task(self.app(scope, self._receive, self._send))

    async def until(self, needle: str, seconds: float = 15.0) -> str:
        async with asyncio.timeout(seconds):
            while needle not in self.text:
                self.text += (await self.chunks.get()).decode()
        return self.text


async def test_the_live_stream_relays_her_organisations_alerts(env: Env, monkeypatch) -> None:
    from schema.web import live

    monkeypatch.setattr(live, "HEARTBEAT", 0.3)  # session checks every 0.3 s for the test
    pb = await new_peacebuilder(env, "fund", summary=SUMMARY)
    secret = await _focal_session(env, "fund")
    other = await _focal_session(env, "wpn")
    stream, foreign = Stream(env, secret), Stream(env, other)
    task, foreign_task = stream.start(), foreign.start()
    try:
        seen = await _last_seen(env, secret)
        await stream.until("retry:")
        await foreign.until("retry:")
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        await report(env, pb["case"], "fund")
        text = await stream.until('"incident_reported"')
        assert "event: alert" in text and "\nid: " in text
        # Codes only: nothing of hers in the stream.
        assert SUMMARY not in text and "Messages after the forum" not in text
        assert pb["id"] not in text and pb["case"] not in text
        # Her organisation's focal point sees it; another organisation's does not.
        await asyncio.sleep(1.0)
        assert "event: alert" not in foreign.text and "incident_reported" not in foreign.text
        await stream.until(": keep-alive")  # a session check has run: not her activity
        assert await _last_seen(env, secret) == seen
        # A browser that reconnects with the last event's ID gets what it missed meanwhile.
        last_id = re.findall(r"^id: (.+)$", text, re.M)[-1]
        missed = await report(env, pb["case"], "fund", severity="HIGH")
        again = Stream(env, secret, last_event_id=last_id)
        again_task = again.start()
        try:
            replayed = await again.until('"incident_reported"')
            assert re.findall(r"^id: (.+)$", replayed, re.M)[0] != last_id
        finally:
            again.gone.set()
            async with asyncio.timeout(10):
                await again_task
        assert missed not in replayed  # IDs and codes of the alert only, not the incident's
        # The session ends (signed out, idle): so does the stream, it says why.
        runtime = env.runtime
        await browsers.close_browser(runtime, browsers.session_id(secret))
        await stream.until("event: end\ndata: signedout")
        async with asyncio.timeout(10):
            await task
    finally:
        stream.gone.set()
        foreign.gone.set()
        for t in (task, foreign_task):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await t


@pytest.fixture(scope="module", params=BACKENDS)
async def clock_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                    anyio_backend: str) -> AsyncIterator[Env]:
    clock = FrozenClock(datetime(2033, 5, 2, 9, 0, tzinfo=UTC))
    built, close = await build_env(request.param, tmp_path_factory.mktemp("web-queue"),
                                   clock=clock)
    built.clock = clock  # type: ignore[attr-defined]
    try:
        yield built
    finally:
        await close()


ADD_MEASURE = """mutation($i: AddMeasureInput!) { addMeasure(input: $i) {
  measure { id } userErrors { field message code } } }"""
AGREE = """mutation($i: AgreeCheckInScheduleInput!) { agreeCheckInSchedule(input: $i) {
  schedule { id } userErrors { field message code } } }"""


async def test_what_falls_due_reaches_the_queue(clock_env: Env) -> None:
    """An unacknowledged incident past its deadline (escalated), a task past its due date, a
    review coming due and a missed check-in are on the lead organisation's queue, as labels."""
    env = clock_env
    clock: FrozenClock = env.clock  # type: ignore[attr-defined]
    body = await env.gql("mutation { setAcknowledgementDeadline(input: {severity: LOW, "
                         "minutes: 5}) { userErrors { code } } }", as_=("fund", "admin"))
    assert body["data"]["setAcknowledgementDeadline"]["userErrors"] == []
    pb = await new_peacebuilder(env, "fund", categories=[*INTAKE_CATEGORIES, "RISK_ASSESSMENT"])
    incident = await report(env, pb["case"], "fund", severity="LOW")
    now = clock.now()
    added = await env.gql(ADD_MEASURE, {"i": {
        "caseId": pb["case"], "kind": "ACCOMPANIMENT",
        "dueAt": (now + timedelta(minutes=30)).isoformat()}}, as_=("fund", "caseworker"))
    assert added["data"]["addMeasure"]["userErrors"] == [], added
    await current_assessment(env, pb["case"], "fund", login=pb["login"], days=3)
    agreed = await env.gql(AGREE, {"i": {
        "caseId": pb["case"], "intervalMinutes": 12 * 60, "channel": "SECURE_MESSENGER",
        "agreedVia": "IN_PERSON", "missedAction": "CALL_SAFETY_CONTACT",
        "firstDueAt": (now + timedelta(minutes=20)).isoformat()}}, as_=("fund", "caseworker"))
    assert agreed["data"]["agreeCheckInSchedule"]["userErrors"] == [], agreed
    clock.advance(hours=1)
    await run_due(env.runtime.db, clock)
    async with browser(env) as client:
        await signed_in(env, client, "fund")
        page = await client.get("/queue")
    assert page.status_code == 200
    incidents = page.text.split('id="queue-incidents"', 1)[1].split("</section>", 1)[0]
    assert incident in incidents and "Overdue" in incidents
    assert re.search(r"Level [1-9]", incidents), incidents
    tasks = page.text.split('id="queue-tasks"', 1)[1].split("</section>", 1)[0]
    assert "Accompaniment" in tasks and "Planned" in tasks
    reviews = page.text.split('id="queue-reviews"', 1)[1].split("</section>", 1)[0]
    assert "Agreed" in reviews and pb["case"] in reviews
    check_ins = page.text.split('id="queue-checkins"', 1)[1].split("</section>", 1)[0]
    assert "Missed" in check_ins and pb["case"] in check_ins
    for code in ("ACCOMPANIMENT", "MISSED", "AGREED", ">LOW<"):
        assert code not in page.text
