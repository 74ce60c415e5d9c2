"""The access log: chaining, tamper evidence, checkpoints, the auditor API, her history, alerts.

Tampering tests play an attacker with database-owner rights: on PostgreSQL they switch the
append-only triggers off for their session (`session_replication_role = replica`), on SQLite they
drop them; `verify` must still name the first bad entry or the checkpoint it contradicts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.audit import chain, checkpoints
from app.audit.verify import verify, verify_export
from app.audit.worker import LogWorker
from app.tables.audit import AccessLogEntry, Alert
from app.tenancy import SYSTEM
from schema import ids
from tests.conftest import build_env, unique
from tests.test_consent import READ, grant, new_peacebuilder

pytestmark = pytest.mark.anyio


async def fresh(backend: str, tmp_path, **overrides):
    env, close = await build_env(backend, tmp_path, **overrides)
    env.worker = LogWorker(env.settings, env.runtime.db, env.runtime.clock)
    await chain.chain_all(env.runtime.db)
    await env.worker.maybe_checkpoint(force=True)
    return env, close


async def run_verify(env, state: bool = True):
    s = env.settings
    return await verify(env.runtime.db, s.checkpoints, s.checkpoint_keys,
                        s.data_dir / "state.json" if state else None)


@asynccontextmanager
async def superuser(env):
    """A connection as someone who controls the database server (PostgreSQL: a superuser, who
    bypasses row-level security and may switch triggers off; SQLite: whoever has the file)."""
    if env.backend != "postgresql":
        async with env.runtime.db.engine.begin() as conn:
            yield conn
        return
    engine = create_async_engine(env.owner_url)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


async def tamper(env, *statements: str) -> None:
    """Run SQL as an attacker who bypasses the append-only triggers."""
    async with superuser(env) as conn:
        if env.backend == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            await conn.execute(text("DROP TRIGGER IF EXISTS access_log_no_delete"))
            await conn.execute(text("DROP TRIGGER IF EXISTS access_log_chain_once"))
        for statement in statements:
            await conn.execute(text(statement))


async def rehash_everything(env) -> None:
    """What an attacker with write access does: recompute the whole chain over the edits."""
    db = env.runtime.db
    async with superuser(env) as conn:
        rows = (await conn.exec_driver_sql(chain.raw_select(db.dialect) + " ORDER BY seq")).all()
    prev, updates = chain.GENESIS, []
    for row in rows:
        digest = chain.entry_hash(row, prev)
        updates.append(f"UPDATE access_log SET prev_hash = '{prev}', hash = '{digest}' "
                       f"WHERE seq = {row[0]}")
        prev = digest
    await tamper(env, *updates)


async def test_untouched_log_verifies_and_state_is_remembered(backend, tmp_path):
    env, close = await fresh(backend, tmp_path)
    try:
        report = await run_verify(env)
        assert report.ok, report.problems
        assert report.entries > 50 and report.pending == 0 and report.checkpoints == 1
        state = json.loads((env.settings.data_dir / "state.json").read_text())
        assert state["size"] == report.entries
    finally:
        await close()


async def test_the_database_refuses_to_change_or_delete_entries(backend, tmp_path):
    env, close = await fresh(backend, tmp_path)
    try:
        for statement in ("UPDATE access_log SET action = 'x' WHERE seq = 3",
                          "DELETE FROM access_log WHERE seq = 3",
                          "UPDATE access_log SET seq = 99999 WHERE seq = 3"):
            # With the service's own credentials in the system scope (the background role's,
            # the only one the database lets use it), and as the server's superuser: the
            # triggers refuse.
            system = env.runtime.db.system
            with pytest.raises(Exception, match=r"append-only|cannot be changed"):
                async with system.engine.begin() as conn:
                    await system.declare(conn, SYSTEM)
                    await conn.execute(text(statement))
            with pytest.raises(Exception, match=r"append-only|cannot be changed"):
                async with superuser(env) as conn:
                    await conn.execute(text(statement))
        if backend == "postgresql":
            with pytest.raises(Exception, match="append-only"):
                async with superuser(env) as conn:
                    await conn.execute(text("TRUNCATE access_log"))
            with pytest.raises(Exception, match="permission denied"):  # not even granted
                async with env.runtime.db.engine.begin() as conn:
                    await conn.execute(text("TRUNCATE access_log"))
        assert (await run_verify(env)).ok
    finally:
        await close()


@pytest.mark.parametrize("attack,first_bad,words", [
    ("edit", 5, "edited"),
    ("delete", 5, "missing"),
    ("insert", 5, "does not follow"),
    ("reorder", 5, "does not follow"),
])
async def test_tampering_names_the_first_bad_entry(backend, tmp_path, attack, first_bad, words):
    env, close = await fresh(backend, tmp_path)
    try:
        if attack == "edit":
            await tamper(env, "UPDATE access_log SET reason = 'nothing to see' WHERE seq = 5")
        elif attack == "delete":
            await tamper(env, "DELETE FROM access_log WHERE seq = 5")
        elif attack == "insert":
            async with env.runtime.db.transaction() as s:
                h4 = await s.scalar(select(AccessLogEntry.hash).where(AccessLogEntry.seq == 4))
            await tamper(env, "UPDATE access_log SET seq = seq + 1000000 WHERE seq >= 5",
                         "UPDATE access_log SET seq = seq - 999999 WHERE seq >= 1000000",
                         "INSERT INTO access_log (id, seq, at, request_id, actor, action, decision, "
                         "prev_hash, hash) VALUES ('00000000-0000-4000-8000-000000000001', 5, "
                         "'2030-01-01 00:00:00', 'forged', 'system', 'forged', 'allow', "
                         f"'{h4}', '{'f' * 64}')")
        elif attack == "reorder":
            await tamper(env, "UPDATE access_log SET seq = -5 WHERE seq = 5",
                         "UPDATE access_log SET seq = 5 WHERE seq = 6",
                         "UPDATE access_log SET seq = 6 WHERE seq = -5")
        report = await run_verify(env)
        assert not report.ok
        assert report.first_bad_seq in (first_bad - 1, first_bad), report.problems
        assert any(words in p for p in report.problems), report.problems
        assert any(str(first_bad) in p for p in report.problems), report.problems
    finally:
        await close()


async def test_truncated_tail_and_recomputed_chain_contradict_the_checkpoint(backend, tmp_path):
    env, close = await fresh(backend, tmp_path)
    try:
        async with env.runtime.db.transaction() as s:
            size = (await chain.head(s)).size
        await tamper(env, f"DELETE FROM access_log WHERE seq > {size - 3}")
        report = await run_verify(env)
        assert not report.ok and any("truncated" in p for p in report.problems), report.problems
        # The attacker now rewrites an early entry and recomputes every hash after it.
        await tamper(env, "UPDATE access_log SET reason = 'rewritten' WHERE seq = 2")
        await rehash_everything(env)
        report = await run_verify(env)
        assert not report.ok
        assert not any("edited" in p or "does not follow" in p for p in report.problems)
        assert any("truncated" in p for p in report.problems), report.problems
    finally:
        await close()


async def test_rewritten_history_contradicts_a_checkpoint(backend, tmp_path):
    env, close = await fresh(backend, tmp_path)
    try:
        await tamper(env, "UPDATE access_log SET reason = 'rewritten' WHERE seq = 2")
        await rehash_everything(env)
        report = await run_verify(env)
        assert not report.ok
        assert any("checkpoint" in p and "contradicts" in p for p in report.problems), report.problems
    finally:
        await close()


async def test_a_rollback_stays_visible_after_the_log_regrows_past_it(backend, tmp_path):
    """An older backup restored, then used until its log is longer than what the auditor had
    accepted: its new checkpoints are genuine, but the log at the accepted size is another log."""
    env, close = await fresh(backend, tmp_path)
    try:
        accepted = await run_verify(env)  # remembers (size, head) in the state file
        assert accepted.ok
        # The restore: the log as it was 5 entries earlier, with no later checkpoints.
        shutil.rmtree(env.settings.checkpoints)
        await tamper(env, f"DELETE FROM access_log WHERE seq > {accepted.entries - 5}")
        for _ in range(8):  # used on: each denial is one more entry
            await env.post(DENIED, as_=("mofa", "caseworker"))
        await chain.chain_all(env.runtime.db)
        await env.worker.maybe_checkpoint(force=True)
        report = await run_verify(env)
        assert report.entries > accepted.entries
        assert not report.ok
        assert any("rolled back and regrown" in p for p in report.problems), report.problems
    finally:
        await close()


async def test_replayed_old_checkpoint_is_rejected(backend, tmp_path):
    env, close = await fresh(backend, tmp_path)
    try:
        assert (await run_verify(env)).ok  # accepts checkpoint 1
        async with env.runtime.db.transaction() as s:
            old_size = (await chain.head(s)).size
        saved = tmp_path / "old-checkpoints"
        shutil.copytree(env.settings.checkpoints, saved)
        await env.gql("{ viewer { name } }", as_=("mofa", "admin"))
        await env.post(DENIED, as_=("mofa", "caseworker"))  # a denial: one more entry
        await chain.chain_all(env.runtime.db)
        await env.worker.maybe_checkpoint(force=True)
        assert (await run_verify(env)).ok  # accepts the newer checkpoint
        # Roll back: old checkpoints only, log truncated to the old size.
        shutil.rmtree(env.settings.checkpoints)
        shutil.copytree(saved, env.settings.checkpoints)
        await tamper(env, f"DELETE FROM access_log WHERE seq > {old_size}")
        report = await run_verify(env)
        assert not report.ok
        assert any("rolled back" in p for p in report.problems), report.problems
    finally:
        await close()


async def test_forged_checkpoint_and_key_rotation(backend, tmp_path):
    env, close = await fresh(backend, tmp_path)
    try:
        env.worker.signer.rotate()
        await env.gql("{ viewer { name } }", as_=("mofa", "admin"))
        await env.gql("{ users(first: 1) { edges { node { id } } } }", as_=("mofa", "analyst"))
        await chain.chain_all(env.runtime.db)
        cp = await env.worker.maybe_checkpoint(force=True)
        assert cp is not None
        report = await run_verify(env)
        assert report.ok and report.checkpoints == 2, report.problems  # old key still verifies
        path = env.settings.checkpoints / f"{cp.size:012d}.note"
        text_ = path.read_text().replace(cp.head, "0" * 64)
        path.write_text(text_)
        report = await run_verify(env, state=False)
        assert any("bad signature" in p for p in report.problems), report.problems
    finally:
        await close()


async def test_change_and_its_entry_commit_together(env, monkeypatch):
    """A crash between the change and its log entry leaves neither."""
    from app.access import log as audit_service
    from app.tables.cases import Case

    pb = await new_peacebuilder(env, "fund")
    real = audit_service.entry

    def broken(*args, **kwargs):
        row = real(*args, **kwargs)
        if kwargs.get("action") == "case.open":
            row.actor = None  # NOT NULL: the insert of the entry fails
        return row

    async with env.runtime.db.transaction() as s:
        before = await s.scalar(select(func.count()).select_from(Case))
    monkeypatch.setattr(audit_service, "entry", broken)
    body = await env.post("mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }",
                          {"i": {"peacebuilderId": pb["id"]}}, as_=("fund", "caseworker"))
    assert body.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    async with env.runtime.db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Case)) == before


async def test_no_sensitive_response_without_its_log_entries(env, monkeypatch):
    """If the read entries cannot be written, the data is not sent: whether they commit with
    the request's own transaction or on their own after it."""
    from sqlalchemy.exc import IntegrityError

    from app.access import log as audit_service
    from schema import http as graphql_http

    pb = await new_peacebuilder(env, "fund")

    async def failing(db, entries):
        raise OSError("log storage unavailable")

    monkeypatch.setattr(graphql_http, "write_deferred", failing)
    real = audit_service.entry

    def broken(*args, **kwargs):
        row = real(*args, **kwargs)
        if kwargs.get("action") == "data.read":
            row.actor = None  # NOT NULL: the insert of the read entry fails
        return row

    monkeypatch.setattr(audit_service, "entry", broken)
    with pytest.raises((OSError, IntegrityError)):
        await env.post(READ, {"id": pb["id"]}, as_=("fund", "caseworker"))


