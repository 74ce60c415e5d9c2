"""The strawberry schema: every domain's queries and mutations, and the Node entry point."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from app.access.principal import PrincipalKind
from app.audit import queries as audit_queries
from app.cases import service as cases
from app.confirmations import service as confirmations
from app.consent import service as consent
from app.directory import help as help_requests
from app.errors import NotFound
from app.escalation import rota
from app.incidents import response
from app.notify import webhooks
from app.operations import service as operations
from app.orgs import service as orgs
from app.peacebuilders import erasure, self_service
from app.read import attachments as read_attachments
from app.read import cases as case_read
from app.read import peacebuilders as pb_read
from app.read.children import RowView
from app.telemetry import Telemetry
from schema import ids, permissions
from schema.audit.queries import AuditQueries
from schema.audit.types import AccessLogEntry, Alert
from schema.bounded import bounded_execution
from schema.cases.mutations import CaseMutations
from schema.cases.queries import CaseQueries
from schema.cases.types import Case, CaseNote
from schema.checkins.mutations import CheckInMutations
from schema.checkins.types import CheckIn, CheckInSchedule, SecurityAssessment
from schema.common import Node
from schema.confirmations.mutations import ConfirmationMutations
from schema.confirmations.queries import ConfirmationQueries
from schema.confirmations.types import Confirmation
from schema.consent.mutations import ConsentMutations
from schema.consent.queries import ConsentQueries
from schema.consent.types import BreakGlass, ConsentGrant, Erasure
from schema.consultations.mutations import ConsultationMutations
from schema.consultations.types import Consultation, ConsultationFollowUpTask
from schema.context import Info
from schema.conventions import conventional_descriptions
from schema.directory.mutations import DirectoryMutations
from schema.directory.queries import DirectoryQueries
from schema.directory.types import HelpRequest
from schema.errors import log_errors
from schema.escalation.types import DutyShift, EscalationMutations, EscalationQueries
from schema.gated import lean_resolvers, want_of
from schema.incidents.mutations import IncidentMutations
from schema.incidents.queries import IncidentQueries
from schema.incidents.types import Approval, Attachment, Incident, Measure, Proceeding, Referral
from schema.justice.mutations import JusticeMutations
from schema.justice.types import Detention, DetentionCheck, DetentionVisit, Hearing
from schema.limits import Limits, QueryLimits
from schema.monitoring.mutations import MonitoringMutations
from schema.monitoring.queries import MonitoringQueries
from schema.notify.mutations import NotifyMutations
from schema.notify.queries import NotifyQueries
from schema.notify.types import Channel
from schema.orgs.mutations import OrgMutations
from schema.orgs.queries import OrgQueries
from schema.orgs.types import Client, Organisation, User, WorkingGroup
from schema.peacebuilders.account import HerAccountMutations
from schema.peacebuilders.corrections import CorrectionMutations, CorrectionQueries
from schema.peacebuilders.mutations import PeacebuilderMutations
from schema.peacebuilders.queries import PeacebuilderQueries
from schema.peacebuilders.types import Peacebuilder
from schema.risk.mutations import RiskMutations
from schema.scalars import SCALAR_OVERRIDES
from schema.security.mutations import SecurityMutations
from schema.security.queries import SecurityQueries
from schema.security.types import RegisteredOperation
from schema.sizes import document_limits
from schema.subscriptions import Subscription
from schema.tracing import slow_field_spans

_NODE_RESOLVERS: dict[str, Callable[[Info, Any], Awaitable[Node]]] = {}


def _node_resolver(type_name: str) -> Callable[..., Any]:
    def register(fn: Callable[[Info, Any], Awaitable[Node]]) -> Callable[[Info, Any], Awaitable[Node]]:
        _NODE_RESOLVERS[type_name] = fn
        return fn

    return register


@_node_resolver("Organisation")
async def _org(info: Info, id_: Any) -> Node:
    return Organisation.from_model(await info.context.loaders.call(orgs.get_org, info.context.access, id_))


@_node_resolver("User")
async def _user(info: Info, id_: Any) -> Node:
    return User.from_model(await info.context.loaders.call(orgs.get_user, info.context.access, id_))


@_node_resolver("WorkingGroup")
async def _wg(info: Info, id_: Any) -> Node:
    return WorkingGroup.from_model(
        await info.context.loaders.call(orgs.get_working_group, info.context.access, id_))


@_node_resolver("Peacebuilder")
async def _pb(info: Info, id_: Any) -> Node:
    return Peacebuilder.from_view(await info.context.loaders.call(
        pb_read.one, info.context.access, id_, want_of(info)))


@_node_resolver("Case")
async def _case(info: Info, id_: Any) -> Node:
    return Case.from_view(await info.context.loaders.call(
        case_read.one, info.context.access, id_, want_of(info)))


def _below(type_name: str, name: str, convert: Callable[[RowView], Node]) -> None:
    """A row below a case: decided as through its case (app/read/cases.py `below`)."""
    async def resolve(info: Info, id_: Any) -> Node:
        return convert(await info.context.loaders.call(
            case_read.below, info.context.access, name, id_, want_of(info)))

    _NODE_RESOLVERS[type_name] = resolve


_below("Incident", "incidents", Incident.from_view)
_below("Measure", "measures", Measure.from_view)
_below("Proceeding", "proceedings", Proceeding.from_view)
_below("Hearing", "hearings", Hearing.from_view)
_below("Detention", "detentions", Detention.from_view)
_below("DetentionCheck", "detention_checks", DetentionCheck.from_view)
_below("DetentionVisit", "detention_visits", DetentionVisit.from_view)
_below("CheckInSchedule", "check_in_schedules", CheckInSchedule.from_view)
_below("CheckIn", "check_ins", CheckIn.from_view)
_below("SecurityAssessment", "security_assessments", SecurityAssessment.from_view)
_below("Consultation", "consultations", Consultation.from_view)


@_node_resolver("ConsultationFollowUpTask")
async def _follow_up_task(info: Info, id_: Any) -> Node:
    """Decided as through its case, like the rows above; its named person shows to the owner
    organisation only, as in the case's `consultationFollowUps`."""
    view = await info.context.loaders.call(case_read.below, info.context.access,
                                           "consultation_follow_ups", id_, want_of(info))
    return ConsultationFollowUpTask.from_view(view, info.context.access.org_id)


