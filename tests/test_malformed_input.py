"""Malformed input answers 4xx (or a GraphQL error) with a code, never 500 or "Internal error."
(issue 15, part 5): date-times without a timezone or out of range, JSON nested thousands deep,
lone surrogates, NUL bytes, non-UTF-8 Basic credentials."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import Env
from tests.test_consent import new_peacebuilder

pytestmark = pytest.mark.anyio

REPORT = """mutation($i: ReportIncidentInput!) { reportIncident(input: $i) {
  incident { id } userErrors { field message code } } }"""
MEASURE = """mutation($i: AddMeasureInput!) { addMeasure(input: $i) {
  measure { id } userErrors { field message code } } }"""
NOTE = """mutation($i: AddCaseNoteInput!) { addCaseNote(input: $i) {
  note { id } userErrors { field message code } } }"""
LOG = "query($f: AccessLogFilter) { accessLog(first: 5, filter: $f) { edges { node { seq } } } }"
NAIVE = "2026-11-29T08:15:00"
TOO_EARLY = "0001-01-01T00:00:00+01:00"  # before year 1 once in UTC
TOO_LATE = "9999-12-31T23:30:00-01:00"   # after year 9999 once in UTC
DEEP = 3000
NESTED = "[" * DEEP + "]" * DEEP

_cases: dict[str, str] = {}


async def _case(env: Env) -> str:
    if env.backend not in _cases:
        _cases[env.backend] = (await new_peacebuilder(env, "fund"))["case"]
    return _cases[env.backend]


def _incident(case: str, **extra: Any) -> dict[str, Any]:
    return {"i": {"caseId": case, "type": "THREATS", "severity": "HIGH", "reportedBy": "herself",
                  "reportedVia": "phone", "description": "Messages.", **extra}}


def _raw(body: dict[str, Any]) -> bytes:
    """JSON as a client that escapes everything sends it: a lone surrogate as `\\ud800`."""
    return json.dumps(body, ensure_ascii=True).encode()


# (name, who, request builder -> (query, variables) or raw body bytes, expected code, field hint)
GRAPHQL_CASES = [
    ("occurredAt without timezone", ("fund", "caseworker"),
     lambda c: (REPORT, _incident(c, occurredAt=NAIVE)), "BAD_USER_INPUT", "occurredAt"),
    ("occurredAt before year 1 in UTC", ("fund", "caseworker"),
     lambda c: (REPORT, _incident(c, occurredAt=TOO_EARLY)), "BAD_USER_INPUT", "occurredAt"),
    ("occurredAt after year 9999 in UTC", ("fund", "caseworker"),
     lambda c: (REPORT, _incident(c, occurredAt=TOO_LATE)), "BAD_USER_INPUT", "occurredAt"),
    ("occurredAt not a string", ("fund", "caseworker"),
     lambda c: (REPORT, _incident(c, occurredAt=[1, 2])), "BAD_USER_INPUT", "occurredAt"),
    ("dueAt without timezone", ("fund", "caseworker"),
     lambda c: (MEASURE, {"i": {"caseId": c, "kind": "ACCOMPANIMENT", "dueAt": NAIVE}}),
     "BAD_USER_INPUT", "dueAt"),
    ("access-log since without timezone", ("nhri", "auditor"),
     lambda c: (LOG, {"f": {"since": NAIVE}}), "BAD_USER_INPUT", "since"),
    ("access-log since literal without timezone", ("nhri", "auditor"),
     lambda c: ('{ accessLog(filter: {since: "' + NAIVE + '"}) { edges { node { seq } } } }',
                None), "GRAPHQL_VALIDATION_FAILED", None),
    ("access-log actor with NUL", ("nhri", "auditor"),
     lambda c: (LOG, {"f": {"actor": "a\x00b"}}), "BAD_USER_INPUT", "actor"),
    ("access-log actor literal with NUL", ("nhri", "auditor"),
     lambda c: ('{ accessLog(filter: {actor: "a\\u0000b"}) { edges { node { seq } } } }', None),
     "BAD_USER_INPUT", None),
    ("note with a lone surrogate", ("fund", "caseworker"),
     lambda c: (NOTE, {"i": {"caseId": c, "body": "before \ud800 after"}}), "BAD_USER_INPUT",
     "body"),
    ("note with NUL", ("fund", "caseworker"),
     lambda c: (NOTE, {"i": {"caseId": c, "body": "before \x00 after"}}), "BAD_USER_INPUT",
     "body"),
    ("lone surrogate in the document", ("fund", "caseworker"),
     lambda c: ("{ viewer { name } } # \ud800", None), "BAD_USER_INPUT", None),
    ("lone surrogate escape in a string literal", ("fund", "caseworker"),
     lambda c: ('{ node(id: "\\ud800") { id } }', None), "GRAPHQL_VALIDATION_FAILED", None),
    ("lone surrogate in operationName", ("fund", "caseworker"),
     lambda c: _raw({"query": "query A { viewer { name } }", "operationName": "A\ud800"}),
     "BAD_USER_INPUT", None),
    ("JSON body nested 3,000 deep", ("fund", "caseworker"),
     lambda c: b'{"query": "{ viewer { name } }", "variables": {"x": ' + NESTED.encode() + b"}}",
     "BAD_REQUEST", None),
    ("variables nested 100 deep", ("fund", "caseworker"),
     lambda c: ("query($x: JSON) { viewer { name } }", {"x": json.loads("[" * 100 + "]" * 100)}),
     "BAD_USER_INPUT", None),
]


def _assert_clean(response: Any, code: str, hint: str | None) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert "Internal error" not in response.text and "Traceback" not in response.text
    errors = response.json()["errors"]
    codes = [e["extensions"]["code"] for e in errors]
    assert code in codes, (codes, response.text[:300])
    if hint is not None:
        assert any(hint in e["message"] or hint in str(e["extensions"].get("field", ""))
                   for e in errors), response.text[:300]


@pytest.mark.parametrize("name,who,build,code,hint", GRAPHQL_CASES,
                         ids=[c[0] for c in GRAPHQL_CASES])
async def test_malformed_graphql_input_is_a_client_error(env: Env, name, who, build, code,
                                                         hint) -> None:
    case = await _case(env) if who[0] == "fund" else ""
    request = build(case)
    token = await env.token(*who)
    headers = {"authorization": f"Bearer {token}", "safety-net-purpose": "protection",
               "content-type": "application/json"}
    if isinstance(request, bytes):
        response = await env.client.post("/graphql", content=request, headers=headers)
    else:
        query, variables = request
        response = await env.client.post(
            "/graphql", content=_raw({"query": query, "variables": variables}), headers=headers)
    _assert_clean(response, code, hint)


async def test_get_variables_nested_3000_deep_is_400(env: Env) -> None:
    token = await env.token("fund", "caseworker")
    response = await env.client.get("/graphql", params={
        "query": "query($x: JSON) { viewer { name } }", "variables": '{"x": ' + NESTED + "}"},
        headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 400
    _assert_clean(response, "BAD_REQUEST", None)
    surrogate = await env.client.get("/graphql", params={
        "query": "{ viewer { name } }", "variables": '{"x": "\\ud800"}'},
        headers={"authorization": f"Bearer {token}"})
    assert surrogate.status_code == 400
    _assert_clean(surrogate, "BAD_USER_INPUT", None)


async def test_a_naive_date_time_saves_nothing(env: Env) -> None:
    case = await _case(env)
    body = await env.gql(REPORT, _incident(case, occurredAt=NAIVE), as_=("fund", "caseworker"))
    assert body.get("data") is None  # refused before anything ran
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "timezone" in error["message"] and error["extensions"]["field"] == "i.occurredAt"
    assert NAIVE not in error["message"]  # the value is not echoed
    ok = await env.gql(REPORT, _incident(case, occurredAt="2026-11-30T10:00:00+03:00"),
                       as_=("fund", "caseworker"))
    assert ok["data"]["reportIncident"]["incident"]["id"]


def _basic(raw: bytes) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


HTTP_CASES = [
    ("login username with NUL", "/auth/login",
     {"json": {"organisation": "mofa", "username": "case\x00worker", "password": "x" * 12}}),
    ("login organisation with NUL", "/auth/login",
     {"json": {"organisation": "mo\x00fa", "username": "caseworker", "password": "x" * 12}}),
    ("login password with NUL", "/auth/login",
     {"json": {"organisation": "mofa", "username": "caseworker", "password": "x\x00" * 6}}),
    ("her login with NUL", "/auth/login", {"json": {"login": "her\x00", "password": "x" * 12}}),
    ("login with a lone surrogate", "/auth/login",
     {"content": _raw({"organisation": "mofa", "username": "\ud800", "password": "x" * 12}),
      "headers": {"content-type": "application/json"}}),
    ("login nested 3,000 deep", "/auth/login", {"content": NESTED.encode()}),
    ("token client_id with NUL", "/oauth/token",
     {"data": {"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"}}),
    ("token Basic not UTF-8", "/oauth/token",
     {"data": {"grant_type": "client_credentials"}, "headers": _basic(b"\xff\xfe:\xfa\xfb")}),
    ("token Basic with NUL", "/oauth/token",
     {"data": {"grant_type": "client_credentials"}, "headers": _basic(b"a\x00b:secret")}),
    ("token Basic not base64", "/oauth/token",
     {"data": {"grant_type": "client_credentials"}, "headers": {"authorization": "Basic %%%"}}),
    ("token Basic latin-1 header", "/oauth/token",
     {"data": {"grant_type": "client_credentials"},
      "headers": [(b"authorization", b"Basic \xe9\xe9\xe9\xe9")]}),
]


@pytest.mark.parametrize("name,path,kwargs", HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
async def test_malformed_sign_in_is_a_client_error(env: Env, name, path, kwargs) -> None:
    response = await env.client.post(path, **kwargs)
    assert response.status_code in (400, 401), (response.status_code, response.text[:300])
    body = response.json()
    assert body["error"] in ("invalid_request", "invalid_client", "invalid_grant")


@pytest.mark.parametrize("params", [{"actor": "a\x00b"}, {"from": NAIVE}, {"to": TOO_LATE},
                                    "decision=%ED%A0%80%00"],
                         ids=["actor NUL", "from naive", "to out of range", "decision surrogate"])
async def test_malformed_export_filters_are_400(env: Env, params) -> None:
    token = await env.token("nhri", "auditor")
    url = "/audit/export" + ("?" + params if isinstance(params, str) else "")
    response = await env.client.get(url, params=None if isinstance(params, str) else params,
                                    headers={
        "authorization": f"Bearer {token}", "safety-net-purpose": "protection"})
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
