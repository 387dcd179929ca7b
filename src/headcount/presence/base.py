"""The presence contract: places held by leases that expire unless renewed.

A *lease* is one connection (a socket, a REST client renewing it). A *place* is what the
limit counts: with `Count.USERS` one per person, shared by all of that person's leases;
with `Count.CONNECTIONS` one per lease. Occupancy is always *the number of places*, and a
place exists only while a lease of it is live or its grace runs: there is no counter to
drift, so a crashed API process cannot leave ghost viewers behind; its leases run out,
their places are held for the grace, then freed.

Reconnect grace: a place whose last lease is lost without a leave (it expired, or its
socket dropped: `drop`) is kept for its holder for the grace given at admission. The
same holder admitted again meanwhile takes it back, even when the space is full, and is
not counted twice; nobody else can take it; a `release` (an explicit leave) frees it at
once. Both backends (in-process memory and Redis) implement `Presence` and pass the same
test suite.

A lease id names its resource (`<kind>.<resource id>.<random>`), so any operation on a
lease touches only that resource's keys: one Redis Cluster hash slot, no global index
that could disagree with the resource it points at.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from headcount.domain.presence import Count

# A kind is a short lowercase word (it becomes part of Redis keys and lease ids, so no
# dots). Which kinds exist is decided above this engine (`capacity/spaces.py`): presence
# serves any well-formed kind, so adding a kind of live space touches nothing here.
KIND_PATTERN = r"[a-z][a-z0-9_]{0,31}"
_KIND_RE = re.compile(KIND_PATTERN)
_LEASE_RE = re.compile(
    rf"^({KIND_PATTERN})\.([a-z]{{2,5}}_[A-Za-z0-9_-]{{1,64}})\.([A-Za-z0-9_-]{{8,64}})$"
)


@dataclass(frozen=True, slots=True)
class Resource:
    """What a lease is held on: a kind and the id of the thing (event, booth, room)."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if not _KIND_RE.fullmatch(self.kind):
            raise ValueError(f"malformed presence kind {self.kind!r}")

    @property
    def key(self) -> str:
        return f"{self.kind}.{self.id}"


@dataclass(frozen=True, slots=True)
class Lease:
    lease_id: str
    resource: Resource
    holder: str
    expires_at: float  # seconds since the epoch (backend clock)


class Place:
    """How an admitted lease came by its place."""

    NEW = "new"  # a free place, taken under the limit
    SHARED = "shared"  # the holder's place, which another live lease already holds
    RESUMED = "resumed"  # the holder's place, taken back while it was held in grace


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to one admission attempt: a lease, or a refusal with the count that caused it.

    `occupancy` is the places taken (those held in grace included); `in_grace` how many of
    them are held for someone whose connection was lost.
    """

    lease: Lease | None
    occupancy: int
    closed: bool = False
    place: str = Place.NEW
    in_grace: int = 0

    @property
    def admitted(self) -> bool:
        return self.lease is not None


@dataclass(frozen=True, slots=True)
class Tally:
    """A resource's places now: `places` taken (the limit counts these), of which
    `in_grace` are held for a holder who lost their connection; `connections` live leases."""

    places: int = 0
    in_grace: int = 0
    connections: int = 0

    @property
    def active(self) -> int:
        return self.places - self.in_grace


class LeaseState:
    """Outcomes of renew/release/drop that are not a lease: stable values, not exceptions."""

    GONE = "gone"  # expired, released, evicted, or lost with a Redis restart
    NOT_HOLDER = "not_holder"
    # `release` of a lapsed lease whose place was still held in grace: it is freed now.
    RELINQUISHED = "relinquished"


@dataclass(frozen=True, slots=True)
class Claim:
    """One admission asked of an engine: `Presence.admit`'s arguments, whose defaults are
    set there once for every backend."""

    resource: Resource
    holder: str
    limit: int | None
    ttl: float
    grace: float
    count: Count


def new_lease_id(resource: Resource) -> str:
    return f"{resource.key}.{secrets.token_urlsafe(12)}"


def parse_lease_id(lease_id: str) -> Resource | None:
    """None for anything that is not a well-formed lease id (callers answer 404)."""
    match = _LEASE_RE.match(lease_id)
    if match is None:
        return None
    return Resource(match.group(1), match.group(2))


@runtime_checkable
class Presence(Protocol):
    """The live engine. Every method is one atomic step on one resource."""

    name: str

    async def admit(
        self,
        resource: Resource,
        holder: str,
        *,
        limit: int | None,
        ttl: float,
        grace: float = 0.0,
        count: Count = Count.CONNECTIONS,
    ) -> Admission:
        """Atomically: drop expired leases and places past their grace; give `holder`
        back their own place if they have one (live, or held in grace: no limit applies,
        nothing is counted twice); else compare the places with `limit` (None =
        unlimited) and take a new one. The lease lives `ttl` seconds unless renewed; its
        place is kept `grace` seconds after its last lease is lost without a leave.

        The backends subclass `Presence` and implement `claim`, so this signature and its
        defaults stand here only."""
        return await self.claim(Claim(resource, holder, limit, ttl, grace, count))

    async def claim(self, claim: Claim) -> Admission:
        """`admit`, its arguments in one value: the step each backend implements."""
        ...

    async def renew(self, lease_id: str, holder: str, *, ttl: float) -> Lease | str:
        """Extend a live lease held by `holder`; else `LeaseState.GONE`/`NOT_HOLDER`."""
        ...

    async def release(self, lease_id: str, holder: str) -> Lease | str:
        """Leave: remove a live lease held by `holder` at once, and free its place if no
        other lease holds it (no grace). A lapsed lease whose place is held in grace for
        `holder` frees that place: `LeaseState.RELINQUISHED`. Else `GONE`/`NOT_HOLDER`."""
        ...

    async def drop(self, lease_id: str, holder: str) -> Lease | str:
        """The lease's connection is lost without a leave: end the lease now, and keep
        its place for its grace if it was the place's last lease. Else `GONE`/`NOT_HOLDER`."""
        ...

    async def occupancy(self, resource: Resource) -> int:
        """Places taken, those held in grace included."""
        ...

    async def occupancies(self, resources: list[Resource]) -> dict[Resource, int]: ...

    async def tallies(self, resources: list[Resource]) -> dict[Resource, Tally]:
        """Places, places in grace and live leases of each resource, in one round trip."""
        ...

    async def leases(self, resource: Resource) -> list[Lease]: ...

    async def close_resource(self, resource: Resource) -> int:
        """Evict every lease and free every place (grace or not), and refuse admissions
        from now on; returns how many places were taken."""
        ...

    async def reopen_resource(self, resource: Resource) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
