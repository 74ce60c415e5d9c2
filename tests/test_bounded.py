"""Bounded responses (issue 15, decision 0018): the worst legal queries refused by cost before
anything runs, the response-size limit stopping what cost lets through, and every text input
held to its declared length. Through GraphQL over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from schema.limits import Limits, check
from schema.schema import schema as default_schema
from schema.sizes import INPUT, Size, input_limit
from tests.conftest import build_env
from tests.test_consent import new_peacebuilder
from tests.test_incidents import REPORT, incident_input
from tests.test_limits import refused_before_execution

pytestmark = pytest.mark.anyio

# Control characters grow six-fold once JSON-escaped ("\u0001"): the worst text to return.
HOSTILE = ("\x01" * 50 + "x" * 50) * 200  # 20,000 characters, ~65 KB escaped
WORST = """fragment I on Case {{ incidents {{ description allegedSourceAsReported }} }}
query {{ {aliases} }}"""


def worst_query(case_id: str, copies: int = 15) -> str:
    aliases = " ".join(f'a{i}: node(id: "{case_id}") {{ ... on Case {{ ...I }} }}'
                       for i in range(copies))
    return WORST.format(aliases=aliases)


async def report(env, case_id: str, count: int, text: str, as_=("fund", "caseworker")) -> None:
    for _ in range(count):
        body = await env.gql(REPORT, incident_input(case_id, severity="LOW", description=text,
                                                    allegedSourceAsReported=text), as_=as_)
        assert body["data"]["reportIncident"]["userErrors"] == [], body


def test_cost_counts_text_by_size_class_and_unpaged_lists_by_declared_size():
    s = default_schema._schema
    one = worst_query("Q2FzZTox", copies=1)
    # node 1 + 20 incidents (a list's default) x (1 + description 10 + allegedSource 10)
    assert check(s, one, Limits())[1] == 1 + 20 * 21
    assert check(s, worst_query("Q2FzZTox", copies=11), Limits())[1] == 11 * 421
    # Short texts are part of their object, as before.
    assert check(s, "{ viewer { name } }", Limits())[1] == 1
    assert check(s, "{ me { dataCopy } }", Limits())[1] == 1 + Size.EXPORT.weight


async def test_the_issues_worst_query_is_refused_by_cost_before_it_runs(env):
    pb = await new_peacebuilder(env, "fund")
    await report(env, pb["case"], 2, "Threatening messages.")
    # 15 x 421 = 6,315 against 5,000: refused with no SQL run.
    refused = await refused_before_execution(env, worst_query(pb["case"]), "cost")
    assert "6315" in refused["errors"][0]["message"]
    # Eleven copies are within budget and answer.
    fine = await env.gql(worst_query(pb["case"], copies=11), as_=("fund", "caseworker"))
    assert "errors" not in fine, fine
    assert len(fine["data"]["a10"]["incidents"]) == 2


async def test_her_data_copy_fifteen_times_is_refused_by_cost(env):
    pb = await new_peacebuilder(env, "fund")
    her = await env.peacebuilder_token(pb["login"])
    query = "{ " + " ".join(f"c{i}: me {{ dataCopy }}" for i in range(15)) + " }"
    before = env.runtime.db.statements.count
    body = await env.gql(query, token=her, purpose=None)
    assert env.runtime.db.statements.count == before
    assert "data" not in body
    assert body["errors"][0]["extensions"] == {"code": "QUERY_LIMIT_EXCEEDED", "limit": "cost",
                                               "max": 5000}


async def test_response_size_limit_stops_what_cost_lets_through(backend, tmp_path):
    env, close = await build_env(backend, tmp_path, max_response_bytes=300 * 1024)
    try:
        pb = await new_peacebuilder(env, "fund")
        await report(env, pb["case"], 4, HOSTILE)  # 8 texts x ~65 KB escaped = ~525 KB
        query = worst_query(pb["case"], copies=1)
        response = await env.post(query, as_=("fund", "caseworker"))
        assert response.status_code == 200
        body = response.json()
        assert "data" not in body, str(body)[:300]
        [error] = body["errors"]
        assert error["extensions"] == {"code": "QUERY_LIMIT_EXCEEDED", "limit": "responseSize",
                                       "max": 300 * 1024}
        assert len(response.content) < 1024  # the refusal, not the partial response
        # The spec's media type makes it a request error (4xx, no data).
        spec = await env.post(query, as_=("fund", "caseworker"),
                              headers={"accept": "application/graphql-response+json"})
        assert spec.status_code == 400 and "data" not in spec.json()
        # Below the limit the same case answers in full.
        small = await env.gql(f'{{ node(id: "{pb["case"]}") {{ ... on Case {{ incidents '
                              '{ status description } } } }', as_=("fund", "caseworker"))
        assert "errors" not in small, str(small)[:300]
        assert [i["description"] for i in small["data"]["node"]["incidents"]] == [HOSTILE] * 4
    finally:
        await close()


async def test_a_text_input_over_its_length_is_refused_naming_the_field(env):
    pb = await new_peacebuilder(env, "fund")
    limit = input_limit("ReportIncidentInput.description")
    assert limit == 20_000
    token = await env.token("fund", "caseworker")
    before = env.runtime.db.statements.count
    body = await env.gql(REPORT, incident_input(pb["case"], description="x" * (limit + 1)),
                         token=token)
    assert env.runtime.db.statements.count == before, "SQL ran: nothing may be written"
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "description"}
    assert "20000" in error["message"]
    # As a literal in the document, and as an argument.
    long_place = "r" * 2001
    literal = (f'mutation {{ reportIncident(input: {{caseId: "{pb["case"]}", type: THREATS, '
               f'severity: LOW, reportedBy: herself, reportedVia: phone, '
               f'locationCoarse: "{long_place}"}}) {{ incident {{ id }} }} }}')
    refused = await env.gql(literal, token=token)
    assert refused["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT",
                                                  "field": "locationCoarse"}
    language = "e" * 201
    short = await env.gql(f'{{ consentReceipt(grantId: "x", language: "{language}") }}',
                          token=token)
    assert short["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "language"}
    assert env.runtime.db.statements.count == before
    # At the limit it is written.
    written = await env.gql(REPORT, incident_input(pb["case"], description="x" * limit),
                            token=token)
    assert written["data"]["reportIncident"]["userErrors"] == []


def test_every_declared_limit_is_in_the_sdl():
    sdl = default_schema.as_str()
    assert "At most 20000 characters." in sdl and "At most 200 characters." in sdl
    for key in INPUT:
        assert key.split(".")[0].split("(")[0] in sdl


async def test_her_copy_streams_from_the_endpoint_and_is_logged(backend, tmp_path, monkeypatch):
    from app.read import copy as her_copy

    monkeypatch.setattr(her_copy, "INCIDENT_BATCH", 3)  # 4 incidents: two batches
    env, close = await build_env(backend, tmp_path, max_response_bytes=300 * 1024)
    try:
        pb = await new_peacebuilder(env, "fund")
        her = await env.peacebuilder_token(pb["login"])
        small = await env.gql("{ me { dataCopy } }", token=her, purpose=None)
        copy = small["data"]["me"]["dataCopy"]
        got = await env.client.get("/me/data-copy", headers={"authorization": f"Bearer {her}"})
        assert got.status_code == 200 and got.headers["cache-control"] == "no-store"
        assert got.text == copy  # the same document, streamed case by case
        # Larger than the response limit: the GraphQL field refuses, the download streams it.
        await report(env, pb["case"], 4, HOSTILE)
        refused = await env.gql("{ me { dataCopy } }", token=her, purpose=None)
        assert "data" not in refused
        assert refused["errors"][0]["extensions"]["limit"] == "responseSize"
        async with env.client.stream("GET", "/me/data-copy",
                                     headers={"authorization": f"Bearer {her}"}) as streamed:
            assert streamed.status_code == 200
            chunks = [chunk async for chunk in streamed.aiter_bytes()]
        whole = json.loads(b"".join(chunks))
        assert [i["description"] for i in whole["cases"][0]["incidents"]] == [HOSTILE] * 4
        assert len({i["id"] for i in whole["cases"][0]["incidents"]}) == 4
        # Each download is an export in the access log, before any byte left.
        async with env.runtime.db.transaction() as s:
            details = [d if isinstance(d, dict) else json.loads(d) for d in (await s.execute(text(
                "SELECT details FROM access_log WHERE action = 'data.export'"))).scalars()]
        assert [d["via"] for d in details].count("download") == 2
        # Only she: staff are refused, and nobody without a token.
        staff = await env.token("fund", "focal")
        denied = await env.client.get("/me/data-copy", headers={"authorization": f"Bearer {staff}"})
        assert denied.status_code == 403
        assert (await env.client.get("/me/data-copy")).status_code == 401
    finally:
        await close()


def test_the_docs_table_lists_every_declared_limit():
    from pathlib import Path

    from schema.sizes import OUTPUT

    table = (Path(__file__).resolve().parent.parent / "docs" / "limits.md").read_text()
    for key in INPUT:
        assert f"| `{key}` | {input_limit(key):,} |" in table, key
    for key, size in OUTPUT.items():
        assert f"| `{key}` | {size.name.lower()} | {size.weight} |" in table, key


async def test_texts_that_alone_pass_the_limit_are_refused_before_they_are_opened(backend,
                                                                                  tmp_path):
    # 4 incidents x 2 texts x 20,000 characters: 160,000 bytes at least once opened, over a
    # 128 KiB limit however they escape. The read path refuses on the stored lengths.
    env, close = await build_env(backend, tmp_path, max_response_bytes=128 * 1024)
    try:
        pb = await new_peacebuilder(env, "fund")
        await report(env, pb["case"], 4, "y" * 20_000)
        body = await env.gql(worst_query(pb["case"], copies=11), as_=("fund", "caseworker"))
        assert "data" not in body
        assert body["errors"] == [{
            "message": body["errors"][0]["message"],
            "extensions": {"code": "QUERY_LIMIT_EXCEEDED", "limit": "responseSize",
                           "max": 128 * 1024}}]
        # One text each fits.
        fine = await env.gql(f'{{ node(id: "{pb["case"]}") {{ ... on Case {{ incidents '
                             '{ description } } } }', as_=("fund", "caseworker"))
        assert len(fine["data"]["node"]["incidents"]) == 4
    finally:
        await close()
