"""Queries: auditors' access log, alerts, and her access history."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.audit import queries as audit
from app.audit import verify
from app.audit.queries import LogFilter
from schema import ids, permissions
from schema.audit.types import (
    AccessHistoryEntry,
    AccessLogEntry,
    AccessLogFilter,
    AccessLogVerification,
    Alert,
)
from schema.common import AFTER_DESCRIPTION, FIRST_DESCRIPTION, Connection, connection, page_request
from schema.context import Info
from schema.orgs.types import Organisation
from schema.permissions import Who


async def _filter(info: Info, f: AccessLogFilter | None) -> LogFilter:
    if f is None:
        return LogFilter()
    pb_ids = None
    if f.peacebuilder_pseudonym:
        pb_ids = await info.context.loaders.call(audit.pseudonym_ids, info.context.access,
                                                 f.peacebuilder_pseudonym)
    return LogFilter(
        since=f.since, until=f.until, actor=f.actor, decision=f.decision.value if f.decision else None,
        purpose=f.purpose.value if f.purpose else None,
        action_prefix=f.action_prefix, peacebuilder_ids=pb_ids,
        org_id=ids.decode(f.organisation_id, "Organisation", "filter.organisationId")
        if f.organisation_id else None)


@strawberry.type
class AuditQueries:
    @permissions.query(
        "Access-log entries of your organisation and of those that accepted its oversight, newest "
        "first. Logged.",
        requires=[("audit_log", "read")],
        args={
            "filter": "Only entries matching all of these conditions (all when omitted).",
        })
    async def access_log(
        self,
        info: Info,
        filter: AccessLogFilter | None = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[AccessLogEntry]:
        spec = await _filter(info, filter)
        page = await info.context.loaders.call(audit.search, info.context.access, spec,
                                               page_request(first, after, descending=True))
        return connection(page, AccessLogEntry.from_model)

    @permissions.query(
        "The access log checked against its newest signed checkpoint: the checkpoint's "
        "signature and the chain recomputed up to it (the last 20,000 entries at most). Logged.",
        requires=[("audit_log", "read")])
    async def access_log_verification(self, info: Info) -> AccessLogVerification:
        status = await info.context.loaders.call(verify.chain_status, info.context.access)
        return AccessLogVerification.from_status(status)

    @permissions.query(
        "The organisations whose access log you may read: yours and those that accept its "
        "oversight (for `accessLog(filter: {organisationId})`).",
        requires=[("audit_log", "read")])
    async def access_log_organisations(self, info: Info) -> list[Organisation]:
        orgs = await info.context.loaders.call(audit.readable_orgs, info.context.access)
        return [Organisation.from_model(org) for org in orgs]

    @permissions.query(
        "Unusual-access alerts of your organisation, newest first.",
        requires=[("alert", "read")])
    async def alerts(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[Alert]:
        page = await info.context.loaders.call(audit.alerts, info.context.access,
                                               page_request(first, after, descending=True))
        return connection(page, Alert.from_model)

    @permissions.query(
        "Who accessed her data, when and why, newest first: for her (omit the ID) or a focal point "
        "of her network acting for her.",
        who=Who.HER_SIDE,
        args={
            "peacebuilder_id": ("Her global ID, for a focal point of her network; omit it when she asks "
                               "herself."),
        })
    async def access_history(
        self,
        info: Info,
        peacebuilder_id: strawberry.ID | None = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> Connection[AccessHistoryEntry]:
        pb_id = ids.decode(peacebuilder_id, "Peacebuilder", "peacebuilderId") \
            if peacebuilder_id else None
        page = await info.context.loaders.call(audit.her_history, info.context.access, pb_id,
                                               page_request(first, after, descending=True))
        who = pb_id or info.context.access.principal.id
        return connection(page, lambda e: AccessHistoryEntry.from_model(e, who))
