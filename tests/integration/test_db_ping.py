"""Pooled connections are pinged only after sitting idle, and a dead one is replaced.

`ledger/db.py` skips SQLAlchemy's ping-on-every-checkout (a round trip per transaction)
and pings a connection only when it was idle for `PING_AFTER_IDLE_SECONDS`. Here the
server kills the pooled connection's backend while it is idle: the next transaction must
still succeed, on a fresh connection, with no error reaching the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine.interfaces import DBAPIConnection

from headcount.config import Settings
from headcount.ledger import db as ledger_db
from headcount.ledger.db import Database


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[Database]:
    found = Database(Settings(database_url=postgres_url, env="test", db_pool_size=1))
    try:
        yield found
    finally:
        await found.dispose()


async def _backend_pid(database: Database) -> int:
    async with database.transaction() as tx:
        return int(await tx.scalar(text("SELECT pg_backend_pid()")) or 0)


def _kill(postgres_url: str, pid: int) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_an_idle_connection_killed_by_the_server_is_replaced(
    database: Database, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_db, "PING_AFTER_IDLE_SECONDS", 0.2)
    first = await _backend_pid(database)
    _kill(postgres_url, first)
    await asyncio.sleep(0.4)  # idle past the threshold: the next checkout pings
    second = await _backend_pid(database)
    assert second != first


async def test_a_busy_connection_is_not_pinged(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    dialect = database.engine.sync_engine.dialect
    real = dialect.do_ping

    def counted(conn: DBAPIConnection) -> bool:
        pings.append(conn)
        return real(conn)

    monkeypatch.setattr(dialect, "do_ping", counted)
    for _ in range(5):
        await _backend_pid(database)
    assert pings == []  # back in the pool a moment ago each time
    monkeypatch.setattr(ledger_db, "PING_AFTER_IDLE_SECONDS", 0.05)
    await asyncio.sleep(0.1)
    await _backend_pid(database)
    assert len(pings) == 1
