"""Her sensitive fields are sealed per person; erasure is real (crypto-shredding, invariant 10)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.audit import chain
from app.audit.verify import verify
from app.audit.worker import LogWorker
from app.her import keys
from app.tables.peacebuilders import DataKey, PeacebuilderDatum
from schema import ids
from tests.conftest import build_env
from tests.factories import confirm_by_second_person, pending_confirmation
from tests.test_consent import READ, new_peacebuilder

pytestmark = pytest.mark.anyio
PROFILE_Q = "query($id: ID!) { peacebuilder(id: $id) { profile { legalName familyMembers } } }"


async def _rows(env, pb_id):
    async with env.runtime.db.transaction() as s:
        return {d.field: d for d in await s.scalars(select(PeacebuilderDatum).where(
            PeacebuilderDatum.peacebuilder_id == pb_id))}


async def test_fields_are_sealed_and_read_back(env):
    pb = await new_peacebuilder(env, "fund")
    body = await env.gql(PROFILE_Q, {"id": pb["id"]}, as_=("fund", "caseworker"))
    assert body["data"]["peacebuilder"]["profile"]["legalName"] == "Secret Legal Name"
    rows = await _rows(env, ids.decode(pb["id"], "Peacebuilder"))
    assert all(r.value.startswith("enc1:") for r in rows.values())
    assert not any("Secret" in r.value or "sister" in r.value for r in rows.values())


async def test_swapped_ciphertexts_do_not_decrypt(env):
    pb = await new_peacebuilder(env, "fund")
    pb_id = ids.decode(pb["id"], "Peacebuilder")
    rows = await _rows(env, pb_id)
    async with env.runtime.db.transaction() as s:
        await s.execute(update(PeacebuilderDatum).where(PeacebuilderDatum.id == rows["family_members"].id)
                        .values(value=rows["legal_name"].value))
    body = await env.gql(PROFILE_Q, {"id": pb["id"]}, as_=("fund", "caseworker"))
    profile = body["data"]["peacebuilder"]["profile"]
    assert profile["legalName"] == "Secret Legal Name" and profile["familyMembers"] is None


async def test_erasure_makes_her_data_unreadable_and_the_log_still_verifies(backend, tmp_path):
    env, close = await build_env(backend, tmp_path)
    try:
        pb = await new_peacebuilder(env, "fund")
        pb_id = ids.decode(pb["id"], "Peacebuilder")
        her = await env.peacebuilder_token(pb["login"])
        before = await env.gql("{ me { dataCopy } }", token=her, purpose=None)
        assert "Secret Legal Name" in before["data"]["me"]["dataCopy"]
        async with env.runtime.db.transaction() as s:
            backup = await s.get(DataKey, pb_id)  # what an earlier database backup holds
            old_version, old_wrapped = backup.kek_version, backup.wrapped
        erased = await env.gql("mutation { eraseMyData { erased } }", token=her, purpose=None)
        assert erased["data"]["eraseMyData"]["erased"] is True
        staff = await env.gql(READ, {"id": pb["id"]}, as_=("fund", "caseworker"))
        assert set(staff["data"]["peacebuilder"]["profile"].values()) == {None}
        after = await env.gql("{ me { dataCopy } }", token=her, purpose=None)
        assert "Secret" not in after["data"]["me"]["dataCopy"]
        rows = await _rows(env, pb_id)
        assert rows and all(r.value.startswith("enc1:") and r.lookup is None for r in rows.values())
        # The old backup's wrapped key still opens with KEK v1 — until v1 is rotated out.
        keks = env.runtime.db.keys
        assert keks.unwrap(old_version, old_wrapped, str(pb_id))
        keks.rotate()
        async with env.runtime.db.transaction() as s:
            await keys.rewrap_all(s, keks)
        keks.destroy(old_version)
        with pytest.raises(KeyError):
            keks.unwrap(old_version, old_wrapped, str(pb_id))
        # Others' data still reads after rotation; the log (erasure included) verifies.
        other = await new_peacebuilder(env, "fund")
        body = await env.gql(PROFILE_Q, {"id": other["id"]}, as_=("fund", "caseworker"))
        assert body["data"]["peacebuilder"]["profile"]["legalName"] == "Secret Legal Name"
        await chain.chain_all(env.runtime.db)
        worker = LogWorker(env.settings, env.runtime.db, env.runtime.clock)
        await worker.maybe_checkpoint(force=True)
        report = await verify(env.runtime.db, env.settings.checkpoints, env.settings.checkpoint_keys)
        assert report.ok, report.problems
    finally:
        await close()


async def test_only_she_her_network_or_her_lead_organisation_with_two_people_may_erase(env):
    pb = await new_peacebuilder(env, "fund")
    q = """mutation($id: ID, $r: String) { eraseMyData(peacebuilderId: $id, reason: $r) {
        erased erasure { id status dueAt via } userErrors { field message code } } }"""
    reason = "She asked us in person to delete everything we hold."
    other = await env.gql(q, {"id": pb["id"], "r": reason}, as_=("mofa", "focal"))
    assert other["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    caseworker = await env.gql(q, {"id": pb["id"], "r": reason}, as_=("fund", "caseworker"))
    assert caseworker["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    no_reason = await env.gql(q, {"id": pb["id"]}, as_=("fund", "focal"))
    assert no_reason["data"]["eraseMyData"]["userErrors"][0]["field"] == ["input", "reason"]
    asked = await env.gql(q, {"id": pb["id"], "r": reason}, as_=("fund", "focal"))
    payload = asked["data"]["eraseMyData"]
    assert payload["erased"] is False and payload["erasure"]["status"] == "AWAITING_CONFIRMATION"
    # One person cannot: nothing is destroyed until a second focal point confirms.
    still = await env.gql(PROFILE_Q, {"id": pb["id"]}, as_=("fund", "caseworker"))
    assert still["data"]["peacebuilder"]["profile"]["legalName"] == "Secret Legal Name"
    confirmation = await pending_confirmation(env, "fund", payload["erasure"]["id"],
                                              as_user="focal2")
    shown = await env.gql("""query { confirmations(first: 50) { edges { node { id reason
        action } } } }""", as_=("fund", "focal2"))
    assert {"id": confirmation, "reason": reason, "action": "ERASURE"} in [
        e["node"] for e in shown["data"]["confirmations"]["edges"]]
    await confirm_by_second_person(env, "fund", payload["erasure"]["id"], first="focal")
    her = await env.peacebuilder_token(pb["login"])
    mine = await env.gql("{ me { erasures { id status dueAt } notices { kind } } }", token=her,
                         purpose=None)
    scheduled = mine["data"]["me"]["erasures"][0]
    assert scheduled["status"] == "SCHEDULED" and scheduled["dueAt"]
    assert "erasure_scheduled" in [n["kind"] for n in mine["data"]["me"]["notices"]]
    # She stops it: nothing is erased.
    stopped = await env.gql("mutation($id: ID!) { stopErasure(input: {id: $id}) { erasure { status } "
                            "userErrors { message } } }", {"id": scheduled["id"]}, token=her,
                            purpose=None)
    assert stopped["data"]["stopErasure"]["erasure"]["status"] == "STOPPED"
    still = await env.gql(PROFILE_Q, {"id": pb["id"]}, as_=("fund", "caseworker"))
    assert still["data"]["peacebuilder"]["profile"]["legalName"] == "Secret Legal Name"
