"""Reads are one point in time and never write (SQLite and PostgreSQL).

The capacity snapshot reads every durable figure in one `Database.snapshot()`
transaction; reads show a lapsed hold or offer as `expired` without writing, and the
sweepers do the writing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from headcount.capacity import events, orders, pools, snapshot, tickets, waitlists
from headcount.capacity.events import EventDraft, EventPatch
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import TicketTypeView
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.config import Settings
from headcount.ledger.attendance import WaitlistEntry
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.ledger_checks import assert_no_drift

ORG = organizer("org-reads")


async def make_stock(rt: Runtime, total: int, *, cap: int | None = None) -> TicketTypeView:
    event = await events.create_event(rt, ORG, EventDraft(name="Reads", max_attendees=cap))
    return await tickets.create_ticket_type(
        rt, ORG, event.id, TicketTypeDraft(name="GA", quantity_total=total)
    )


async def buy(rt: Runtime, who: str, tt: TicketTypeView, qty: int = 1) -> str:
    draft = OrderDraft(
        event_id=tt.event_id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=qty)]
    )
    return (await orders.create_order(rt, attendee(who), draft)).id


async def test_the_capacity_snapshot_is_one_point_in_time(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order committed between two of the snapshot's reads is in neither of them.

    Ticket types are read before the event total; at READ COMMITTED (or in several
    transactions) the total would count the new order and the ticket types would not.
    """
    tt = await make_stock(runtime, 10, cap=100)
    await buy(runtime, "first", tt)
    real_pool_views = pools.pool_views

    async def pools_then_a_sale(tx: Any, event_id: str) -> Any:
        found = await real_pool_views(tx, event_id)
        await buy(runtime, "between", tt, 2)  # its own transaction, committed now
        return found

    monkeypatch.setattr(snapshot, "pool_views", pools_then_a_sale)
    before = runtime.clock()
    seen = await snapshot.capacity_snapshot(runtime, tt.event_id)
    assert before <= seen.taken_at <= runtime.clock()
    assert seen.event_total is not None
    assert (seen.tickets.reserved, seen.event_total.tickets) == (1, 1)
    monkeypatch.setattr(snapshot, "pool_views", real_pool_views)
    after = await snapshot.capacity_snapshot(runtime, tt.event_id)
    assert after.event_total is not None
    assert (after.tickets.reserved, after.event_total.tickets) == (3, 3)
    await assert_no_drift(runtime)


async def test_a_snapshot_is_read_only(runtime: Runtime) -> None:
    async with runtime.db.snapshot() as tx:
        assert (await tx.execute(text("SELECT 1"))).scalar() == 1
    if runtime.db.is_sqlite:
        return  # SQLite has no read-only transactions; the snapshot code never writes
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with runtime.db.snapshot() as tx:
            await tx.execute(text("UPDATE events SET name = name WHERE id = 'none'"))


async def test_reads_do_not_wait_for_a_writer(database_url: str) -> None:
    """A read runs while another transaction holds the write lock (SQLite) or the row.

    With `BEGIN IMMEDIATE` a SQLite read would queue on the write lock until the writer
    commits, here past the 0.3 s lock timeout.
    """
    rt = Runtime.from_settings(
        Settings(database_url=database_url, env="test", db_statement_timeout_ms=300)
    )
    try:
        tt = await make_stock(rt, 5)
        holding = asyncio.Event()
        release = asyncio.Event()

        async def writer() -> None:
            async with rt.db.transaction() as tx:
                await tx.execute(
                    text("UPDATE events SET name = 'Renamed' WHERE id = :id"), {"id": tt.event_id}
                )
                holding.set()
                await release.wait()

        writing = asyncio.create_task(writer())
        await holding.wait()
        try:
            seen = await asyncio.wait_for(events.get_event(rt, tt.event_id), timeout=5)
            listed = await asyncio.wait_for(tickets.list_ticket_types(rt, tt.event_id), timeout=5)
        finally:
            release.set()
            await writing
        assert seen.name == "Reads"  # the committed state, not the writer's
        assert [t.id for t in listed] == [tt.id]
        assert (await events.get_event(rt, tt.event_id)).name == "Renamed"
    finally:
        await rt.close()


async def stored_offer_status(rt: Runtime, who: str, tt: TicketTypeView) -> str:
    async with rt.db.transaction() as tx:
        found = await tx.scalars(
            select(WaitlistEntry.status)
            .where(WaitlistEntry.ticket_type_id == tt.id, WaitlistEntry.attendee_id == who)
            .order_by(WaitlistEntry.seq.desc())
        )
        return found.first() or ""


async def test_a_lapsed_offer_reads_expired_and_the_sweeper_passes_it_on(
    runtime: Runtime,
) -> None:
    tt = await make_stock(runtime, 1)
    held = await buy(runtime, "ann", tt)
    for who in ("bo", "cy"):
        await waitlists.join_ticket_waitlist(runtime, attendee(who), tt.id, TicketWaitlistDraft())
    await orders.cancel_order(runtime, attendee("ann"), held)
    offer = await waitlists.my_ticket_waitlist_entry(runtime, attendee("bo"), tt.id)
    assert offer.status == "offered"
    assert offer.offer_expires_at is not None
    lapsed_at = offer.offer_expires_at + timedelta(seconds=1)
    runtime.clock = lambda: lapsed_at

    reads: list[Callable[[], Awaitable[object]]] = [
        lambda: waitlists.my_ticket_waitlist_entry(runtime, attendee("bo"), tt.id),
        lambda: waitlists.ticket_waitlist(runtime, ORG, tt.id),
        lambda: waitlists.my_entries(runtime, attendee("bo"), tt.event_id),
        lambda: tickets.get_ticket_type(runtime, tt.id),
        lambda: snapshot.capacity_snapshot(runtime, tt.event_id),
    ]
    for read in reads:
        await read()
    mine = await waitlists.my_ticket_waitlist_entry(runtime, attendee("bo"), tt.id)
    assert mine.status == "expired"
    listing = await waitlists.ticket_waitlist(runtime, ORG, tt.id)
    assert (listing.offered, listing.waiting) == (0, 1)
    assert await stored_offer_status(runtime, "bo", tt) == "offered"  # no read wrote
    assert (await waitlists.my_ticket_waitlist_entry(runtime, attendee("cy"), tt.id)).status == (
        "waiting"
    )

    assert await waitlists.sweep_expired_offers(runtime) >= 1
    assert await stored_offer_status(runtime, "bo", tt) == "expired"
    assert (await waitlists.my_ticket_waitlist_entry(runtime, attendee("cy"), tt.id)).status == (
        "offered"
    )
    await assert_no_drift(runtime)


async def test_a_cap_change_is_seen_by_the_next_read(runtime: Runtime) -> None:
    """Reads in their own snapshot see what committed before them ("read your writes")."""
    tt = await make_stock(runtime, 5, cap=3)
    await events.update_event(runtime, ORG, tt.event_id, EventPatch(max_attendees=10))
    seen = await snapshot.capacity_snapshot(runtime, tt.event_id)
    assert seen.max_attendees == 10
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_available == 5
