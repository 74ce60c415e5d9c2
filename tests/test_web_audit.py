"""The auditors' and monitoring pages over HTTP (/audit, /monitoring): who sees them, the access
log's filters, cursor pages and export download, the chain's verification status (verified and
broken), the monitoring tables with suppressed and "no data" cells, the CSV and printable
report, and a release refused by the differencing check. Browser flows: test_web_audit_browser."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.audit import chain
from app.audit.worker import LogWorker
from app.auth import mfa, totp
from app.tables.auth import TotpCredential
from tests.conftest import Env
from tests.web_support import (
    browser,
    csrf_of,
    declare_purpose,
    set_staff_password,
    sign_in_staff,
)

pytestmark = pytest.mark.anyio
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def give_second_factor(env: Env, org: str, username: str) -> None:
    """The harness enrols a known second factor (as `safety-net demo` does for its auditors)
    and forgets the last code used, so each test can sign in with the current one."""
    from app.auth import principals

    async with env.runtime.db.transaction() as session:
        user = await principals.find_user(session, org, username)
        assert user is not None
        sealed = mfa.seal_secret(env.runtime.db.keys, user.org_id, user.id, "secret", SEED)
        now = datetime.now(UTC)
        found = await session.get(TotpCredential, user.id)
        if found is None:
            session.add(TotpCredential(user_id=user.id, secret=sealed, enrolled_at=now,
                                       updated_at=now))
        else:
            found.secret, found.last_step, found.pending_secret = sealed, None, None


async def signed_in(env: Env, client, org: str, username: str, purpose: str = "protection",
                    *, second_factor: bool = False, back: str = "/queue") -> None:
    await set_staff_password(env, org, username)
    code = None
    if second_factor:
        await give_second_factor(env, org, username)
        code = totp.code_at(SEED, totp.step_of(datetime.now(UTC).timestamp()))
    response = await sign_in_staff(client, org, username, totp=code)
    assert response.status_code == 303, response.text
    assert (await declare_purpose(client, purpose, back=back)).status_code == 303


async def checkpoint(env: Env) -> int:
    """Chain what is pending and sign a checkpoint (the log worker's job; off in tests)."""
    await chain.chain_all(env.runtime.db)
    cp = await LogWorker(env.settings, env.runtime.db, env.runtime.clock).maybe_checkpoint(
        force=True)
    return cp.size if cp is not None else 0


async def auditor(env: Env, client) -> None:
    await signed_in(env, client, "nhri", "auditor", second_factor=True, back="/audit")


# --- /audit -----------------------------------------------------------------------------------

async def test_the_auditor_sees_the_log_and_its_verified_chain(env: Env) -> None:
    async with browser(env) as client:
        await auditor(env, client)
        size = await checkpoint(env)
        page = await client.get("/audit")
        assert page.status_code == 200, page.text
        assert page.headers["cache-control"] == "no-store"
        assert "<title>Access log — Safety Net</title>" in page.text
        assert 'data-state="verified"' in page.text and "Verified" in page.text
        # The newest checkpoint at least as new as the one just signed, and its number shown.
        shown = int(re.search(r"entry ([\d,]+)", page.text).group(1).replace(",", ""))
        assert shown >= size > 0
        assert '<table class="log">' in page.text and "audit_log.verify" not in page.text[:200]
        assert 'href="/audit"' in page.text  # the nav entry, for an auditor
        # The API's own answer for the same person agrees.
        token = await env.token("nhri", "auditor")
        body = await env.gql("{ accessLogVerification { state checkpointSize checkedFrom "
                             "checkedThrough problems } }", token=token)
        status = body["data"]["accessLogVerification"]
        assert status["state"] == "verified" and status["problems"] == []
        assert status["checkedThrough"] == status["checkpointSize"] >= size


async def test_actions_are_named_in_the_page_language_beside_their_code(env: Env) -> None:
    async with browser(env) as client:
        await auditor(env, client)
        await client.get("/audit")  # the page's own read is logged: audit_log.search
        page = await client.get("/audit", params={"action": "audit_log."})
        rows = re.findall(r"<td>([^<]*)<br><code class=\"small\" dir=\"ltr\">([a-z_.]+)</code>",
                          page.text)
        assert ("Access log searched", "audit_log.search") in rows
        assert all(label for label, _code in rows)
        french = await client.post("/language", data={"csrf": csrf_of(page.text),
                                                      "language": "fr", "next": "/audit"},
                                   headers={"origin": "https://test"})
        assert french.status_code == 303
        page = await client.get("/audit", params={"action": "audit_log.search"})
        assert "Recherche dans le journal des accès<br>" in page.text


def test_every_action_the_service_logs_has_a_label() -> None:
    """Each action code written in app/ and schema/ (`ctx.record`, `ctx.deny`, `action=`) is
    named on the auditor's page; a new code without a label fails here, not in front of her."""
    from pathlib import Path

    from schema.web.audit_actions import ACTIONS

    written = re.compile(r'(?:\.deny|\.record|\.change|\.allow|action=)\(?\s*"([a-z_]+(?:\.[a-z_]+)+)"')
    root = Path(__file__).resolve().parent.parent
    codes = {code for folder in ("app", "schema") for path in (root / folder).rglob("*.py")
             for code in written.findall(path.read_text(encoding="utf-8"))}
    assert len(codes) > 100
    assert sorted(codes - set(ACTIONS)) == []


async def test_caseworkers_and_analysts_get_not_found_and_no_nav_entry(env: Env) -> None:
    async with browser(env) as client:
        await signed_in(env, client, "nhri", "caseworker")
        queue = await client.get("/queue")
        assert 'href="/audit"' not in queue.text and 'href="/monitoring"' not in queue.text
        missing = await client.get("/no-such-page-here")
        for path in ("/audit", "/monitoring", "/audit?decision=deny"):
            refused = await client.get(path)
            assert refused.status_code == 404, path
            assert "Not found" in refused.text
        # Not a step further with a form: still nothing, and no export.
        sent = await client.post("/audit/download", data={"csrf": csrf_of(queue.text),
                                                          "format": "csv"},
                                 headers={"origin": "https://test"})
        assert sent.status_code == 404 and "attachment" not in sent.headers.get(
            "content-disposition", "")
        assert missing.status_code == 404
    async with browser(env) as client:
        await signed_in(env, client, "nhri", "analyst")
        assert (await client.get("/audit")).status_code == 404


async def test_filters_narrow_the_log_and_pages_follow_the_cursor(env: Env) -> None:
    async with browser(env) as client:
        await auditor(env, client)
        # Refusals to filter on (and more than a page of them): a caseworker of an overseen
        # organisation asks for the log.
        for _ in range(26):
            await env.gql("{ accessLog { totalCount } }", as_=("mofa", "caseworker"))
        await checkpoint(env)
        everything = await client.get("/audit")
        assert set(re.findall(r'<tr class="(allow|deny)">', everything.text)) >= {"allow"}
        denied = await client.get("/audit", params={"decision": "deny",
                                                    "action": "audit_log"})
        assert denied.status_code == 200
        rows = re.findall(r'<tr class="(allow|deny)">', denied.text)
        assert rows and set(rows) == {"deny"}
        assert 'option value="deny" selected' in denied.text
        assert 'id="f-action" name="action" value="audit_log"' in denied.text
        assert '<a href="/audit">Clear filters</a>' in denied.text
        # By organisation (one of those it audits), by date.
        mofa = re.search(r'<option value="([^"]+)">Ministry', everything.text)
        assert mofa, "mofa accepts the NHRI's oversight: it is offered"
        only_mofa = await client.get("/audit", params={"org": mofa.group(1)})
        assert only_mofa.status_code == 200 and "National Human Rights" not in re.sub(
            r"<header.*?</header>|<select id=\"f-org\".*?</select>", "", only_mofa.text,
            flags=re.S)
        today = datetime.now(UTC).date().isoformat()
        future = await client.get("/audit", params={"from": "2999-01-01"})
        assert "No entry matches." in future.text
        assert (await client.get("/audit", params={"to": today})).status_code == 200
        # An organisation it does not audit: told so, no entry shown.
        token = await env.token("nhri", "auditor")
        orgs = await env.gql("{ organisations(first: 50) { edges { node { id slug } } } }",
                             token=token)
        fund = next(e["node"]["id"] for e in orgs["data"]["organisations"]["edges"]
                    if e["node"]["slug"] == "fund")
        foreign = await client.get("/audit", params={"org": fund})
        assert "You do not audit that organisation." in foreign.text
        assert '<table class="log">' not in foreign.text
        # Cursor pages: 25 a page, the next page's link carries the filters and an opaque cursor.
        link = re.search(r'href="(/audit\?[^"]*after=[^"]+)" rel="next"', everything.text)
        assert link, "a next page"
        second = await client.get(link.group(1).replace("&amp;", "&"))
        assert second.status_code == 200 and "First page" in second.text
        first_ids = set(re.findall(r"<td>(\d+)</td>", everything.text))
        second_ids = set(re.findall(r"<td>(\d+)</td>", second.text))
        assert second_ids and not first_ids & second_ids


async def test_the_export_downloads_with_its_checkpoint_and_is_logged(env: Env) -> None:
    async with browser(env) as client:
        await auditor(env, client)
        page = await client.get("/audit", params={"decision": "deny"})
        form = {"csrf": csrf_of(page.text), "format": "jsonl", "decision": "deny"}
        got = await client.post("/audit/download", data=form, headers={"origin": "https://test"})
        assert got.status_code == 200, got.text[:500]
        assert got.headers["content-disposition"] == 'attachment; filename="access-log.jsonl"'
        assert got.headers["cache-control"] == "no-store"
        lines = [json.loads(line) for line in got.text.splitlines()]
        assert lines[0]["type"] == "checkpoint" and "safety-net/access-log" in lines[0]["note"]
        exported = [line for line in lines if line["type"] == "entry"]
        assert exported and {e["decision"] for e in exported} == {"deny"}
        csv = await client.post("/audit/download", data={**form, "format": "csv"},
                                headers={"origin": "https://test"})
        assert csv.status_code == 200 and csv.text.startswith("seq,id,at,")
        assert csv.headers["content-disposition"] == 'attachment; filename="access-log.csv"'
        assert "x-safety-net-checkpoint" in csv.headers
        # Without the session's form token: refused, nothing exported.
        forged = await client.post("/audit/download", data={"format": "csv"},
                                   headers={"origin": "https://test"})
        assert forged.status_code == 403 and "content-disposition" not in forged.headers
    async with env.runtime.db.transaction() as session:
        from app.tables.audit import AccessLogEntry

        found = await session.scalar(select(AccessLogEntry).where(
            AccessLogEntry.action == "audit_log.export").order_by(AccessLogEntry.at.desc()))
        assert found is not None and found.decision == "allow"


async def test_an_export_needs_a_recent_second_factor(env: Env, monkeypatch) -> None:
    """Her second factor is older than the step-up window: the page says what to do, and no
    file leaves."""
    import time
    from types import SimpleNamespace

    async with browser(env) as client:
        await auditor(env, client)
        page = await client.get("/audit")
        later = time.time() + 2 * env.runtime.settings.step_up_seconds
        monkeypatch.setattr("app.access.caller.time", SimpleNamespace(time=lambda: later))
        got = await client.post("/audit/download",
                                data={"csrf": csrf_of(page.text), "format": "csv"},
                                headers={"origin": "https://test"})
        assert got.status_code == 403 and "content-disposition" not in got.headers
        assert "second factor in the last 15 minutes" in got.text


async def test_no_checkpoint_then_verified_then_broken(backend, tmp_path) -> None:
    from tests.conftest import build_env
    from tests.test_audit import tamper

    env, close = await build_env(backend, tmp_path)
    try:
        async with browser(env) as client:
            await auditor(env, client)
            # A new deployment has signed nothing yet: nothing to verify against, said so.
            fresh_page = (await client.get("/audit")).text
            assert 'data-state="no_checkpoint"' in fresh_page and "No checkpoint yet" in fresh_page
            await checkpoint(env)
            assert 'data-state="verified"' in (await client.get("/audit")).text
            await tamper(env, "UPDATE access_log SET reason = 'nothing to see' WHERE seq = 3")
            page = await client.get("/audit")
            assert page.status_code == 200
            assert 'data-state="broken"' in page.text and "Broken" in page.text
            assert "entry 3 does not match its hash (edited)" in page.text
            assert re.search(r"First entry that does not match</dt><dd>3<", page.text)
    finally:
        await close()


# --- /monitoring ------------------------------------------------------------------------------

AGG = "aggregate_reporting"


async def release_form(client, table: str, period: str):
    page = await client.get("/monitoring")
    return await client.post("/monitoring", data={"csrf": csrf_of(page.text), "table": table,
                                                  "period": period},
                             headers={"origin": "https://test"})


async def test_monitoring_shows_released_tables_charts_and_downloads(env: Env) -> None:
    from tests.test_monitoring import _women

    await _women(env, 5, year=2007, month=3, region="KE-KSM", type_="SURVEILLANCE",
                 source="state_actor")
    await _women(env, 1, year=2007, month=3, region="KE-KSM", type_="SURVEILLANCE",
                 source="private_actor")
    async with browser(env) as client:
        await signed_in(env, client, "nhri", "analyst", AGG, back="/monitoring")
        done = await release_form(client, "incidents_by_region", "2007-03")
        assert done.status_code == 303, done.text[:800]
        assert done.headers["location"] == "/monitoring?period=2007-03&released=incidents_by_region"
        page = await client.get(done.headers["location"])
        assert page.status_code == 200 and "<title>Monitoring — Safety Net</title>" in page.text
        assert 'href="/monitoring"' in page.text and 'href="/audit"' not in page.text
        assert 'id="release-done"' in page.text
        assert 'by region and type — <bdi dir="ltr">2007-03</bdi>' in page.text
        assert "suppressed" in page.text and "no data" in page.text
        # Turkana has no reporting mechanism: "no data" in its row, never a zero.
        turkana = re.search(r"<th scope=\"row\">Turkana</th>(.*?)</tr>", page.text, re.S)
        assert turkana and "no data" in turkana.group(1) and ">0<" not in turkana.group(1)
        chart = re.search(r"data-chart='([^']+)'", page.text)
        assert chart, "a chart of the table"
        spec = json.loads(chart.group(1).replace("&#34;", '"').replace("&quot;", '"'))
        assert "Kisumu" in spec["labels"] and len(spec["labels"]) == len(spec["values"])
        assert spec["values"][spec["labels"].index("Turkana")] is None
        assert "<script>" not in page.text and "style=" not in page.text
        assert "Tables with no source yet" in page.text and "Relocations and returns" in page.text
        ledger = re.search(r'<table class="ledger">(.*?)</table>', page.text, re.S)
        assert ledger and 'href="/monitoring?period=2007-03"' in ledger.group(1)
        # Every table scrolls sideways in its own keyboard-reachable, named container: a phone
        # keeps the page's width.
        wrapped = re.findall(r'<div class="table-wrap" tabindex="0" role="region" '
                             r'aria-labelledby="([^"]+)">\s*<table', page.text)
        assert len(wrapped) == page.text.count("<table") >= 4
        assert all(f'id="{label}"' in page.text for label in wrapped)
        # The CSV and the printable report: the API's own, as an attachment / a page of its own.
        csv = await client.get("/monitoring/download", params={"period": "2007-03",
                                                               "format": "csv"})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert csv.headers["content-disposition"] == 'attachment; filename="monitoring-2007-03.csv"'
        assert csv.headers["cache-control"] == "no-store"
        assert "incidents_by_region,2007-03,KE-TUR,threats,no data,,5,5" in csv.text
        printable = await client.get("/monitoring/download", params={"period": "2007-03",
                                                                     "format": "html"})
        assert printable.status_code == 200 and "Monitoring report 2007-03" in printable.text
        assert "script-src" not in printable.headers["content-security-policy"]
        assert printable.headers["content-disposition"].startswith("inline")
        pdf = await client.get("/monitoring/download", params={"period": "2007-03",
                                                               "format": "pdf"})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        # A made-up period or format: nothing.
        for params in ({"period": "2007-03-01", "format": "csv"},
                       {"period": "2007-03", "format": "xlsx"}):
            assert (await client.get("/monitoring/download", params=params)).status_code == 404


async def test_a_release_the_differencing_check_refuses_says_so(env: Env) -> None:
    from tests.test_monitoring import _women

    await _women(env, 5, year=2006, month=1, region="KE-NBI", type_="THREATS")
    async with browser(env) as client:
        await signed_in(env, client, "nhri", "focal", AGG, second_factor=True,
                        back="/monitoring")
        assert (await release_form(client, "incidents_by_region", "2006-01")).status_code == 303
        await _women(env, 2, year=2006, month=2, region="KE-NBI", type_="ONLINE_HARASSMENT")
        refused = await release_form(client, "incidents_by_region", "2006-Q1")
        assert refused.status_code == 409
        assert 'id="release-error"' in refused.text and "differencing" in refused.text
        assert "Nothing was published." in refused.text
        assert 'value="2006-Q1"' in refused.text  # the form keeps what was asked
        page = await client.get("/monitoring", params={"period": "2006-Q1"})
        assert ">2006-Q1</bdi>" not in page.text  # nothing published for the quarter
        bad = await release_form(client, "incidents_by_region", "last week")
        assert bad.status_code == 400 and "calendar year" in bad.text
        running = await release_form(client, "incidents_by_region",
                                     datetime.now(UTC).strftime("%Y-%m"))
        assert running.status_code == 400 and "has ended" in running.text
        forged = await client.post("/monitoring", data={"table": "incidents_by_region",
                                                        "period": "2006-02"},
                                   headers={"origin": "https://test"})
        assert forged.status_code == 403


async def test_monitoring_asks_for_the_aggregate_reporting_purpose(env: Env) -> None:
    async with browser(env) as client:
        await signed_in(env, client, "nhri", "analyst", "protection", back="/monitoring")
        page = await client.get("/monitoring")
        assert page.status_code == 200 and "Work on aggregate reporting" in page.text
        assert "<table" not in page.text
        assert (await client.get("/monitoring/download", params={
            "period": "2007-03", "format": "csv"})).status_code == 404
        switched = await client.post("/purpose", data={
            "csrf": csrf_of(page.text), "purpose": AGG, "next": "/monitoring"},
            headers={"origin": "https://test"})
        assert switched.status_code == 303 and switched.headers["location"] == "/monitoring"
        assert "Release a table" in (await client.get("/monitoring")).text
    async with browser(env) as client:
        await auditor(env, client)
        assert (await client.get("/monitoring")).status_code == 404


async def test_her_pages_load_no_chart_script_and_she_has_neither_page(env: Env) -> None:
    from tests.web_support import set_her_password, sign_in_her

    await set_her_password(env, "leyla")
    async with browser(env) as client:
        assert (await sign_in_her(client, "leyla")).status_code == 303
        mine = await client.get("/me")
        assert mine.status_code == 200 and "monitoring.js" not in mine.text
        assert 'href="/audit"' not in mine.text and 'href="/monitoring"' not in mine.text
        for path in ("/audit", "/monitoring", "/monitoring/download?period=2007-03&format=csv"):
            assert (await client.get(path)).status_code == 404, path
