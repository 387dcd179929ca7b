"""Engine, sessions and the one place transactions begin.

Transactions are owned by service functions through `Database.transaction()`: it commits
when the block ends normally and rolls back on any exception, so a refused request
changes nothing. Connection-level failures become `ServiceUnavailable` (HTTP 503) here,
once, instead of leaking driver exceptions as 500s.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from headcount.config import Settings
from headcount.domain.errors import ServiceUnavailable, Timeout
from headcount.ledger.urls import async_url

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL SQLSTATEs meaning "try the whole transaction again": serialization failure and
# deadlock. Our fixed lock order should prevent deadlocks; this is a safety net, not a plan.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
STATEMENT_TIMEOUT_SQLSTATES = frozenset({"57014", "55P03"})


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and _sqlstate(exc) in RETRYABLE_SQLSTATES


class Database:
    """One engine per process. Nothing connects until the first transaction."""

    def __init__(self, settings: Settings) -> None:
        self.url = async_url(settings.database_url)
        self.dialect = self.url.get_backend_name()
        self.engine: AsyncEngine = self._create_engine(settings)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def _create_engine(self, settings: Settings) -> AsyncEngine:
        if self.is_sqlite:
            engine = create_async_engine(
                self.url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                pool_timeout=settings.db_pool_timeout,
                connect_args={"timeout": 30},
            )
            _make_sqlite_transactions_immediate(engine)
            return engine
        server_settings = {"application_name": "headcount"}
        if settings.db_statement_timeout_ms:
            server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
            server_settings["lock_timeout"] = str(settings.db_statement_timeout_ms)
        return create_async_engine(
            self.url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_pre_ping=True,
            connect_args={
                "timeout": settings.db_connect_timeout,
                "server_settings": server_settings,
            },
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commit on success, roll back on any exception."""
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except DBAPIError as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc
        except (TimeoutError, OSError, PoolTimeout) as exc:
            raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from exc

    async def atomically(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 4
    ) -> T:
        """Run `work` in one transaction, retrying it whole on deadlock/serialization failure."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as session:
                    return await work(session)
            except DBAPIError as exc:
                if attempt == attempts or not is_retryable(exc):
                    raise
                log.warning("retrying transaction after %s (attempt %d)", _sqlstate(exc), attempt)
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self) -> None:
        async with self.transaction() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _translate(exc: DBAPIError) -> Exception:
    """Driver errors that mean "the database can't serve us now" become a 503; others stay."""
    state = _sqlstate(exc)
    if state in RETRYABLE_SQLSTATES:
        return exc  # the caller's retry loop handles these
    if state in STATEMENT_TIMEOUT_SQLSTATES:
        return Timeout("the database did not answer within the configured timeout")
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        message = str(exc.orig) if exc.orig is not None else str(exc)
        if "locked" in message or "busy" in message:
            return Timeout("the database is busy; try again")
        return ServiceUnavailable("database unreachable")
    if (
        isinstance(exc.orig, OSError | ConnectionError)
        or "connection" in type(exc.orig).__name__.lower()
    ):
        return ServiceUnavailable("database unreachable")
    return exc


def _make_sqlite_transactions_immediate(engine: AsyncEngine) -> None:
    """SQLite: take the write lock at BEGIN.

    With the default deferred BEGIN, two connections can both read and then fail to upgrade
    to a write lock (SQLITE_BUSY without waiting). BEGIN IMMEDIATE makes writers queue on
    the busy timeout instead, so the conditional UPDATE stays atomic across processes.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
