"""Reads shared by callers that arrive together, never older than the caller's arrival.

A join must see its place's limit as it is when the join arrives: an organizer who lowers
a limit (in any process) has every later join measured against the new one. When a stream
starts, thousands of joins want the same row within seconds, and a transaction each was
the largest part of a join's cost (bench/RESULTS.md, "The stream-start herd").

Here a caller shares a read only if that read *starts after the caller asked*: one read of
a key runs at a time; callers arriving while it runs wait for the next one, which starts
when it ends and serves all of them. So each answer comes from a transaction begun after
its caller arrived (exactly what a read of its own would give), and a herd costs one
transaction per read's duration instead of one per join. Unlike `recent.py` nothing is
kept: no copy outlives the read that made it, so nothing needs invalidating.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class FreshReads(Generic[Key, Value]):
    def __init__(self) -> None:
        # Per key: the read not begun yet that every newcomer joins, with how to do it.
        self._next: dict[Key, tuple[asyncio.Future[Value], Callable[[], Awaitable[Value]]]] = {}
        self._running: set[Key] = set()

    async def get(self, key: Key, read: Callable[[], Awaitable[Value]]) -> Value:
        """`read()`'s answer, from a read that began after this call (maybe shared)."""
        pending = self._next.get(key)
        if pending is None:
            future: asyncio.Future[Value] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieved)
            pending = self._next[key] = (future, read)
            if key not in self._running:
                self._running.add(key)
                task = asyncio.ensure_future(self._reads(key))
                task.add_done_callback(_retrieved)
        # Shielded: a caller that gives up (a dropped socket) does not cancel the others' read.
        return await asyncio.shield(pending[0])

    async def _reads(self, key: Key) -> None:
        """Run the key's pending reads one after another until none is left."""
        try:
            while (pending := self._next.pop(key, None)) is not None:
                future, read = pending
                try:
                    value = await read()
                except asyncio.CancelledError:
                    future.cancel()
                    raise
                except Exception as exc:  # handed to every waiter
                    future.set_exception(exc)
                else:
                    future.set_result(value)
        finally:
            self._running.discard(key)
            left = self._next.pop(key, None)
            if left is not None:  # cancelled (shutdown) before its turn: nobody will run it
                left[0].cancel()


def _retrieved(done: asyncio.Future[Any]) -> None:
    """Waiters may all be gone: mark an error as seen so asyncio does not log it."""
    if not done.cancelled():
        done.exception()
