"""The published contract beside GraphQL (issue 16): the OpenAPI document is valid and the app
answers as it says (schemathesis), uploads accept multipart/form-data, the SDL is served to
callers with a token and shipped in the package, GraphiQL's assets are the vendored ones."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from schema.__main__ import sdl as running_sdl
from schema.openapi import document
from schema.published import STATIC, assets
from tests.test_consent import new_peacebuilder
from tests.test_incidents import PNG, REPORT, incident_input

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_SDL = (ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8")
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_the_document_is_valid_openapi_3_1():
    validate(document())
    assert document()["openapi"].startswith("3.1")


async def test_the_document_is_served(env):
    response = await env.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(document()))


# --- schemathesis: generated requests, answers checked against the document --------------------

def _operations() -> list[Any]:
    loaded = schemathesis.openapi.from_dict(document())
    return [result.ok() for result in loaded.get_all_operations()]


OPERATIONS = _operations()
# Every operation, each drawn as many times as Hypothesis chooses within the profile's budget.
CASES = st.one_of([op.as_strategy() for op in OPERATIONS])


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(case=CASES)
async def test_every_endpoint_answers_as_the_document_says(env, case):
    token = await env.token("mofa", "caseworker")
    headers = {"authorization": f"Bearer {token}"}
    kwargs = case.as_transport_kwargs(base_url="http://test", headers=headers)
    allowed = {"method", "url", "headers", "params", "data", "json", "files", "cookies"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in allowed}).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    response = await env.client.request(prepared.method or "GET", prepared.url or "/",
                                        headers=dict(prepared.headers), content=body)
    case.validate_response(response, checks=CHECKS)


def test_schemathesis_covers_every_documented_operation():
    paths = {op.path for op in OPERATIONS}
    assert {"/auth/login", "/auth/logout", "/oauth/revoke", "/oauth/token", "/me/data-copy",
            "/incidents/{incident_id}/attachments",
            "/attachments/{attachment_id}", "/audit/export", "/readyz", "/healthz", "/graphql",
            "/schema.graphql", "/openapi.json"} <= paths


async def test_every_route_is_documented(env):
    documented = set(document()["paths"])
    served = {getattr(r, "path", None) for r in env.client._transport.app.routes}  # type: ignore[attr-defined]
    # The dashboard's pages are for browsers, not partner systems (docs/decisions/0036).
    from schema.web.routes import routes as web_routes

    pages = {r.path for r in web_routes()}
    internal = {"/metrics", "/static/graphiql/{name}", None} | pages
    assert served - internal == documented


# --- multipart uploads -------------------------------------------------------------------------

async def test_uploads_accept_multipart_form_data(env):
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    incident = body["data"]["reportIncident"]["incident"]["id"]
    h = {"authorization": f"Bearer {await env.token('fund', 'caseworker')}",
         "safety-net-purpose": "protection"}
    url = f"/incidents/{incident}/attachments"
    # As `curl -F file=@photo.png` sends it.
    png = await env.client.post(url, files={"file": ("photo.png", PNG, "image/png")}, headers=h)
    assert png.status_code == 201, png.text
    got = await env.client.get(f"/attachments/{png.json()['id']}", headers=h)
    assert got.status_code == 200 and got.content == PNG
    # An unknown extension arrives as application/octet-stream: the content decides.
    note = await env.client.post(url, files={"file": ("note.dat", b"seen at the market",
                                                      "application/octet-stream")},
                                 data={"category": "incident_details"}, headers=h)
    assert note.status_code == 201, note.text
    fetched = await env.client.get(f"/attachments/{note.json()['id']}", headers=h)
    assert fetched.headers["content-type"].startswith("text/plain")
    # A lie is still a lie, and a form without the file is a clear 400.
    liar = await env.client.post(url, files={"file": ("x.png", b"MZ\x90\x00exe", "image/png")},
                                 headers=h)
    assert liar.status_code == 400
    empty = await env.client.post(url, data={"category": "incident_details"},
                                  files={"other": ("x.txt", b"x", "text/plain")}, headers=h)
    assert empty.status_code == 400
    assert empty.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    big = await env.client.post(url, files={"file": ("big.png", PNG + b"0" * (5 * 1024 * 1024),
                                                     "image/png")}, headers=h)
    assert big.status_code == 413


# --- the SDL and GraphiQL's assets ---------------------------------------------------------------

async def test_the_sdl_is_served_to_callers_with_a_token_and_shipped(env):
    shipped = SHIPPED_SDL
    assert shipped == running_sdl()
    anonymous = await env.client.get("/schema.graphql")
    assert anonymous.status_code == 401
    bad = await env.client.get("/schema.graphql", headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401
    her = await env.peacebuilder_token("amani")
    served = await env.client.get("/schema.graphql", headers={"authorization": f"Bearer {her}"})
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/graphql")
    assert served.text == shipped
    # Package data: what an installed wheel carries.
    pyproject = PYPROJECT
    assert '"schema.graphql"' in pyproject and '"static/graphiql/*"' in pyproject


def test_vendored_assets_match_their_manifest():
    manifest = json.loads((STATIC / "MANIFEST.json").read_text())
    assert {"react.production.min.js", "react-dom.production.min.js", "graphiql.min.js",
            "graphiql.min.css"} <= set(manifest["files"])
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == entry["sha256"], name
        assert entry["version"] and (STATIC / entry["licenseFile"]).is_file()


async def test_graphiql_loads_only_its_own_assets(env):
    page = await env.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "https://" not in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unpkg" not in csp
    for src in ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js",
                "graphiql.min.css", "index.js"):
        assert f"/static/graphiql/{src}" in page.text
        asset = await env.client.get(f"/static/graphiql/{src}")
        assert asset.status_code == 200, src
        assert asset.content == assets()[src]
    assert (await env.client.get("/static/graphiql/MANIFEST.json")).status_code == 404
    assert (await env.client.get("/static/graphiql/..%2Fschema.graphql")).status_code == 404
