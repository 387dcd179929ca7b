"""Run Alembic migrations programmatically (the scripts ship inside the package)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import OperationalError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


class DatabaseUnreachable(Exception):
    """The database could not be reached to migrate it; the message is the driver's first line."""


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Bring the schema up to date; `DatabaseUnreachable` if there is no database to talk to."""
    try:
        command.upgrade(alembic_config(database_url), revision)
    except (OperationalError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()
        raise DatabaseUnreachable(reason[0] if reason else type(exc).__name__) from exc


def current_heads(database_url: str) -> None:
    command.current(alembic_config(database_url))
