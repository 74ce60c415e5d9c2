"""`tenants apply`: create or update organisations from YAML. Idempotent; never deletes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from app.access.context import AccessContext
from app.auth.passwords import hash_secret, new_secret
from app.notify import service as notify
from app.notify.chain import active_with_roles
from app.orgs import repository as orgs_repo
from app.tables.audit import Oversight
from app.tables.operations import OrganisationSettings
from app.tables.orgs import Client, Organisation, Role, User, WorkingGroup, WorkingGroupMember
from app.tenants.schema import OrgSpec, WorkingGroupSpec, check_references


@dataclass
class ApplyReport:
    changes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    new_client_secrets: dict[str, str] = field(default_factory=dict)
    # Problems the files do not stop but an operator must fix (e.g. no active focal point).
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


async def apply(ctx: AccessContext, specs: list[OrgSpec]) -> ApplyReport:
    """Bring the database up to the declared organisations; report what was only kept."""
    session = ctx.session
    report = ApplyReport()
    known = set(await session.scalars(select(Organisation.slug)))
    check_references(specs, known)
    orgs: dict[str, Organisation] = {}
    for spec in specs:
        org = await orgs_repo.org_by_slug(session, spec.slug)
        if org is None:
            org = Organisation(slug=spec.slug, name=spec.name, kind=spec.kind,
                               country=spec.country, created_at=ctx.clock.now())
            session.add(org)
            await session.flush()
            report.changes.append(f"organisation {spec.slug}: created")
            ctx.record("tenants.org_create", target_type="Organisation", target_id=org.id)
        else:
            updates = {k: v for k, v in (("name", spec.name), ("kind", spec.kind),
                                         ("country", spec.country)) if getattr(org, k) != v}
            for key, value in updates.items():
                setattr(org, key, value)
            if updates:
                report.changes.append(f"organisation {spec.slug}: updated {', '.join(updates)}")
                ctx.record("tenants.org_update", target_type="Organisation", target_id=org.id,
                           details={"fields": sorted(updates)})
        orgs[spec.slug] = org
        await _apply_users(ctx, spec, org, report)
        await _apply_clients(ctx, spec, org, report)
        await _apply_escalation(ctx, spec, org, report)
        await _apply_retention(ctx, spec, org, report)
        await _apply_detention_checks(ctx, spec, org, report)
        await _store_setting(ctx, org, report, column="risk_max_age_days",
                             wanted=spec.risk_assessment_max_age_days,
                             what="maximum age of a risk assessment",
                             details={"days": spec.risk_assessment_max_age_days})
    for spec in specs:
        for wg_spec in spec.working_groups:
            await _apply_working_group(ctx, spec, wg_spec, orgs, report)
        await _apply_oversight(ctx, spec, orgs, report)
    for spec in specs:
        await _report_unreachable(ctx, orgs[spec.slug], report)
    return report


async def _store_setting(ctx: AccessContext, org: Organisation, report: ApplyReport, *,
                         column: str, wanted: Any, what: str, details: dict[str, Any]) -> None:
    """Store one declared organisation setting (None: back to the default), reported and
    logged when it changes."""
    settings = await ctx.session.get(OrganisationSettings, org.id)
    if (getattr(settings, column) if settings else None) == wanted:
        return
    if settings is None:
        settings = OrganisationSettings(org_id=org.id, updated_by=ctx.principal.subject,
                                        updated_at=ctx.clock.now())
        ctx.session.add(settings)
    setattr(settings, column, wanted)
    settings.updated_by, settings.updated_at = ctx.principal.subject, ctx.clock.now()
    await ctx.session.flush()
    report.changes.append(f"organisation {org.slug}: {what} "
                          + ("set" if wanted else "back to the default"))
    ctx.record(f"tenants.{column}", target_type="Organisation", target_id=org.id,
               details=details)


async def _apply_escalation(ctx: AccessContext, spec: OrgSpec, org: Organisation,
                            report: ApplyReport) -> None:
    """Store the declared chain (the head of protection as a subject); no block: the default."""
    wanted = None
    if spec.escalation is not None:
        head = spec.escalation["head_of_protection"]
        user = await orgs_repo.user_by_username(ctx.session, org.id, head) if head else None
        wanted = {"levels": spec.escalation["levels"],
                  "head_of_protection": user.subject if user is not None else None}
    await _store_setting(ctx, org, report, column="escalation", wanted=wanted,
                         what="escalation chain", details={
                             "levels": [lv["to"] for lv in (wanted or {}).get("levels", [])]})


async def _apply_retention(ctx: AccessContext, spec: OrgSpec, org: Organisation,
                           report: ApplyReport) -> None:
    """Store the declared retention of closed cases; no block: the default (365 days, 30)."""
    await _store_setting(ctx, org, report, column="retention", wanted=spec.retention,
                         what="retention of closed cases", details=dict(spec.retention or {}))


async def _apply_detention_checks(ctx: AccessContext, spec: OrgSpec, org: Organisation,
                                  report: ApplyReport) -> None:
    """Store the declared detention-check deadlines (hours); no block: the defaults."""
    wanted = spec.detention_checks or None
    await _store_setting(ctx, org, report, column="detention_checks", wanted=wanted,
                         what="detention check deadlines", details={"hours": wanted or {}})


async def _report_unreachable(ctx: AccessContext, org: Organisation,
                              report: ApplyReport) -> None:
    """An organisation without an active focal point: said here, and its administrators are
    alerted (its escalations would otherwise start at nobody). Never a readiness failure: one
    tenant's setup must not take replicas out of service."""
    if await notify.focal_points(ctx.session, org.id):
        return
    report.warnings.append(f"organisation {org.slug}: no active focal point — alerts and "
                           "escalations for its cases reach no one at the first level")
    admins = await active_with_roles(ctx.session, org.id, ("org_admin",))
    await notify.notify(ctx, [(s, org.id) for s in admins], kind="no_active_focal_point",
                        subject_id=org.id, case_id=None, at=ctx.clock.now(),
                        payload={"organisation": str(org.id)})


