"""Every domain's models, imported so the metadata is complete (Alembic, tests)."""

from app.db import Base
from app.tables import integrity  # noqa: F401  (mapper events: consent rows' MACs)
from app.tables.audit import AccessLogEntry, Alert, Oversight
from app.tables.auth import (
    AuthSession,
    EnrolmentCode,
    RefreshToken,
    SignInCounter,
    TotpCredential,
)
from app.tables.cases import Case, CaseNote
from app.tables.channels import AlertChannelChoice, NotifyChannel, WebhookDelivery
from app.tables.confirmations import Confirmation
from app.tables.consent import (
    BreakGlass,
    CaseTeamMember,
    ConsentAccess,
    ConsentEvent,
    ConsentGrant,
    DataRequest,
    Notice,
    PeacebuilderAccount,
)
from app.tables.directory import DueEvent, HelpRequest, ServiceEntry
from app.tables.escalation import DutyShift
from app.tables.idempotency import IdempotencyRecord
from app.tables.incidents import (
    AckPolicy,
    Approval,
    Attachment,
    CaseEvent,
    Incident,
    Measure,
    Proceeding,
    Referral,
    ScheduledStep,
)
from app.tables.justice import Detention, DetentionCheck, DetentionVisit, Hearing
from app.tables.monitoring import MonitoringRelease
from app.tables.notify import InboxItem, OutboxEntry
from app.tables.operations import OrganisationSettings, RegisteredOperation
from app.tables.orgs import (
    Client,
    Organisation,
    PolicyState,
    RoleAssignment,
    User,
    WorkingGroup,
    WorkingGroupMember,
)
from app.tables.peacebuilders import (
    DataKey,
    Erasure,
    Peacebuilder,
    PeacebuilderDatum,
    PeacebuilderNetwork,
)
from app.tables.risk import RiskAssessment, RiskThreat

__all__ = [
    "AccessLogEntry",
    "AckPolicy",
    "Alert",
    "AlertChannelChoice",
    "Approval",
    "Attachment",
    "AuthSession",
    "Base",
    "BreakGlass",
    "Case",
    "CaseEvent",
    "CaseNote",
    "CaseTeamMember",
    "Client",
    "Confirmation",
    "ConsentAccess",
    "ConsentEvent",
    "ConsentGrant",
    "DataKey",
    "DataRequest",
    "Detention",
    "DetentionCheck",
    "DetentionVisit",
    "DueEvent",
    "DutyShift",
    "EnrolmentCode",
    "Erasure",
    "Hearing",
    "HelpRequest",
    "IdempotencyRecord",
    "InboxItem",
    "Incident",
    "Measure",
    "MonitoringRelease",
    "Notice",
    "NotifyChannel",
    "Organisation",
    "OrganisationSettings",
    "OutboxEntry",
    "Oversight",
    "Peacebuilder",
    "PeacebuilderAccount",
    "PeacebuilderDatum",
    "PeacebuilderNetwork",
    "PolicyState",
    "Proceeding",
    "Referral",
    "RefreshToken",
    "RegisteredOperation",
    "RiskAssessment",
    "RiskThreat",
    "RoleAssignment",
    "ScheduledStep",
    "ServiceEntry",
    "SignInCounter",
    "TotpCredential",
    "User",
    "WebhookDelivery",
    "WorkingGroup",
    "WorkingGroupMember",
]
