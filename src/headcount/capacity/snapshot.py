"""One consistent read of every capacity of an event (the dashboard's and page's source).

Everything durable is read in one `Database.snapshot()` transaction: REPEATABLE READ and
READ ONLY on PostgreSQL, a deferred BEGIN on SQLite (WAL), so tickets, pools, the event
total, registrations, sessions, the areas' occupancy and the live spaces' rows are one
point in time, `as_of` (`taken_at`, or earlier by `replica_lag_ms` when a read replica served it).
The read never writes: a hold that lapsed but was not yet swept still counts as reserved
(docs/guarantees.md, "Reads"). The live counts come from the presence store afterwards,
outside the transaction, so no database snapshot waits on Redis.
"""

from __future__ import annotations

from datetime import timedelta

from headcount.capacity.areas import area_views
from headcount.capacity.events import load_event
from headcount.capacity.live_snapshot import live_rows, live_sections
from headcount.capacity.pools import event_total_view, pool_views
from headcount.capacity.registrations import registrations_of
from headcount.capacity.sessions import session_views
from headcount.capacity.tickets import event_ticket_types
from headcount.capacity.views import CapacitySnapshot, TicketCapacity
from headcount.capacity.waiting_rooms import waiting_room_of_event
from headcount.ledger import allotments
from headcount.ledger.db import staleness
from headcount.runtime import Runtime


async def capacity_snapshot(rt: Runtime, event_id: str) -> CapacitySnapshot:
    # A dashboard figure may lag a little: a read replica may serve it (ledger/replica.py).
    async with rt.db.snapshot(may_lag=True) as tx:
        taken_at = rt.clock()  # the first statement below fixes the snapshot
        lag_ms = staleness(tx).lag_ms
        event = await load_event(tx, event_id)
        ticket_types = await event_ticket_types(tx, event)
        set_aside = await allotments.held(tx, [t.id for t in ticket_types])
        pools = await pool_views(tx, event.id)
        event_total = await event_total_view(tx, event)
        sessions = await session_views(tx, event.id)
        presence_rows = await live_rows(tx, event)
        areas = await area_views(tx, event.id)
    live = await live_sections(rt, presence_rows)
    # The queue's figures come from the store, like the live counts (waiting_rooms.py).
    waiting_room = await waiting_room_of_event(rt, event.id)
    available = sum(t.quantity_available for t in ticket_types)
    return CapacitySnapshot(
        **live.fields,  # the viewers, booths, breakout rooms and huddles: one per section
        event_id=event.id,
        taken_at=taken_at,
        as_of=taken_at - timedelta(milliseconds=lag_ms),
        replica_lag_ms=lag_ms,
        max_attendees=event.max_attendees,
        tickets=TicketCapacity(
            total=sum(t.quantity_total for t in ticket_types),
            sold=sum(t.quantity_sold for t in ticket_types),
            reserved=sum(t.quantity_reserved for t in ticket_types),
            available=available,
            is_sold_out=available == 0,
            ticket_types=ticket_types,
            held_by_organizer=sum(set_aside.values()),
        ),
        registrations=registrations_of(event_total),
        sessions=sessions,
        pools=pools,
        event_total=event_total,
        waiting_room=waiting_room,
        areas=areas,
    )
