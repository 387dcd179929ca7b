"""Fresh, migrated databases for one test session (so parallel runs never collide)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from headcount.ledger.migrate import upgrade
from support import services

# The two backends every database-backed fixture runs on (`request.param` of those fixtures).
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
# The session's PostgreSQL database reached through a private PgBouncer in transaction
# mode (`pgbouncer_url` in tests/conftest.py): for the suites production runs that way.
PGBOUNCER = pytest.param("pgbouncer", id="pgbouncer", marks=pytest.mark.postgres)


def backend_url(request: pytest.FixtureRequest) -> str:
    """The session's database for the backend a fixture parametrized by BACKENDS (or
    PGBOUNCER) was given."""
    if request.param in ("postgresql", "pgbouncer"):
        services.need_postgres()
        fixture = "_postgres_session_url" if request.param == "postgresql" else "pgbouncer_url"
        url: str = request.getfixturevalue(fixture)
    else:
        url = request.getfixturevalue("sqlite_url")
    return url


def _admin_dsn(server: str) -> str:
    url = make_url(server).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@contextmanager
def postgres_database(
    prefix: str = "hc_test", *, server: str = services.POSTGRES_URL
) -> Iterator[str]:
    """CREATE a uniquely named database, migrate it, yield its URL, DROP it afterwards."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(_admin_dsn(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(drivername="postgresql", database=name)
    rendered = url.render_as_string(hide_password=False)
    try:
        upgrade(rendered)
        yield rendered
    finally:
        with psycopg.connect(_admin_dsn(server), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    url = f"sqlite:///{directory / 'headcount-test.db'}"
    upgrade(url)
    yield url
