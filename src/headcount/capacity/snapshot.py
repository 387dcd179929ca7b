"""One consistent read of every capacity of an event (the dashboard's and page's source).

Features contribute sections through `SECTIONS`: each is called inside the same
transaction so the snapshot is a single point-in-time view on PostgreSQL.
"""

from __future__ import annotations

from headcount.capacity.events import load_event
from headcount.capacity.live_snapshot import live_rows, live_sections
from headcount.capacity.pools import event_total_view, pool_views
from headcount.capacity.registrations import registration_capacity
from headcount.capacity.sessions import session_views
from headcount.capacity.tickets import list_ticket_types
from headcount.capacity.views import CapacitySnapshot, TicketCapacity
from headcount.runtime import Runtime


async def capacity_snapshot(rt: Runtime, event_id: str) -> CapacitySnapshot:
    ticket_types = await list_ticket_types(rt, event_id)
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        presence_rows = await live_rows(tx, event)
        registered = await registration_capacity(tx, event)
        pools = await pool_views(tx, event.id)
        event_total = await event_total_view(tx, event)
        session = await session_views(tx, event.id)
    live = await live_sections(rt, presence_rows)
    total = sum(t.quantity_total for t in ticket_types)
    sold = sum(t.quantity_sold for t in ticket_types)
    reserved = sum(t.quantity_reserved for t in ticket_types)
    available = sum(t.quantity_available for t in ticket_types)
    return CapacitySnapshot(
        event_id=event.id,
        taken_at=rt.clock(),
        max_attendees=event.max_attendees,
        tickets=TicketCapacity(
            total=total,
            sold=sold,
            reserved=reserved,
            available=available,
            is_sold_out=available == 0,
            ticket_types=ticket_types,
        ),
        registrations=registered,
        sessions=session,
        viewers=live.viewers,
        booths=live.booths,
        breakout_rooms=live.breakout_rooms,
        huddles=live.huddles,
        pools=pools,
        event_total=event_total,
    )
