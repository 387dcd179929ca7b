"""Heartbeat and leave for any lease (viewer, booth visit, breakout room).

Only the lease's holder may renew or release it. Someone else's lease id answers 404,
like an unknown one, so lease ids cannot be probed. A lease that ran out (or was lost in a
Redis restart, or evicted by a room closing) answers 410 `lease_expired`: join again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from headcount.capacity import booths, breakouts, viewers
from headcount.capacity.live import lease_view, signal_change
from headcount.capacity.views import LeaseView
from headcount.domain.errors import LeaseExpired, NotFound
from headcount.domain.identity import Principal
from headcount.presence import LeaseState, Resource, parse_lease_id
from headcount.runtime import Runtime

LimitOf = Callable[[Runtime, str], Awaitable[tuple[str, int | None]]]
LIMITS: dict[str, LimitOf] = {
    viewers.KIND: viewers.limit_of,
    booths.KIND: booths.limit_of,
    breakouts.KIND: breakouts.limit_of,
}


# A heartbeat's answer shows the resource's limit, and a leave needs its event: neither
# admits anyone, so they read a copy at most this old instead of a database transaction
# per ping (5,000 viewers renewing every 5 s made 1,000 transactions/s; bench/RESULTS.md).
# Joins always read the limit fresh.
DISPLAY_LIMIT_MAX_AGE = 1.0
_CACHE_KEY = "lease_limits"
_CACHE_SIZE = 10_000


async def _displayed_limit(rt: Runtime, resource: Resource) -> tuple[str, int | None]:
    """The resource's (event, limit), at most `DISPLAY_LIMIT_MAX_AGE` old.

    One read per resource refreshes it while every other caller awaits that same read: at
    1,000 heartbeats/s, letting each caller that found the copy stale read on its own
    queued hundreds of transactions behind SQLite's write lock each second.
    """
    cache: dict[Resource, tuple[float, asyncio.Future[tuple[str, int | None]]]]
    cache = rt.extras.setdefault(_CACHE_KEY, {})
    now = time.monotonic()
    found = cache.get(resource)
    if found is not None and (now - found[0] < DISPLAY_LIMIT_MAX_AGE or not found[1].done()):
        return await asyncio.shield(found[1])
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    reading = asyncio.ensure_future(LIMITS[resource.kind](rt, resource.id))
    cache[resource] = (now, reading)
    try:
        return await asyncio.shield(reading)
    except BaseException:
        if cache.get(resource, (0.0, None))[1] is reading:
            del cache[resource]  # a failed read is not kept: the next caller tries again
        raise


def _resource(lease_id: str) -> Resource:
    resource = parse_lease_id(lease_id)
    if resource is None:
        raise NotFound(f"no lease {lease_id!r}")
    return resource


def _refuse(state: str, lease_id: str) -> Exception:
    if state == LeaseState.NOT_HOLDER:
        return NotFound(f"no lease {lease_id!r}")
    return LeaseExpired(
        "the lease has expired or was released; join again to get a new one",
        lease_id=lease_id,
    )


async def heartbeat(rt: Runtime, principal: Principal, lease_id: str) -> LeaseView:
    resource = _resource(lease_id)
    renewed = await rt.presence.renew(lease_id, principal.sub, ttl=float(rt.settings.presence_ttl))
    if isinstance(renewed, str):
        raise _refuse(renewed, lease_id)
    _event_id, limit = await _displayed_limit(rt, resource)
    occupancy = await rt.presence.occupancy(resource)
    return lease_view(rt, renewed, occupancy=occupancy, limit=limit)


async def release(rt: Runtime, principal: Principal, lease_id: str) -> None:
    """Frees the place at once. Releasing an already expired lease is not an error."""
    resource = _resource(lease_id)
    released = await rt.presence.release(lease_id, principal.sub)
    if released == LeaseState.NOT_HOLDER:
        raise NotFound(f"no lease {lease_id!r}")
    if not isinstance(released, str):
        try:
            event_id, _limit = await _displayed_limit(rt, resource)
        except NotFound:
            return
        signal_change(rt, event_id)
