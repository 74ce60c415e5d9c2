"""Case teams: need-to-know inside an organisation. Assigned by its focal point or admin."""

from __future__ import annotations

import uuid

from app.access.context import AccessContext
from app.cases import repository as repo
from app.consent import repository as consent_repo
from app.errors import BadInput, NotFound
from app.orgs import repository as orgs_repo
from app.tables.cases import Case
from app.tables.consent import CaseTeamMember


async def add_member(ctx: AccessContext, case: Case, subject: str) -> CaseTeamMember | None:
    """Put a subject of the caller's organisation on the case team (idempotent, logged)."""
    assert ctx.org_id is not None
    current = await consent_repo.team_of(ctx.session, case.id, ctx.org_id)
    if any(m.subject == subject for m in current):
        return None
    member = CaseTeamMember(case_id=case.id, org_id=ctx.org_id, subject=subject,
                            assigned_by=ctx.principal.subject, assigned_at=ctx.clock.now())
    ctx.session.add(member)
    await ctx.session.flush()
    ctx.record("case_team.assign", target_type="Case", target_id=case.id,
               details={"member": subject})
    return member


async def _team_case(ctx: AccessContext, case_id: uuid.UUID) -> Case:
    await ctx.require("case_team", "manage", target_type="Case", target_id=str(case_id))
    # Judged as the organisation: admins manage teams, they do not read case content.
    case = (await repo.by_ids(ctx.session, ctx.org_care_scope(), [case_id])).get(case_id)
    if case is None:
        raise NotFound()
    return case


async def _member_subject(ctx: AccessContext, member_id: tuple[str, uuid.UUID]) -> str:
    kind, id_ = member_id
    scope = ctx.own_scope()
    if kind == "User":
        user = await orgs_repo.user_in_scope(ctx.session, scope, id_)
        if user is None or not user.active:
            raise BadInput("No such active user in your organisation.", field="memberId")
        return user.subject
    if kind == "Client":
        client = await orgs_repo.client_in_scope(ctx.session, scope, id_)
        if client is None or not client.active:
            raise BadInput("No such active client in your organisation.", field="memberId")
        return client.subject
    raise NotFound()


async def assign(ctx: AccessContext, case_id: uuid.UUID, member: tuple[str, uuid.UUID]) -> Case:
    case = await _team_case(ctx, case_id)
    await add_member(ctx, case, await _member_subject(ctx, member))
    return case


async def remove(ctx: AccessContext, case_id: uuid.UUID, member: tuple[str, uuid.UUID]) -> Case:
    case = await _team_case(ctx, case_id)
    subject = await _member_subject(ctx, member)
    assert ctx.org_id is not None
    for m in await consent_repo.team_of(ctx.session, case.id, ctx.org_id):
        if m.subject == subject:
            m.removed_at = ctx.clock.now()
            ctx.record("case_team.remove", target_type="Case", target_id=case.id,
                       details={"member": subject})
    await ctx.session.flush()
    return case


async def members(ctx: AccessContext, case_id: uuid.UUID) -> list[str]:
    """Subjects of the caller's own organisation on the case team."""
    assert ctx.org_id is not None
    return [m.subject for m in await consent_repo.team_of(ctx.session, case_id, ctx.org_id)]


async def members_for_manager(ctx: AccessContext, case_id: uuid.UUID) -> list[str]:
    """The team list, for those who manage it (focal points, admins)."""
    await ctx.require("case_team", "manage", target_type="Case", target_id=str(case_id))
    return await members(ctx, case_id)
