"""Waiting-room queues: who waits in what order, and who holds a pass right now.

The queue lives beside the presence engine, in the same store: Redis when configured
(`presence/queue_redis.py`, one Lua script per step, so every API process serves every
visitor and a killed process loses nobody's place), else this process's memory
(`MemoryQueues`, below: the embedded default). Both follow one contract:

* `join` queues a visitor once (again: the same place) at the score `domain.queue`
  gives, and answers their spot; a room that is sold out queues nobody new.
* `admit` first drops lapsed passes, then moves visitors from the head to the active set
  while the room is open, fewer than `active_limit` hold a pass and the rate's token
  bucket (`admit_per_minute`, saving up at most `burst`) allows; each admission gets the
  next admission number, which the visitor's pass names. One atomic step: the active
  limit is enforced by the store, never by counting in Python.
* `touch` renews a live pass (activity) and `release` ends it (bought or abandoned),
  both only for the admission number the pass names; `leave` drops a queued visitor.
* a live space's queue (`capacity/live_queue.py`) marks its waiting sockets as seen on
  every look (`live=True`), and `prune` drops the head while it was not seen lately (a
  dropped socket, a killed process): only the head can hold the others up.
* `set_status` marks the room sold out (nobody admitted, nobody new queued, the order
  kept; queued and admitted visitors alike read `sold_out`) or open again.

Times are the store's (Redis `TIME`; here the injected clock), in milliseconds.
"""

from __future__ import annotations

import bisect
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from headcount.domain.queue import RoomStatus, RoomTerms, TicketState, arrival_score
from headcount.presence.base import Presence

# Recent admissions kept for the organizer's figures (rate, median wait).
RECENT_ADMISSIONS = 2_000


@dataclass(frozen=True, slots=True)
class Spot:
    """A visitor's place as the store saw it at `now_ms`."""

    state: TicketState
    position: int | None  # 1-based while waiting
    queued: int
    admission: str | None = None  # the live admission number, when admitted
    expires_ms: int | None = None  # when the pass lapses unless touched
    now_ms: int = 0


@dataclass(frozen=True, slots=True)
class Admitted:
    visitor: str
    admission: str
    waited_ms: int


@dataclass(frozen=True, slots=True)
class QueueFigures:
    queued: int
    active: int
    admitted_total: int
    status: RoomStatus
    # (admitted at ms, waited ms), newest first, at most RECENT_ADMISSIONS.
    recent: list[tuple[int, int]]
    now_ms: int


class Queues(Protocol):
    async def join(
        self, terms: RoomTerms, visitor: str, *, draw: int, live: bool = False
    ) -> Spot: ...

    async def look(self, terms: RoomTerms, visitor: str, *, live: bool = False) -> Spot:
        """The visitor's spot; `live` also marks a waiting socket as seen now."""

    async def prune(self, terms: RoomTerms, *, stale_ms: int) -> int:
        """Drop waiting sockets at the head not seen for `stale_ms`; how many."""

    async def admit(self, terms: RoomTerms) -> list[Admitted]: ...

    async def touch(self, terms: RoomTerms, visitor: str, admission: str) -> int | None:
        """The pass's new expiry (ms) if it is live, else None."""

    async def release(self, terms: RoomTerms, visitor: str, admission: str) -> bool: ...

    async def leave(self, terms: RoomTerms, visitor: str) -> bool: ...

    async def set_status(self, terms: RoomTerms, status: RoomStatus) -> int:
        """Sets the room's status; answers how many are queued."""

    async def figures(self, terms: RoomTerms) -> QueueFigures: ...


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Room:
    order: list[tuple[int, str]] = field(default_factory=list)  # sorted (score, visitor)
    scores: dict[str, int] = field(default_factory=dict)
    joined: dict[str, int] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)  # visitor → expiry ms
    admissions: dict[str, str] = field(default_factory=dict)  # visitor → admission number
    seen: dict[str, int] = field(default_factory=dict)  # waiting socket → last seen ms
    arrivals: int = 0
    admitted: int = 0
    tokens: float | None = None
    tokens_at: int = 0
    status: RoomStatus = RoomStatus.OPEN
    recent: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=RECENT_ADMISSIONS))


