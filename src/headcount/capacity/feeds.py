"""An event's capacity snapshot, computed once per change (or tick) for every watcher.

Thousands of dashboards and attendee pages may watch one event. If each socket read the
snapshot itself every second, 10,000 sockets would cost 10,000 database snapshots and
Redis round trips per second, all answering the same question. Instead:

* **In a process**, the sockets watching one event at one tick length share one `Feed`:
  one task that learns the snapshot and hands every socket the same serialised message.
* **Across processes**, the feeds of all API processes share the computation itself
  through the live store (presence/shared.py): per tick, and per change announced by this
  process (`rt.signals`), the first feed to ask computes the snapshot under a short lock
  and stores it; the others read it. Changes made by processes that announce nothing (a
  ticket sold elsewhere, a lease that lapsed) show at the next tick, as before.

So the cost is about one snapshot per change plus one per tick for the whole cluster, and
one small Redis call per tick per process, whatever the number of sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from headcount.capacity.snapshot import capacity_snapshot
from headcount.capacity.views import CapacitySnapshot
from headcount.domain.errors import HeadcountError
from headcount.presence.shared import SharedValues, shared_values
from headcount.runtime import Runtime

log = logging.getLogger(__name__)

SNAPSHOTS_COMPUTED = Counter(
    "headcount_capacity_snapshots_computed",
    "Capacity snapshots computed for push channels (shared by all their sockets)",
)
# How long one feed may compute before another process takes over the computation.
COMPUTE_LOCK_MS = 2_000
# How often a feed asks again while another process computes.
WAIT_POLL_SECONDS = 0.02
# When and from how far behind a snapshot was read: not a change of any figure.
STAMPS = {"taken_at", "as_of", "replica_lag_ms"}


@dataclass
class Message:
    """What every socket of a feed is sent: one serialised text, built once."""

    text: str
    snapshot: dict[str, Any] | None = None  # None for an error message
    error: HeadcountError | None = None


@dataclass
class Feed:
    rt: Runtime
    event_id: str
    interval: float
    shared: SharedValues
    latest: Message | None = None
    watchers: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _figures: dict[str, Any] | None = None

    @property
    def scope(self) -> str:
        return f"capacity.{self.event_id}.{round(self.interval * 1000)}"

    def changed(self) -> asyncio.Event:
        """Set when `latest` is replaced (a new one is made for the next change)."""
        return self._changed

    def start(self, on_stop: Callable[[Feed], None]) -> None:
        self._task = asyncio.create_task(self._run())
        self._task.add_done_callback(lambda _: on_stop(self))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        flag = self.rt.signals.subscribe(self.event_id)
        bump = False
        try:
            while self.watchers > 0:
                self._publish(await self._learn(bump=bump))
                waker = asyncio.create_task(flag.wait())
                done, _ = await asyncio.wait({waker}, timeout=self.interval)
                waker.cancel()
                bump = bool(done)  # this process changed something: a new version
                flag.clear()
        finally:
            self.rt.signals.unsubscribe(self.event_id, flag)

    async def _learn(self, *, bump: bool) -> Message:
        """The snapshot for now: shared if some process computed it, else computed here."""
        tick_ms = max(1, round(self.interval * 1000))
        try:
            while True:
                claim = await self.shared.claim(
                    self.scope, bump=bump, tick_ms=tick_ms, lock_ms=COMPUTE_LOCK_MS
                )
                bump = False
                if claim.value is not None:
                    return Message(claim.value, json.loads(claim.value)["snapshot"])
                if claim.owner:
                    message = _snapshot_message(await self._compute())
                    await self.shared.fill(self.scope, claim.mark, message.text)
                    return message
                await asyncio.sleep(WAIT_POLL_SECONDS)  # another process computes it
        except HeadcountError as exc:  # e.g. the database briefly down: say so, go on
            return _error_message(exc)

    async def _compute(self) -> CapacitySnapshot:
        SNAPSHOTS_COMPUTED.inc()
        return await capacity_snapshot(self.rt, self.event_id)

    def _publish(self, message: Message) -> None:
        if message.snapshot is not None:
            figures = {k: v for k, v in message.snapshot.items() if k not in STAMPS}
            if figures == self._figures and self.latest is not None:
                return  # nothing moved: sockets hear nothing
            self._figures = figures
        self.latest = message
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def _snapshot_message(snapshot: CapacitySnapshot) -> Message:
    data = snapshot.model_dump(mode="json")
    return Message(json.dumps({"type": "snapshot", "snapshot": data}), data)


def _error_message(exc: HeadcountError) -> Message:
    body = {"type": "error", "code": exc.code, "title": exc.title, "detail": exc.detail}
    return Message(json.dumps({**body, **exc.extra}, default=str), None, exc)


class Feeds:
    """This process's feeds, one per (event, tick length) with at least one watcher."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.shared = shared_values(rt.presence)
        self._feeds: dict[tuple[str, float], Feed] = {}

    def watch(self, event_id: str, interval: float) -> Feed:
        feed = self._feeds.get((event_id, interval))
        if feed is None or feed.watchers == 0:
            feed = Feed(self.rt, event_id, interval, self.shared)
            self._feeds[(event_id, interval)] = feed
            feed.watchers = 1
            feed.start(self._stopped)
        else:
            feed.watchers += 1
        return feed

    def leave(self, feed: Feed) -> None:
        feed.watchers -= 1  # the feed's loop ends at its next turn when none is left

    def _stopped(self, feed: Feed) -> None:
        if self._feeds.get((feed.event_id, feed.interval)) is feed:
            del self._feeds[(feed.event_id, feed.interval)]

    async def close(self) -> None:
        await asyncio.gather(*(feed.stop() for feed in list(self._feeds.values())))


async def first_message(feed: Feed) -> Message:
    """The feed's current message, waiting for its first if it has none yet."""
    while feed.latest is None:
        await feed.changed().wait()
    return feed.latest
