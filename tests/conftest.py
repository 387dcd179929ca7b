"""Fixtures shared by every test layer.

Databases are created fresh for each test session (a uniquely named PostgreSQL database,
a temporary SQLite file), so parallel runs never collide; every test makes its own event,
so tests are independent of order. Server processes are real `headcount serve` commands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from headcount.runtime import Runtime
from support import services
from support.databases import BACKENDS, backend_url, postgres_database, sqlite_database
from support.private_services import (
    PrivatePgBouncer,
    PrivateRedisCluster,
    pgbouncer_available,
    private_pgbouncer,
    private_redis_cluster,
    redis_available,
)
from support.runtimes import open_runtime


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sqlite_database(tmp_path_factory.mktemp("sqlite")) as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_session_url() -> Iterator[str]:
    services.need_postgres()
    with postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url(_postgres_session_url: str) -> str:
    return _postgres_session_url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    return backend_url(request)


@pytest.fixture(scope="module", params=BACKENDS)
def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A new, migrated database of each backend for one test module: for a module whose
    tests read every row of a kind (a relay claims every due delivery), which another
    module's leftovers in the session's database would join."""
    if request.param == "postgresql":
        services.need_postgres()
        with postgres_database("hc_mod") as url:
            yield url
    else:
        with sqlite_database(tmp_path_factory.mktemp("module")) as url:
            yield url


@pytest.fixture(params=BACKENDS)
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, migrated database of each backend for this test alone: for a test that moves
    the schema, or reads whole tables after every step (the session's are shared)."""
    if request.param == "postgresql":
        services.need_postgres()
        with postgres_database("hc_own") as url:
            yield url
    else:
        with sqlite_database(tmp_path) as url:
            yield url


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    async with open_runtime(database_url) as rt:
        yield rt


@pytest.fixture
async def http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app (REST, GraphQL, pages) in this process over ASGI, on `runtime`.

    End-to-end modules define their own `http`, against a real server process.
    """
    from headcount.api.app import create_app  # imported here: unit tests never need the app

    app = create_app(runtime=runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://headcount.test"
    ) as client:
        yield client


@pytest.fixture
def redis_url() -> str:
    services.need_redis()
    return services.REDIS_URL


@pytest.fixture(scope="session")
def pgbouncer(_postgres_session_url: str) -> Iterator[PrivatePgBouncer]:
    """A private PgBouncer (transaction mode) in front of the shared PostgreSQL."""
    services.installed(pgbouncer_available(), "pgbouncer", "the pooler tests need it")
    port = make_url(_postgres_session_url).port or 5432
    with private_pgbouncer(port, pool_size=20) as bouncer:
        yield bouncer


@pytest.fixture
def pgbouncer_url(pgbouncer: PrivatePgBouncer, _postgres_session_url: str) -> str:
    """The session's PostgreSQL database, through PgBouncer (`?pooler=transaction`)."""
    return pgbouncer.through(_postgres_session_url)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    """A private Redis Cluster (3 masters, 3 replicas) for the whole session.

    Tests that kill or restart nodes start their own (`private_redis_cluster`).
    """
    services.installed(redis_available(), "redis-server", "the cluster tests need it")
    with private_redis_cluster() as cluster:
        yield cluster


@pytest.fixture
def redis_cluster_url(redis_cluster: PrivateRedisCluster) -> str:
    return redis_cluster.url


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that ask for a service fixture carry its marker, so `-m 'not postgres'` works."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "postgres_url" in names and "database_url" not in names:
            item.add_marker(pytest.mark.postgres)
        if "redis_url" in names or "redis_cluster_url" in names:
            item.add_marker(pytest.mark.redis)


_SKIPPED: Counter[str] = Counter()  # tests skipped per service they needed


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        found = services.NEEDS.search(str(report.longrepr[2]))
        if found:
            _SKIPPED[found.group(1)] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SKIPPED:
        terminalreporter.section("services not reachable")
        for service, count in sorted(_SKIPPED.items()):
            terminalreporter.write_line(
                f"SKIPPED {count} test(s) that need {service}: it was not reachable. "
                "CI sets HEADCOUNT_TEST_REQUIRE_SERVICES=1 so these fail there instead."
            )
