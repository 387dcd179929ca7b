"""Private, killable PostgreSQL and Redis for the fault tests (support/private_services.py).

Session-scoped: started once, stopped and deleted at the end even if tests fail. A test
that stops a server gets it back running for the next one (`fault_database` restarts it).
Every test of the database runs twice: straight to PostgreSQL, and through a private
PgBouncer in transaction mode in front of it, as production may run.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from headcount.ledger.migrate import upgrade
from support import services
from support.private_services import (
    PrivatePgBouncer,
    PrivatePostgres,
    PrivateRedis,
    pgbouncer_available,
    postgres_available,
    private_pgbouncer,
    private_postgres,
    private_redis,
    redis_available,
)


def _installed(available: Callable[[], bool], what: str) -> None:
    """Fail (in CI) or skip a fault test whose private server is not installed here."""
    services.installed(available(), what, "fault tests need their own instance")


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    _installed(postgres_available, "PostgreSQL server binaries (initdb, pg_ctl)")
    with private_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def private_redis_server() -> Iterator[PrivateRedis]:
    _installed(redis_available, "redis-server")
    with private_redis() as server:
        yield server


@pytest.fixture(scope="session")
def private_bouncer(private_pg: PrivatePostgres) -> Iterator[PrivatePgBouncer]:
    _installed(pgbouncer_available, "pgbouncer")
    with private_pgbouncer(private_pg.port) as bouncer, bouncer.supervised():
        yield bouncer


@pytest.fixture(params=["direct", "pgbouncer"])
def fault_database(private_pg: PrivatePostgres, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database on the private server (restarted if a test stopped it),
    reached directly or through PgBouncer."""
    if not private_pg.is_running():
        private_pg.start()
    url = private_pg.create_database(f"hc_fault_{secrets.token_hex(4)}")
    upgrade(url)
    if request.param == "pgbouncer":
        bouncer: PrivatePgBouncer = request.getfixturevalue("private_bouncer")
        return bouncer.through(url)
    return url


@pytest.fixture
def fault_redis(private_redis_server: PrivateRedis) -> PrivateRedis:
    if not private_redis_server.ping():
        private_redis_server.start()
    return private_redis_server
