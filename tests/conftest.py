"""Fixtures shared by every test layer.

Databases are created fresh for each test session (a uniquely named PostgreSQL database,
a temporary SQLite file), so parallel runs never collide; every test makes its own event,
so tests are independent of order. Server processes are real `headcount serve` commands.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from headcount.config import Settings
from headcount.runtime import Runtime
from support import services
from support.databases import postgres_database, sqlite_database

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


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
    if request.param == "postgresql":
        services.need_postgres()
        url: str = request.getfixturevalue("postgres_url")
        return url
    sqlite: str = request.getfixturevalue("sqlite_url")
    return sqlite


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, env="test", **overrides)


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    rt = Runtime.from_settings(make_settings(database_url))
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
def redis_url() -> str:
    services.need_redis()
    return services.REDIS_URL


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that ask for a service fixture carry its marker, so `-m 'not postgres'` works."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "postgres_url" in names and "database_url" not in names:
            item.add_marker(pytest.mark.postgres)
        if "redis_url" in names:
            item.add_marker(pytest.mark.redis)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if services.SKIPPED:
        terminalreporter.section("services not reachable")
        for service, count in services.SKIPPED.items():
            terminalreporter.write_line(
                f"SKIPPED {count} test(s) that need {service}: it was not reachable. "
                "CI sets HEADCOUNT_TEST_REQUIRE_SERVICES=1 so these fail there instead."
            )
