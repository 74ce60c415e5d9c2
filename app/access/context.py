"""A unit of work's access: its caller, its ledger, its transaction.

Every service takes an `AccessContext`. It is made of three things that each do one job: the
frozen `Caller` (who, roles, need-to-know, purpose; app/access/caller.py), the `Ledger` (what the
access log records; app/access/ledger.py) and the session. The decision about her data is one SQL
definition (app/access/visibility.py) asked afresh each time. Which organisations' own records a
caller reaches is an `OrgScope`, a type only this module mints, so a repository query cannot be
written without going through the access decision.
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NewType

from sqlalchemy import (
    Integer,
    Select,
    Uuid,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app import tenancy
from app.access import checks
from app.access import log as audit
from app.access.caller import Caller
from app.access.ledger import Ledger
from app.access.policy import PolicyEngine
from app.access.principal import Principal, PrincipalKind
from app.access.visibility import (
    CareScope,
    Mode,
    Redaction,
    categories_for,
    first_rows,
    params,
    verified_from_first,
    verified_org_level_ids,
)
from app.clock import Clock
from app.db import Database
from app.db import rows as db_rows
from app.errors import (
    Forbidden,
    MfaEnrolmentRequired,
    PurposeRequired,
    SecondFactorRequired,
    StepUpRequired,
)
from app.tables import integrity
from app.tables.audit import AccessLogEntry, Oversight
from app.tables.peacebuilders import PeacebuilderNetwork
from app.tenancy import NOBODY, SYSTEM, Scope, Tenancy
from app.wall import SET_TEXT

if TYPE_CHECKING:
    from collections.abc import Iterable

OrgScope = NewType("OrgScope", frozenset[uuid.UUID])


class AccessContext:
    """One unit of work: who is calling (`caller`, frozen), what is recorded (`ledger`), the
    transaction (`session`) and the decisions made in it. The decision itself lives in
    app/access/visibility.py (one SQL definition); nothing decided is kept for later."""

    def __init__(self, *, principal: Principal, session: AsyncSession, db: Database,
                 policy: PolicyEngine, clock: Clock, request_id: str,
                 purpose: str | None = None, step_up_acr: frozenset[str] = frozenset({"mfa"}),
                 step_up_seconds: int = 900, external_issuer: str | None = None,
                 her_account: dict[str, int] | None = None,
                 checkpoint_dirs: tuple[Path, Path] | None = None) -> None:
        self.caller = Caller(principal, purpose, policy, step_up_acr, step_up_seconds)
        # OIDC mode: the provider people are bound to (issuer + sub); None on the built-in one.
        self.external_issuer = external_issuer
        # The deployment's rules for her login (code lifetime and tries, hold after a reset).
        self.her_account: dict[str, int] = {"code_hours": 72, "code_attempts": 5,
                                            "hold_days": 7, **(her_account or {})}
        # Where the access log's signed checkpoints and their public keys are (verification).
        self.checkpoint_dirs = checkpoint_dirs
        self.session, self.db, self.policy, self.clock = session, db, policy, clock
        self.request_id = request_id
        self.ledger = Ledger(self.audit_fields)
        # Her unwrapped data keys for this unit (app/her/keys.py, which alone writes
        # and destroys them) and the inbox items to publish once committed.
        self.cache: dict[str, Any] = {}

    @property
    def principal(self) -> Principal:
        return self.caller.principal

    @property
    def purpose(self) -> str | None:
        return self.caller.purpose

    @property
    def org_id(self) -> uuid.UUID | None:
        return self.caller.org_id

    @property
    def deferred(self) -> list[AccessLogEntry]:
        return self.ledger.deferred

    def can(self, obj: str, act: str) -> bool:
        """Whether the caller's roles in its own organisation allow `act` on `obj` at all."""
        return self.caller.can(obj, act)

    async def require(
        self, obj: str, act: str, *, target_type: str | None = None, target_id: str | None = None
    ) -> None:
        """Raise Forbidden, and log the denial, unless `can()`."""
        checks.note((obj, act))
        if self.can(obj, act):
            return
        if self.principal.mfa_pending:
            self.deny(f"{obj}.{act}", target_type=target_type, target_id=target_id,
                      reason="second factor required")
            if self.principal.external:
                raise SecondFactorRequired()
            raise MfaEnrolmentRequired()
        self.deny(f"{obj}.{act}", target_type=target_type, target_id=target_id,
                  reason="role does not permit")
        raise Forbidden()

    @property
    def herself(self) -> bool:
        """The caller is a peacebuilder signed in herself (what she reaches is only her own
        record: Mode.SELF in app/access/visibility.py, decided like any other caller's)."""
        return self.principal.kind is PrincipalKind.PEACEBUILDER

    async def org_fact(self, statement: Any) -> Any:
        """An organisation's own setting that a request of hers must apply (a deadline),
        read in the system scope (PostgreSQL's row-level security shows her no organisation's
        rows). Never her data, never returned to her as such."""
        if self.db.dialect != "postgresql":
            return await self.session.scalar(statement)
        with tenancy.using(SYSTEM):
            async with self.db.transaction() as session:
                return await session.scalar(statement)

    def require_purpose(self) -> None:
        """Raise PurposeRequired, and log the refusal, when a request that reads her records
        declares no purpose and needs one (the edge asks before anything runs)."""
        if self.caller.must_declare_purpose:
            self.deny("request.purpose", reason="no purpose declared")
            raise PurposeRequired()

    def require_recent_mfa(
        self, action: str, *, target_type: str | None = None,
        target_id: uuid.UUID | str | None = None,
    ) -> None:
        """Raise StepUpRequired, and log the denial, unless the caller signed in with a second
        factor recently. The one step-up check: break-glass, exports, consent changes by staff."""
        checks.note(checks.STEP_UP)
        if self.caller.has_recent_second_factor():
            return
        self.deny(action, target_type=target_type, target_id=target_id,
                  reason="step-up required", details={"acr": self.principal.acr})
        raise StepUpRequired()

    def deny(
        self,
        action: str,
        *,
        target_type: str | None = None,
        target_id: uuid.UUID | str | None = None,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Queue a denial; it is committed in its own transaction after the request's ends,
        so it survives a rollback and never waits on the request's own write lock."""
        self.ledger.deny(action, target_type=target_type, target_id=target_id, reason=reason,
                         details=details)

    async def whose(self, statement: Any) -> uuid.UUID | None:
        """For the access log of a denied attempt only (never returned to the caller): whose
        record the attempt was about, although this request may not reach it. Read in the system
        scope, in a transaction of its own, so the denial names her and she and auditors find it."""
        if self.db.dialect != "postgresql":
            return await self.session.scalar(statement)  # type: ignore[no-any-return]
        with tenancy.using(SYSTEM):
            async with self.db.transaction() as session:
                return await session.scalar(statement)  # type: ignore[no-any-return]

    def own_scope(self) -> OrgScope:
        """The organisations whose own records the caller reaches: its own, or none."""
        if self.principal.org_id is None:
            return OrgScope(frozenset())
        return OrgScope(frozenset({self.principal.org_id}))

    def audit_fields(self) -> audit.Actor:
        return audit.Actor(
            subject=self.principal.subject,
            org_id=self.principal.org_id,
            purpose=self.purpose,
            request_id=self.request_id,
            at=self.clock.now(),
        )

    def record(
        self,
        action: str,
        *,
        target_type: str | None = None,
        target_id: uuid.UUID | str | None = None,
        decision: str = "allow",
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Log an allowed change or read in the request's own transaction."""
        self.ledger.change(self.session, action, target_type=target_type, target_id=target_id,
                           decision=decision, reason=reason, details=details)

    # --- consent and need-to-know -------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self.caller.mode

    def care_scope(self) -> CareScope:
        """What of peacebuilders' records this request may reach (see app/access/visibility)."""
        return self.caller.care_scope(self.clock.now())

    async def decide_tenancy(self, admission: Admission | None = None) -> Tenancy:
        """What PostgreSQL's row-level security will let the rest of this request touch: the
        organisation, the peacebuilders it may reach at all for the declared purpose (the same
        decision `visible_peacebuilders` makes, taken once), and whose log entries it may read.
        Computed before the request's own transaction, which declares it as its first statement.
        SQLite has no row-level security: nothing to decide, no queries spent.

        `admission`: what was read already with the caller (`Admission`), for this caller's
        organisation and purpose; what it lacks is read here, what it holds beyond what this
        caller needs is ignored."""
        p = self.principal
        if p.kind is PrincipalKind.SYSTEM:
            return SYSTEM
        if p.kind is PrincipalKind.PEACEBUILDER:
            return Tenancy(Scope.PEACEBUILDER, peacebuilders=frozenset({p.id}))
        if p.org_id is None or self.db.dialect != "postgresql":
            return NOBODY if p.org_id is None else Tenancy(Scope.ORG, org_id=p.org_id)
        if admission is not None and not admission.read_for(p.org_id, self.purpose):
            admission = None
        # Each woman is justified by a consent (or break-glass) row carrying the application's
        # MAC.
        scope = self.caller.granting_scope(admission.now if admission is not None
                                           else self.clock.now())
        granted: set[uuid.UUID] = set()
        if scope is not None and admission is not None and admission.consent is not None:
            granted = await verified_from_first(self.session, scope, admission.consent)
        elif scope is not None:
            granted = await verified_org_level_ids(self.session, scope)
        # Her confirmed networks act for her (record and change her consent) without a grant of
        # their own.
        key = integrity.key_of(self.session)
        networks = (admission.networks if admission is not None and admission.networks is not None
                    else await db_rows(self.session, _networks(), {"org_id": p.org_id}))
        her = integrity.position("peacebuilder_networks", "peacebuilder_id")
        reach = frozenset(granted | {row[her] for row in networks
                                     if integrity.intact_selected(key, "peacebuilder_networks",
                                                                  row)})
        # Whose log entries it may read: its own, and for auditors those of the organisations
        # that accept its oversight (nobody else reads the log).
        overseen: Iterable[uuid.UUID] = ()
        if self.caller.reads_log():
            overseen = (admission.overseen if admission is not None
                        and admission.overseen is not None
                        else [row[0] for row in await db_rows(self.session, _overseen(),
                                                              {"org_id": p.org_id})])
        return Tenancy(Scope.ORG, org_id=p.org_id, peacebuilders=reach,
                       log_orgs=frozenset({p.org_id, *overseen}))

    async def reach(self, pb_ids: Iterable[uuid.UUID]) -> None:
        """This decision just opened these records to the rest of the transaction (break-glass):
        widen the database's tenancy to match. Only ever called after the decision was made."""
        now = tenancy.effective(self.session.info)
        if now.scope is not Scope.ORG:
            return
        await self._declare(replace(now, peacebuilders=now.peacebuilders | frozenset(pb_ids)))

    @asynccontextmanager
    async def peek(self, pb_ids: Iterable[uuid.UUID]) -> AsyncIterator[None]:
        """Widen the tenancy only while the block reads the facts a decision needs (IDs of
        relations, never her data), then put it back: the decision has not been made yet."""
        before = tenancy.effective(self.session.info)
        await self.reach(pb_ids)
        try:
            yield
        finally:
            if tenancy.effective(self.session.info) != before:
                await self._declare(before)

    async def _declare(self, chosen: Tenancy) -> None:
        self.session.info["tenancy"] = chosen
        tenancy.declare(chosen)
        if self.db.dialect == "postgresql" and self.session.in_transaction():
            await self.session.execute(text(SET_TEXT), self.db.signed(chosen))

    def aggregate_scope(self) -> CareScope:
        return self.caller.aggregate_scope(self.clock.now())

    def org_care_scope(self) -> CareScope:
        return self.caller.org_care_scope(self.clock.now())

    async def released(self, pb_ids: list[uuid.UUID]) -> dict[uuid.UUID, frozenset[str]]:
        """Categories released per peacebuilder to this request, decided now (one statement;
        nothing is kept, so a change made earlier in the request is always seen)."""
        return await categories_for(self.session, self.care_scope(), pb_ids)

    async def released_to_org(self, pb_ids: list[uuid.UUID]) -> dict[uuid.UUID, frozenset[str]]:
        """Categories her consent releases to the caller's organisation (before need-to-know)."""
        return await categories_for(self.session, self.org_care_scope(), pb_ids)

    async def consented(self, pb_ids: list[uuid.UUID]) -> dict[uuid.UUID, frozenset[str]]:
        """Like `released`, from her consent alone: break-glass opens reading, not standing."""
        return await categories_for(self.session, self.care_scope(), pb_ids, consent_only=True)

    def redaction_reason(self) -> Redaction:
        return self.caller.redaction_reason()

    def note_read(self, pb_id: uuid.UUID, category: str) -> None:
        self.ledger.read(pb_id, category)

    def note_withheld(self, pb_id: uuid.UUID, category: str) -> None:
        self.ledger.withhold(pb_id, category)

    def flush_reads(self) -> None:
        """Queue one read entry and one denial entry summarising the request (never values)."""
        self.ledger.close_reads(self.redaction_reason().value)


# Admission's other statements (every request on PostgreSQL), built once and run with the
# caller's organisation as their one (required) parameter.
_ORG_ID = bindparam("org_id", type_=Uuid(), required=True)


@functools.cache
def _networks() -> Any:
    """The organisation's confirmed networks, with what their MAC covers."""
    return (select(*integrity.columns("peacebuilder_networks"))
            .where(PeacebuilderNetwork.org_id == _ORG_ID,
                   PeacebuilderNetwork.confirmed_at.is_not(None)))


@functools.cache
def _overseen() -> Any:
    """The organisations that accept this one's oversight of their access log."""
    return select(Oversight.org_id).where(Oversight.overseer_org_id == _ORG_ID)


class Admission:
    """What admission reads in the caller's own statement (PostgreSQL): one round trip for the
    caller's row, her organisation's consent rows (`first_rows()`, for the token's organisation
    and the declared purpose), its confirmed networks and, when the caller may read the access
    log, the organisations it oversees.

    They are read before the caller's roles are final (the roles come from the caller's row and
    the policy version read with it), from the roles the policy in memory gives the token's
    subject (`wants_consent`, `wants_overseen`): `decide_tenancy` ignores what it does not need
    and reads what it needs but was not read, so the decision is the same as reading each in
    turn. A caller refused (absent, inactive, another organisation, signed out) is refused before
    any of it is used. Nothing here outlives the request's admission."""

    __slots__ = ("consent", "networks", "now", "org_id", "overseen", "purpose", "wants_consent",
                 "wants_overseen")

    def __init__(self, org_id: uuid.UUID, purpose: str | None, now: datetime, *,
                 wants_consent: bool, wants_overseen: bool) -> None:
        self.org_id, self.purpose, self.now = org_id, purpose, now
        self.wants_consent = wants_consent and purpose is not None
        self.wants_overseen = wants_overseen
        # Filled by `take()`; None: not read.
        self.consent: list[Any] | None = None
        self.networks: list[Any] | None = None
        self.overseen: list[uuid.UUID] | None = None

    @classmethod
    def expecting(cls, caller: Caller, org_id: uuid.UUID, now: datetime) -> Admission:
        """What to read for a caller whose roles are expected to be `caller`'s."""
        return cls(org_id, caller.purpose, now,
                   wants_consent=caller.granting_scope(now) is not None,
                   wants_overseen=caller.reads_log())

    def read_for(self, org_id: uuid.UUID, purpose: str | None) -> bool:
        """Whether what was read was read for this organisation and purpose."""
        return self.networks is not None and self.org_id == org_id and self.purpose == purpose

    def statement(self, caller: Select[Any]) -> Any:
        """`caller` (a statement of one row at most) and the rest, as one UNION ALL."""
        return _combined(caller, self.wants_consent, self.wants_overseen)[0]

    def params(self) -> dict[str, Any]:
        values = {"org_id": self.org_id}
        if self.wants_consent:
            values |= {k: v for k, v in params(_scope_values(self)).items()
                       if k in ("vis_org", "vis_purpose", "vis_now")}
        return values

    def take(self, caller: Select[Any], result: Any) -> Any:
        """The caller's row of the combined statement's result (None if absent); keeps the rest
        (each row as the columns its own statement selects, in their order)."""
        _statement, slots = _combined(caller, self.wants_consent, self.wants_overseen)
        found: Any = None
        parts: dict[int, list[Any]] = {_CONSENT: [], _NETWORKS: [], _OVERSEEN: []}
        for row in result.all():  # fetched at once, not row by row
            part = row[-1]
            if part == _CALLER:
                found = row
            else:
                parts[part].append(slots[part](row))
        self.consent = parts[_CONSENT] if self.wants_consent else None
        self.networks = parts[_NETWORKS]
        self.overseen = [row[0] for row in parts[_OVERSEEN]] if self.wants_overseen else None
        return found


def _scope_values(admission: Admission) -> CareScope:
    """A scope carrying the values `first_rows()` compares with (organisation, purpose, now)."""
    return CareScope(org_id=admission.org_id, subject="", purpose=admission.purpose,
                     now=admission.now, mode=Mode.FOCAL)


_CALLER, _CONSENT, _NETWORKS, _OVERSEEN = 0, 1, 2, 3
# (caller statement's id, consent?, overseen?) -> (the caller statement, the combined
# statement, where each part's columns are in its rows). Built once per shape: every value is a
# required parameter.
_Slots = Callable[[Any], tuple[Any, ...]]
_COMBINED: dict[tuple[int, bool, bool], tuple[Any, Any, dict[int, _Slots]]] = {}


def _combined(caller: Select[Any], consent: bool,
              overseen: bool) -> tuple[Any, dict[int, _Slots]]:
    """One UNION ALL of the caller's statement and admission's others. Its columns are the
    caller's, then NULL-filled ones as the other parts need; each other part puts its columns in
    columns of the same type its own branch leaves free (`slots`), and every row ends with the
    number of its part."""
    key = (id(caller), consent, overseen)
    found = _COMBINED.get(key)
    if found is not None and found[0] is caller:
        return found[1], found[2]
    others: dict[int, list[Any]] = {}
    if consent:
        sub = first_rows().subquery()
        others[_CONSENT] = list(sub.c)
    others[_NETWORKS] = list(_networks().subquery().c)
    if overseen:
        others[_OVERSEEN] = list(_overseen().subquery().c)
    types: list[Any] = [c.type for c in caller.selected_columns]
    slots: dict[int, list[int]] = {}
    for part, columns in others.items():
        taken: list[int] = []
        for column in columns:
            free = next((i for i, t in enumerate(types)
                         if i not in taken and type(t) is type(column.type)), None)
            if free is None:
                types.append(column.type)
                free = len(types) - 1
            taken.append(free)
        slots[part] = taken
    width = len(caller.selected_columns)

    def tag(part: int) -> Any:
        return literal_column(str(part), Integer).label("admission_part")

    branches = [caller.add_columns(*[cast(null(), t).label(f"admission_{i}")
                                     for i, t in enumerate(types[width:], width)], tag(_CALLER))]
    for part, columns in others.items():
        cells: list[Any] = [cast(null(), t) for t in types]
        for column, i in zip(columns, slots[part], strict=True):
            cells[i] = column
        source = columns[0].table
        branches.append(select(*cells, tag(part)).select_from(source))
    statement = union_all(*branches)
    # A part's row as the tuple of its own columns (a getter in C: ~300 rows per request).
    getters: dict[int, _Slots] = {part: _getter(taken) for part, taken in slots.items()}
    _COMBINED[key] = (caller, statement, getters)
    return statement, getters


def _getter(positions: list[int]) -> _Slots:
    """itemgetter, also for one position (whose itemgetter gives the value, not a tuple)."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    only = positions[0]
    return lambda row: (row[only],)
