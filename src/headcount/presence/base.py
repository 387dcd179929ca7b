"""The presence contract: leases that expire unless renewed.

Occupancy is always *the number of live leases*: there is no counter to drift, so a
crashed API process cannot leave ghost viewers behind; its leases simply run out. Both
backends (in-process memory and Redis) implement `Presence` and pass the same test suite.

A lease id names its resource (`<kind>.<resource id>.<random>`), so any operation on a
lease touches only that resource's keys: one Redis Cluster hash slot, no global index
that could disagree with the resource it points at.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to one admission attempt: a lease, or a refusal with the count that caused it."""

    lease: Lease | None
    occupancy: int
    closed: bool = False

    @property
    def admitted(self) -> bool:
        return self.lease is not None


class LeaseState:
    """Outcomes of renew/release that are not a lease: stable values, not exceptions."""

    GONE = "gone"  # expired, released, evicted, or lost with a Redis restart
    NOT_HOLDER = "not_holder"


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
        self, resource: Resource, holder: str, *, limit: int | None, ttl: float
    ) -> Admission:
        """Drop expired leases, compare with `limit` (None = unlimited), add: atomically."""
        ...

    async def renew(self, lease_id: str, holder: str, *, ttl: float) -> Lease | str:
        """Extend a live lease held by `holder`; else `LeaseState.GONE`/`NOT_HOLDER`."""
        ...

    async def release(self, lease_id: str, holder: str) -> Lease | str:
        """Remove a live lease held by `holder` at once; else `LeaseState.GONE`/`NOT_HOLDER`."""
        ...

    async def occupancy(self, resource: Resource) -> int: ...

    async def occupancies(self, resources: list[Resource]) -> dict[Resource, int]: ...

    async def leases(self, resource: Resource) -> list[Lease]: ...

    async def close_resource(self, resource: Resource) -> int:
        """Evict every lease and refuse admissions from now on; returns how many were live."""
        ...

    async def reopen_resource(self, resource: Resource) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