async def test_denied_read_is_logged_and_chained(env):
    pb = await new_peacebuilder(env, "fund")
    await env.post(READ, {"id": pb["id"]}, as_=("embassy", "caseworker"))  # no grant at all
    await env.post(READ, {"id": pb["id"]}, as_=("fund", "analyst"))  # pseudonymous only
    await chain.chain_all(env.runtime.db)
    pb_uuid = str(ids.decode(pb["id"], "Peacebuilder"))
    async with env.runtime.db.transaction() as s:
        rows = list(await s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.refs.contains(pb_uuid), AccessLogEntry.decision == "deny")))
    assert rows and all(r.seq is not None and r.hash for r in rows)
    assert {r.reason for r in rows} >= {"NEED_TO_KNOW"}


async def test_parallel_requests_leave_a_gap_free_verifiable_chain(backend, tmp_path):
    env, close = await fresh(backend, tmp_path)
    try:
        token = await env.token("mofa", "admin")
        analyst = await env.token("mofa", "analyst")

        async def work(i: int) -> None:
            await env.post("{ users(first: 5) { edges { node { id } } } }", token=token)
            await env.post(DENIED, token=analyst)

        async def chainer() -> None:
            for _ in range(20):
                await chain.chain_pending(env.runtime.db, batch=7)
                await asyncio.sleep(0)

        await asyncio.gather(*(work(i) for i in range(40)), chainer(), chainer())
        await chain.chain_all(env.runtime.db)
        await env.worker.maybe_checkpoint(force=True)
        report = await run_verify(env)
        assert report.ok, report.problems
        async with env.runtime.db.transaction() as s:
            n, lo, hi = (await s.execute(select(func.count(), func.min(AccessLogEntry.seq),
                                                func.max(AccessLogEntry.seq)))).one()
        assert (lo, hi) == (1, n) and report.entries == n
    finally:
        await close()


