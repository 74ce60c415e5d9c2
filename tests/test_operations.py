"""Registered (persisted) operations and organisations that accept only those."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from app.tables.audit import AccessLogEntry
from tests.conftest import unique
from tests.test_auth import codes

pytestmark = pytest.mark.anyio

REGISTER = """mutation($doc: String!, $name: String) {
  registerOperation(input: {document: $doc, name: $name}) {
    operation { id sha256Hash name } userErrors { field message code } } }"""
UNREGISTER = """mutation($id: ID!) { unregisterOperation(input: {id: $id}) {
  operation { sha256Hash } userErrors { message } } }"""
POLICY = """mutation($on: Boolean!) { setOperationPolicy(input: {onlyRegisteredOperations: $on}) {
  onlyRegisteredOperations userErrors { message } } }"""
UNLISTED = "{ organisations(first: 1) { totalCount } }"
LIST = """{ operationPolicy { onlyRegisteredOperations
  operations(first: 50) { edges { node { sha256Hash } } } } }"""


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def doc(label: str) -> str:
    """A distinct valid document per test (a comment changes the hash, not the meaning)."""
    return f"# {label}\n{{ viewer {{ name }} organisations(first: 2) {{ totalCount }} }}"


async def register(env, org: str, document: str) -> dict:
    body = await env.gql(REGISTER, {"doc": document, "name": "test"}, as_=(org, "admin"))
    payload = body["data"]["registerOperation"]
    assert payload["userErrors"] == [], body
    return payload["operation"]


async def send(env, token: str, **body) -> dict:
    response = await env.client.post("/graphql", json=body, headers={
        "authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def test_register_and_run_by_hash(env):
    document = doc(unique("op"))
    op = await register(env, "embassy", document)
    assert op["sha256Hash"] == sha(document)
    assert (await register(env, "embassy", document))["id"] == op["id"]  # idempotent
    token = await env.token("embassy", client="embassy-system")
    apollo = await send(env, token, extensions={"persistedQuery": {
        "version": 1, "sha256Hash": sha(document)}})
    assert apollo["data"]["viewer"] == {"name": "embassy-system"}
    by_id = await send(env, token, documentId=f"sha256:{sha(document)}")
    assert by_id["data"] == apollo["data"]
    got = await env.client.get("/graphql", params={"extensions": json.dumps({"persistedQuery": {
        "version": 1, "sha256Hash": sha(document)}})}, headers={"authorization": f"Bearer {token}"})
    assert got.json()["data"] == apollo["data"]
    # The text with its hash is fine; a hash that does not match the text is refused.
    assert (await send(env, token, query=document, documentId=sha(document)))["data"]
    mismatch = await env.client.post("/graphql", json={"query": "{ viewer { kind } }",
                                                       "documentId": sha(document)},
                                     headers={"authorization": f"Bearer {token}"})
    assert mismatch.status_code == 400
    # Registrations are per organisation.
    other = await env.token("mofa", client="mofa-system")
    missing = await send(env, other, documentId=sha(document))
    assert codes(missing) == ["PERSISTED_QUERY_NOT_FOUND"] and "data" not in missing


async def test_only_admins_register_checked_documents(env):
    body = await env.gql(REGISTER, {"doc": doc(unique("x"))}, as_=("embassy", "focal"))
    assert codes(body) == ["FORBIDDEN"]
    for bad, field in (("{ viewer { nope } }", "document"), ("{ viewer ", "document"),
                       ("{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(16)) + " }",
                        "document")):
        body = await env.gql(REGISTER, {"doc": bad}, as_=("embassy", "admin"))
        errors = body["data"]["registerOperation"]["userErrors"]
        assert errors and errors[0]["field"] == ["input", field], body
    bad_hash = await env.client.post("/graphql", json={"documentId": "sha256:xyz"}, headers={
        "authorization": f"Bearer {await env.token('embassy', 'admin')}"})
    assert bad_hash.status_code == 400


async def test_organisation_accepting_only_registered_operations(env):
    document = doc(unique("allowed"))
    op = await register(env, "fund", document)
    client = await env.token("fund", client="fund-system")
    assert (await env.gql(POLICY, {"on": True}, as_=("fund", "admin")))["data"][
        "setOperationPolicy"]["onlyRegisteredOperations"] is True
    try:
        refused = await send(env, client, query=UNLISTED)
        assert codes(refused) == ["OPERATION_NOT_REGISTERED"] and "data" not in refused
        async with env.runtime.db.transaction() as session:
            logged = await session.scalar(select(AccessLogEntry).where(
                AccessLogEntry.action == "operation.run",
                AccessLogEntry.details["sha256"].as_string() == sha(UNLISTED)))
        assert logged is not None and logged.decision == "deny"
        assert (await send(env, client, documentId=sha(document)))["data"]["viewer"]
        assert (await send(env, client, query=document))["data"]["viewer"]  # registered text
        # Its admin can always see and manage the list; people can see who they are.
        listed = await env.gql(LIST, as_=("fund", "admin"))
        assert listed["data"]["operationPolicy"]["onlyRegisteredOperations"] is True
        assert {"sha256Hash": sha(document)} in [
            e["node"] for e in listed["data"]["operationPolicy"]["operations"]["edges"]]
        assert "errors" not in await env.gql("{ viewer { name } }", as_=("fund", "focal"))
        # Other organisations are not affected.
        assert "errors" not in await env.gql(UNLISTED, as_=("mofa", "focal"))
        removed = await env.gql(UNREGISTER, {"id": op["id"]}, as_=("fund", "admin"))
        assert removed["data"]["unregisterOperation"]["operation"]["sha256Hash"] == sha(document)
        assert codes(await send(env, client, documentId=sha(document))) == [
            "PERSISTED_QUERY_NOT_FOUND"]
    finally:
        body = await env.gql(POLICY, {"on": False}, as_=("fund", "admin"))
        assert body["data"]["setOperationPolicy"]["onlyRegisteredOperations"] is False
    assert "errors" not in await send(env, client, query=UNLISTED)
