import pytest

pytestmark = pytest.mark.anyio


async def test_viewer(env):
    body = await env.gql("{ viewer { kind name roles organisation { slug } } }",
                         as_=("mofa", "caseworker"))
    assert body == {"data": {"viewer": {"kind": "user", "name": "caseworker",
                                        "roles": ["CASEWORKER"],
                                        "organisation": {"slug": "mofa"}}}}
