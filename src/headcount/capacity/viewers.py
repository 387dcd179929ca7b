"""Virtual-stream viewers: one lease per watching client, capped by the event's
`virtual_settings.max_concurrent_viewers` (read fresh on every join)."""

from __future__ import annotations

from headcount.capacity.events import load_event
from headcount.capacity.live import admit
from headcount.capacity.views import LeaseView, ViewerCapacity
from headcount.domain.errors import ServiceUnavailable, ViewerLimitReached
from headcount.domain.identity import Principal
from headcount.domain.presence import viewer_limit
from headcount.presence import Resource
from headcount.runtime import Runtime

KIND = "viewers"


def stream(event_id: str) -> Resource:
    return Resource(KIND, event_id)


async def limit_of(rt: Runtime, event_id: str) -> tuple[str, int | None]:
    """(event id, current cap) — the shape every live policy answers for `leases`."""
    async with rt.db.transaction() as session:
        event = await load_event(session, event_id)
        return event.id, viewer_limit(event.virtual_settings)


async def join_stream(rt: Runtime, principal: Principal, event_id: str) -> LeaseView:
    event_id, limit = await limit_of(rt, event_id)

    def refuse(viewers: int) -> ViewerLimitReached:
        return ViewerLimitReached(
            f"the stream has reached its limit of {limit} concurrent viewers; try again later",
            limit=limit,
            viewers=viewers,
        )

    return await admit(
        rt, stream(event_id), principal.sub, event_id=event_id, limit=limit, refuse=refuse
    )


async def viewer_capacity(rt: Runtime, event_id: str, limit: int | None) -> ViewerCapacity:
    """Live count for the snapshot; unknown (None) rather than an error if Redis is down."""
    try:
        viewers: int | None = await rt.presence.occupancy(stream(event_id))
    except ServiceUnavailable:
        viewers = None
    available = None if limit is None or viewers is None else max(0, limit - viewers)
    return ViewerCapacity(
        limit=limit,
        viewers=viewers,
        available=available,
        is_full=None if viewers is None else (limit is not None and viewers >= limit),
    )
