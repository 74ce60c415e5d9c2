"""The demo fixture: tenants from `tenants/`, four pseudonymous peacebuilders and their cases.

A contract that tests and scripts rely on (see README): slugs, usernames, pseudonyms, which
organisation leads which case, and the consent each woman gave. Loading it twice changes nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.access.principal import Principal, PrincipalKind
from app.auth import mfa, totp
from app.auth.passwords import hash_password, new_secret
from app.cases import service as cases
from app.cases import teams
from app.consent import repository as consent_repo
from app.consent import service as consent
from app.directory import service as directory
from app.peacebuilders import networks as network_links
from app.peacebuilders import service as peacebuilders
from app.runtime import Runtime, context_for
from app.tables.auth import TotpCredential
from app.tables.categories import DEFAULT_CATEGORIES
from app.tables.consent import PeacebuilderAccount
from app.tables.orgs import Client, Organisation, User, WorkingGroup
from app.tables.peacebuilders import Peacebuilder

# pseudonym -> (registering and lead organisation, networks, preferred language, profile, summary)
DEMO_PEACEBUILDERS: dict[str, tuple[str, list[str], str, dict[str, str], str]] = {
    "amani": ("unpc", ["wpn"], "sw", {"legal_name": "Demo Person A", "country": "KE",
                                       "region": "Nairobi", "phone": "+254 700 000 001"},
              "Threats after speaking at a local peace forum."),
    "leyla": ("wpn", ["wpn"], "ar", {"legal_name": "Demo Person B", "country": "KE",
                                      "region": "Mombasa", "email": "b@example.org"},
              "Online harassment campaign."),
    "rosa": ("embassy", [], "es", {"legal_name": "Demo Person C", "country": "KE",
                                    "region": "Kisumu"},
             "Surveillance of her organisation's office."),
    "mariam": ("mofa", [], "fr", {"legal_name": "Demo Person D", "country": "KE",
                                   "region": "Garissa", "family_members": "two children"},
               "Legal harassment: charges under a counter-terrorism law."),
}
# What each demo organisation offers (the service directory; its admins edit it afterwards).
# wpn and fund take requests for help from women without a case.
DEMO_DIRECTORY: dict[str, directory.EntryInput] = {
    "wpn": directory.EntryInput(["psychosocial_support", "advocacy", "shelter"],
                                ["en", "sw", "ar"], ["Nairobi", "Mombasa"], True, 24),
    "fund": directory.EntryInput(["emergency_grants", "relocation", "digital_security"],
                                 ["en", "fr", "es"], ["East Africa"], True, 48),
    "unpc": directory.EntryInput(["security_protection", "relocation"], ["en", "fr"],
                                 ["Nairobi", "Garissa"], False, 72),
    "nhri": directory.EntryInput(["legal_aid", "detention_monitoring"], ["en", "sw"],
                                 ["Nairobi", "Kisumu", "Garissa"], False, 72),
    "embassy": directory.EntryInput(["relocation", "advocacy"], ["en", "es"], ["Nairobi"],
                                    False, 72),
    "mofa": directory.EntryInput(["advocacy"], ["en", "fr"], ["Nairobi"], False, 72),
}
# Her intake consent to her lead organisation: every category but contact and location.
DEMO_INTAKE_CATEGORIES = DEFAULT_CATEGORIES
# Beyond intake: amani consented to the Joint Action Group seeing incident details.
DEMO_GROUP_GRANTS = {"amani": ("jag", ["incident_details"], ["protection"])}


async def _staff(runtime: Runtime, session: Any, org: Organisation, username: str) -> Principal:
    user = await session.scalar(select(User).where(User.org_id == org.id,
                                                   User.username == username))
    assert user is not None, f"demo tenant {org.slug} has no {username} user"
    # Acting as that person fully signed in (second factor just now), as the demo story has it.
    return Principal(kind=PrincipalKind.USER, id=user.id, org_id=org.id, org_slug=org.slug,
                     name=user.username, roles=runtime.policy.roles_of(user.subject, str(org.id)),
                     auth_time=datetime.now(UTC), acr="mfa")


def _herself(pb_id: uuid.UUID) -> Principal:
    return Principal(kind=PrincipalKind.PEACEBUILDER, id=pb_id, org_id=None, org_slug=None,
                     name="peacebuilder")


async def load(runtime: Runtime) -> list[str]:
    """Create the demo peacebuilders, consents, cases and teams that are missing."""
    done: list[str] = []
    async with runtime.db.transaction() as session:
        await runtime.policy.refresh(session)
        orgs = {o.slug: o for o in await session.scalars(select(Organisation))}
        for slug, entry in DEMO_DIRECTORY.items():
            if slug in orgs:
                await directory.seed(session, orgs[slug].id, entry, "demo", runtime.clock.now())
        for pseudonym, (lead, networks, language, profile, summary) in DEMO_PEACEBUILDERS.items():
            org = orgs[lead]
            exists = await session.scalar(select(Peacebuilder.id).where(
                Peacebuilder.pseudonym == pseudonym, Peacebuilder.registered_by_org_id == org.id))
            if exists:
                continue
            ctx = context_for(runtime, session, await _staff(runtime, session, org, "focal"),
                              request_id=f"demo-{uuid.uuid4().hex}", purpose="protection")
            registered = await peacebuilders.create(
                ctx, pseudonym=pseudonym, preferred_language=language,
                network_ids=[orgs[n].id for n in networks], profile=dict(profile),
                intake_consent=peacebuilders.IntakeConsent(
                    obtained_via="in_person", categories=sorted(DEMO_INTAKE_CATEGORIES),
                    note="Demo intake consent."))
            pb = registered.peacebuilder
            # She has her own login, and confirms her intake consent and her networks herself
            # (staff-recorded consent releases nothing until then).
            session.add(PeacebuilderAccount(peacebuilder_id=pb.id, login=pseudonym,
                                            password_hash=None, active=True,
                                            created_at=runtime.clock.now()))
            pb.has_login = True
            her = context_for(runtime, session, _herself(pb.id),
                              request_id=f"demo-{uuid.uuid4().hex}")
            await consent.confirm(her, registered.intake.id)
            for network in networks:
                await network_links.confirm(her, pb.id, orgs[network].id)
            case = await cases.open_case(ctx, peacebuilder_id=pb.id, summary=summary)
            # Seed data: the level a joint assessment would have set (app/risk); by hand the
            # API refuses it.
            case.risk_level = "high"
            caseworker = await _staff(runtime, session, org, "caseworker")
            await teams.add_member(ctx, case, caseworker.subject)
            client = await session.scalar(select(Client).where(Client.org_id == org.id))
            if client is not None:
                await teams.add_member(ctx, case, client.subject)
            if pseudonym in DEMO_GROUP_GRANTS:
                wg_slug, categories, purposes = DEMO_GROUP_GRANTS[pseudonym]
                wg = await session.scalar(select(WorkingGroup).where(WorkingGroup.slug == wg_slug))
                assert wg is not None
                # Recorded by her herself (her network is a member of the group: a network never
                # grants to itself).
                await consent.grant(her, peacebuilder_id=pb.id, recipient_type="working_group",
                                    recipient_id=wg.id, categories=categories, purposes=purposes,
                                    note="Demo group consent.")
            done.append(f"peacebuilder {pseudonym}: registered with intake consent (confirmed by "
                        f"her), case opened by {lead}")
    return done


# Who gets a demo second factor: `focal2` enrols her own (docs/demo/enrolment-demo.sh).
DEMO_SECOND_FACTOR = frozenset({"focal", "admin", "auditor"})


async def _demo_second_factor(runtime: Runtime, session: Any, user: User) -> str | None:
    """A demo person whose role needs a second factor gets one enrolled, its seed kept in the
    credentials file (add it to an authenticator app): the dashboard's demo signs in with it.
    Outside the demo a first factor takes a two-person enrolment code (app.auth.enrolment)."""
    if user.username not in DEMO_SECOND_FACTOR or await mfa.enrolled(session, user.id):
        return None
    await runtime.policy.refresh(session)
    if not runtime.policy.roles_of(user.subject, str(user.org_id)) & mfa.mfa_roles(
            runtime.settings):
        return None
    seed = totp.new_secret()
    now = runtime.clock.now()
    session.add(TotpCredential(
        user_id=user.id, secret=mfa.seal_secret(runtime.db.keys, user.org_id, user.id, "secret",
                                                seed),
        enrolled_at=now, updated_at=now))
    await session.flush()
    return seed


async def ensure_credentials(runtime: Runtime, client_secrets: dict[str, str]) -> Path:
    """Give demo users and peacebuilders without a password a generated one; keep all in a
    private file (mode 600) in the data directory."""
    path = runtime.settings.data_dir / "demo-credentials.json"
    creds: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for key in ("users", "clients", "peacebuilders", "totp"):
        creds.setdefault(key, {})
    creds["clients"].update(client_secrets)
    async with runtime.db.transaction() as session:
        rows = await session.execute(select(User, Organisation.slug)
                                     .join(Organisation, Organisation.id == User.org_id))
        for user, slug in rows:
            if user.password_hash is None:
                password = new_secret()[:20]
                user.password_hash = hash_password(password)
                creds["users"][f"{slug}/{user.username}"] = password
            seed = await _demo_second_factor(runtime, session, user)
            if seed is not None:
                creds["totp"][f"{slug}/{user.username}"] = seed
        for pseudonym in DEMO_PEACEBUILDERS:
            account = await consent_repo.account_by_login(session, pseudonym)
            if account is not None and account.password_hash is None:
                password = new_secret()[:20]
                account.password_hash = hash_password(password)
                creds["peacebuilders"][pseudonym] = password
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=2, sort_keys=True)
    return path


