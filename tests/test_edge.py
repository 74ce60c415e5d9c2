"""The HTTP edge once: one bearer parser, one purpose parser and one ID codec give the same
answers on /graphql, the attachment routes, the log export and subscriptions."""

from __future__ import annotations

import uuid

import pytest

from schema import ids
from tests.conftest import Env

pytestmark = pytest.mark.anyio


async def test_a_purpose_is_read_the_same_everywhere(env: Env) -> None:
    token = await env.token("fund", "caseworker")
    headers = {"authorization": f"Bearer {token}", "safety-net-purpose": " Protection "}
    graphql = await env.client.post("/graphql", json={"query": "{ viewer { name } }"},
                                    headers=headers)
    assert graphql.status_code == 200, graphql.text
    missing = ids.encode("Attachment", uuid.uuid4())
    attachment = await env.client.get(f"/attachments/{missing}", headers=headers)
    assert attachment.status_code == 404, attachment.text  # accepted, then simply not found
    for route in ("/graphql", f"/attachments/{missing}"):
        bad = {**headers, "safety-net-purpose": "intelligence"}
        refused = (await env.client.post(route, json={"query": "{ viewer { name } }"},
                                         headers=bad) if route == "/graphql"
                   else await env.client.get(route, headers=bad))
        assert refused.status_code == 400, (route, refused.text)
        assert refused.json()["errors"][0]["extensions"]["code"] == "INVALID_PURPOSE", route


async def test_an_id_of_another_type_is_not_found_everywhere(env: Env) -> None:
    token = await env.token("fund", "caseworker")
    headers = {"authorization": f"bearer {token}", "safety-net-purpose": "protection"}
    case_id = ids.encode("Case", uuid.uuid4())
    attachment = await env.client.get(f"/attachments/{case_id}", headers=headers)
    assert attachment.status_code == 404, attachment.text
    assert attachment.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    graphql = await env.gql("query($id: ID!) { case(id: $id) { id } }",
                            {"id": ids.encode("Incident", uuid.uuid4())}, token=token)
    assert graphql["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    malformed = await env.client.get("/attachments/not-an-id", headers=headers)
    assert malformed.status_code == 400
    assert malformed.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
