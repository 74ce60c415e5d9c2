"""Turning verified token claims or credentials into an active Principal, per request."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, Uuid, bindparam, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.caller import Caller
from app.access.context import Admission, OrgScope
from app.access.policy import PolicyEngine
from app.access.principal import Principal, PrincipalKind
from app.auth.passwords import verify_password, verify_secret
from app.auth.tokens import Claims
from app.db import rows as db_rows
from app.errors import Unauthenticated
from app.tables.auth import AuthSession
from app.tables.consent import PeacebuilderAccount
from app.tables.operations import OrganisationSettings
from app.tables.orgs import Client, Organisation, User


def suspended(account: PeacebuilderAccount | None, now: datetime | None) -> bool:
    """Whether her login is suspended now (a lapsed lead-organisation suspension is not;
    without a clock, any suspension counts)."""
    if account is None or account.suspended_at is None:
        return False
    lapses = account.suspension_lapses_at
    return lapses is None or now is None or now < lapses


def decoy_id(pb_id: uuid.UUID) -> uuid.UUID:
    """The empty record a duress session stands for: no row anywhere has this ID, so every
    query of 'her own' record answers nothing, on both databases."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"safety-net:duress:{pb_id}")


async def resolve(session: AsyncSession, policy: PolicyEngine, claims: Claims, *,
                  mfa_roles: frozenset[str] = frozenset(),
                  now: datetime | None = None,
                  admission: Admission | None = None) -> Principal:
    """Check the principal still exists and is active: deactivation bites on the next request.

    A person holding one of `mfa_roles` whose token was issued without a second factor gets no
    roles (she can only see who she is and enrol TOTP). One statement reads the caller, her
    organisation's allow-list switch and the policy version, and for a user or machine client
    what `admission` reads with them (`Admission`; kept there, used only once she is admitted)."""
    auth_time = (datetime.fromtimestamp(claims.auth_time, UTC)
                 if isinstance(claims.auth_time, int) else None)
    if claims.subject.startswith("oidc:"):  # the external provider: bound by issuer + sub
        row = (await session.execute(
            select(User, Organisation, *_extras())
            .join(Organisation, Organisation.id == User.org_id)
            .where(User.oidc_issuer == claims.raw.get("iss"),
                   User.oidc_subject == claims.subject.removeprefix("oidc:")))).first()
        await policy.refresh(session, row.policy_version if row is not None else None)
        if row is None or not row[0].active:
            raise Unauthenticated("Invalid token.")
        # A role that needs a second factor needs the provider's (its acr/amr, mapped).
        principal = _user_principal(row[0].id, row[1].id, row[1].slug, row[0].username, policy,
                                    auth_time, claims.acr, mfa_roles,
                                    only_registered=bool(row.only_registered))
        return replace(principal, external=True)
    kind, _, raw_id = claims.subject.partition(":")
    try:
        subject_id = uuid.UUID(raw_id)
        session_id = uuid.UUID(claims.session_id) if claims.session_id is not None else None
    except ValueError as exc:
        await policy.refresh(session)
        raise Unauthenticated("Invalid token.") from exc
    if kind == PrincipalKind.USER:
        row = await _caller_row(session, _caller_statement(User, session_id is not None),
                                {"subject_id": subject_id, "session_id": session_id,
                                 "subject": claims.subject}, admission)
        await policy.refresh(session, row.policy_version if row is not None else None)
        if row is None or not row.active or str(row.org_id) != claims.org:
            raise Unauthenticated("Invalid token.")
        if not row.session_live:  # signed out, revoked (reuse, deactivation, reset)
            raise Unauthenticated("Invalid token.")
        principal = _user_principal(row.id, row.org_id, row.org_slug, row.name, policy,
                                    auth_time, claims.acr, mfa_roles,
                                    only_registered=bool(row.only_registered))
        return replace(principal, session_id=session_id)
    if kind == PrincipalKind.CLIENT:
        crow = await _caller_row(session, _caller_statement(Client, False),
                                 {"subject_id": subject_id}, admission)
        await policy.refresh(session, crow.policy_version if crow is not None else None)
        if crow is None or not crow.active or str(crow.org_id) != claims.org:
            raise Unauthenticated("Invalid token.")
        return Principal(kind=PrincipalKind.CLIENT, id=crow.id, org_id=crow.org_id,
                         org_slug=crow.org_slug, name=crow.name,
                         roles=policy.roles_of(Client.subject_of(crow.id), str(crow.org_id)),
                         auth_time=auth_time, acr=claims.acr,
                         only_registered_operations=bool(crow.only_registered))
    await policy.refresh(session)
    if kind == PrincipalKind.PEACEBUILDER:
        live = _session_live(claims.subject, session_id)
        prow = (await session.execute(select(PeacebuilderAccount, live, _duress(session_id))
                                      .where(PeacebuilderAccount.peacebuilder_id == subject_id))
                ).first()
        if prow is None or not prow[0].active or not prow.session_live:
            raise Unauthenticated("Invalid token.")
        account = prow[0]
        # Read here on every request (no cache): a suspension bites on every replica at once.
        if suspended(account, now):
            raise Unauthenticated("Invalid token.")
        if prow.session_duress:
            return Principal(kind=PrincipalKind.PEACEBUILDER, id=decoy_id(subject_id),
                             org_id=None, org_slug=None, name=account.login,
                             roles=frozenset({"peacebuilder"}), auth_time=auth_time,
                             acr=claims.acr, session_id=session_id, duress_of=subject_id)
        return Principal(kind=PrincipalKind.PEACEBUILDER, id=subject_id, org_id=None,
                         org_slug=None, name=account.login, roles=frozenset({"peacebuilder"}),
                         auth_time=auth_time, acr=claims.acr, session_id=session_id)
    raise Unauthenticated("Invalid token.")


