"""Query limits at their boundaries, and query bombs refused before anything runs.

Every refusal here must happen before execution: no SQL statement is sent (the limits run
before the request's database session is opened), so no resolver can have run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from graphql import GraphQLError, parse

from app.config import Settings
from schema.limits import Limits, check
from schema.schema import schema as default_schema

pytestmark = pytest.mark.anyio

DEFAULTS = Settings()
LIMITED = {"QUERY_LIMIT_EXCEEDED"}


async def refused_before_execution(env, query: str, limit: str,
                                   variables: dict[str, Any] | None = None) -> dict[str, Any]:
    token = await env.token("mofa", "focal")
    before = env.runtime.db.statements.count
    body = await env.gql(query, variables, token=token)
    assert env.runtime.db.statements.count == before, "SQL ran: the document reached execution"
    assert "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_LIMIT_EXCEEDED", error
    assert error["extensions"]["limit"] == limit, error
    return body


async def accepted(env, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = await env.gql(query, variables, as_=("mofa", "focal"))
    codes = {e["extensions"]["code"] for e in body.get("errors", [])}
    assert not codes & LIMITED, body
    assert body.get("data") is not None, body
    return body


def test_defaults_are_the_documented_ones():
    assert Limits.from_settings(DEFAULTS) == Limits(max_depth=10, max_aliases=15,
                                                    max_directives=20, max_tokens=1000,
                                                    max_document_bytes=32 * 1024, max_cost=5000)


# --- each limit at its boundary ----------------------------------------------------------------

def nested_pb(levels: int) -> str:
    """cases > edges > node > peacebuilder, then `levels` x (cases > peacebuilder), then
    profile { country }: 6 + 2 x levels levels deep."""
    inner = "profile { country }"
    for _ in range(levels):
        inner = f"cases {{ peacebuilder {{ {inner} }} }}"
    return f"{{ cases(first: 1) {{ edges {{ node {{ peacebuilder {{ {inner} }} }} }} }} }}"


async def test_depth_limit_boundary(env):
    assert DEFAULTS.max_depth == 10
    await accepted(env, nested_pb(2))  # depth 10
    eleven = nested_pb(2).replace("profile { country }", "cases { leadOrganisation { id } }")
    await refused_before_execution(env, eleven, "depth")


async def test_alias_limit_boundary(env):
    at_limit = "{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(15)) + " }"
    body = await accepted(env, at_limit)
    assert body["data"]["a14"] == {"name": "focal"}
    over = "{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(16)) + " }"
    await refused_before_execution(env, over, "aliases")


async def test_directive_limit_boundary(env):
    at_limit = "{ viewer { " + "name @skip(if: false) " * 20 + "} }"
    await accepted(env, at_limit)
    over = "{ viewer { " + "name @skip(if: false) " * 21 + "} }"
    await refused_before_execution(env, over, "directives")


def tokens(count: int) -> str:
    """A valid document of `count` tokens (at least 996): `{ viewer { name ... } }` is 5 plus
    one per name; each `cases(first: 1) { totalCount }` is 9."""
    return ("{ viewer {" + " name" * (count - 5 - 990) + " } "
            + "cases(first: 1) { totalCount } " * 110 + "}")


async def test_token_limit_boundary(env):
    with pytest.raises(GraphQLError):
        parse(tokens(1000), max_tokens=999)
    parse(tokens(1000), max_tokens=1000)
    await accepted(env, tokens(1000))
    await refused_before_execution(env, tokens(1001), "tokens")


async def test_document_size_boundary(env):
    query = "{ viewer { name } }"
    padded = query + " " * (32 * 1024 - len(query))
    assert len(padded.encode()) == 32 * 1024
    await accepted(env, padded)
    await refused_before_execution(env, padded + " ", "documentSize")


# Cost: every object-typed field counts once per object it can return; a connection's edges
# count its page (`first`, default 20), a plain list of objects 20.
CASES_WITH_NETWORKS = "cases(first: 100) { edges { node { peacebuilder { networks { id } } } } }"
ORGS_99 = "organisations(first: $n) { edges { node { id } } }"


async def test_cost_limit_boundary(env):
    # 2 x (1 + 100 x (1 + 1 + 1 + 20)) + 2 x (1 + 99 x 2) = 4602 + 398 = 5000.
    at_limit = (f"query($n: Int) {{ c1: {CASES_WITH_NETWORKS} c2: {CASES_WITH_NETWORKS} "
                f"o1: {ORGS_99} o2: {ORGS_99} }}")
    _, cost = check(default_schema._schema, at_limit, Limits(), variables={"n": 99})
    assert cost == 5000
    await accepted(env, at_limit, {"n": 99})
    refused = await refused_before_execution(env, at_limit, "cost", {"n": 100})  # 5002
    assert refused["errors"][0]["extensions"]["max"] == 5000


def test_cost_counts_page_sizes_and_defaults():
    s = default_schema._schema
    assert check(s, "{ viewer { name } }", Limits())[1] == 1
    assert check(s, "{ cases { totalCount } }", Limits())[1] == 1  # a count, no objects
    assert check(s, "{ cases { edges { node { id } } } }", Limits())[1] == 1 + 20 * 2
    assert check(s, "{ cases(first: 5) { edges { node { id } } } }", Limits())[1] == 1 + 5 * 2
    # Above the page maximum the resolver refuses with a precise error; cost counts 100.
    assert check(s, "{ cases(first: 1000) { edges { node { id } } } }", Limits())[1] == 201
    fragment = ("query { cases(first: 3) { ...C } } "
                "fragment C on CaseConnection { edges { node { id } } }")
    assert check(s, fragment, Limits())[1] == 1 + 3 * 2


async def test_limits_are_configurable(backend, tmp_path):
    from tests.conftest import build_env

    env, close = await build_env(backend, tmp_path, max_aliases=2, max_depth=3, max_cost=10)
    try:
        await accepted(env, "{ a: viewer { name } b: viewer { name } }")
        await refused_before_execution(env, "{ a: viewer { name } b: viewer { name } "
                                            "c: viewer { name } }", "aliases")
        await refused_before_execution(env, "{ cases { edges { node { id } } } }", "depth")
        # 1 connection + 1 pageInfo + 10 edges = 12 objects.
        await refused_before_execution(env, "{ organisations(first: 10) { pageInfo { hasNextPage }"
                                            " edges { cursor } } }", "cost")
    finally:
        await close()


# --- query bombs ---------------------------------------------------------------------------------

async def test_bomb_depth_100(env):
    bomb = "{ " + "viewer { organisation { " * 50 + "id" + " } }" * 50 + " }"
    await refused_before_execution(env, bomb, "depth")


async def test_bomb_1000_aliases_of_an_expensive_field(env):
    field = "cases(first: 100) { edges { node { peacebuilder { cases { id } } } } }"
    bomb = "{ " + " ".join(f"a{i}: {field}" for i in range(1000)) + " }"
    await refused_before_execution(env, bomb, "documentSize")  # 72 KB
    # Each further limit alone refuses it all the same.
    s = default_schema._schema
    roomy = Limits(max_document_bytes=10**7)
    for limits, limit in ((roomy, "tokens"),
                          (replace(roomy, max_tokens=10**6), "aliases"),
                          (replace(roomy, max_tokens=10**6, max_aliases=10**4), "cost")):
        with pytest.raises(Exception) as refused:
            check(s, bomb, limits)
        assert getattr(refused.value, "limit", None) == limit


async def test_bomb_1mb_document(env):
    bomb = "{ viewer { name } }" + " " * (1024 * 1024)
    token = await env.token("mofa", "focal")
    before = env.runtime.db.statements.count
    posted = await env.client.post("/graphql", json={"query": bomb}, headers={
        "authorization": f"Bearer {token}"})
    assert posted.status_code == 413
    assert posted.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert env.runtime.db.statements.count == before
    # In a GET query string (as long as a URL may be) it is over the document size limit.
    got = await env.client.get("/graphql", params={"query": bomb[:60_000]},
                               headers={"authorization": f"Bearer {token}"})
    assert got.status_code == 200
    assert got.json()["errors"][0]["extensions"]["limit"] == "documentSize"
    assert env.runtime.db.statements.count == before


async def test_bomb_deeply_nested_fragments(env):
    # Each fragment nests the next one two levels down (and twice): 12 fragments, 27 levels.
    nested = ["query { cases { edges { node { ...P0 } } } }"]
    for i in range(12):
        nested.append(f"fragment P{i} on Case {{ peacebuilder {{ cases {{ ...P{i + 1} ...P{i + 1} }} }} }}")
    nested.append("fragment P12 on Case { id }")
    await refused_before_execution(env, " ".join(nested), "depth")


async def test_bomb_fragment_fan_out(env):
    # 60 fragments, each spreading the next twice: 2^60 fields if expanded, three levels deep.
    # Its cost is computed once per fragment, and is far over the budget.
    parts = ["query { viewer { ...F0 } }"]
    for i in range(60):
        parts.append(f"fragment F{i} on Viewer {{ organisation {{ id }} ...F{i + 1} ...F{i + 1} }}")
    parts.append("fragment F60 on Viewer { name }")
    await refused_before_execution(env, " ".join(parts), "cost")


async def test_fragment_fan_out_within_depth_is_costed_not_expanded(env):
    # Each level doubles the selection: 2^8 copies of a list of 20 organisations.
    parts = ["query { viewer { ...W0 } }"]
    for i in range(8):
        parts.append(f"fragment W{i} on Viewer {{ ...W{i + 1} ...W{i + 1} }}")
    parts.append("fragment W8 on Viewer { organisation { id } }")
    s = default_schema._schema
    assert check(s, " ".join(parts), Limits())[1] == 1 + 2 ** 8
    wide = [p.replace("organisation { id }", "organisation { id } o: organisation { id }")
            for p in parts]
    assert check(s, " ".join(wide), Limits())[1] == 1 + 2 ** 9


async def test_bomb_batch_of_1000_operations(env):
    token = await env.token("mofa", "focal")
    batch = [{"query": "{ cases(first: 100) { edges { node { id } } } }"}] * 1000
    before = env.runtime.db.statements.count
    response = await env.client.post("/graphql", content=json.dumps(batch), headers={
        "authorization": f"Bearer {token}", "content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BATCHING_NOT_SUPPORTED"
    assert env.runtime.db.statements.count == before


async def test_a_limit_error_is_a_request_error(env):
    token = await env.token("mofa", "focal")
    over = "{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(16)) + " }"
    response = await env.client.post("/graphql", json={"query": over}, headers={
        "authorization": f"Bearer {token}", "accept": "application/graphql-response+json"})
    assert response.status_code == 400
    assert "data" not in response.json()


async def test_schema_execute_applies_the_limits_for_other_transports():
    # WebSocket subscriptions and scripts call schema.execute without the HTTP edge's check.
    over = "{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(16)) + " }"
    result = await default_schema.execute(over, context_value=object())
    assert result.data is None
    [error] = result.errors
    assert error.original_error.code == "QUERY_LIMIT_EXCEEDED"
    assert error.original_error.limit == "aliases"
    too_many = "{ viewer { " + "name " * 1000 + "} }"
    result = await default_schema.execute(too_many, context_value=object())
    assert result.data is None and result.errors[0].original_error.limit == "tokens"
    subscription = "subscription { " + " ".join(f"a{i}: alerts {{ id }}" for i in range(16)) + " }"
    stream = await default_schema.subscribe(subscription, context_value=object())
    async for refused in stream:
        assert refused.errors[0].original_error.limit == "aliases"
        break
