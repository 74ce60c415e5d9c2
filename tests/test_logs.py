"""Logs carry IDs and codes, never a peacebuilder's data, tokens or secrets (invariant 8)."""

from __future__ import annotations

import logging

import pytest

from app.logs import JsonFormatter
from tests.test_consent import READ, new_peacebuilder
from tests.test_incidents import REPORT, incident_input

pytestmark = pytest.mark.anyio


async def test_logs_hold_no_personal_data_tokens_or_secrets(env, caplog, monkeypatch):
    from app.logs import quiet_third_party

    quiet_third_party()  # as the service configures logging (app.logs.configure)
    caplog.set_level(logging.DEBUG)
    pb = await new_peacebuilder(env, "fund")
    token = await env.token("fund", "caseworker")
    await env.post(READ, {"id": pb["id"]}, token=token)
    await env.post(REPORT, incident_input(pb["case"]), token=token)
    # An unexpected failure whose exception text contains her data: the text must not be logged.
    from app.peacebuilders import service

    async def explode(ctx, ids):
        raise RuntimeError(f"boom {pb['login']} Secret Legal Name")

    monkeypatch.setattr(service, "profiles", explode)
    failed = await env.post(READ, {"id": pb["id"]}, token=token)
    assert failed.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "boom" not in failed.text and "Secret" not in failed.text
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any('"unexpected RuntimeError' in line or "RuntimeError" in line for line in lines)
    text = "\n".join(lines)
    for secret in (pb["login"], "Secret Legal Name", "+1 555 0199", "Threatening", token):
        assert secret not in text, f"{secret[:12]}… leaked into the logs"
