"""Concurrent changes to one grant serialise: no "Internal error.", nothing after a revoke, and
the stored history replays to the projection, as if the changes had come one by one (issue 15,
part 5)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from app.consent import repository as consent_repo
from app.consent.service import replay
from app.tables.consent import ConsentAccess
from schema import ids
from tests.conftest import Env
from tests.test_consent import EXTEND, NARROW, REVOKE, grant, new_peacebuilder

pytestmark = pytest.mark.anyio

CATEGORIES = ["IDENTITY", "FAMILY", "LEGAL", "TRAVEL", "FINANCIAL", "HEALTH"]


def _changes(grant_id: str) -> list[tuple[str, dict]]:
    """20 changes: narrowings and extensions around one revoke in the middle."""
    out: list[tuple[str, dict]] = []
    for i in range(20):
        if i == 10:
            out.append(("revokeConsent", {"id": grant_id}))
        elif i % 2:
            out.append(("narrowConsent", {"input": {"grantId": grant_id,
                                                    "categories": [CATEGORIES[i % 5]]}}))
        else:
            out.append(("extendConsent", {"input": {"grantId": grant_id,
                                                    "categories": [CATEGORIES[i % 6]]}}))
    return out


DOCUMENTS = {"revokeConsent": REVOKE, "narrowConsent": NARROW, "extendConsent": EXTEND}


@pytest.mark.parametrize("round_", range(2))
async def test_twenty_concurrent_changes_serialise(env: Env, round_: int) -> None:
    pb = await new_peacebuilder(env, "fund")
    g = await grant(env, pb, as_=("fund", "focal"), to_org="nhri", categories=CATEGORIES,
                    purposes=["PROTECTION", "ADVOCACY"])
    her = await env.peacebuilder_token(pb["login"])
    gid = ids.decode(g["id"], "ConsentGrant")
    async with env.runtime.db.transaction() as s:
        before = len(await consent_repo.events_of(s, gid))
    changes = _changes(g["id"])
    responses = await asyncio.gather(*(
        env.post(DOCUMENTS[name], variables, token=her, purpose=None)
        for name, variables in changes))
    accepted = 0
    for (name, _), response in zip(changes, responses, strict=True):
        assert response.status_code == 200, response.text
        assert "Internal error" not in response.text, response.text
        body = response.json()
        assert "errors" not in body, body
        payload = body["data"][name]
        if payload["userErrors"]:
            assert [e["code"] for e in payload["userErrors"]] == ["CONFLICT"], payload
            assert payload["grant"] is None
        else:
            accepted += 1
    async with env.runtime.db.transaction() as s:
        events = await consent_repo.events_of(s, gid)
        state = await consent_repo.grant(s, gid)
        rows = await s.scalar(select(func.count()).select_from(ConsentAccess).where(
            ConsentAccess.grant_id == gid))
    kinds = [e.kind for e in events]
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert kinds[0] == "grant" and len(events) == before + accepted
    # A serial order: every accepted change is an event, the revoke is the last of them and
    # nothing was accepted after it (a narrowing after the revoke answered CONFLICT).
    assert kinds.count("revoke") == 1 and kinds[-1] == "revoke"
    assert replay(events) == {k: getattr(state, k) for k in replay(events)}
    assert state.revoked_at is not None and rows == 0
    late = await env.gql(NARROW, {"input": {"grantId": g["id"], "categories": ["LEGAL"]}},
                         token=her, purpose=None)
    assert [e["code"] for e in late["data"]["narrowConsent"]["userErrors"]] == ["CONFLICT"]
    print(f"{env.backend}: {accepted}/20 accepted (the revoke last of them), "
          f"{20 - accepted} answered CONFLICT")
