"""Real `headcount serve` processes and the databases they share, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support import services
from support.browser import chromium_path, launched_chromium
from support.databases import BACKENDS, backend_url
from support.servers import Server, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, log_dir: Path) -> Iterator[Server]:
    """One server process per backend, shared by the tests of a module."""
    with running_server(backend_url(request), log_dir) as srv:
        yield srv


@pytest.fixture
def shared_postgres(request: pytest.FixtureRequest) -> str:
    """The session's PostgreSQL database, for server processes that must share one
    (several processes cannot share a SQLite file's writes at load)."""
    services.need_postgres()
    url: str = request.getfixturevalue("_postgres_session_url")
    return url


@pytest.fixture(params=BACKENDS)
def shared_database(request: pytest.FixtureRequest) -> str:
    """The database a test's own server processes share (they start them with its settings)."""
    return backend_url(request)


@pytest.fixture(scope="module")
def web_server(sqlite_url: str, log_dir: Path) -> Iterator[Server]:
    """The server a module of browser tests drives; without a browser the module skips (or
    fails, in CI) before starting anything."""
    chromium_path()
    with running_server(sqlite_url, log_dir) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched
