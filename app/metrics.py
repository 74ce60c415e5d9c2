"""Prometheus metrics: one registry per app, labels from small fixed sets only.

No label ever carries an ID, a pseudonym, a path with IDs in it, an operation name or any other
value a client or a record chooses (invariant 8, and bounded series): routes are templates,
methods and codes come from fixed lists, access-log actions are checked against their shape.
Database gauges (overdue acknowledgements, escalation steps due, entries waiting for the chainer,
checkpoint age) are computed when /metrics is scraped, so a scrape costs a few indexed counts.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app import tenancy
from app.access import log as audit_service
from app.audit import checkpoints

if TYPE_CHECKING:
    from app.tables.audit import AccessLogEntry

# No `*_created` series next to every counter and histogram: half the series, nothing lost.
disable_created_metrics()
log = logging.getLogger("safety_net.metrics")

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
STEP_KINDS = frozenset({"escalation", "task_reminder", "task_overdue"})
WEBHOOK_STATES = ("failed", "pending")
# Access-log actions are code constants like "case.read" or "operation.run"; anything else
# (which would be a bug) is counted as "other" rather than becoming a label.
_ACTION = re.compile(r"[a-z_]{1,30}(\.[a-z_]{1,30}){0,3}")
# Error codes are code constants in SCREAMING_SNAKE_CASE (schema/errors.py, app/errors.py).
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,47}")
_LIMIT = re.compile(r"[a-z_]{1,30}")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

def action_label(action: str) -> str:
    return action if _ACTION.fullmatch(action) else "other"


def code_label(code: Any) -> str:
    return code if isinstance(code, str) and _CODE.fullmatch(code) else "OTHER"


@dataclass
class Snapshot:
    """Values read from the database and the checkpoint directory at the last scrape."""

    incidents_overdue: int | None = None
    steps_due: dict[str, int] | None = None
    steps_pending: dict[str, int] | None = None
    log_pending: int | None = None
    log_chained: int | None = None
    checkpoint_size: int | None = None
    checkpoint_age: float | None = None
    orgs_without_focal_point: int | None = None
    webhooks: dict[str, int] | None = None


class _ScrapeCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        s = self.snapshot
        yield from _gauge("safety_net_incidents_unacknowledged_overdue",
                          "Incidents not acknowledged whose acknowledgement deadline has passed.",
                          s.incidents_overdue)
        due = GaugeMetricFamily("safety_net_escalation_steps_due",
                                "Scheduled steps (escalations, task reminders) due but not yet "
                                "run: above 0 for long means the scheduler is behind.",
                                labels=["kind"])
        pending = GaugeMetricFamily("safety_net_escalation_steps_pending",
                                    "Scheduled steps not yet run, due or not.", labels=["kind"])
        for kind in sorted(STEP_KINDS):
            if s.steps_due is not None:
                due.add_metric([kind], s.steps_due.get(kind, 0))
            if s.steps_pending is not None:
                pending.add_metric([kind], s.steps_pending.get(kind, 0))
        yield due
        yield pending
        hooks = GaugeMetricFamily("safety_net_webhook_deliveries",
                                  "Webhook deliveries (app/notify/webhooks.py) still being retried "
                                  "(pending) or given up after every attempt (failed).",
                                  labels=["state"])
        for state in WEBHOOK_STATES:
            if s.webhooks is not None:
                hooks.add_metric([state], s.webhooks.get(state, 0))
        yield hooks
        yield from _gauge("safety_net_access_log_pending_entries",
                          "Access-log entries written but not yet chained.", s.log_pending)
        yield from _gauge("safety_net_access_log_unsigned_entries",
                          "Chained access-log entries not yet covered by a signed checkpoint.",
                          None if s.log_chained is None
                          else s.log_chained - (s.checkpoint_size or 0))
        yield from _gauge("safety_net_access_log_checkpoint_age_seconds",
                          "Seconds since the newest signed access-log checkpoint (absent before "
                          "the first one).", s.checkpoint_age)
        yield from _gauge("safety_net_organisations_without_focal_point",
                          "Organisations with no active focal point: their alerts and "
                          "escalations reach no one at the first level.",
                          s.orgs_without_focal_point)


def _gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    family = GaugeMetricFamily(name, doc)
    if value is not None:
        family.add_metric([], value)
    yield family


class Metrics:
    """The counters and histograms of one app, and the gauges computed at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.http_requests = Counter(
            "safety_net_http_requests", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=r)
        self.http_latency = Histogram(
            "safety_net_http_request_duration_seconds",
            "Time from receiving a request to the end of its response, by route template.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.graphql_operations = Counter(
            "safety_net_graphql_operations", "GraphQL operations run, by operation type.",
            ["type"], registry=r)
        self.graphql_errors = Counter(
            "safety_net_graphql_errors", "GraphQL errors sent, by extensions.code.", ["code"],
            registry=r)
        self.rate_limited = Counter(
            "safety_net_rate_limited", "Requests refused with 429 by a rate limit or quota, by "
            "limit (client, organisation, login_account, token_client, ...).", ["limit"],
            registry=r)
        self.rate_fail_open = Counter(
            "safety_net_rate_limit_fail_open", "Rate-limit decisions counted in this replica's "
            "memory because Redis was down, slow or skipped by its open circuit (fail-open: "
            "each replica then applies the limits on its own).", registry=r)
        self.circuit_state = Gauge(
            "safety_net_redis_circuit_state", "Circuit breaker in front of Redis, by component: "
            "0 closed (Redis used), 1 half-open (one probe), 2 open (Redis skipped).",
            ["component"], registry=r)
        self.outbox_published = Counter(
            "safety_net_outbox_published", "Alerts taken from the outbox and published "
            "(to Redis, or in-process without it).", registry=r)
        self.outbox_failures = Counter(
            "safety_net_outbox_publish_failures", "Outbox publishing passes that failed (Redis "
            "down or slow): the alerts stay in the outbox and are retried.", registry=r)
        self.idempotent_replays = Counter(
            "safety_net_idempotent_replays", "Mutations answered from a stored first answer "
            "(same Idempotency-Key, same request).", registry=r)
        self.access_denials = Counter(
            "safety_net_access_denials", "Access-log entries with decision=deny, by action.",
            ["action"], registry=r)
        self.snapshot = Snapshot()
        r.register(_ScrapeCollector(self.snapshot))

    def attach(self, engine: Any) -> None:
        """Count denials written through this engine into this app's registry."""
        audit_service.count_denials_with(engine, self.count_denials)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_latency.labels(route, method).observe(seconds)

    def count_errors(self, codes: Iterable[Any]) -> None:
        for code in codes:
            self.graphql_errors.labels(code_label(code)).inc()

    def count_throttled(self, limit: str | None) -> None:
        """Limit names are code constants (app/ratelimit.py); anything else counts as "other"."""
        self.rate_limited.labels(limit if limit and _LIMIT.fullmatch(limit) else "other").inc()

    def set_circuit(self, component: str, value: int) -> None:
        """Components are code constants ("rate_limits", "alerts"); anything else is "other"."""
        self.circuit_state.labels(component if _LIMIT.fullmatch(component) else "other").set(value)

    def count_denials(self, entries: Iterable[AccessLogEntry]) -> None:
        for entry in entries:
            if entry.decision == "deny":
                self.access_denials.labels(action_label(entry.action)).inc()

    async def refresh(self, db: Any, now: datetime, checkpoint_dir: Path) -> None:
        """Read the scrape-time gauges; on failure they are left out, the counters still go."""
        s = self.snapshot
        try:
            await self._read_database(db, now)
        except Exception as exc:  # a scrape must answer; the reason goes to the log, by type
            log.warning("metrics: database gauges unavailable: %s", type(exc).__name__)
            s.incidents_overdue = s.log_pending = s.log_chained = None
            s.steps_due = s.steps_pending = s.orgs_without_focal_point = None
            s.webhooks = None
        newest = await asyncio.to_thread(newest_checkpoint, checkpoint_dir)
        s.checkpoint_size = newest.size if newest else None
        s.checkpoint_age = max(0.0, (now - newest.time).total_seconds()) if newest else None

    @tenancy.as_system  # counts over every organisation, like the chainer and the scheduler
    async def _read_database(self, db: Any, now: datetime) -> None:
        from app.tables.audit import AccessLogEntry
        from app.tables.channels import WebhookDelivery
        from app.tables.incidents import Incident, ScheduledStep

        s = self.snapshot
        async with db.transaction() as session:
            s.incidents_overdue = await session.scalar(
                select(func.count()).select_from(Incident).where(
                    Incident.acknowledged_at.is_(None), Incident.ack_deadline < now))
            pending = select(ScheduledStep.kind, func.count()).where(
                ScheduledStep.done_at.is_(None)).group_by(ScheduledStep.kind)
            rows = (await session.execute(pending)).all()
            s.steps_pending = {k: n for k, n in rows if k in STEP_KINDS}
            rows = (await session.execute(pending.where(ScheduledStep.due_at <= now))).all()
            s.steps_due = {k: n for k, n in rows if k in STEP_KINDS}
            s.log_pending = await session.scalar(
                select(func.count()).select_from(AccessLogEntry)
                .where(AccessLogEntry.seq.is_(None)))
            s.log_chained = await session.scalar(select(func.max(AccessLogEntry.seq))) or 0
            s.orgs_without_focal_point = await _without_focal_point(session)
            rows = (await session.execute(select(WebhookDelivery.state, func.count()).where(
                WebhookDelivery.state.in_(WEBHOOK_STATES)).group_by(WebhookDelivery.state))).all()
            s.webhooks = {k: n for k, n in rows}

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def _without_focal_point(session: Any) -> int:
    from app.tables.orgs import Organisation, RoleAssignment, User

    holders = (await session.execute(select(RoleAssignment.org_id, RoleAssignment.subject).where(
        RoleAssignment.role == "focal_point"))).all()
    active = {f"user:{i}" for i in await session.scalars(select(User.id).where(
        User.active.is_(True)))}
    reached = {org for org, subject in holders if subject in active}
    return len(set(await session.scalars(select(Organisation.id))) - reached)


def newest_checkpoint(directory: Path) -> checkpoints.Checkpoint | None:
    """The newest checkpoint from the directory's `latest` pointer (two small files, not a listing
    of the directory); blocking, so `refresh` runs it in a thread."""
    try:
        return checkpoints.latest(directory)
    except (OSError, checkpoints.BadCheckpoint) as exc:
        log.warning("metrics: newest checkpoint unreadable: %s", type(exc).__name__)
        return None
