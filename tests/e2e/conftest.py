"""One real `headcount serve` process per backend, shared by the tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import services
from support.servers import Server, running_server


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def server(request: pytest.FixtureRequest, log_dir: Path) -> Iterator[Server]:
    if request.param == "postgresql":
        services.need_postgres()
        url: str = request.getfixturevalue("_postgres_session_url")
    else:
        url = request.getfixturevalue("sqlite_url")
    with running_server(url, log_dir) as srv:
        yield srv