def expected(policy: PolicyEngine, claims: Claims, purpose: str | None, now: datetime, *,
             mfa_roles: frozenset[str] = frozenset()) -> Admission | None:
    """What admission should read with the caller named by `claims` (a user or machine client
    of the built-in issuer; None for anyone else), judged from the roles the policy in memory
    gives it: `resolve` may still refresh the policy or refuse the caller (`Admission`)."""
    kind, _, raw_id = claims.subject.partition(":")
    if kind not in (PrincipalKind.USER, PrincipalKind.CLIENT) or claims.org is None:
        return None
    try:
        subject_id, org_id = uuid.UUID(raw_id), uuid.UUID(claims.org)
    except ValueError:
        return None
    if kind == PrincipalKind.USER:
        principal = _user_principal(subject_id, org_id, "", "", policy, None, claims.acr,
                                    mfa_roles)
    else:
        principal = Principal(kind=PrincipalKind.CLIENT, id=subject_id, org_id=org_id,
                              org_slug="", name="",
                              roles=policy.roles_of(Client.subject_of(subject_id), claims.org))
    return Admission.expecting(Caller(principal, purpose, policy), org_id, now)


async def _caller_row(session: AsyncSession, statement: Any, values: dict[str, Any],
                      admission: Admission | None) -> Any:
    """The caller's row of `statement` (None: absent), with what `admission` reads alongside
    it in the same statement."""
    if admission is None:
        return (await db_rows(session, statement, values)).first()
    result = await db_rows(session, admission.statement(statement),
                           {**values, **admission.params()})
    return admission.take(statement, result)


async def recipient(session: AsyncSession, policy: PolicyEngine, subject: str) -> Principal:
    """The person an alert is addressed to (`user:<id>`) as she stands now: still active, with
    her current roles. No token is involved, so no second-factor gating applies: this answers
    what she may see, for a delivery she did not request (email), not what a session may do."""
    await policy.refresh(session)
    kind, _, raw_id = subject.partition(":")
    try:
        user_id = uuid.UUID(raw_id)
    except ValueError as exc:
        raise Unauthenticated("Unknown recipient.") from exc
    if kind != PrincipalKind.USER:
        raise Unauthenticated("Unknown recipient.")
    row = (await session.execute(
        select(User, Organisation).join(Organisation, Organisation.id == User.org_id)
        .where(User.id == user_id))).first()
    if row is None or not row[0].active:
        raise Unauthenticated("Inactive recipient.")
    user, org = row[0], row[1]
    return _user_principal(user.id, org.id, org.slug, user.username, policy, None, None,
                           frozenset())


async def authenticate_peacebuilder(
    session: AsyncSession, login: str, password: str
) -> PeacebuilderAccount | None:
    account = await session.scalar(select(PeacebuilderAccount).where(
        PeacebuilderAccount.login == login))
    ok = verify_password(account.password_hash if account else None, password)
    if account is None or not ok or not account.active:
        return None
    return account


