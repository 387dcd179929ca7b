"""A streaming replica that serves reads which may lag, only while it is close behind.

`Database.snapshot(may_lag=True)` asks this module for a unit of work on the replica.
The first statement of that unit measures how far behind the primary the replica is, in
the same REPEATABLE READ snapshot the reads that follow will see, so the figure is the
staleness of exactly those reads:

* the replica has replayed all it received and its WAL receiver is streaming: 0 ms (an
  idle primary sends nothing, and nothing is missing);
* otherwise: the time since the commit of the last transaction it replayed (it may miss
  anything committed since; an unknown time counts as too old).

More than `HEADCOUNT_READ_MAX_LAG`, or a replica that cannot be reached, and the unit is
abandoned before anything was read: the primary serves, and the replica is not asked
again for `RECHECK_SECONDS`. Nothing that decides an admission ever comes here
(`Database.transaction()` has no replica path). Reading `pg_stat_wal_receiver` needs a
superuser or `pg_read_all_stats` (`pg_monitor`); without it a replica of an idle primary
looks stale and is skipped (safe, but it serves nothing).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

# After a replica was found behind or unreachable, it is skipped without asking for this
# long: a replica that is down must not cost every read a failed connection attempt.
RECHECK_SECONDS = 1.0
STALENESS_KEY = "headcount_staleness"

_LAG_MS = text(
    """
    SELECT CASE
      WHEN NOT pg_is_in_recovery() THEN 0
      WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
           AND COALESCE((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false)
        THEN 0
      ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000
    END
    """
)


@dataclass(frozen=True, slots=True)
class Staleness:
    """Where a unit of work read from, and how far behind the primary that was."""

    source: Literal["primary", "replica"]
    lag_ms: int


PRIMARY = Staleness("primary", 0)

Unit = Callable[[async_sessionmaker[AsyncSession]], AbstractAsyncContextManager[AsyncSession]]


class ReadReplica:
    def __init__(
        self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], *, max_lag: float
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.max_lag_ms = max_lag * 1000
        self._skip_until = 0.0
        self._skipping = False

    async def enter(self, stack: AsyncExitStack, unit: Unit) -> AsyncSession | None:
        """A read-only unit of work on the replica, entered on `stack`, or None when the
        replica is behind, unreachable, or was so less than RECHECK_SECONDS ago."""
        if time.monotonic() < self._skip_until:
            return None
        attempt = AsyncExitStack()
        try:
            tx = await attempt.enter_async_context(unit(self.sessions))
            measured = (await tx.execute(_LAG_MS)).scalar()
        except Exception as exc:  # unreachable, timed out, refused: the primary serves
            await _abandon(attempt)
            self._skip(f"unreachable ({type(exc).__name__})")
            return None
        lag_ms = None if measured is None else max(0, round(float(measured)))
        if lag_ms is None or lag_ms > self.max_lag_ms:
            await _abandon(attempt)
            self._skip("behind by an unknown time" if lag_ms is None else f"{lag_ms} ms behind")
            return None
        if self._skipping:
            self._skipping = False
            log.warning("read replica serves again (%d ms behind)", lag_ms)
        tx.info[STALENESS_KEY] = Staleness("replica", lag_ms)
        stack.push_async_exit(attempt)
        return tx

    def _skip(self, why: str) -> None:
        self._skip_until = time.monotonic() + RECHECK_SECONDS
        if not self._skipping:
            self._skipping = True
            log.warning("read replica skipped, the primary serves its reads: %s", why)


async def _abandon(attempt: AsyncExitStack) -> None:
    with contextlib.suppress(Exception):
        await attempt.aclose()
