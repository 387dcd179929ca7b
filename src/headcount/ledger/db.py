"""Engine, sessions and the one place transactions begin.

Transactions are owned by service functions through `Database.transaction()`: it commits
when the block ends normally and rolls back on any exception, so a refused request
changes nothing. Connection-level failures become `ServiceUnavailable` (HTTP 503) here,
once, instead of leaking driver exceptions as 500s.

With `HEADCOUNT_DATABASE_READ_URL`, reads that may lag (`snapshot(may_lag=True)`) go to
a streaming replica when it is close enough behind (ledger/replica.py); everything else —
every admission, and a caller's reads of what they just changed — stays on the primary.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from headcount.config import Settings
from headcount.domain.errors import InvalidRequest, ServiceUnavailable, Timeout
from headcount.ledger import changes, stock_news
from headcount.ledger.replica import PRIMARY, STALENESS_KEY, ReadReplica, Staleness
from headcount.ledger.urls import async_url, driver_options
from headcount.ledger.wire import timed_connection

log = logging.getLogger(__name__)
T = TypeVar("T")

# A unit of work: what every ledger statement runs in. Layers above the ledger name it by
# this alias and never import SQLAlchemy themselves (tests/unit/test_layering.py).
Tx = AsyncSession
# Execution option marking the connections of `Database.snapshot()` (see `_on_begin`).
SNAPSHOT_OPTION = "headcount_snapshot"

# PostgreSQL SQLSTATEs meaning "try the whole transaction again": serialization failure and
# deadlock. Our fixed lock order should prevent deadlocks; this is a safety net, not a plan.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
STATEMENT_TIMEOUT_SQLSTATES = frozenset({"57014", "55P03"})
# "Not now" answers from a server that is shutting down, crashing, starting up, or full;
# with class 08 (connection exceptions) they mean 503, not a bug (`_translate`).
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# Values the database cannot store (a NUL character, a number out of range, a string too
# long): input the API let through, refused here as 422 instead of surfacing as a 500.
BAD_VALUE_SQLSTATES = frozenset({"22001", "22003", "22007", "22008", "22021", "22P05"})
# Seconds the client waits beyond the server's statement timeout before giving up itself.
CLIENT_TIMEOUT_MARGIN = 0.5
# SQLite lock wait when no statement timeout is configured.
SQLITE_DEFAULT_BUSY_MS = 30_000
# A pooled connection idle for longer than this is pinged before use (see `_ping_if_idle`).
PING_AFTER_IDLE_SECONDS = 1.0


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and _sqlstate(exc) in RETRYABLE_SQLSTATES


_FREED_KEY = "headcount_stock_freed"
_ANY: frozenset[str] = frozenset({"*"})


def stock_freed(tx: AsyncSession, ticket_type_ids: Iterable[str] | None = None) -> None:
    """Note that `tx` may free stock on these ticket types (None: on any, e.g. a pool or
    an event cap raised). Once it commits, `Database.stock_freed` hears of them, so a
    process stops answering "sold out" from memory (capacity/soldout.py) the moment its
    own release commits, whichever path released."""
    noted: set[str] = tx.info.setdefault(_FREED_KEY, set())
    noted.update(_ANY if ticket_type_ids is None else ticket_type_ids)


def staleness(tx: AsyncSession) -> Staleness:
    """How far behind the primary the unit of work `tx` reads (primary: not at all)."""
    found = tx.info.get(STALENESS_KEY)
    return found if isinstance(found, Staleness) else PRIMARY


class Database:
    """One engine per process (two with a read replica). Nothing connects until the first
    transaction."""

    def __init__(self, settings: Settings) -> None:
        self.url = async_url(settings.database_url)
        self.dialect = self.url.get_backend_name()
        self.engine: AsyncEngine = self._create_engine(settings, settings.database_url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.snapshots = self._snapshot_sessions(self.engine)
        self.replica: ReadReplica | None = None
        if settings.database_read_url and not self.is_sqlite:
            replica_engine = self._create_engine(
                settings, settings.database_read_url, application_name="headcount-read"
            )
            self.replica = ReadReplica(
                replica_engine,
                self._snapshot_sessions(replica_engine),
                max_lag=settings.read_max_lag,
            )
        # HEADCOUNT_CHANGE_LOG=off: record nothing (only to measure what recording costs).
        self.records_changes = settings.change_log
        # Called after a unit of work that recorded changes commits: wakes this process's
        # sequencer (capacity/sequencer.py), so a change is positioned within milliseconds.
        self.changes_committed: Callable[[], None] = _nothing
        # Called after a unit of work that noted `stock_freed` commits, with the types
        # (None: any); the runtime drops its sold-out marks for them.
        self.stock_freed: Callable[[Iterable[str] | None], None] = _ignore
        # PostgreSQL: a unit of work that frees stock also tells every other process, in
        # the same transaction (delivered at COMMIT), so their marks end within
        # milliseconds rather than their TTL (ledger/stock_news.py).
        self.announces_stock = stock_news.possible(settings.database_url)

    def _snapshot_sessions(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        # Same pool; each checkout is switched to a read-only snapshot and back on return.
        snapshot: dict[str, Any] = {SNAPSHOT_OPTION: True}
        if not self.is_sqlite:
            snapshot.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        return async_sessionmaker(engine.execution_options(**snapshot), expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def _create_engine(
        self, settings: Settings, url: str, *, application_name: str = "headcount"
    ) -> AsyncEngine:
        if self.is_sqlite:
            # Writers queue on SQLite's lock; how long one may wait is the statement timeout,
            # so a lock held elsewhere becomes a 503 `timeout` within the configured bound.
            busy = (settings.db_statement_timeout_ms or SQLITE_DEFAULT_BUSY_MS) / 1000
            engine = create_async_engine(
                self.url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                pool_timeout=settings.db_pool_timeout,
                connect_args={"timeout": busy},
            )
            _make_sqlite_transactions_immediate(engine, busy_ms=int(busy * 1000))
            return engine
        connect_args: dict[str, Any] = {
            "timeout": settings.db_connect_timeout,
            # The one startup parameter PgBouncer passes on besides the encoding.
            "server_settings": {"application_name": application_name},
            **driver_options(url),
        }
        if settings.db_statement_timeout_ms:
            # Statement and lock timeouts travel with every BEGIN (`SET LOCAL`, in the same
            # message: no extra round trip), not as startup parameters, which a
            # transaction pooler neither forwards nor keeps per client.
            connect_args["connection_class"] = timed_connection(settings.db_statement_timeout_ms)
            # The server-side timeouts cannot fire when the server itself stalls (frozen
            # host, network partition): the client must give up too, slightly later, so a
            # request fails fast with 503 instead of waiting forever on a silent socket.
            connect_args["command_timeout"] = (
                settings.db_statement_timeout_ms / 1000 + CLIENT_TIMEOUT_MARGIN
            )
        engine = create_async_engine(
            async_url(url),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            connect_args=connect_args,
        )
        _ping_if_idle(engine)
        return engine

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A unit of work: commit on success, roll back on any exception."""
        return self._unit(self.sessions)

    def snapshot(self, *, may_lag: bool = False) -> AbstractAsyncContextManager[AsyncSession]:
        """A read-only unit of work that sees one point in time, for reads of many rows.

        PostgreSQL: `REPEATABLE READ, READ ONLY`, so every statement sees the snapshot
        taken at the first one (READ COMMITTED would give each statement its own) and any
        write fails. SQLite: a deferred `BEGIN` instead of `BEGIN IMMEDIATE`; in WAL mode
        its first read fixes a snapshot that lasts until COMMIT, and it never queues on
        the write lock, so reads do not wait behind writers and writers not behind reads.
        Admissions, and reads of what the same transaction wrote, use `transaction()`.

        `may_lag=True`: the caller accepts a view up to `HEADCOUNT_READ_MAX_LAG` seconds
        old (a capacity snapshot, a listing), so a read replica may serve it;
        `staleness(tx)` says how old it is. A caller reading what it has just changed
        must not pass it: a replica may not have it yet.
        """
        if may_lag and self.replica is not None:
            return self._lagging_snapshot(self.replica)
        return self._unit(self.snapshots)

    @asynccontextmanager
    async def _lagging_snapshot(self, replica: ReadReplica) -> AsyncIterator[AsyncSession]:
        async with AsyncExitStack() as stack:
            tx = await replica.enter(stack, self._unit)
            if tx is None:  # behind, unreachable, or recently so: the primary serves
                tx = await stack.enter_async_context(self._unit(self.snapshots))
            yield tx

    @asynccontextmanager
    async def _unit(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        recorded = 0
        freed: set[str] = set()
        try:
            async with sessions() as tx, tx.begin():
                if not self.records_changes:
                    tx.info[changes.OFF] = True
                yield tx
                # The decisions recorded in this unit of work, as its last statement: they
                # commit with it or not at all (ledger/changes.py).
                recorded = await changes.flush(tx)
                freed = tx.info.get(_FREED_KEY, freed)
                if freed and self.announces_stock:
                    await stock_news.announce(tx, None if "*" in freed else freed)
        except DBAPIError as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc
        except (TimeoutError, OSError, PoolTimeout) as exc:
            raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from exc
        if recorded:
            self.changes_committed()
        if freed:
            self.stock_freed(None if "*" in freed else freed)

    async def atomically(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 4
    ) -> T:
        """Run `work` in one transaction, retrying it whole on deadlock/serialization failure."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as tx:
                    return await work(tx)
            except DBAPIError as exc:
                if attempt == attempts or not is_retryable(exc):
                    raise
                log.warning("retrying transaction after %s (attempt %d)", _sqlstate(exc), attempt)
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self) -> None:
        async with self.transaction() as tx:
            await tx.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica is not None:
            await self.replica.engine.dispose()


def _ignore(_: Iterable[str] | None) -> None:
    pass


def _nothing() -> None:
    pass


def _translate(exc: DBAPIError) -> Exception:
    """Driver errors that mean "the database can't serve us now" become a 503; others stay."""
    state = _sqlstate(exc)
    if state in RETRYABLE_SQLSTATES:
        return exc  # the caller's retry loop handles these
    if (known := _by_sqlstate(state, exc)) is not None:
        return known
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        message = _first_line(exc)
        if "locked" in message or "busy" in message:
            return Timeout("the database is busy; try again")
        return ServiceUnavailable("database unreachable")
    if (
        isinstance(exc.orig, OSError | ConnectionError)
        or "connection" in type(exc.orig).__name__.lower()
    ):
        return ServiceUnavailable("database unreachable")
    return exc


def _by_sqlstate(state: str | None, exc: DBAPIError) -> Exception | None:
    if state is None:
        return None
    if state in STATEMENT_TIMEOUT_SQLSTATES:
        return Timeout("the database did not answer within the configured timeout")
    if state in BAD_VALUE_SQLSTATES:
        return InvalidRequest(f"a value cannot be stored: {_first_line(exc)}")
    if state in UNAVAILABLE_SQLSTATES or state.startswith("08"):
        return ServiceUnavailable(f"database unavailable (SQLSTATE {state})")
    return None


def _first_line(exc: DBAPIError) -> str:
    """The driver's message without SQLAlchemy's statement and parameters (never echo data)."""
    message = str(exc.orig) if exc.orig is not None else str(exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__


def _ping_if_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only if it sat idle, not on every checkout.

    SQLAlchemy's `pool_pre_ping` costs a round trip and ~200 µs of CPU per transaction,
    about a tenth of an order (bench/RESULTS.md). A connection back in the pool less than
    `PING_AFTER_IDLE_SECONDS` ago was just used successfully; one idle longer (a database
    restart, a proxy's idle cut) is pinged, and a dead one invalidates the whole pool so
    the checkout retries on a fresh connection. A restart inside that second still costs
    at most the requests in flight a 503 (`transaction` translates it), never a 500.
    """
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # fresh, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError("pooled connection failed its ping") from exc


def _make_sqlite_transactions_immediate(engine: AsyncEngine, *, busy_ms: int) -> None:
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
        cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A snapshot only reads: a deferred BEGIN takes no lock (see `Database.snapshot`).
        deferred = conn.get_execution_options().get(SNAPSHOT_OPTION, False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")