# --- auditors, oversight and her view ------------------------------------------------------------

# A mutation a case worker may not run: every call is a logged denial.
DENIED = ("mutation { resetUserPassword(input: {userId: \"VXNlcjowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAw"
          "MDAwMDAwMDA\"}) { userErrors { message } } }")

LOG = """query($f: AccessLogFilter) { accessLog(first: 100, filter: $f) {
  edges { node { seq action decision purpose actor organisation { slug } details } } } }"""


async def test_auditors_see_their_own_and_overseen_organisations_only(env):
    marker = unique("marker")
    for org in ("mofa", "wpn", "nhri"):
        await env.post("{ viewer { name } }", as_=(org, "caseworker"),
                       headers={"x-request-id": marker.replace("-", "") + org})
        await env.post(DENIED, as_=(org, "caseworker"))
    body = await env.gql(LOG, {"f": {"decision": "deny", "actionPrefix": "user."}},
                         as_=("nhri", "auditor"))
    slugs = {e["node"]["organisation"]["slug"] for e in body["data"]["accessLog"]["edges"]}
    assert {"mofa", "nhri"} <= slugs and "wpn" not in slugs
    wpn = await env.gql(LOG, {"f": {"organisationId": await _org(env, "wpn")}},
                        as_=("nhri", "auditor"))
    assert wpn["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    refused = await env.gql(LOG, as_=("mofa", "caseworker"))
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def _org(env, slug):
    from tests.test_consent import org_id

    return await org_id(env, slug)


async def test_auditor_filters_by_pseudonym_and_purpose_and_her_history(env):
    pb = await new_peacebuilder(env, "mofa")
    await grant(env, pb, as_=("mofa", "focal"), to_org="unpc")
    await env.post(READ, {"id": pb["id"]}, as_=("unpc", "focal"))
    await env.post(READ, {"id": pb["id"]}, as_=("embassy", "focal"))
    body = await env.gql(LOG, {"f": {"peacebuilderPseudonym": pb["login"], "purpose": "PROTECTION"}},
                         as_=("nhri", "auditor"))
    edges = body["data"]["accessLog"]["edges"]
    assert edges and all(e["node"]["purpose"] == "PROTECTION" for e in edges)
    assert {e["node"]["organisation"]["slug"] for e in edges} <= {"mofa", "unpc", "embassy"}
    assert all("Secret" not in (e["node"]["details"] or "") for e in edges)
    her = await env.peacebuilder_token(pb["login"])
    history = await env.gql("""{ accessHistory(first: 50) { edges { node { organisation { slug }
        purpose decision description } } } }""", token=her, purpose=None)
    lines = [e["node"] for e in history["data"]["accessHistory"]["edges"]]
    assert {"organisation": {"slug": "unpc"}, "purpose": "PROTECTION", "decision": "allow",
            "description": "read your incident details"} in lines
    assert any(n["organisation"]["slug"] == "embassy" and n["decision"] == "deny" for n in lines)


async def test_export_verifies_offline_and_tampering_is_caught(backend, tmp_path):
    env, close = await fresh(backend, tmp_path)
    try:
        env.runtime.extras["log_worker"] = env.worker
        token = await env.token("nhri", "auditor")
        response = await env.client.get("/audit/export", params={"format": "jsonl"},
                                        headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        lines = response.text.splitlines()
        kinds = {json.loads(line)["type"] for line in lines}
        assert kinds == {"checkpoint", "entry", "stub"}  # wpn's entries are stubs
        path = tmp_path / "export.jsonl"
        path.write_text(response.text)
        report = verify_export(path, env.settings.checkpoint_keys)
        assert report.ok and report.entries > 0, report.problems
        first_entry = next(i for i, line in enumerate(lines) if '"type": "entry"' in line)
        edited = json.loads(lines[first_entry])
        edited["decision"] = "deny" if edited["decision"] == "allow" else "allow"
        lines[first_entry] = json.dumps(edited)
        path.write_text("\n".join(lines) + "\n")
        bad = verify_export(path, env.settings.checkpoint_keys)
        assert not bad.ok and any("edited" in p for p in bad.problems)
        csv_resp = await env.client.get("/audit/export", params={"format": "csv"},
                                        headers={"authorization": f"Bearer {token}"})
        assert csv_resp.status_code == 200 and csv_resp.text.startswith("seq,")
        note = base64.b64decode(csv_resp.headers["x-safety-net-checkpoint"]).decode()
        assert note.startswith("safety-net/access-log")
        analyst = await env.token("nhri", "analyst")
        denied = await env.client.get("/audit/export", headers={"authorization": f"Bearer {analyst}"})
        assert denied.status_code == 403
        assert (await env.client.get("/audit/export")).status_code == 401
    finally:
        await close()


async def test_unusual_access_raises_alerts(backend, tmp_path):
    env, close = await fresh(backend, tmp_path, alert_bulk_records=2, alert_denials=3)
    try:
        for _ in range(3):
            await new_peacebuilder(env, "fund")
        await env.post("{ peacebuilders(first: 50) { edges { node { profile { legalName } } } } }",
                       as_=("fund", "focal"))
        for _ in range(3):
            await env.post(DENIED, as_=("fund", "caseworker"))
        await env.worker.tick()
        async with env.runtime.db.transaction() as s:
            kinds = set(await s.scalars(select(Alert.kind)))
        assert {"bulk_read", "repeated_denials"} <= kinds
        body = await env.gql("{ alerts(first: 10) { edges { node { kind details } } } }",
                             as_=("fund", "focal"))
        got = {e["node"]["kind"] for e in body["data"]["alerts"]["edges"]}
        assert {"bulk_read", "repeated_denials"} <= got
        assert all("Secret" not in e["node"]["details"] for e in body["data"]["alerts"]["edges"])
        refused = await env.gql("{ alerts(first: 10) { edges { node { kind } } } }",
                                as_=("fund", "caseworker"))
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        await close()


def test_checkpoint_files_are_never_overwritten(tmp_path):
    from datetime import UTC, datetime

    signer = checkpoints.Signer(tmp_path / "keys")
    first = signer.sign(10, "a" * 64, datetime(2030, 1, 1, tzinfo=UTC))
    second = signer.sign(10, "b" * 64, datetime(2030, 1, 2, tzinfo=UTC))
    path = checkpoints.write(tmp_path / "cps", first)
    checkpoints.write(tmp_path / "cps", second)
    assert checkpoints.parse(path.read_text()).head == "a" * 64
    assert (tmp_path / "keys" / "signing.pem").stat().st_mode & 0o077 == 0


async def test_export_does_no_work_for_a_caller_who_may_not_export(backend, tmp_path):
    """Chaining and signing a checkpoint happen only for an authenticated auditor."""
    env, close = await fresh(backend, tmp_path)  # the worker exists, but does not run by itself
    try:
        before = sorted(p.name for p in env.settings.checkpoints.glob("*.note"))
        await env.post(DENIED, as_=("mofa", "caseworker"))  # something pending to chain
        anonymous = await env.client.get("/audit/export")
        assert anonymous.status_code == 401
        token = await env.token("mofa", "caseworker")
        refused = await env.client.get("/audit/export", headers={"authorization": f"Bearer {token}"})
        assert refused.status_code == 403
        assert sorted(p.name for p in env.settings.checkpoints.glob("*.note")) == before
        auditor = await env.token("nhri", "auditor")
        allowed = await env.client.get("/audit/export", headers={"authorization": f"Bearer {auditor}"})
        assert allowed.status_code == 200
        assert len(list(env.settings.checkpoints.glob("*.note"))) == len(before) + 1
    finally:
        await close()