def _session_live(subject: str, session_id: uuid.UUID | None) -> Any:
    """A column: is the token's session still live? Read with the caller, in the same statement.
    A token without a session (machine clients, the operator's `safety-net token`) has none to
    check; its own short lifetime and the principal's `active` flag bound it."""
    if session_id is None:
        return literal(True).label("session_live")
    return _session_live_of(subject, session_id)


def _session_live_of(subject: Any, session_id: Any) -> Any:
    return (select(AuthSession.id).where(AuthSession.id == session_id,
                                         AuthSession.subject == subject,
                                         AuthSession.revoked_at.is_(None))
            .exists().label("session_live"))


def _duress(session_id: uuid.UUID | None) -> Any:
    """A column: was the token's session opened with her duress password?"""
    if session_id is None:
        return literal(False).label("session_duress")
    return (select(AuthSession.duress).where(AuthSession.id == session_id)
            .scalar_subquery().label("session_duress"))


def _extras() -> list[Any]:
    """Read with the caller: the policy version and the organisation's allow-list switch."""
    only = (select(OrganisationSettings.only_registered_operations)
            .where(OrganisationSettings.org_id == Organisation.id).scalar_subquery()
            .label("only_registered"))
    return [PolicyEngine.version_column(), only]


def _user_principal(user_id: uuid.UUID, org_id: uuid.UUID, org_slug: str, username: str,
                    policy: PolicyEngine, auth_time: datetime | None, acr: str | None,
                    mfa_roles: frozenset[str], *, only_registered: bool = False) -> Principal:
    roles = policy.roles_of(User.subject_of(user_id), str(org_id))
    pending = bool(roles & mfa_roles) and acr != "mfa"
    return Principal(kind=PrincipalKind.USER, id=user_id, org_id=org_id, org_slug=org_slug,
                     name=username, roles=frozenset() if pending else roles,
                     auth_time=auth_time, acr=acr, mfa_pending=pending,
                     only_registered_operations=only_registered)


# The caller's row, read on every request: built once per kind (and whether the token names a
# sign-in session), run with the token's own values. Every value a request brings is a required
# parameter, so a statement carries nothing from the request it was first built for.
_CALLERS: dict[tuple[type[Any], bool], Any] = {}


def _caller_statement(model: type[User] | type[Client], with_session: bool) -> Any:
    """The caller (a user or a machine client) with her organisation's slug, its allow-list
    switch, the policy version and, for a token of a sign-in session, whether that session is
    still live: one statement, columns only (no ORM entities are needed to decide)."""
    found = _CALLERS.get((model, with_session))
    if found is None:
        name = model.username if model is User else model.client_id  # type: ignore[union-attr]
        live = (_session_live_of(bindparam("subject", type_=String(), required=True),
                                 bindparam("session_id", type_=Uuid(), required=True))
                if with_session else literal(True).label("session_live"))
        found = (select(model.id, model.org_id, name.label("name"), model.active,
                        Organisation.slug.label("org_slug"), *_extras(), live)
                 .join(Organisation, Organisation.id == model.org_id)
                 .where(model.id == bindparam("subject_id", type_=Uuid(), required=True)))
        _CALLERS[(model, with_session)] = found
    return found


async def authenticate_user(
    session: AsyncSession, org_slug: str, username: str, password: str
) -> User | None:
    """Password login; the same work is done whether or not the user exists."""
    user = await session.scalar(
        select(User).join(Organisation, Organisation.id == User.org_id)
        .where(Organisation.slug == org_slug, User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        return None
    return user


async def find_client(session: AsyncSession, client_id: str) -> Client | None:
    return await session.scalar(select(Client).where(Client.client_id == client_id))


def client_secret_ok(client: Client | None, secret: str) -> bool:
    return client is not None and client.active and verify_secret(client.secret_hash, secret)


async def find_user(session: AsyncSession, org_slug: str, username: str) -> User | None:
    return await session.scalar(
        select(User).join(Organisation, Organisation.id == User.org_id)
        .where(Organisation.slug == org_slug, User.username == username))


async def user_in_scope(session: AsyncSession, scope: OrgScope, user_id: uuid.UUID) -> User | None:
    """A person of one of the organisations in `scope` (app/orgs/repository.py re-exports it)."""
    return await session.scalar(select(User).where(User.id == user_id, User.org_id.in_(scope)))
