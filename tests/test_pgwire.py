"""Round trips per transaction on PostgreSQL (app/pgwire.py): the checkout ping only for
connections idle a while; a connection that died meanwhile is still found and replaced."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pytest
from asyncpg.connection import Connection
from asyncpg.prepared_stmt import PreparedStatement

from app import pgwire
from tests.factories import register
from tests.test_read_path import OPEN_CASE

pytestmark = pytest.mark.anyio

CASE = """query($id: ID!) { case(id: $id) { id status summary peacebuilder { pseudonym }
  incidents { id status } } }"""

# The messages sent to PostgreSQL from the test's own context (and the tasks it starts): each
# call below is one round trip once its statement is prepared (the warm-up request prepares).
_SENT: ContextVar[list[str] | None] = ContextVar("pgwire_sent", default=None)


@pytest.fixture
def pg(env):
    if env.backend != "postgresql":
        pytest.skip("asyncpg's round trips: PostgreSQL only")
    return env


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Any:
    """`with wire() as sent:` lists what the code under it sends through asyncpg."""
    def counted(cls: type, name: str) -> None:
        original = getattr(cls, name)

        @functools.wraps(original)
        async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            sent = _SENT.get()
            if sent is not None:
                query = args[0] if cls is Connection else self.get_query()
                sent.append(" ".join(query.split()))
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, call)

    for name in ("execute", "prepare", "fetch", "fetchrow", "fetchval", "executemany"):
        counted(Connection, name)
    for name in ("fetch", "fetchrow", "fetchval", "executemany"):
        counted(PreparedStatement, name)

    @contextmanager
    def watching() -> Iterator[list[str]]:
        sent: list[str] = []
        token = _SENT.set(sent)
        try:
            yield sent
        finally:
            _SENT.reset(token)

    return watching


async def one_case(pg: Any) -> str:
    her = await register(pg, "fund", "caseworker")
    body = await pg.gql(OPEN_CASE, {"input": {"peacebuilderId": her["id"],
                                              "summary": "Round trips."}}, as_=("fund", "focal"))
    return str(body["data"]["openCase"]["case"]["id"])


async def test_just_used_connections_are_not_pinged_idle_ones_are(pg, wire, monkeypatch):
    case = await one_case(pg)
    token = await pg.token("fund", "focal")
    warm = await pg.gql(CASE, {"id": case}, token=token)  # prepares; the connections just served
    assert warm["data"]["case"]["id"] == case, warm
    counter = pg.runtime.db.statements
    for ping_after, pings in ((pgwire.PING_AFTER, 0), (0.0, 1)):
        monkeypatch.setattr(pgwire, "PING_AFTER", ping_after)
        start = counter.measured
        with wire() as sent, counter.measuring():
            body = await pg.gql(CASE, {"id": case}, token=token)
        statements = counter.measured - start
        assert body["data"]["case"]["id"] == case, body
        begins = [m for m in sent if m.startswith("BEGIN")]
        # Admission (system scope, background role), then the request's own transaction.
        assert len(begins) == len([m for m in sent if m in ("COMMIT;", "ROLLBACK;")]) == 2, sent
        # Just-used connections are not pinged; with PING_AFTER 0 every checkout is.
        assert sent.count("SELECT 1") == pings * 2, sent
        # Per transaction: BEGIN, the tenancy declaration (not in the statement count) and
        # COMMIT around its statements; the checkout ping when due.
        assert len(sent) == statements + 2 * 3 + pings * 2, sent
        assert statements >= 4  # sign-in/admission reads and the case: real work was counted


async def test_a_connection_closed_while_idle_is_replaced_even_if_just_used(pg, wire):
    """Within PING_AFTER the ping is skipped only while the driver has not seen the socket
    close: a backend terminated meanwhile is pinged, found dead and replaced, unnoticed."""
    import asyncpg

    token = await pg.token("fund", "focal")
    viewer = "{ viewer { organisation { slug } } }"
    await pg.gql(viewer, token=token)
    admin = await asyncpg.connect(pg.owner_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND usename IN ('safety_net_service', 'safety_net_background')")
    finally:
        await admin.close()
    assert killed >= 2
    await asyncio.sleep(0.2)  # the event loop reads each closed socket
    with wire() as sent:
        body = await pg.gql(viewer, token=token)
    assert body["data"]["viewer"]["organisation"]["slug"] == "fund", body
    assert "SELECT 1" in sent, sent
