"""Every domain's models, imported so the metadata is complete (Alembic, tests)."""

from app.audit.models import AccessLogEntry, Alert, Oversight
from app.auth.models import (
    AuthSession,
    EnrolmentCode,
    RefreshToken,
    SignInCounter,
    TotpCredential,
)
from app.cases.models import Case, CaseNote
from app.confirmations.models import Confirmation
from app.consent import integrity  # noqa: F401  (mapper events: consent rows' MACs)
from app.consent.models import (
    BreakGlass,
    CaseTeamMember,
    ConsentAccess,
    ConsentEvent,
    ConsentGrant,
    DataRequest,
    Notice,
    PeacebuilderAccount,
)
from app.db import Base
from app.directory.models import DueEvent, HelpRequest, ServiceEntry
from app.escalation.models import DutyShift
from app.idempotency.models import IdempotencyRecord
from app.incidents.models import (
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
from app.justice.models import Detention, DetentionCheck, DetentionVisit, Hearing
from app.monitoring.models import MonitoringRelease
from app.notify.channels_models import AlertChannelChoice, NotifyChannel, WebhookDelivery
from app.notify.models import InboxItem, OutboxEntry
from app.operations.models import OrganisationSettings, RegisteredOperation
from app.orgs.models import (
    Client,
    Organisation,
    PolicyState,
    RoleAssignment,
    User,
    WorkingGroup,
    WorkingGroupMember,
)
from app.peacebuilders.models import (
    DataKey,
    Erasure,
    Peacebuilder,
    PeacebuilderDatum,
    PeacebuilderNetwork,
)
from app.risk.models import RiskAssessment, RiskThreat

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
