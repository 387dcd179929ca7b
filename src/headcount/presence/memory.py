"""In-process presence: the embedded default (one process, no Redis).

Every method runs without awaiting in between, so on one event loop each is atomic, the
same guarantee the Redis backend gets from running one Lua script. It is correct for a
single API process only; run several processes and you need `HEADCOUNT_REDIS_URL`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from headcount.domain.presence import has_room
from headcount.presence.base import (
    Admission,
    Lease,
    LeaseState,
    Resource,
    new_lease_id,
    parse_lease_id,
)


@dataclass
class _Room:
    leases: dict[str, Lease] = field(default_factory=dict)
    closed: bool = False


class MemoryPresence:
    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rooms: dict[str, _Room] = {}

    def _live(self, resource: Resource) -> _Room:
        """The resource's room with expired leases dropped (the 'drop expired' step)."""
        room = self._rooms.get(resource.key)
        if room is None:
            return _Room()
        now = self._clock()
        for lease_id in [k for k, v in room.leases.items() if v.expires_at <= now]:
            del room.leases[lease_id]
        if not room.leases and not room.closed:
            # Forget empty resources so memory stays bounded by the live leases.
            del self._rooms[resource.key]
        return room

    async def admit(
        self, resource: Resource, holder: str, *, limit: int | None, ttl: float
    ) -> Admission:
        room = self._live(resource)
        count = len(room.leases)
        if room.closed:
            return Admission(None, count, closed=True)
        if not has_room(count, limit):
            return Admission(None, count)
        lease = Lease(new_lease_id(resource), resource, holder, self._clock() + ttl)
        room.leases[lease.lease_id] = lease
        self._rooms[resource.key] = room
        return Admission(lease, count + 1)

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
        if isinstance(found, str):
            return found
        room, lease = found
        del room.leases[lease_id]
        return lease

    async def occupancy(self, resource: Resource) -> int:
        return len(self._live(resource).leases)

    async def occupancies(self, resources: list[Resource]) -> dict[Resource, int]:
        return {r: len(self._live(r).leases) for r in resources}

    async def leases(self, resource: Resource) -> list[Lease]:
        return sorted(self._live(resource).leases.values(), key=lambda x: x.expires_at)

    async def close_resource(self, resource: Resource) -> int:
        room = self._live(resource)
        evicted = len(room.leases)
        room.leases.clear()
        room.closed = True
        self._rooms[resource.key] = room
        return evicted

    async def reopen_resource(self, resource: Resource) -> None:
        self._rooms.pop(resource.key, None)

    async def prune(self) -> int:
        """Forget resources whose leases all ran out; returns how many leases expired.

        Reads drop expired leases of the resource they touch; this catches resources
        nobody touches again, so a long-running process does not grow without bound.
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
