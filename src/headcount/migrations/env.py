"""Alembic environment: async engines for both SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from headcount.config import Settings
from headcount.ledger.schema import metadata
from headcount.ledger.urls import async_url, driver_options

config = context.config
url = config.attributes.get("database_url") or Settings().database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    target = async_url(url)
    # A database that is away at boot must fail the migration quickly, not after asyncpg's
    # 60 s default: `serve` then exits with a clear message (cli._migrate).
    connect_args: dict[str, object] = {}
    if target.get_backend_name() == "postgresql":
        connect_args["timeout"] = Settings().db_connect_timeout
        connect_args.update(driver_options(url))  # through a pooler too
    engine = create_async_engine(target, poolclass=pool.NullPool, connect_args=connect_args)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=str(async_url(url)), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
