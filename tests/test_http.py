"""The HTTP edge: probes, request IDs, GraphQL-over-HTTP shapes, CSRF-safe content types."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

VIEWER = "{ viewer { name } }"


async def test_health_and_readiness(env):
    assert (await env.client.get("/healthz")).text == "ok"
    ready = await env.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "reason": "ok"}


async def test_request_id_is_returned_and_echoed(env):
    fresh = await env.client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    echoed = await env.client.get("/healthz", headers={"x-request-id": "abcdef123456"})
    assert echoed.headers["x-request-id"] == "abcdef123456"
    # Anything that is not a plain token is replaced rather than copied into logs.
    odd = await env.client.get("/healthz", headers={"x-request-id": "a b\r\nc"})
    assert odd.headers["x-request-id"] != "a b\r\nc"
    assert odd.headers["x-content-type-options"] == "nosniff"


async def test_unauthenticated_is_401_before_anything_else(env):
    for response in (
        await env.client.post("/graphql", json={"query": VIEWER}),
        await env.client.get("/graphql", params={"query": VIEWER}),
        await env.client.post("/graphql", json={"query": "{"}),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "data" not in response.json()


async def test_get_runs_queries_but_not_mutations(env):
    token = await env.token("mofa", "caseworker")
    auth = {"authorization": f"Bearer {token}"}
    ok = await env.client.get("/graphql", params={"query": VIEWER}, headers=auth)
    assert ok.status_code == 200 and ok.json() == {"data": {"viewer": {"name": "caseworker"}}}
    mutation = 'mutation { openCase(input: {peacebuilderId: "x"}) { case { id } } }'
    refused = await env.client.get("/graphql", params={"query": mutation}, headers=auth)
    assert refused.status_code == 405
    assert "data" not in refused.json()


async def test_only_json_bodies_are_accepted(env):
    token = await env.token("mofa", "caseworker")
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        response = await env.client.post("/graphql", content=b"query=%7B%7D", headers={
            "authorization": f"Bearer {token}", "content-type": content_type})
        assert response.status_code == 415, content_type


async def test_graphql_response_media_type_and_request_errors(env):
    token = await env.token("mofa", "caseworker")
    headers = {"authorization": f"Bearer {token}", "accept": "application/graphql-response+json"}
    ok = await env.client.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("application/graphql-response+json")
    bad = await env.client.post("/graphql", json={"query": "{ viewer { nope } }"}, headers=headers)
    assert bad.status_code == 400
    assert "data" not in bad.json()
    assert bad.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    syntax = await env.client.post("/graphql", json={"query": "{ viewer "}, headers=headers)
    assert syntax.status_code == 400 and "data" not in syntax.json()
    variables = await env.client.post("/graphql", headers=headers, json={
        "query": "query($f: Int) { cases(first: $f) { totalCount } }", "variables": {"f": "x"}})
    assert variables.status_code == 400 and "data" not in variables.json()
    unacceptable = await env.client.post("/graphql", json={"query": VIEWER}, headers={
        "authorization": f"Bearer {token}", "accept": "text/html"})
    assert unacceptable.status_code == 406


async def test_malformed_requests_are_400(env):
    token = await env.token("mofa", "caseworker")
    h = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    assert (await env.client.post("/graphql", content=b"{nope", headers=h)).status_code == 400
    assert (await env.client.post("/graphql", content=b"[1]", headers=h)).status_code == 400
    assert (await env.client.post("/graphql", json={"query": VIEWER, "variables": [1]},
                                  headers=h)).status_code == 400
    assert (await env.client.post("/graphql", json={"variables": {}}, headers=h)).status_code == 400


async def test_graphiql_is_served_in_development(env):
    page = await env.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_only_graphql_path_answers(env):
    assert (await env.client.post("/other", json={"query": VIEWER})).status_code == 404


async def test_a_document_whose_mutations_roll_back_says_none_was_saved(env):
    """Two mutations, one transaction: the second fails, so the first's payload is not kept
    either, and the response says so instead of showing it as a success."""
    from tests.conftest import unique

    name = unique("wg")
    doc = """mutation($ok: String!) {
      first: createUser(input: {username: $ok, displayName: "Kept?", roles: [ANALYST]}) {
        user { id } userErrors { field } }
      second: createUser(input: {username: "", displayName: "Bad", roles: [ANALYST]}) {
        user { id } userErrors { field } }
    }"""
    body = await env.gql(doc, {"ok": name}, as_=("mofa", "admin"))
    codes = [e["extensions"]["code"] for e in body.get("errors", [])]
    assert "ROLLED_BACK" in codes, body
    users = await env.gql("{ users(first: 100) { edges { node { username } } } }", as_=("mofa", "admin"))
    assert name not in {e["node"]["username"] for e in users["data"]["users"]["edges"]}
    # A single mutation with a user error is not told twice.
    single = await env.gql("""mutation {
      createUser(input: {username: "", displayName: "Bad", roles: [ANALYST]}) { userErrors { field } } }""",
                           as_=("mofa", "admin"))
    assert "errors" not in single and single["data"]["createUser"]["userErrors"]
