"""Per-process gates in front of hot rows: buyers of one ticket type queue here first.

A ticket type's stock row admits one holder at a time, and everyone else waits in
PostgreSQL's lock manager — where each waiter is a backend that wakes, re-checks and
sleeps again on every commit. With twenty connections queued on one row the database
spent more CPU per order on that churn than on the order itself, and served fewer
(bench/RESULTS.md: two processes served ~430 holds/s with 10 connections each queued on
the row, ~570 with a gate of 4 orders per process, ~600 with 2). So each
process lets at most `HEADCOUNT_HOT_ROW_CONCURRENCY` orders per ticket type into the
database at once; the rest wait on an asyncio semaphore, which costs nothing while
waiting. Other ticket types, and every other use of the pool, are not held back.

Gates are taken in ascending ticket-type id, the order every transaction locks rows in,
so two multi-line orders can never hold each other's gate (no cycle). A gate is a
throughput measure only: admission is still the database's conditional UPDATE, across
processes and replicas.

Shared fate: when an order inside a gate fails because the database did not answer (a
frozen server, a lock held elsewhere), the orders that were already waiting behind it
fail the same way at once instead of each taking its own timeout in turn — a queue of
twelve would otherwise answer the last one after six timeouts.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from weakref import WeakValueDictionary

# Keys remembered per table (bucketed types never go stale: stock_buckets is fixed).
_MAX_REMEMBERED = 100_000


class Gates:
    """One semaphore per key, created on first use and dropped when nobody holds it."""

    def __init__(self, width: int, *, shared_failures: tuple[type[Exception], ...] = ()) -> None:
        self.width = width
        self._shared = shared_failures
        self._gates: WeakValueDictionary[str, asyncio.Semaphore] = WeakValueDictionary()
        # Per key: when a shared failure last came out of the gate, and which.
        self._failed: dict[str, tuple[float, Exception]] = {}
        # Keys whose rows spread over several (hot-inventory buckets): their gate is wider.
        self._spread: dict[str, int] = {}

    def _gate(self, key: str) -> asyncio.Semaphore:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Semaphore(self.width * self._spread.get(key, 1))
        return gate

    def spread(self, key: str, rows: int) -> None:
        """`key` is served by `rows` rows in parallel (a bucketed type): widen its gate."""
        if rows <= 1 or self._spread.get(key, 1) >= rows or len(self._spread) >= _MAX_REMEMBERED:
            return
        before = self._spread.get(key, 1)
        self._spread[key] = rows
        gate = self._gates.get(key)
        if gate is not None and self.width > 0:
            for _ in range(self.width * (rows - before)):
                gate.release()  # a plain Semaphore may grow past its start value

    @asynccontextmanager
    async def through(self, keys: Iterable[str]) -> AsyncIterator[None]:
        """Hold the gates of `keys` (ascending, each once) for the block; 0 width: none."""
        if self.width <= 0:
            yield
            return
        ordered = sorted(set(keys))
        waiting_since = time.monotonic()
        async with AsyncExitStack() as stack:
            for key in ordered:
                gate = self._gate(key)
                await gate.acquire()
                stack.callback(gate.release)  # also keeps the weakly held gate alive
            for key in ordered:
                failed = self._failed.get(key)
                if failed is not None and failed[0] >= waiting_since:
                    raise copy.copy(failed[1])  # the one ahead of us found no database
            try:
                yield
            except self._shared as exc:
                if len(self._failed) >= _MAX_REMEMBERED:
                    self._failed.clear()
                now = time.monotonic()
                self._failed.update((key, (now, exc)) for key in ordered)
                raise