@_node_resolver("Attachment")
async def _attachment(info: Info, id_: Any) -> Node:
    return Attachment.from_model(await info.context.loaders.call(
        read_attachments.one, info.context.access, id_))


@_node_resolver("Referral")
async def _referral(info: Info, id_: Any) -> Node:
    return Referral.from_view(await info.context.loaders.call(
        response.referral_one, info.context.access, id_))


@_node_resolver("ConsentGrant")
async def _grant(info: Info, id_: Any) -> Node:
    return ConsentGrant.from_model(await info.context.loaders.call(
        consent.grant_seen, info.context.access, id_))


def _mine(info: Info) -> None:
    """Objects only she herself lists (her approvals, break-glass, erasures): anyone else gets
    not found, like for a missing one."""
    if info.context.access.principal.kind is not PrincipalKind.PEACEBUILDER:
        raise NotFound()


def _pick(rows: Any, id_: Any) -> Any:
    for row in rows:
        if row.id == id_:
            return row
    raise NotFound()


@_node_resolver("Approval")
async def _approval(info: Info, id_: Any) -> Node:
    _mine(info)
    rows = await info.context.loaders.call(response.my_approvals, info.context.access)
    approval, text = _pick([r for r, _ in rows], id_), dict((r.id, t) for r, t in rows)[id_]
    return Approval.from_model(approval, text)


@_node_resolver("BreakGlass")
async def _break_glass(info: Info, id_: Any) -> Node:
    _mine(info)
    return BreakGlass.from_model(_pick(await info.context.loaders.call(
        self_service.my_break_glass, info.context.access), id_))


@_node_resolver("Erasure")
async def _erasure(info: Info, id_: Any) -> Node:
    _mine(info)
    return Erasure.from_model(_pick(await info.context.loaders.call(
        erasure.of, info.context.access, self_service.my_id(info.context.access)), id_))


