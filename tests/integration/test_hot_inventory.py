"""Hot-inventory mode: a ticket type's free stock split over bucket rows, still exact."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from headcount.capacity import events, orders, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft, TicketTypePatch
from headcount.capacity.views import TicketTypeView
from headcount.config import Settings
from headcount.domain.errors import Conflict, SoldOut
from headcount.ledger import buckets
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import attendee, organizer

ORG = organizer("org-hot")


async def hot_type(rt: Runtime, total: int, count: int) -> TicketTypeView:
    event = await events.create_event(rt, ORG, EventDraft(name="Hot"))
    return await tickets.create_ticket_type(
        rt, ORG, event.id, TicketTypeDraft(name="Drop", quantity_total=total, stock_buckets=count)
    )


def draft(tt: TicketTypeView, quantity: int) -> OrderDraft:
    return OrderDraft(
        event_id=tt.event_id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=quantity)]
    )


async def no_drift(rt: Runtime) -> None:
    async with rt.db.transaction() as tx:
        assert [str(d) for d in await reconcile(tx)] == []


def test_split_spreads_evenly() -> None:
    assert buckets.split(10, 4) == [3, 3, 2, 2]
    assert buckets.split(3, 8) == [1, 1, 1, 0, 0, 0, 0, 0]
    assert sum(buckets.split(100_001, 64)) == 100_001


async def test_counters_stay_exact_through_the_whole_lifecycle(runtime: Runtime) -> None:
    tt = await hot_type(runtime, 10, 4)
    assert (tt.stock_buckets, tt.quantity_available, tt.quantity_reserved) == (4, 10, 0)
    buyer = attendee("hot-ann")
    held = await orders.create_order(runtime, buyer, draft(tt, 3))
    paid = await orders.create_order(runtime, buyer, draft(tt, 2))
    await orders.confirm_order(runtime, ORG, paid.id)
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_sold, seen.quantity_reserved, seen.quantity_available) == (2, 3, 5)
    await orders.cancel_order(runtime, buyer, held.id)
    await orders.cancel_order(runtime, ORG, paid.id)  # refund
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_sold, seen.quantity_reserved, seen.quantity_available) == (0, 0, 10)
    await no_drift(runtime)


async def test_a_line_larger_than_any_bucket_takes_from_several(runtime: Runtime) -> None:
    tt = await hot_type(runtime, 10, 4)  # buckets of 3, 3, 2, 2
    await orders.create_order(runtime, attendee("hot-big"), draft(tt, 7))
    with pytest.raises(SoldOut):
        await orders.create_order(runtime, attendee("hot-late"), draft(tt, 4))
    await orders.create_order(runtime, attendee("hot-last"), draft(tt, 3))
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_reserved, seen.quantity_available, seen.is_sold_out) == (10, 0, True)
    await no_drift(runtime)


async def test_expiry_returns_units_to_the_buckets(runtime: Runtime) -> None:
    tt = await hot_type(runtime, 4, 2)
    order = await orders.create_order(runtime, attendee("hot-lapse"), draft(tt, 4))
    runtime.clock = lambda: order.expires_at + timedelta(seconds=1)
    assert await orders.sweep_expired_holds(runtime) >= 1  # reads do not expire holds
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_available == 4
    again = await orders.create_order(runtime, attendee("hot-next"), draft(tt, 4))
    assert again.status == "pending"
    await no_drift(runtime)


async def test_resizing_a_bucketed_type(runtime: Runtime) -> None:
    tt = await hot_type(runtime, 8, 4)
    await orders.create_order(runtime, attendee("hot-rs"), draft(tt, 5))
    grown = await tickets.update_ticket_type(
        runtime, ORG, tt.id, TicketTypePatch(quantity_total=20)
    )
    assert (grown.quantity_total, grown.quantity_available) == (20, 15)
    shrunk = await tickets.update_ticket_type(
        runtime, ORG, tt.id, TicketTypePatch(quantity_total=6)
    )
    assert shrunk.quantity_available == 1
    with pytest.raises(Conflict):
        await tickets.update_ticket_type(runtime, ORG, tt.id, TicketTypePatch(quantity_total=4))
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_total == 6
    await no_drift(runtime)


async def test_concurrent_buyers_never_oversell_a_bucketed_type(database_url: str) -> None:
    """300 buyers, 3 units each at most, 8 buckets of a 100-unit type: never more than 100,
    and nobody refused while a unit they could take was left."""
    # SQLite has one writer whatever the buckets: queue fairly in the pool, not on its lock.
    sqlite = database_url.startswith("sqlite")
    rt = Runtime.from_settings(
        Settings(
            database_url=database_url,
            env="test",
            db_pool_size=4 if sqlite else 20,
            db_max_overflow=0 if sqlite else 10,
            db_pool_timeout=120,
            # A correctness test: near sell-out every buyer takes the slow path and queues
            # on all the buckets' locks, which on a loaded CI machine can exceed the 10 s
            # default lock timeout (a 503 there is fail-fast working, not an oversell).
            db_statement_timeout_ms=120_000,
        )
    )
    try:
        tt = await hot_type(rt, 100, 8)
        granted: list[int] = []

        async def buyer(n: int) -> None:
            quantity = 1 + n % 3
            with contextlib.suppress(SoldOut):
                await orders.create_order(rt, attendee(f"hot-{n}"), draft(tt, quantity))
                granted.append(quantity)

        await asyncio.gather(*(buyer(n) for n in range(300)))
        seen = await tickets.get_ticket_type(rt, tt.id)
        assert sum(granted) == seen.quantity_reserved <= 100
        # Exact, not approximate: what is left is too little for the smallest request.
        assert seen.quantity_available == 100 - sum(granted)
        assert seen.quantity_available < 1
        await no_drift(rt)
    finally:
        await rt.close()


async def test_a_bucketed_type_still_draws_on_its_pool(runtime: Runtime) -> None:
    from headcount.capacity import pools
    from headcount.capacity.pools import PoolDraft
    from headcount.domain.errors import PoolExhausted

    tt = await hot_type(runtime, 10, 4)
    pool = await pools.create_pool(
        runtime, ORG, tt.event_id, PoolDraft(name="Hall", capacity=5, ticket_type_ids=[tt.id])
    )
    first = await orders.create_order(runtime, attendee("hot-pool-1"), draft(tt, 3))
    await orders.create_order(runtime, attendee("hot-pool-2"), draft(tt, 2))
    with pytest.raises(PoolExhausted):
        await orders.create_order(runtime, attendee("hot-pool-3"), draft(tt, 1))
    assert (await pools.get_pool(runtime, pool.id)).quantity_used == 5
    await orders.cancel_order(runtime, attendee("hot-pool-1"), first.id)
    assert (await pools.get_pool(runtime, pool.id)).quantity_used == 2
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_reserved, seen.quantity_available) == (2, 3)  # the pool bounds it
    await no_drift(runtime)
