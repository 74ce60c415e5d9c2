"""Alembic is the only way the schema is made: migrations must match the models exactly."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Base
from app.storage import upgrade
from tests.conftest import prepare_database

pytestmark = pytest.mark.anyio


async def test_migrations_match_models(backend, tmp_path):
    url, drop = await prepare_database(backend, tmp_path)
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
        await engine.dispose()
        assert diff == [], "models and migrations differ: write a migration"
    finally:
        await drop()


def test_a_newer_schema_is_usable_an_older_one_is_not():
    from app.storage import head_revision, schema_is_usable

    head = head_revision()
    assert schema_is_usable(head, head)
    assert schema_is_usable("9999-from-a-newer-release", head)  # rolling upgrade / rollback
    assert not schema_is_usable("0001", head)
    assert not schema_is_usable(None, head)
