"""Idempotency keys through GraphQL over HTTP, on both databases: a retried `reportIncident`
with the same `Idempotency-Key` answers the first answer and creates nothing; the same key with
another request is refused (`IDEMPOTENCY_KEY_REUSED`); keys are per caller; failed mutations are
not kept; two requests with one key at once create one incident; the stored answer is sealed."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import select

from app.tables.idempotency import IdempotencyRecord
from app.tenancy import as_system
from schema import ids
from tests.test_consent import new_peacebuilder
from tests.test_incidents import CASE, REPORT, incident_input

pytestmark = pytest.mark.anyio


async def incidents(env, case_id: str) -> list[str]:
    body = await env.gql(CASE, {"id": case_id}, as_=("fund", "focal"))
    return [i["id"] for i in body["data"]["case"]["incidents"]]


async def report(env, token: str, variables: dict, key: str | None):
    headers = {"idempotency-key": key} if key is not None else {}
    return await env.post(REPORT, variables, token=token, headers=headers)


async def test_a_retried_report_answers_the_first_answer_and_creates_nothing(env):
    pb = await new_peacebuilder(env, "fund")
    token = await env.token("fund", "caseworker")
    key = str(uuid.uuid4())
    variables = incident_input(pb["case"])
    first = await report(env, token, variables, key)
    assert first.status_code == 200, first.text
    created = first.json()["data"]["reportIncident"]["incident"]["id"]
    assert "idempotent-replayed" not in first.headers
    again = await report(env, token, variables, key)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await incidents(env, pb["case"]) == [created]
    # Without a key, a retry is a new report (as before).
    assert (await report(env, token, variables, None)).status_code == 200
    assert len(await incidents(env, pb["case"])) == 2


async def test_the_same_key_with_another_request_is_refused(env):
    pb = await new_peacebuilder(env, "fund")
    token = await env.token("fund", "caseworker")
    key = str(uuid.uuid4())
    assert (await report(env, token, incident_input(pb["case"]), key)).status_code == 200
    other = await report(env, token, incident_input(pb["case"], severity="LOW"), key)
    assert other.status_code == 422, other.text
    [error] = other.json()["errors"]
    assert error["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert "data" not in other.json()
    assert len(await incidents(env, pb["case"])) == 1


async def test_keys_are_per_caller_and_failed_mutations_are_not_kept(env):
    pb = await new_peacebuilder(env, "fund")
    key = str(uuid.uuid4())
    variables = incident_input(pb["case"])
    for who in ("caseworker", "focal"):  # the same key from two people: two keys
        token = await env.token("fund", who)
        assert "idempotent-replayed" not in (await report(env, token, variables, key)).headers
    assert len(await incidents(env, pb["case"])) == 2
    # A mutation that failed changed nothing and keeps nothing: the retry runs.
    token = await env.token("fund", "caseworker")
    key = str(uuid.uuid4())
    bad = incident_input(ids.encode("Case", uuid.uuid4()))  # no such case: refused
    failed = await report(env, token, bad, key)
    body = failed.json()
    assert body.get("errors") or body["data"]["reportIncident"]["userErrors"], body
    retried = await report(env, token, bad, key)
    assert "idempotent-replayed" not in retried.headers
    assert len(await incidents(env, pb["case"])) == 2


async def test_two_requests_with_one_key_at_once_create_one_incident(env):
    pb = await new_peacebuilder(env, "fund")
    token = await env.token("fund", "caseworker")
    key = str(uuid.uuid4())
    variables = incident_input(pb["case"])
    answers = await asyncio.gather(*(report(env, token, variables, key) for _ in range(3)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    ids = {a.json()["data"]["reportIncident"]["incident"]["id"] for a in answers}
    assert len(ids) == 1
    assert await incidents(env, pb["case"]) == list(ids)
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 2


async def test_a_key_that_expired_is_a_new_key(env):
    pb = await new_peacebuilder(env, "fund")
    token = await env.token("fund", "caseworker")
    key = str(uuid.uuid4())
    variables = incident_input(pb["case"])
    settings = env.runtime.settings
    env.runtime.settings = replace(settings, idempotency_ttl_seconds=1)
    try:
        assert (await report(env, token, variables, key)).status_code == 200
    finally:
        env.runtime.settings = settings
    await asyncio.sleep(1.1)
    again = await report(env, token, variables, key)
    assert "idempotent-replayed" not in again.headers
    assert len(await incidents(env, pb["case"])) == 2


async def test_bad_keys_and_queries(env):
    token = await env.token("fund", "caseworker")
    for bad in ("x" * 256, "caf\u00e9".encode("latin-1"), "a\tb"):
        response = await env.post(REPORT, incident_input("Q2FzZTp4"), token=token,
                                  headers={"idempotency-key": bad})
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_IDEMPOTENCY_KEY"
    # A query with a key: nothing to protect, answered as usual and not stored.
    for _ in range(2):
        response = await env.post("{ viewer { name } }", token=token,
                                  headers={"idempotency-key": "q"})
        assert response.status_code == 200 and "idempotent-replayed" not in response.headers


async def test_the_stored_answer_is_sealed(env):
    pb = await new_peacebuilder(env, "fund")
    token = await env.token("fund", "caseworker")
    secret = f"Threat at the clinic {uuid.uuid4().hex}"
    key = str(uuid.uuid4())
    first = await report(env, token, incident_input(pb["case"], description=secret), key)
    assert secret in first.text

    @as_system
    async def stored() -> list[str]:
        async with env.runtime.db.transaction() as session:
            rows = await session.scalars(select(IdempotencyRecord))
            return [json.dumps([r.response, r.key_hash, r.request_hash]) for r in rows]

    rows = await stored()
    assert rows and not any(secret in r or key in r for r in rows)


async def test_her_own_mutations_take_a_key_too(env):
    """A peacebuilder's key is hers (row-level security on PostgreSQL: her rows only)."""
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    revoke = "mutation { revokeAllConsent(input: {}) { revoked { id } } }"
    key = str(uuid.uuid4())
    first = await env.post(revoke, token=her, purpose=None, headers={"idempotency-key": key})
    assert first.status_code == 200 and first.json()["data"]["revokeAllConsent"]["revoked"]
    again = await env.post(revoke, token=her, purpose=None, headers={"idempotency-key": key})
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


async def test_no_stored_answer_survives_her_erasure(env):
    """A stored answer may quote what her data key sealed; her erasure deletes them all."""
    pb = await new_peacebuilder(env, "fund")
    token = await env.token("fund", "caseworker")
    key = str(uuid.uuid4())
    secret = f"Seen near her home {uuid.uuid4().hex}"
    first = await report(env, token, incident_input(pb["case"], description=secret), key)
    assert secret in first.text
    her = await env.peacebuilder_token(pb["login"])
    erase = "mutation { eraseMyData { erased userErrors { message } } }"
    body = await env.gql(erase, token=her, purpose=None)
    assert body["data"]["eraseMyData"]["erased"] is True, body

    @as_system
    async def stored() -> int:
        async with env.runtime.db.transaction() as session:
            return len(list(await session.scalars(select(IdempotencyRecord.key_hash))))

    assert await stored() == 0
    # The retry now runs again (the price of forgetting), and cannot read what was erased.
    again = await report(env, token, incident_input(pb["case"], description=secret), key)
    assert "idempotent-replayed" not in again.headers
