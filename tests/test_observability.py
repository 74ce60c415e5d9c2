"""Traces, metrics and logs (issue 9): they say what happened and how long it took, never whose
data it was (invariant 8). After real requests — a denied read and a bad request included —
/metrics counts them, spans cover the operation and its SQL, and no span, label or log line
holds her pseudonym, name, phone or case summary."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.clock import FrozenClock
from app.config import Settings
from app.logs import JsonFormatter, quiet_third_party
from app.metrics import WEBHOOK_STATES, action_label, code_label
from app.ratelimit import RateLimiter
from app.runtime import Runtime
from schema import ids
from schema.server import create_app
from tests.conftest import BACKENDS, build_env, unique
from tests.factories import give_login, she_confirms
from tests.test_consent import OPEN_CASE, READ, new_peacebuilder
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ROUTES = {"/graphql", "/oauth/token", "/auth/login", "/.well-known/jwks.json", "/audit/export",
          "/incidents/{incident_id}/attachments", "/attachments/{attachment_id}", "/healthz",
          "/readyz", "/metrics", "/auth/logout", "/auth/redeem-code", "/oauth/revoke",
          "/me/data-copy", "/monitoring/report", "/openapi.json", "/schema.graphql",
          "/static/graphiql/{name}", "unmatched"}


async def scrape(env, **headers: str) -> tuple[str, Samples]:
    response = await env.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def labels_of(samples: Samples) -> set[tuple[str, str]]:
    return {pair for _, labels in samples for pair in labels}


# --- metrics on the shared deployment -----------------------------------------------------------

async def test_metrics_count_requests_errors_and_denials(env):
    pb = await new_peacebuilder(env, "fund")
    _, before = await scrape(env)
    own = await env.token("fund", "caseworker")
    read = await env.gql(READ, {"id": pb["id"]}, token=own)
    assert read["data"]["peacebuilder"]["pseudonym"] == pb["login"]
    # A denied read: another organisation, no consent. NOT_FOUND, logged as a denial.
    denied = await env.gql(READ, {"id": pb["id"]}, as_=("mofa", "caseworker"))
    assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # A bad request: the document does not parse.
    bad = await env.gql("{ viewer { name ", token=own)
    assert bad["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # An unknown purpose: 400, and a denial of its own.
    purpose = await env.post(READ, {"id": pb["id"]}, token=own, purpose="intelligence")
    assert purpose.status_code == 400
    # A refused machine client: its denial is written in the endpoint's own transaction.
    refused = await env.client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                    auth=("mofa-system", "not-the-secret"))
    assert refused.status_code in (400, 401)
    text, after = await scrape(env)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    graphql = {"route": "/graphql", "method": "POST"}
    assert delta("safety_net_http_requests_total", status="200", **graphql) == 3
    assert delta("safety_net_http_requests_total", status="400", **graphql) == 1
    assert delta("safety_net_http_requests_total", route="/metrics", method="GET",
                 status="200") == 1  # the first scrape; this one is counted once it is sent
    assert delta("safety_net_http_request_duration_seconds_count", **graphql) == 4
    assert delta("safety_net_http_request_duration_seconds_bucket", le="+Inf", **graphql) == 4
    assert delta("safety_net_http_request_duration_seconds_sum", **graphql) > 0
    assert delta("safety_net_graphql_operations_total", type="mutation") == 0
    assert delta("safety_net_graphql_operations_total", type="query") == 2
    assert delta("safety_net_graphql_errors_total", code="NOT_FOUND") == 1
    assert delta("safety_net_graphql_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert delta("safety_net_graphql_errors_total", code="INVALID_PURPOSE") == 1
    assert delta("safety_net_access_denials_total", action="peacebuilder.read") == 1
    assert delta("safety_net_access_denials_total", action="request.purpose") == 1
    assert delta("safety_net_access_denials_total", action="token.issue") == 1
    assert delta("safety_net_http_requests_total", route="/oauth/token", method="POST",
                 status=str(refused.status_code)) == 1
    # Scrape-time gauges: the tests' deployment runs no chainer, so entries wait for it.
    assert value(after, "safety_net_access_log_pending_entries") >= 2
    for kind in ("escalation", "task_reminder"):
        assert ("safety_net_escalation_steps_pending", frozenset({("kind", kind)})) in after
    assert ("safety_net_incidents_unacknowledged_overdue", frozenset()) in after
    # Labels come from fixed sets: route templates, methods, codes, actions. No ID, no name.
    for name, label in labels_of(after):
        assert name in {"route", "method", "status", "type", "code", "action", "kind", "le",
                        "limit", "state"}
        if name == "route":
            assert label in ROUTES
        if name == "limit":
            assert label in RateLimiter(env.settings).rates or label == "other"
        if name == "state":
            assert label in WEBHOOK_STATES
    raw_id = str(ids.decode(pb["id"], "Peacebuilder"))
    for secret in (pb["login"], pb["id"], raw_id, "Secret Legal Name", "radio interview"):
        assert secret not in text


async def test_metrics_are_refused_through_a_proxy_and_need_the_token_when_set(env):
    # Without a token: a scraper reaching the pod directly only, never through an ingress.
    for header in ("x-forwarded-for", "forwarded", "x-real-ip"):
        refused = await env.client.get("/metrics", headers={header: "203.0.113.9"})
        assert refused.status_code == 404 and "safety_net" not in refused.text
    runtime = Runtime.create(replace(env.settings, metrics_token="scrape-secret"))
    try:
        import httpx

        app = create_app(runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as client:
            for auth in ({}, {"authorization": "Bearer wrong"}, {"authorization": "scrape-secret"}):
                response = await client.get("/metrics", headers=auth)
                assert response.status_code == 401, auth
            ok = await client.get("/metrics", headers={"authorization": "Bearer scrape-secret",
                                                       "x-forwarded-for": "203.0.113.9"})
            assert ok.status_code == 200 and "safety_net_http_requests_total" in ok.text
        off = create_app(Runtime.create(replace(env.settings, metrics=False)))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=off),
                                     base_url="http://test") as client:
            assert (await client.get("/metrics")).status_code == 404
    finally:
        await runtime.close()


def test_labels_are_checked_against_their_shape():
    assert action_label("peacebuilder.read") == "peacebuilder.read"
    assert action_label("peacebuilder.read pb-1234 Amani") == "other"
    assert code_label("NOT_FOUND") == "NOT_FOUND"
    assert code_label("not a code") == "OTHER" and code_label(None) == "OTHER"


def test_settings():
    assert Settings().otel_exporter == "none" and Settings().metrics
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, {"SAFETY_NET_OTEL_EXPORTER": "Console",
                                      "SAFETY_NET_TRACE_SLOW_FIELD_MS": "25",
                                      "SAFETY_NET_METRICS": "off",
                                      "SAFETY_NET_METRICS_TOKEN": "t"}):
        s = Settings.from_env()
    assert (s.otel_exporter, s.trace_slow_field_ms, s.metrics, s.metrics_token) == (
        "console", 25.0, False, "t")
    with mock.patch.dict(os.environ, {"SAFETY_NET_OTEL_EXPORTER": "jaeger"}), \
            pytest.raises(ValueError, match="SAFETY_NET_OTEL_EXPORTER"):
        Settings.from_env()


def test_exporters_are_built_from_the_settings(monkeypatch):
    from app.telemetry import Telemetry

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # never reached
    assert not Telemetry.from_settings(Settings()).enabled
    for kind, exporter in (("console", "ConsoleSpanExporter"), ("otlp", "OTLPSpanExporter"),
                           ("memory", "InMemorySpanExporter")):
        telemetry = Telemetry.from_settings(replace(Settings(), otel_exporter=kind))
        assert telemetry.enabled and type(telemetry.exporter).__name__ == exporter
        telemetry.shutdown()  # nothing was recorded: nothing is sent


# --- traces, on a deployment of its own with an in-memory exporter -----------------------------

@pytest.fixture(scope="module", params=BACKENDS)
async def traced(request, tmp_path_factory, anyio_backend):
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    # Threshold 0: every awaited resolver gets a span, so the test sees them all.
    env, close = await build_env(request.param, tmp_path_factory.mktemp("traced"), clock=clock,
                                 otel_exporter="memory", trace_slow_field_ms=0)
    env.clock = clock
    try:
        yield env
    finally:
        await close()


class Lines(logging.Handler):
    """Formats each record as the service would, when it is logged (the span is current)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_spans_metrics_and_logs_hold_no_personal_data(traced, caplog):
    env = traced
    exporter = env.runtime.telemetry.exporter
    exporter.clear()
    quiet_third_party()
    caplog.set_level(logging.DEBUG)
    lines = Lines()
    logging.getLogger().addHandler(lines)
    pseudonym = unique("zuleikha")
    legal, phone = "Xochitl Marandu-Okafor", "+1 555 0142"
    summary = "Ambushed near the Kwelera crossing"
    secrets = (pseudonym, legal, phone, summary, "Marandu", "Kwelera")
    try:
        caseworker = await env.token("fund", "caseworker")
        # Her values inline in the document, not in variables: the document is never recorded.
        create = (f'mutation CreateHer {{ createPeacebuilder(input: {{pseudonym: "{pseudonym}", '
                  f'profile: {{legalName: "{legal}", phone: "{phone}", country: "ZZ"}}, '
                  f'intakeConsent: {{obtainedVia: IN_PERSON, categories: [IDENTITY, CONTACT, '
                  f'LOCATION_COARSE, INCIDENT_DETAILS], evidence: {{kind: SIGNED_FORM, '
                  f'reference: "form"}}}}}}) '
                  f'{{ peacebuilder {{ id }} intakeConsent {{ id }} userErrors {{ message }} }} }}')
        body = await env.gql(create, token=caseworker)
        pb = body["data"]["createPeacebuilder"]["peacebuilder"]["id"]
        # Identity and contact come into force only when she confirms them herself.
        await she_confirms(env, await give_login(env, pb, unique("login")),
                           body["data"]["createPeacebuilder"]["intakeConsent"]["id"])
        case = await env.gql(OPEN_CASE, {"input": {"peacebuilderId": pb, "summary": summary}},
                             token=caseworker)
        case_id = case["data"]["openCase"]["case"]["id"]
        read = await env.gql(READ, {"id": pb}, token=caseworker)
        assert read["data"]["peacebuilder"]["profile"]["legalName"] == legal
        assert read["data"]["peacebuilder"]["cases"][0]["summary"] == summary
        denied = await env.gql(READ, {"id": pb}, as_=("mofa", "caseworker"))
        assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        bad = await env.gql(f'{{ peacebuilder(id: "{pseudonym}") {{ pseudonym ', token=caseworker)
        assert bad["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        reported = await env.gql(REPORT, incident_input(case_id), token=caseworker)
        assert reported["data"]["reportIncident"]["userErrors"] == []
        text, _ = await scrape(env)
    finally:
        logging.getLogger().removeHandler(lines)
    spans = exporter.get_finished_spans()
    by_name = {s.name: s for s in spans}

    # The operation: named by type and the document's operation name; who and which request.
    op = by_name["mutation CreateHer"]
    assert op.attributes["graphql.operation.type"] == "mutation"
    assert op.attributes["safety_net.organisation"] == "fund"
    assert op.attributes["safety_net.principal.kind"] == "user"
    assert len(op.attributes["safety_net.request_id"]) == 32
    server = next(s for s in spans if s.context.span_id == op.parent.span_id)
    assert server.name == "POST /graphql" and server.attributes["http.route"] == "/graphql"
    assert server.attributes["http.response.status_code"] == 200
    # SQL statements of that operation, inside its trace, placeholders only.
    sql = [s for s in spans if s.context.trace_id == op.context.trace_id and
           "db.query.text" in s.attributes]
    assert {s.name for s in sql} >= {"SELECT", "INSERT"}
    assert all(s.parent is not None for s in sql)
    # Resolver spans (threshold 0 here): named after the schema, never the client's aliases.
    assert "resolve Mutation.createPeacebuilder" in by_name
    assert "resolve Query.peacebuilder" in by_name
    # The denied read and the bad request: error codes on their spans.
    assert any(s.attributes.get("graphql.error.codes") == ("NOT_FOUND",) for s in spans)
    assert any(s.attributes.get("graphql.error.codes") == ("GRAPHQL_VALIDATION_FAILED",)
               for s in spans)
    # Scrapes are not traced; and nothing else is a root span but the HTTP requests.
    assert not any("/metrics" in s.name for s in spans)
    assert all(s.name.startswith(("POST ", "GET ")) for s in spans if s.parent is None)
    # Log lines written while a request's span was current carry its trace ID.
    traces = {format(s.context.trace_id, "032x") for s in spans}
    request_lines = [json.loads(line) for line in lines.lines if '"message": "request"' in line]
    assert request_lines and all(line.get("trace_id") in traces for line in request_lines
                                 if line["path"] == "/graphql")

    exported = "\n".join(s.to_json() for s in spans)
    raw_id = str(ids.decode(pb, "Peacebuilder"))
    for secret in secrets:
        assert secret not in exported, f"{secret} in a span"
        assert secret not in text, f"{secret} in the metrics"
        assert not any(secret in line for line in lines.lines), f"{secret} in the logs"
    assert raw_id not in text and pb not in text


async def test_scrape_time_gauges_follow_the_clock(traced):
    env = traced
    pb = await new_peacebuilder(env, "fund")
    reported = await env.gql(REPORT, incident_input(pb["case"]), as_=("fund", "caseworker"))
    assert reported["data"]["reportIncident"]["userErrors"] == []
    worker = env.runtime.extras["log_worker"]
    while await worker.tick():
        pass
    await worker.maybe_checkpoint(force=True)  # unless the idle pass just signed one
    _, now = await scrape(env)
    assert value(now, "safety_net_access_log_pending_entries") == 0
    assert value(now, "safety_net_access_log_unsigned_entries") == 0
    assert value(now, "safety_net_access_log_checkpoint_age_seconds") == 0
    overdue = value(now, "safety_net_incidents_unacknowledged_overdue")
    pending = value(now, "safety_net_escalation_steps_pending", kind="escalation")
    assert pending >= 2  # both levels of this incident's escalation
    # Two hours on (a critical incident's deadline is one hour): overdue, both steps due.
    env.clock.advance(hours=2)
    _, later = await scrape(env)
    assert value(later, "safety_net_access_log_checkpoint_age_seconds") == 7200
    assert value(later, "safety_net_incidents_unacknowledged_overdue") >= overdue + 1
    assert value(later, "safety_net_escalation_steps_due", kind="escalation") >= 2
    # The scheduler runs them: nothing is due any more, the incident is still unacknowledged.
    await env.runtime.extras["scheduler"].tick()
    _, run = await scrape(env)
    assert value(run, "safety_net_escalation_steps_due", kind="escalation") == 0
    assert value(run, "safety_net_incidents_unacknowledged_overdue") >= overdue + 1