class MemoryQueues:
    """The same contract in this process's memory (one process: the embedded default).

    Position lookups are a binary search over the sorted queue (O(log n)); a join in the
    middle (a random early arrival) shifts the list, which is a memmove.
    """

    def __init__(self, clock: Callable[[], int] = wall_ms) -> None:
        self._clock = clock
        self._rooms: dict[str, _Room] = {}

    def _room(self, terms: RoomTerms) -> tuple[_Room, int]:
        room = self._rooms.setdefault(terms.room_id, _Room())
        now = self._clock()
        for visitor, expiry in list(room.active.items()):
            if expiry <= now:
                del room.active[visitor]
                room.admissions.pop(visitor, None)
        return room, now

    def _spot(self, room: _Room, visitor: str, now: int) -> Spot:
        if visitor in room.active and room.status is RoomStatus.SOLD_OUT:
            return Spot(TicketState.SOLD_OUT, None, len(room.order), now_ms=now)
        if visitor in room.active:
            return Spot(
                TicketState.ADMITTED,
                None,
                len(room.order),
                admission=room.admissions[visitor],
                expires_ms=room.active[visitor],
                now_ms=now,
            )
        score = room.scores.get(visitor)
        if score is None:
            return Spot(TicketState.GONE, None, len(room.order), now_ms=now)
        rank = bisect.bisect_left(room.order, (score, visitor))
        state = TicketState.SOLD_OUT if room.status is RoomStatus.SOLD_OUT else TicketState.WAITING
        return Spot(state, rank + 1, len(room.order), now_ms=now)

    async def join(self, terms: RoomTerms, visitor: str, *, draw: int, live: bool = False) -> Spot:
        room, now = self._room(terms)
        if visitor not in room.active and visitor not in room.scores:
            if room.status is RoomStatus.SOLD_OUT:
                return Spot(TicketState.SOLD_OUT, None, len(room.order), now_ms=now)
            room.arrivals += 1
            early = now < terms.opens_at_ms
            score = arrival_score(terms.order, early=early, draw=draw, arrival=room.arrivals)
            room.scores[visitor] = score
            room.joined[visitor] = now
            bisect.insort(room.order, (score, visitor))
        if live and visitor in room.scores:
            room.seen[visitor] = now
        return self._spot(room, visitor, now)

    async def look(self, terms: RoomTerms, visitor: str, *, live: bool = False) -> Spot:
        room, now = self._room(terms)
        if live and visitor in room.scores:
            room.seen[visitor] = now
        return self._spot(room, visitor, now)

    async def prune(self, terms: RoomTerms, *, stale_ms: int) -> int:
        room, now = self._room(terms)
        dropped = 0
        while room.order and dropped < 100:
            _, head = room.order[0]
            seen = room.seen.get(head)
            if seen is None or seen >= now - stale_ms:
                break
            await self.leave(terms, head)
            dropped += 1
        return dropped

    async def admit(self, terms: RoomTerms) -> list[Admitted]:
        room, now = self._room(terms)
        if now < terms.opens_at_ms or room.status is RoomStatus.SOLD_OUT:
            return []
        tokens = terms.burst if room.tokens is None else room.tokens
        elapsed = max(0, now - room.tokens_at) if room.tokens is not None else 0
        tokens = min(terms.burst, tokens + elapsed * terms.admit_per_minute / 60_000)
        free = terms.active_limit - len(room.active)
        n = max(0, min(int(tokens), free, len(room.order)))
        out: list[Admitted] = []
        if n:
            head, room.order = room.order[:n], room.order[n:]
            for _, visitor in head:
                del room.scores[visitor]
                room.seen.pop(visitor, None)
                room.admitted += 1
                admission = str(room.admitted)
                room.active[visitor] = now + terms.pass_ttl_ms
                room.admissions[visitor] = admission
                waited = now - room.joined.pop(visitor, now)
                room.recent.appendleft((now, waited))
                out.append(Admitted(visitor, admission, waited))
            tokens -= n
        room.tokens, room.tokens_at = tokens, now
        return out

    async def touch(self, terms: RoomTerms, visitor: str, admission: str) -> int | None:
        room, now = self._room(terms)
        if visitor not in room.active or room.admissions.get(visitor) != admission:
            return None
        room.active[visitor] = now + terms.pass_ttl_ms
        return room.active[visitor]

    async def release(self, terms: RoomTerms, visitor: str, admission: str) -> bool:
        room, _ = self._room(terms)
        if visitor not in room.active or room.admissions.get(visitor) != admission:
            return False
        del room.active[visitor]
        del room.admissions[visitor]
        return True

    async def leave(self, terms: RoomTerms, visitor: str) -> bool:
        room, _ = self._room(terms)
        score = room.scores.pop(visitor, None)
        if score is None:
            return False
        room.joined.pop(visitor, None)
        room.seen.pop(visitor, None)
        del room.order[bisect.bisect_left(room.order, (score, visitor))]
        return True

    async def set_status(self, terms: RoomTerms, status: RoomStatus) -> int:
        room, _ = self._room(terms)
        room.status = status
        return len(room.order)

    async def figures(self, terms: RoomTerms) -> QueueFigures:
        room, now = self._room(terms)
        return QueueFigures(
            queued=len(room.order),
            active=len(room.active),
            admitted_total=room.admitted,
            status=room.status,
            recent=list(room.recent),
            now_ms=now,
        )


_LOCAL: weakref.WeakKeyDictionary[Presence, Queues] = weakref.WeakKeyDictionary()


def queues_of(presence: Presence) -> Queues:
    """The queues beside `presence`: in its Redis, or in this process with it."""
    from headcount.presence.redis import RedisPresence

    found = _LOCAL.get(presence)
    if found is None:
        if isinstance(presence, RedisPresence):
            from headcount.presence.queue_redis import RedisQueues

            found = RedisQueues.beside(presence)
        else:
            found = MemoryQueues()
        _LOCAL[presence] = found
    return found