@_node_resolver("Channel")
async def _channel(info: Info, id_: Any) -> Node:
    return Channel.from_model(_pick(await info.context.loaders.call(
        webhooks.my_channels, info.context.access), id_))


def _one(type_name: str, fetch: Callable[..., Awaitable[Any]],
         convert: Callable[[Any], Node]) -> None:
    """An object its own service function returns to the caller `node(id:)` asks for, under
    the same decision as the list it appears in."""
    async def resolve(info: Info, id_: Any) -> Node:
        return convert(await info.context.loaders.call(fetch, info.context.access, id_))

    _NODE_RESOLVERS[type_name] = resolve


_one("Client", orgs.get_client, Client.from_model)
_one("RegisteredOperation", operations.get_operation, RegisteredOperation.from_model)
_one("DutyShift", rota.get_shift, DutyShift.from_model)
_one("CaseNote", cases.get_note, lambda found: CaseNote.from_model(*found))
_one("AccessLogEntry", audit_queries.entry, AccessLogEntry.from_model)
_one("Alert", audit_queries.alert, Alert.from_model)
_one("Confirmation", confirmations.one, Confirmation.from_model)
_one("HelpRequest", help_requests.one, HelpRequest.from_opened)


@strawberry.type
class NodeQueries:
    @permissions.query(
        "Any object by its global ID (null and NOT_FOUND when it does not exist or is not yours to "
        "see). Each type checks what its own query checks (e.g. `case:read` for a Case).",
        purpose=True,
        args={
            "id": "A global ID of any type.",
        })
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, id_ = ids.decode_any(id)
        resolver = _NODE_RESOLVERS.get(type_name)
        if resolver is None:
            raise NotFound()
        return await resolver(info, id_)


Query = merge_types("Query", (NodeQueries, OrgQueries, PeacebuilderQueries, CaseQueries,
                             ConsentQueries, AuditQueries, IncidentQueries, SecurityQueries,
                             ConfirmationQueries, EscalationQueries, NotifyQueries,
                             DirectoryQueries, CorrectionQueries, MonitoringQueries))
Mutation = merge_types("Mutation", (OrgMutations, PeacebuilderMutations, CaseMutations,
                                   ConsentMutations, IncidentMutations, SecurityMutations,
                                   ConfirmationMutations, EscalationMutations,
                                   NotifyMutations, JusticeMutations, DirectoryMutations,
                                   CorrectionMutations, MonitoringMutations,
                                   CheckInMutations, ConsultationMutations,
                                   HerAccountMutations, RiskMutations))


class SafetyNetSchema(strawberry.Schema):
    limits: Limits
    production: bool

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context)


def build_schema(*, production: bool = False, limits: Limits | None = None,
                 telemetry: Telemetry | None = None) -> strawberry.Schema:
    """Production: no introspection and no "Did you mean" hints (GraphiQL is the edge's).
    With tracing on, slow resolvers get spans (schema/tracing.py); off, nothing is added."""
    checked = limits or Limits()
    # Factories: a fresh extension per request; the caches behind them are shared. QueryLimits
    # after ValidationCache: its refusal must replace the cached validation result.
    extensions: list[Any] = [lambda: ValidationCache(maxsize=512), lambda: QueryLimits(checked)]
    if production:
        extensions.append(DisableIntrospection)
    if telemetry is not None and telemetry.enabled:
        extensions.append(slow_field_spans(telemetry))
    built = SafetyNetSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Organisation, User, WorkingGroup, Peacebuilder, Case, CaseNote, ConsentGrant,
               BreakGlass, Confirmation],
        config=StrawberryConfig(disable_field_suggestions=production),
        extensions=extensions,
        scalar_overrides=SCALAR_OVERRIDES,
        execution_context_class=bounded_execution(checked.max_response_bytes),
    )
    conventional_descriptions(built._schema)
    document_limits(built._schema)
    lean_resolvers(built._schema)
    built.limits = checked
    built.production = production
    return built


schema = build_schema()
