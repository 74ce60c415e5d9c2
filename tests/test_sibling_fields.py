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
