"""The demo fixture: tenants from `tenants/`, four pseudonymous peacebuilders and their cases.

A contract that tests and scripts rely on (see README): slugs, usernames, pseudonyms and which
organisation leads which case. Loading it twice changes nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.access.principal import Principal, PrincipalKind
from app.auth.passwords import hash_password, new_secret
from app.cases import service as cases
from app.orgs.models import Organisation, User
from app.peacebuilders import service as peacebuilders
from app.peacebuilders.models import Peacebuilder
from app.runtime import Runtime, context_for

# pseudonym -> (registering and lead organisation, networks, preferred language, profile)
DEMO_PEACEBUILDERS: dict[str, tuple[str, list[str], str, dict[str, str]]] = {
    "amani": ("unpc", ["wpn"], "sw", {"legal_name": "Demo Person A", "country": "KE",
                                       "region": "Nairobi", "phone": "+254 700 000 001"}),
    "leyla": ("wpn", ["wpn"], "ar", {"legal_name": "Demo Person B", "country": "KE",
                                      "region": "Mombasa", "email": "b@example.org"}),
    "rosa": ("embassy", [], "es", {"legal_name": "Demo Person C", "country": "KE",
                                    "region": "Kisumu"}),
    "mariam": ("mofa", [], "fr", {"legal_name": "Demo Person D", "country": "KE",
                                   "region": "Garissa", "family_members": "two children"}),
}


async def load(runtime: Runtime) -> list[str]:
    """Create the demo peacebuilders and cases that are missing; returns what it did."""
    done: list[str] = []
    async with runtime.db.transaction() as session:
        await runtime.policy.refresh(session)
        orgs = {o.slug: o for o in await session.scalars(select(Organisation))}
        for pseudonym, (lead, networks, language, profile) in DEMO_PEACEBUILDERS.items():
            org = orgs[lead]
            exists = await session.scalar(select(Peacebuilder.id).where(
                Peacebuilder.pseudonym == pseudonym, Peacebuilder.registered_by_org_id == org.id))
            if exists:
                continue
            focal = await session.scalar(select(User).where(User.org_id == org.id,
                                                            User.username == "focal"))
            assert focal is not None, f"demo tenant {lead} has no focal user"
            principal = Principal(kind=PrincipalKind.USER, id=focal.id, org_id=org.id,
                                  org_slug=org.slug, name=focal.username,
                                  roles=runtime.policy.roles_of(focal.subject, str(org.id)))
            ctx = context_for(runtime, session, principal, request_id=f"demo-{uuid.uuid4().hex}",
                              purpose="protection")
            pb = await peacebuilders.create(
                ctx, pseudonym=pseudonym, preferred_language=language,
                network_ids=[orgs[n].id for n in networks], profile=dict(profile))
            await cases.open_case(ctx, peacebuilder_id=pb.id, risk_level="high")
            done.append(f"peacebuilder {pseudonym}: registered, case opened by {lead}")
    return done


async def ensure_credentials(runtime: Runtime, client_secrets: dict[str, str]) -> Path:
    """Give demo users without a password a generated one; keep all in a private file."""
    path = runtime.settings.data_dir / "demo-credentials.json"
    creds: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    creds.setdefault("users", {})
    creds.setdefault("clients", {})
    creds["clients"].update(client_secrets)
    async with runtime.db.transaction() as session:
        rows = await session.execute(select(User, Organisation.slug)
                                     .join(Organisation, Organisation.id == User.org_id))
        for user, slug in rows:
            key = f"{slug}/{user.username}"
            if user.password_hash is None:
                password = new_secret()[:20]
                user.password_hash = hash_password(password)
                creds["users"][key] = password
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=2, sort_keys=True)
    return path