async def _apply_oversight(ctx: AccessContext, spec: OrgSpec, orgs: dict[str, Organisation],
                           report: ApplyReport) -> None:
    org = orgs[spec.slug]
    current = set(await ctx.session.scalars(select(Oversight.overseer_org_id).where(
        Oversight.org_id == org.id)))
    for slug, _ in spec.oversight:
        overseer = orgs.get(slug) or await orgs_repo.org_by_slug(ctx.session, slug)
        assert overseer is not None  # check_references ran
        if overseer.id not in current:
            ctx.session.add(Oversight(org_id=org.id, overseer_org_id=overseer.id))
            report.changes.append(f"organisation {spec.slug}: accepts oversight from {slug}")
            ctx.record("tenants.oversight_add", target_type="Organisation", target_id=org.id,
                       details={"overseer": str(overseer.id)})
    declared = {s for s, _ in spec.oversight}
    if len(current) > len(declared):
        report.kept.append(f"organisation {spec.slug}: oversight not in the file kept")


async def _apply_users(ctx: AccessContext, spec: OrgSpec, org: Organisation,
                       report: ApplyReport) -> None:
    session = ctx.session
    declared = {u.username for u in spec.users}
    for u in spec.users:
        user = await orgs_repo.user_by_username(session, org.id, u.username)
        if user is None:
            user = User(org_id=org.id, username=u.username, display_name=u.display_name,
                        password_hash=None, active=True, created_at=ctx.clock.now())
            session.add(user)
            await session.flush()
            report.changes.append(f"user {spec.slug}/{u.username}: created")
            ctx.record("tenants.user_create", target_type="User", target_id=user.id)
        elif user.display_name != u.display_name:
            user.display_name = u.display_name
            report.changes.append(f"user {spec.slug}/{u.username}: display name updated")
            ctx.record("tenants.user_update", target_type="User", target_id=user.id,
                       details={"fields": ["display_name"]})
        if u.email is not None and user.email != u.email:
            user.email = u.email
            report.changes.append(f"user {spec.slug}/{u.username}: alert email set")
            ctx.record("tenants.user_update", target_type="User", target_id=user.id,
                       details={"fields": ["email"]})
        current = await orgs_repo.roles_of(session, org.id, user.subject)
        missing = set(u.roles) - current
        if missing:
            await orgs_repo.set_roles(session, org.id, user.subject, current | missing)
            report.changes.append(f"user {spec.slug}/{u.username}: roles added "
                                  f"{', '.join(sorted(missing))}")
            ctx.record("user.roles", target_type="User", target_id=user.id,
                       details={"added": sorted(missing), "removed": []})
        if current - set(u.roles):
            report.kept.append(f"user {spec.slug}/{u.username}: roles not in the file kept: "
                               f"{', '.join(sorted(current - set(u.roles)))}")
    for user in await session.scalars(select(User).where(User.org_id == org.id)):
        if user.username not in declared:
            report.kept.append(f"user {spec.slug}/{user.username}: not declared, kept")


