"""A per-process copy of values read elsewhere, at most `max_age` seconds old.

For figures that are only *shown*, never acted on: a heartbeat's answer shows its
resource's limit, and a leave needs the resource's event to wake the push channel.
Neither admits anyone, so they read a copy instead of a database transaction per ping
(5,000 viewers renewing every 5 s made 1,000 transactions/s; bench/RESULTS.md). Admission
never reads from here.

One read per key refreshes a stale copy while every other caller awaits that same read:
at 1,000 heartbeats/s, letting each caller that found the copy stale read on its own
queued hundreds of transactions behind SQLite's write lock each second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")

DEFAULT_MAX_AGE = 1.0
# Distinct keys kept before the copy is dropped whole (bounds memory, not correctness).
DEFAULT_SIZE = 10_000


class RecentReads(Generic[Key, Value]):
    def __init__(self, *, max_age: float = DEFAULT_MAX_AGE, size: int = DEFAULT_SIZE) -> None:
        self.max_age = max_age
        self._size = size
        self._copies: dict[Key, tuple[float, asyncio.Future[Value]]] = {}

    async def get(self, key: Key, read: Callable[[], Awaitable[Value]]) -> Value:
        """The copy of `key` if fresh (or being read), else `read()` shared by all waiters."""
        now = time.monotonic()
        found = self._copies.get(key)
        if found is not None and (now - found[0] < self.max_age or not found[1].done()):
            return await asyncio.shield(found[1])
        if len(self._copies) >= self._size:
            self._copies.clear()
        reading = asyncio.ensure_future(read())
        self._copies[key] = (now, reading)
        try:
            return await asyncio.shield(reading)
        except BaseException:
            if key in self._copies and self._copies[key][1] is reading:
                del self._copies[key]  # a failed read is not kept: the next caller tries again
            raise

    def forget(self, key: Key) -> None:
        """Drop the copy of `key` (this process just changed it): the next get reads."""
        self._copies.pop(key, None)
