"""Heartbeat and leave for any lease (viewer, booth visit, breakout room).

Only the lease's holder may renew or release it. Someone else's lease id answers 404,
like an unknown one, so lease ids cannot be probed. A lease that ran out (or was lost in a
Redis restart, or evicted by a room closing) answers 410 `lease_expired`: join again.
"""

from __future__ import annotations

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
    _event_id, limit = await LIMITS[resource.kind](rt, resource.id)
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
            event_id, _limit = await LIMITS[resource.kind](rt, resource.id)
        except NotFound:
            return
        signal_change(rt, event_id)