async def _apply_clients(ctx: AccessContext, spec: OrgSpec, org: Organisation,
                         report: ApplyReport) -> None:
    session = ctx.session
    for c in spec.clients:
        client = await orgs_repo.client_by_client_id(session, c.client_id)
        if client is not None and client.org_id != org.id:
            raise ValueError(f"{spec.path}: client {c.client_id!r} belongs to another organisation")
        if client is None:
            secret = new_secret()
            now = ctx.clock.now()
            client = Client(org_id=org.id, client_id=c.client_id, name=c.name,
                            secret_hash=hash_secret(secret), secret_rotated_at=now, active=True,
                            created_at=now)
            session.add(client)
            await session.flush()
            await orgs_repo.set_roles(session, org.id, client.subject,
                                      {Role.MACHINE_CLIENT.value})
            report.new_client_secrets[c.client_id] = secret
            report.changes.append(f"client {c.client_id}: created")
            ctx.record("tenants.client_create", target_type="Client", target_id=client.id)
        elif client.name != c.name:
            client.name = c.name
            report.changes.append(f"client {c.client_id}: name updated")
            ctx.record("tenants.client_update", target_type="Client", target_id=client.id,
                       details={"fields": ["name"]})


async def _apply_working_group(ctx: AccessContext, spec: OrgSpec, wg_spec: WorkingGroupSpec,
                               orgs: dict[str, Organisation], report: ApplyReport) -> None:
    session = ctx.session
    convener = orgs[spec.slug]
    wg = await orgs_repo.wg_by_slug(session, wg_spec.slug)
    if wg is None:
        wg = WorkingGroup(slug=wg_spec.slug, name=wg_spec.name, convener_org_id=convener.id,
                          created_at=ctx.clock.now())
        session.add(wg)
        await session.flush()
        report.changes.append(f"working group {wg_spec.slug}: created")
        ctx.record("tenants.working_group_create", target_type="WorkingGroup", target_id=wg.id)
    elif wg.convener_org_id != convener.id:
        raise ValueError(f"{spec.path}: working group {wg_spec.slug!r} is convened by another "
                         "organisation")
    current = set((await orgs_repo.current_members(session, [wg.id]))[wg.id])
    wanted = set()
    for slug in wg_spec.members:
        org = orgs.get(slug) or await orgs_repo.org_by_slug(session, slug)
        assert org is not None  # check_references ran
        wanted.add(org.id)
        if org.id not in current:
            session.add(WorkingGroupMember(working_group_id=wg.id, org_id=org.id,
                                           joined_at=ctx.clock.now()))
            report.changes.append(f"working group {wg_spec.slug}: {slug} joined")
            ctx.record("working_group.join", target_type="WorkingGroup", target_id=wg.id,
                       details={"org": str(org.id)})
    if current - wanted:
        report.kept.append(f"working group {wg_spec.slug}: {len(current - wanted)} member(s) not "
                           "in the file kept (remove them through the API)")
    await session.flush()
