"""Sixteen API processes' pools (160 connections) on a PostgreSQL that takes 100: through
PgBouncer in transaction mode, at most 40 server connections serve them all and nothing
fails; straight to PostgreSQL, connections are refused (the control).

Each "process" is a `Runtime` with its own engine and a pool of 10, as `headcount serve`
builds one per process; they run in this test process so that the load (480 concurrent
registrations on one event, every connection busy at once behind the event's counter row)
needs no 16 interpreters on a 2-core machine. What PostgreSQL and PgBouncer see is the
same: 160 client connections.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from headcount.capacity import events, registrations
from headcount.capacity.events import EventDraft
from headcount.capacity.registrations import RegistrationDraft
from headcount.config import Settings
from headcount.domain.errors import EventFull, HeadcountError
from headcount.ledger.migrate import upgrade
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.private_services import PrivatePgBouncer, PrivatePostgres, private_pgbouncer

pytestmark = pytest.mark.slow

PROCESSES = 16
POOL = 10
SERVER_CONNECTIONS = 40
ATTEMPTS = 480
LIMIT = 300


@dataclass
class Peak:
    clients: int = 0  # client connections PgBouncer held for our database
    servers: int = 0  # server connections PgBouncer had open to it
    backends: int = 0  # client backends PostgreSQL had for our database (not autovacuum's)


@pytest.fixture
def bouncer(private_pg: PrivatePostgres) -> Iterator[PrivatePgBouncer]:
    if not private_pg.is_running():
        private_pg.start()
    with private_pgbouncer(private_pg.port, pool_size=SERVER_CONNECTIONS) as found:
        yield found


def _database(private_pg: PrivatePostgres) -> tuple[str, str]:
    name = f"hc_pool_{secrets.token_hex(4)}"
    url = private_pg.create_database(name)
    upgrade(url)
    return name, url


def _watch(
    private_pg: PrivatePostgres, name: str, bouncer: PrivatePgBouncer | None, stop: threading.Event
) -> Peak:
    peak = Peak()
    with psycopg.connect(private_pg.admin_dsn(), autocommit=True) as admin:
        while not stop.is_set():
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND backend_type = 'client backend'",
                (name,),
            ).fetchone()
            peak.backends = max(peak.backends, int(row[0]) if row else 0)
            if bouncer is not None:
                for pool in bouncer.show("POOLS"):
                    if pool["database"] == name:
                        clients = int(pool["cl_active"]) + int(pool["cl_waiting"])
                        servers = sum(
                            int(pool[k]) for k in ("sv_active", "sv_idle", "sv_used", "sv_login")
                        )
                        peak.clients = max(peak.clients, clients)
                        peak.servers = max(peak.servers, servers)
            time.sleep(0.05)
    return peak


async def _storm(url: str) -> Counter[str]:
    settings = Settings(
        database_url=url,
        env="test",
        db_pool_size=POOL,
        db_max_overflow=0,
        db_pool_timeout=120,
        db_statement_timeout_ms=60_000,
    )
    processes = [Runtime.from_settings(settings) for _ in range(PROCESSES)]
    try:
        made = await events.create_event(
            processes[0], organizer("org-pool"), EventDraft(name="Pool", max_attendees=LIMIT)
        )

        async def one(n: int) -> str:
            rt = processes[n % PROCESSES]
            try:
                await registrations.register(rt, attendee(f"a{n}"), made.id, RegistrationDraft())
            except EventFull:
                return "event_full"
            except HeadcountError as exc:
                return exc.code
            return "registered"

        return Counter(await asyncio.gather(*(one(n) for n in range(ATTEMPTS))))
    finally:
        for rt in processes:
            await rt.close()


async def _run(
    private_pg: PrivatePostgres, bouncer: PrivatePgBouncer | None
) -> tuple[Counter[str], Peak]:
    name, direct = await asyncio.to_thread(_database, private_pg)  # alembic runs its own loop
    url = bouncer.through(direct) if bouncer else direct
    stop = threading.Event()
    watcher = asyncio.create_task(asyncio.to_thread(_watch, private_pg, name, bouncer, stop))
    try:
        outcomes = await _storm(url)
    finally:
        stop.set()
        peak = await watcher
    return outcomes, peak


async def test_160_client_connections_share_40_server_connections(
    private_pg: PrivatePostgres, bouncer: PrivatePgBouncer
) -> None:
    outcomes, peak = await _run(private_pg, bouncer)
    print(f"\nthrough PgBouncer: {dict(outcomes)}; peak {peak}")
    assert outcomes == {"registered": LIMIT, "event_full": ATTEMPTS - LIMIT}  # nothing failed
    assert peak.clients == PROCESSES * POOL
    assert 0 < peak.servers <= SERVER_CONNECTIONS
    assert peak.backends <= SERVER_CONNECTIONS


async def test_without_the_pooler_160_connections_overrun_postgres(
    private_pg: PrivatePostgres,
) -> None:
    """The control: the same load straight to a 100-connection PostgreSQL is refused."""
    if not private_pg.is_running():
        private_pg.start()
    outcomes, peak = await _run(private_pg, None)
    print(f"\nstraight to PostgreSQL: {dict(outcomes)}; peak {peak}")
    assert outcomes["service_unavailable"] > 0  # "too many clients": 53300 is a clean 503
    assert outcomes["registered"] <= LIMIT  # and still never past the limit
    assert set(outcomes) <= {"registered", "event_full", "service_unavailable"}
