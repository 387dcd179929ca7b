"""Virtual-stream viewers: one lease per watching client, capped by the event's
`virtual_settings.max_concurrent_viewers` (read fresh on every join)."""

from __future__ import annotations

from headcount.capacity.events import load_event
from headcount.capacity.live import admit, keyed
from headcount.capacity.views import LeaseView
from headcount.domain.errors import ViewerLimitReached
from headcount.domain.identity import Principal
from headcount.domain.presence import viewer_limit
from headcount.presence import Resource
from headcount.runtime import Runtime

KIND = "viewers"


def stream(event_id: str) -> Resource:
    return Resource(KIND, event_id)


async def limit_of(rt: Runtime, event_id: str) -> tuple[str, int | None]:
    """(event id, current cap) — the shape every live policy answers for `leases`."""
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        return event.id, viewer_limit(event.virtual_settings)


async def join_stream(
    rt: Runtime, principal: Principal, event_id: str, *, idempotency_key: str | None = None
) -> LeaseView:
    # The ledger read happens before (not inside) the keyed transaction: on SQLite a
    # second transaction inside it would wait for the write lock the first one holds.
    event_id, limit = await limit_of(rt, event_id)

    def refuse(viewers: int) -> ViewerLimitReached:
        return ViewerLimitReached(
            f"the stream has reached its limit of {limit} concurrent viewers; try again later",
            limit=limit,
            viewers=viewers,
        )

    return await keyed(
        rt,
        principal,
        f"viewers.join:{event_id}",
        idempotency_key,
        lambda: admit(
            rt, stream(event_id), principal.sub, event_id=event_id, limit=limit, refuse=refuse
        ),
    )
