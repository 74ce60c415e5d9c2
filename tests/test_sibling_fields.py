"""Root fields run concurrently on one request's database session: a refused field beside one
that reads the database must not break the request (it once answered 503 when the refusal
ended the request while the sibling was mid-query)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

QUERY = """{ a: cases(first: 50) { edges { node { id incidents { id } } } }
  log: accessLog(first: 5) { edges { node { id } } }
  b: cases(first: 50) { edges { node { id } } } }"""


async def test_refused_non_null_root_field_beside_a_reading_one(env) -> None:
    for _ in range(5):
        response = await env.post(QUERY, as_=("mofa", "caseworker"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body


async def test_a_refused_argument_beside_a_loader_field_is_a_clean_error(env) -> None:
    """A bad cursor refused while `viewer.organisation` is being loaded on the same session:
    a clean BAD_USER_INPUT, never a 503 or a hung request."""
    query = """{ viewer { organisation { name } }
      cases(first: 1, after: "AAAAAAAAAAAAAAAAAAAAAAAA") { edges { node { id } } } }"""
    for _ in range(3):
        response = await env.post(query, as_=("mofa", "caseworker"))
        assert response.status_code == 200, response.text
        codes = [e["extensions"]["code"] for e in response.json()["errors"]]
        assert codes == ["BAD_USER_INPUT"], response.text
