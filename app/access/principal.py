"""Who is calling: resolved once per request at the edge from a verified token."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime


class PrincipalKind(enum.StrEnum):
    USER = "user"
    CLIENT = "client"
    PEACEBUILDER = "peacebuilder"
    SYSTEM = "system"
    # Nobody signed in: only the unauthenticated entry points (a request for help) take it.
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    id: uuid.UUID
    org_id: uuid.UUID | None
    org_slug: str | None
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    auth_time: datetime | None = None
    acr: str | None = None
    # A role that needs a second factor, signed in without one: no roles until she enrols.
    mfa_pending: bool = False
    # Her organisation accepts only registered operations (read with the caller, once).
    only_registered_operations: bool = False
    # The sign-in session her token belongs to (built-in issuer, people): sign-out ends it.
    session_id: uuid.UUID | None = None
    # Signed in through the external OIDC provider (its second factor, not our TOTP).
    external: bool = False
    # A duress session (her duress password): `id` is an empty decoy, this is her real ID
    # (for her sessions and the access log's alert only; docs/decisions/0027).
    duress_of: uuid.UUID | None = None

    @property
    def subject(self) -> str:
        return f"{self.kind.value}:{self.id}"


SYSTEM = Principal(
    kind=PrincipalKind.SYSTEM,
    id=uuid.UUID(int=0),
    org_id=None,
    org_slug=None,
    name="system",
)


# Someone without an account asking for help (`requestHelp`): no organisation, no role, reaches
# nothing; the edge admits it for that operation alone.
ANONYMOUS = Principal(
    kind=PrincipalKind.ANONYMOUS,
    id=uuid.UUID(int=0),
    org_id=None,
    org_slug=None,
    name="anonymous",
)
