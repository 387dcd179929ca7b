"""In-process presence: the embedded default (one process, no Redis).

Every method runs without awaiting in between, so on one event loop each is atomic, the
same guarantee the Redis backend gets from running one Lua script. It is correct for a
single API process only; run several processes and you need `HEADCOUNT_REDIS_URL`.

The bookkeeping mirrors the Redis scripts (`presence/redis.py`) step for step, so the two
engines keep one contract: places keyed `u:<holder>` (one per user) or `c:<lease id>`
(one per connection, renamed after the lease that takes it back from grace), each with
its live leases and, once it has none, the moment its grace ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from headcount.domain.presence import Count, has_room
from headcount.presence import base
from headcount.presence.base import (
    Admission,
    Lease,
    LeaseState,
    Place,
    Resource,
    Tally,
    new_lease_id,
    parse_lease_id,
)


@dataclass
class _Place:
    holder: str
    grace: float
    leases: set[str] = field(default_factory=set)
    # Once no lease holds the place: when its grace ends and it is freed.
    freed_at: float = 0.0


@dataclass
class _Room:
    leases: dict[str, Lease] = field(default_factory=dict)
    places: dict[str, _Place] = field(default_factory=dict)
    place_of: dict[str, str] = field(default_factory=dict)  # live lease id → place key
    idle: set[str] = field(default_factory=set)  # places held in grace (no live lease)
    closed: bool = False
    # Nothing lapses before this moment, so reads skip the scan until then. It may be
    # earlier than the true next expiry (a renewal does not move it): that costs one
    # scan that finds nothing, never a missed expiry.
    due: float = math.inf

    def tally(self) -> Tally:
        return Tally(len(self.places), len(self.idle), len(self.leases))


def _user_place(holder: str) -> str:
    return f"u:{holder}"


def _connection_place(lease_id: str) -> str:
    return f"c:{lease_id}"


class MemoryPresence(base.Presence):
    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rooms: dict[str, _Room] = {}

    def _live(self, resource: Resource) -> _Room:
        """The resource's room with lapsed leases and places dropped (the 'prelude')."""
        room = self._rooms.get(resource.key)
        if room is None:
            return _Room()
        now = self._clock()
        if now >= room.due:
            self._lapse(room, now)
        if not room.places and not room.leases and not room.closed:
            # Forget empty resources so memory stays bounded by the live places.
            del self._rooms[resource.key]
        return room

    def _lapse(self, room: _Room, now: float) -> None:
        expired = sorted(
            (lease for lease in room.leases.values() if lease.expires_at <= now),
            key=lambda lease: lease.expires_at,
        )
        for lease in expired:  # in expiry order: the last one starts its place's grace
            del room.leases[lease.lease_id]
            self._disconnect(room, lease.lease_id, lease.expires_at)
        for key in [k for k in room.idle if room.places[k].freed_at <= now]:
            self._forget(room, key)
        room.due = min(
            [lease.expires_at for lease in room.leases.values()]
            + [room.places[k].freed_at for k in room.idle],
            default=math.inf,
        )

    @staticmethod
    def _disconnect(room: _Room, lease_id: str, at: float) -> None:
        """A lease is gone without a leave: its place, if now unheld, starts its grace."""
        key = room.place_of.pop(lease_id, None)
        place = None if key is None else room.places.get(key)
        if key is None or place is None:
            return
        place.leases.discard(lease_id)
        if not place.leases:
            place.freed_at = at + place.grace
            room.idle.add(key)
            room.due = min(room.due, place.freed_at)

    @staticmethod
    def _forget(room: _Room, key: str) -> None:
        room.places.pop(key, None)
        room.idle.discard(key)

    @staticmethod
    def _own_place(room: _Room, holder: str, count: Count) -> tuple[str | None, str]:
        """The holder's place to take back or share, if any: (key, how)."""
        if count is Count.USERS:
            key = _user_place(holder)
            if key in room.places:
                return key, Place.RESUMED if key in room.idle else Place.SHARED
            return None, Place.NEW
        for key in room.idle:
            if key.startswith("c:") and room.places[key].holder == holder:
                return key, Place.RESUMED
        return None, Place.NEW

    async def claim(self, claim: base.Claim) -> Admission:
        resource, holder, count, grace = claim.resource, claim.holder, claim.count, claim.grace
        room = self._live(resource)
        if room.closed:
            return Admission(None, len(room.places), closed=True, in_grace=len(room.idle))
        lease_id = new_lease_id(resource)
        key, how = self._own_place(room, holder, count)
        if key is not None and key.startswith("c:"):
            # Renamed after the lease taking it back, as the Redis script does.
            self._forget(room, key)
            key = None
        if key is None:
            if how == Place.NEW and not has_room(len(room.places), claim.limit):
                return Admission(None, len(room.places), in_grace=len(room.idle))
            key = _user_place(holder) if count is Count.USERS else _connection_place(lease_id)
            room.places[key] = _Place(holder, grace)
        place = room.places[key]
        place.grace = grace
        place.leases.add(lease_id)
        room.idle.discard(key)
        lease = Lease(lease_id, resource, holder, self._clock() + claim.ttl)
        room.leases[lease_id] = lease
        room.place_of[lease_id] = key
        room.due = min(room.due, lease.expires_at)
        self._rooms[resource.key] = room
        return Admission(lease, len(room.places), place=how, in_grace=len(room.idle))

    def _held(self, lease_id: str, holder: str) -> tuple[_Room, Lease] | str:
        resource = parse_lease_id(lease_id)
        if resource is None:
            return LeaseState.GONE
        room = self._live(resource)
        lease = room.leases.get(lease_id)
        if lease is None:
            return LeaseState.GONE
        if lease.holder != holder:
            return LeaseState.NOT_HOLDER
        return room, lease

    async def renew(self, lease_id: str, holder: str, *, ttl: float) -> Lease | str:
        found = self._held(lease_id, holder)
        if isinstance(found, str):
            return found
        room, lease = found
        renewed = Lease(lease.lease_id, lease.resource, lease.holder, self._clock() + ttl)
        room.leases[lease_id] = renewed
        return renewed

    async def release(self, lease_id: str, holder: str) -> Lease | str:
        found = self._held(lease_id, holder)
        if found == LeaseState.GONE:
            return self._relinquish(lease_id, holder)
        if isinstance(found, str):
            return found
        room, lease = found
        del room.leases[lease_id]
        key = room.place_of.pop(lease_id)
        place = room.places.get(key)
        if place is not None:
            place.leases.discard(lease_id)
            if not place.leases:
                self._forget(room, key)  # a leave frees the place at once: no grace
        return lease

    def _relinquish(self, lease_id: str, holder: str) -> str:
        """A leave after the lease lapsed: free its place if it is held in grace."""
        resource = parse_lease_id(lease_id)
        if resource is None:
            return LeaseState.GONE
        room = self._live(resource)
        for key in (_connection_place(lease_id), _user_place(holder)):
            if key in room.idle and room.places[key].holder == holder:
                self._forget(room, key)
                return LeaseState.RELINQUISHED
        return LeaseState.GONE

    async def drop(self, lease_id: str, holder: str) -> Lease | str:
        found = self._held(lease_id, holder)
        if isinstance(found, str):
            return found
        room, lease = found
        del room.leases[lease_id]
        self._disconnect(room, lease_id, self._clock())
        return lease

    async def occupancy(self, resource: Resource) -> int:
        return len(self._live(resource).places)

    async def occupancies(self, resources: list[Resource]) -> dict[Resource, int]:
        return {r: len(self._live(r).places) for r in resources}

    async def tallies(self, resources: list[Resource]) -> dict[Resource, Tally]:
        return {r: self._live(r).tally() for r in resources}

    async def leases(self, resource: Resource) -> list[Lease]:
        return sorted(self._live(resource).leases.values(), key=lambda x: x.expires_at)

    async def close_resource(self, resource: Resource) -> int:
        room = self._live(resource)
        evicted = len(room.places)
        self._rooms[resource.key] = _Room(closed=True)
        return evicted

    async def reopen_resource(self, resource: Resource) -> None:
        self._rooms.pop(resource.key, None)

    async def prune(self) -> int:
        """Forget resources whose leases and places all ran out; returns how many leases
        expired.

        Reads drop what lapsed in the resource they touch; this catches resources nobody
        touches again, so a long-running process does not grow without bound.
        """
        before = sum(len(room.leases) for room in self._rooms.values())
        for key in list(self._rooms):
            kind, _, ident = key.partition(".")
            self._live(Resource(kind, ident))
        return before - sum(len(room.leases) for room in self._rooms.values())

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._rooms.clear()
