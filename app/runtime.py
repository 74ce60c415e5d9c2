"""The long-lived parts of one service process, built once at start-up.

Lower layers reach higher ones only through registration (decision 0035), and importing a module
registers its hooks. Every process builds a Runtime (server, CLI, demo loader, scheduler, tests),
so the registering modules are imported here and none runs with a hook missing; a missing hook
refuses (her login, her own widening of consent) rather than skipping a safeguard.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from app.access.policy import PolicyEngine
from app.auth.edge import recipient_unit_of_work
from app.auth.tokens import Claims, Issuer, OIDCVerifier, issuer_of
from app.clock import Clock
from app.config import Settings
from app.consent import service as _registers_member_joined  # noqa: F401
from app.crypto import KeyEncryptionKeys
from app.db import Database
from app.errors import Unauthenticated
from app.justice import service as _registers_next_hearing  # noqa: F401
from app.metrics import Metrics
from app.notify.broker import Broker
from app.notify.service import Mailer
from app.notify.webhooks import Webhooks
from app.peacebuilders import account as _registers_her_hold  # noqa: F401
from app.peacebuilders import http as _registers_her_login  # noqa: F401
from app.storage import migration_status, schema_is_usable
from app.tables import integrity  # noqa: F401  (its mapper events stamp consent rows' MACs)
from app.telemetry import Telemetry
from app.tenancy import NOBODY, Tenancy

log = logging.getLogger("safety_net")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    policy: PolicyEngine
    issuer: Issuer
    clock: Clock = field(default_factory=Clock)
    oidc: OIDCVerifier | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    broker: Broker = field(default_factory=Broker)
    mailer: Mailer | None = None
    webhooks: Webhooks | None = None
    # Traces (off unless configured) and this app's metrics registry: set up by create_app.
    telemetry: Telemetry = field(default_factory=Telemetry)
    metrics: Metrics | None = None

    @classmethod
    def create(cls, settings: Settings, *, clock: Clock | None = None,
               tenancy_fallback: Tenancy = NOBODY) -> Runtime:
        """`tenancy_fallback`: what a transaction outside any declared unit of work may touch
        under row-level security — nothing in the service; the test harness's setup code is the
        system."""
        oidc = OIDCVerifier(settings) if settings.issuer == "oidc" else None
        db = Database(settings.database_url, fallback=tenancy_fallback,
                      background_url=settings.background_database_url or None,
                      tenancy_ttl=settings.tenancy_ttl_seconds,
                      background_tenancy_ttl=settings.background_tenancy_ttl_seconds,
                      keys=KeyEncryptionKeys(settings.keks, settings.kek))
        return cls(settings=settings, db=db,
                   policy=PolicyEngine(settings.policy_dir), issuer=Issuer(settings),
                   clock=clock or Clock(), oidc=oidc,
                   broker=Broker(settings.redis_url, timeout=settings.redis_timeout_ms / 1000,
                                 failures=settings.redis_breaker_failures,
                                 open_seconds=settings.redis_breaker_seconds),
                   mailer=Mailer(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                                 settings.public_url),
                   webhooks=Webhooks(settings.public_url, db.keys))

    async def after_commit(self, published: list[tuple[str, str]]) -> None:
        """New inbox items were committed (with their outbox rows): wake the outbox worker,
        which pushes them to subscribers and emails the links. Never waits for either."""
        if not published:
            return
        from app.notify.outbox import worker

        worker(self).notify()

    async def verify_token(self, token: str) -> Claims:
        """In OIDC mode staff come through the provider; the built-in issuer still serves, beside
        it, the people and systems the provider does not know: peacebuilders (her own login) and
        machine clients (client credentials). A built-in token for staff is refused there."""
        if self.oidc is None:
            return self.issuer.verify(token)
        if issuer_of(token) == self.settings.issuer_url:
            claims = self.issuer.verify(token)
            if not claims.subject.startswith(("peacebuilder:", "client:")):
                raise Unauthenticated("Invalid token.")
            return claims
        return await self.oidc.verify(token)

    async def check_ready(self) -> tuple[bool, str]:
        try:
            async with self.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            current, head = await migration_status(self.db)
        except Exception as exc:  # readiness must answer, not crash
            log.warning("readiness check failed: %s", type(exc).__name__)
            return False, "database unreachable"
        if not schema_is_usable(current, head):
            return False, "database not migrated"
        return True, "ok"

    def as_recipient(self, subject: str, purpose: str | None,
                     request_id: str) -> AbstractAsyncContextManager[Any]:
        """A unit of work as the recipient of an alert (`app.auth.edge.recipient_unit_of_work`),
        handed to deliveries (app/notify) that sit below the identity layer."""
        return recipient_unit_of_work(self, subject, purpose, request_id)

    async def close(self) -> None:
        await self.db.dispose()


def context_for(
    runtime: Runtime,
    session: Any,
    principal: Any,
    *,
    request_id: str,
    purpose: str | None = None,
) -> Any:
    """An AccessContext for one unit of work (app/access/unit.py)."""
    from app.access import unit

    return unit.context_for(runtime, session, principal, request_id=request_id, purpose=purpose)
