"""Capacity pools, the event-wide cap and buyer limits through the service layer.

Every test runs on SQLite and PostgreSQL and ends by proving the counters equal the rows.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from sqlalchemy import select, text

from headcount.capacity import events, orders, pools, registrations, snapshot, tickets, waitlists
from headcount.capacity.events import EventDraft, EventPatch
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.pools import PoolDraft, PoolPatch
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.tickets import TicketTypeDraft, TicketTypePatch
from headcount.capacity.views import PoolView, TicketTypeView
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.domain.errors import (
    CustomerLimitReached,
    EventFull,
    Forbidden,
    HoldExpired,
    InvalidQuantity,
    InvalidRequest,
    NotFound,
    PoolExhausted,
    SoldOut,
)
from headcount.ledger.attendance import EventCapacity
from headcount.ledger.pools import CapacityPool
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.clock import past_hold
from support.ledger_checks import assert_no_drift

ORG = organizer("org-pools")


async def make_event(rt: Runtime, *, max_attendees: int | None = None) -> str:
    event = await events.create_event(
        rt, ORG, EventDraft(name="Pools test", max_attendees=max_attendees)
    )
    return event.id


async def make_type(rt: Runtime, event_id: str, total: int, **terms: object) -> TicketTypeView:
    return await tickets.create_ticket_type(
        rt,
        ORG,
        event_id,
        TicketTypeDraft.model_validate({"name": f"T{total}", "quantity_total": total, **terms}),
    )


async def event_with_types(rt: Runtime, *totals: int) -> tuple[str, list[TicketTypeView]]:
    """A new event with one ticket type per total, in order: most pool tests start there."""
    event_id = await make_event(rt)
    return event_id, [await make_type(rt, event_id, total) for total in totals]


async def make_pool(
    rt: Runtime, event_id: str, capacity: int | None, *types: TicketTypeView, **extra: object
) -> PoolView:
    return await pools.create_pool(
        rt,
        ORG,
        event_id,
        PoolDraft.model_validate(
            {
                "name": f"Pool {capacity}",
                "capacity": capacity,
                "ticket_type_ids": [t.id for t in types],
                **extra,
            }
        ),
    )


async def buy(rt: Runtime, who: str, event_id: str, *lines: tuple[TicketTypeView, int]) -> str:
    order = await orders.create_order(
        rt,
        attendee(who),
        OrderDraft(
            event_id=event_id,
            items=[OrderItemInput(ticket_type_id=t.id, quantity=q) for t, q in lines],
        ),
    )
    return order.id


async def used(rt: Runtime, pool_id: str) -> int:
    return (await pools.get_pool(rt, pool_id)).quantity_used


async def test_a_pool_caps_the_sum_of_its_ticket_types(runtime: Runtime) -> None:
    event_id, (early, regular) = await event_with_types(runtime, 10, 30)
    hall = await make_pool(runtime, event_id, 12, early, regular)
    await buy(runtime, "a", event_id, (early, 8))
    seen = await tickets.get_ticket_type(runtime, regular.id)
    assert seen.quantity_available == 4  # the pool's room, not the type's own 30
    assert seen.pool_ids == [hall.id]
    with pytest.raises(PoolExhausted) as refused:
        await buy(runtime, "b", event_id, (regular, 5))
    assert refused.value.code == "pool_exhausted"
    assert refused.value.extra["pool_id"] == hall.id
    assert isinstance(refused.value, SoldOut)  # clients branching on sold_out still work
    # The refusal changed nothing: neither the type nor the pool.
    assert (await tickets.get_ticket_type(runtime, regular.id)).quantity_reserved == 0
    assert await used(runtime, hall.id) == 8
    await buy(runtime, "b", event_id, (regular, 4))
    assert (await pools.get_pool(runtime, hall.id)).is_exhausted
    await assert_no_drift(runtime)


async def test_a_multi_item_order_short_on_a_pool_is_all_or_nothing(runtime: Runtime) -> None:
    event_id, (a, b, c) = await event_with_types(runtime, 10, 10, 10)
    one = await make_pool(runtime, event_id, 5, a, b)
    two = await make_pool(runtime, event_id, 3, b, c)
    with pytest.raises(PoolExhausted) as refused:
        await buy(runtime, "x", event_id, (a, 2), (b, 2), (c, 2))
    assert refused.value.extra["pool_id"] == two.id
    assert (await used(runtime, one.id), await used(runtime, two.id)) == (0, 0)
    for tt in (a, b, c):
        assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_reserved == 0
    await buy(runtime, "x", event_id, (a, 2), (b, 1), (c, 2))
    assert (await used(runtime, one.id), await used(runtime, two.id)) == (3, 3)
    await assert_no_drift(runtime)


async def test_cancel_refund_and_expiry_give_back_to_every_pool(runtime: Runtime) -> None:
    event_id, (a, b) = await event_with_types(runtime, 10, 10)
    wide = await make_pool(runtime, event_id, 7, a, b)
    only_b = await make_pool(runtime, event_id, 4, b)
    held = await buy(runtime, "h", event_id, (a, 1), (b, 1))
    paid = await buy(runtime, "p", event_id, (b, 2))
    lapsing = await buy(runtime, "l", event_id, (a, 2), (b, 1))
    assert (await used(runtime, wide.id), await used(runtime, only_b.id)) == (7, 4)
    await orders.confirm_order(runtime, ORG, paid)  # held -> sold: use unchanged
    assert await used(runtime, wide.id) == 7
    await orders.cancel_order(runtime, attendee("h"), held)
    assert (await used(runtime, wide.id), await used(runtime, only_b.id)) == (5, 3)
    await orders.cancel_order(runtime, ORG, paid)  # refund
    assert (await used(runtime, wide.id), await used(runtime, only_b.id)) == (3, 1)
    order = await orders.get_order(runtime, attendee("l"), lapsing)
    with past_hold(runtime, order):
        await orders.sweep_expired_holds(runtime)
    assert (await used(runtime, wide.id), await used(runtime, only_b.id)) == (0, 0)
    await assert_no_drift(runtime)


async def test_confirming_a_lapsed_order_needs_pool_room_again(runtime: Runtime) -> None:
    event_id, (a, b) = await event_with_types(runtime, 5, 5)
    hall = await make_pool(runtime, event_id, 2, a, b)
    first = await buy(runtime, "f", event_id, (a, 2))
    order = await orders.get_order(runtime, attendee("f"), first)
    with past_hold(runtime, order):
        await orders.sweep_expired_holds(runtime)
        await buy(runtime, "s", event_id, (b, 1))
        with pytest.raises(HoldExpired):  # the pool has 1 left, the order needs 2
            await orders.confirm_order(runtime, ORG, first)
    assert await used(runtime, hall.id) == 1
    await assert_no_drift(runtime)


async def test_lowering_below_use_cancels_nobody_and_raising_reopens(runtime: Runtime) -> None:
    event_id = await make_event(runtime)
    a = await make_type(runtime, event_id, 20)
    hall = await make_pool(runtime, event_id, 10, a)
    await buy(runtime, "one", event_id, (a, 6))
    lowered = await pools.update_pool(runtime, ORG, hall.id, PoolPatch(capacity=4))
    assert (lowered.capacity, lowered.quantity_used, lowered.over_capacity_by) == (4, 6, 2)
    assert lowered.quantity_available == 0
    with pytest.raises(PoolExhausted):
        await buy(runtime, "two", event_id, (a, 1))
    async with runtime.db.transaction() as tx:
        row = await tx.get(CapacityPool, hall.id)
        assert row is not None
        assert row.quantity_over == 2
    raised = await pools.update_pool(runtime, ORG, hall.id, PoolPatch(capacity=8))
    assert (raised.over_capacity_by, raised.quantity_available) == (0, 2)
    await buy(runtime, "two", event_id, (a, 2))
    await assert_no_drift(runtime)


async def test_the_overhang_shrinks_as_holds_are_released(runtime: Runtime) -> None:
    event_id = await make_event(runtime)
    a = await make_type(runtime, event_id, 20)
    hall = await make_pool(runtime, event_id, 10, a)
    orders_made = [await buy(runtime, f"b{i}", event_id, (a, 2)) for i in range(4)]
    await pools.update_pool(runtime, ORG, hall.id, PoolPatch(capacity=3))
    lowered_tt = await tickets.update_ticket_type(
        runtime, ORG, a.id, TicketTypePatch(quantity_total=5)
    )
    assert lowered_tt.over_capacity_by == 3
    await orders.cancel_order(runtime, attendee("b0"), orders_made[0])
    seen = await pools.get_pool(runtime, hall.id)
    assert (seen.quantity_used, seen.over_capacity_by) == (6, 3)
    assert (await tickets.get_ticket_type(runtime, a.id)).over_capacity_by == 1
    for i in (1, 2):
        await orders.cancel_order(runtime, attendee(f"b{i}"), orders_made[i])
    seen = await pools.get_pool(runtime, hall.id)
    assert (seen.quantity_used, seen.over_capacity_by, seen.quantity_available) == (2, 0, 1)
    await buy(runtime, "late", event_id, (a, 1))
    await assert_no_drift(runtime)


async def test_overbooking_admits_the_allowance_and_shows_both_figures(runtime: Runtime) -> None:
    event_id = await make_event(runtime)
    free = await make_type(runtime, event_id, 200)
    hall = await make_pool(runtime, event_id, 100, free, overbook_ratio=0.15)
    assert (hall.capacity, hall.admission_limit) == (100, 115)
    await buy(runtime, "big", event_id, (free, 100))
    with pytest.raises(PoolExhausted):
        await buy(runtime, "many", event_id, (free, 16))
    seen = await snapshot.capacity_snapshot(runtime, event_id)
    (shown,) = seen.pools
    assert (shown.capacity, shown.admission_limit, shown.quantity_available) == (100, 115, 15)
    await buy(runtime, "more", event_id, (free, 15))
    with pytest.raises(PoolExhausted):
        await buy(runtime, "one", event_id, (free, 1))
    await assert_no_drift(runtime)


async def test_attaching_a_type_that_sold_counts_its_use_at_once(runtime: Runtime) -> None:
    event_id, (a, b) = await event_with_types(runtime, 10, 10)
    await buy(runtime, "early", event_id, (a, 4))
    hall = await make_pool(runtime, event_id, 5, b)
    attached = await pools.attach_ticket_type(runtime, ORG, hall.id, a.id)
    assert (attached.quantity_used, attached.ticket_type_ids) == (4, sorted([a.id, b.id]))
    again = await pools.attach_ticket_type(runtime, ORG, hall.id, a.id)
    assert again.quantity_used == 4  # idempotent
    with pytest.raises(PoolExhausted):
        await buy(runtime, "b", event_id, (b, 2))
    detached = await pools.detach_ticket_type(runtime, ORG, hall.id, a.id)
    assert (detached.quantity_used, detached.ticket_type_ids) == (0, [b.id])
    await buy(runtime, "b", event_id, (b, 2))
    # pool_ids on the ticket type replaces its memberships.
    moved = await tickets.update_ticket_type(
        runtime, ORG, a.id, TicketTypePatch(pool_ids=[hall.id])
    )
    assert moved.pool_ids == [hall.id]
    assert await used(runtime, hall.id) == 6
    await assert_no_drift(runtime)


async def test_bad_pool_input_is_refused_and_changes_nothing(runtime: Runtime) -> None:
    event_id = await make_event(runtime)
    other = await make_event(runtime)
    a = await make_type(runtime, event_id, 10)
    foreign = await make_type(runtime, other, 10)
    for bad in ({"capacity": -1}, {"overbook_ratio": -0.5}, {"max_per_customer": 0}, {"x": 1}):
        with pytest.raises(ValidationError):
            PoolDraft.model_validate({"name": "P", **bad})
    with pytest.raises(InvalidRequest):
        await make_pool(runtime, event_id, 5, a, foreign)
    assert await pools.list_pools(runtime, event_id) == []  # rolled back, nothing attached
    hall = await make_pool(runtime, event_id, 5, a)
    with pytest.raises(InvalidRequest):
        await pools.attach_ticket_type(runtime, ORG, hall.id, foreign.id)
    with pytest.raises(NotFound):
        await pools.attach_ticket_type(runtime, ORG, hall.id, "tt_missing")
    with pytest.raises(NotFound):
        await pools.get_pool(runtime, "pool_missing")
    with pytest.raises(Forbidden):
        await pools.update_pool(runtime, organizer("someone-else"), hall.id, PoolPatch(capacity=1))
    with pytest.raises(ValidationError, match="name cannot be null"):  # refused on input
        PoolPatch.model_validate({"name": None})
    assert (await pools.get_pool(runtime, hall.id)).capacity == 5
    await assert_no_drift(runtime)


async def test_min_and_max_per_order(runtime: Runtime) -> None:
    event_id = await make_event(runtime)
    group = await make_type(runtime, event_id, 50, min_per_order=4, max_per_order=8)
    with pytest.raises(InvalidQuantity) as refused:
        await buy(runtime, "solo", event_id, (group, 3))
    assert refused.value.extra["min_per_order"] == 4
    with pytest.raises(InvalidQuantity):
        await buy(runtime, "crowd", event_id, (group, 9))
    await buy(runtime, "team", event_id, (group, 4))
    with pytest.raises(ValidationError):
        TicketTypeDraft(name="bad", quantity_total=5, min_per_order=5, max_per_order=2)
    with pytest.raises(InvalidRequest):
        await tickets.update_ticket_type(runtime, ORG, group.id, TicketTypePatch(min_per_order=9))
    assert (await tickets.get_ticket_type(runtime, group.id)).min_per_order == 4
    await assert_no_drift(runtime)


async def test_max_per_customer_counts_pending_and_paid_not_lapsed(runtime: Runtime) -> None:
    event_id = await make_event(runtime)
    limited = await make_type(runtime, event_id, 50, max_per_customer=3)
    first = await buy(runtime, "fan", event_id, (limited, 2))
    await orders.confirm_order(runtime, ORG, first)
    with pytest.raises(CustomerLimitReached) as refused:
        await buy(runtime, "fan", event_id, (limited, 2))
    assert refused.value.code == "customer_limit_reached"
    assert refused.value.extra["already"] == 2
    held = await buy(runtime, "fan", event_id, (limited, 1))
    with pytest.raises(CustomerLimitReached):
        await buy(runtime, "fan", event_id, (limited, 1))
    await buy(runtime, "friend", event_id, (limited, 3))  # per customer, not per type
    order = await orders.get_order(runtime, attendee("fan"), held)
    with past_hold(runtime, order):
        await buy(runtime, "fan", event_id, (limited, 1))  # the lapsed hold holds nothing
    await assert_no_drift(runtime)


async def test_max_per_customer_on_a_pool_spans_its_types(runtime: Runtime) -> None:
    event_id, (a, b) = await event_with_types(runtime, 20, 20)
    await make_pool(runtime, event_id, None, a, b, max_per_customer=4)
    await buy(runtime, "u", event_id, (a, 3))
    with pytest.raises(CustomerLimitReached) as refused:
        await buy(runtime, "u", event_id, (b, 2))
    assert "pool_id" in refused.value.extra
    await buy(runtime, "u", event_id, (b, 1))
    await assert_no_drift(runtime)


async def test_parallel_orders_by_one_attendee_cannot_beat_the_limit(runtime: Runtime) -> None:
    event_id = await make_event(runtime)
    limited = await make_type(runtime, event_id, 100, max_per_customer=3)
    results = await asyncio.gather(
        *(buy(runtime, "greedy", event_id, (limited, 1)) for _ in range(20)),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, CustomerLimitReached)]
    assert (len(won), len(refused)) == (3, 17), results
    assert (await tickets.get_ticket_type(runtime, limited.id)).quantity_reserved == 3
    await assert_no_drift(runtime)


async def test_event_cap_counts_registrations_and_tickets_together(runtime: Runtime) -> None:
    event_id = await make_event(runtime, max_attendees=5)
    a = await make_type(runtime, event_id, 10)
    await registrations.register(
        runtime, attendee("guesty"), event_id, RegistrationDraft(party_size=2)
    )
    assert (await tickets.get_ticket_type(runtime, a.id)).quantity_available == 3
    with pytest.raises(EventFull):
        await buy(runtime, "t", event_id, (a, 4))
    held = await buy(runtime, "t", event_id, (a, 3))
    with pytest.raises(EventFull):
        await registrations.register(runtime, attendee("late"), event_id, RegistrationDraft())
    seen = await snapshot.capacity_snapshot(runtime, event_id)
    assert seen.event_total is not None
    assert (seen.event_total.registered, seen.event_total.tickets) == (2, 3)
    assert seen.event_total.remaining == 0
    assert seen.registrations is not None
    assert seen.registrations.is_full
    await orders.cancel_order(runtime, attendee("t"), held)
    await registrations.register(runtime, attendee("late"), event_id, RegistrationDraft())
    await assert_no_drift(runtime)


async def test_setting_a_cap_later_counts_the_tickets_already_out(runtime: Runtime) -> None:
    event_id = await make_event(runtime)
    a = await make_type(runtime, event_id, 10)
    await buy(runtime, "early", event_id, (a, 4))
    async with runtime.db.transaction() as tx:
        assert await tx.get(EventCapacity, event_id) is None  # uncapped: no hot row
    await events.update_event(runtime, ORG, event_id, EventPatch(max_attendees=5))
    await assert_no_drift(runtime)
    with pytest.raises(EventFull):
        await buy(runtime, "late", event_id, (a, 2))
    await buy(runtime, "late", event_id, (a, 1))
    await events.update_event(runtime, ORG, event_id, EventPatch(max_attendees=None))
    await assert_no_drift(runtime)
    await buy(runtime, "free", event_id, (a, 5))
    await events.update_event(runtime, ORG, event_id, EventPatch(max_attendees=3))
    lowered = await snapshot.capacity_snapshot(runtime, event_id)
    assert lowered.event_total is not None
    assert (lowered.event_total.tickets, lowered.event_total.over_capacity_by) == (10, 7)
    await assert_no_drift(runtime)


async def test_waitlist_offers_respect_pools(runtime: Runtime) -> None:
    event_id, (a, b) = await event_with_types(runtime, 5, 5)
    hall = await make_pool(runtime, event_id, 3, a, b)
    held = await buy(runtime, "ann", event_id, (a, 3))
    # b has its own stock but the pool is full: joining waits, it is not offered.
    entry = await waitlists.join_ticket_waitlist(
        runtime, attendee("wai"), b.id, TicketWaitlistDraft(quantity=2)
    )
    assert entry.status == "waiting"
    await orders.cancel_order(runtime, attendee("ann"), held)
    # The cancelled a-tickets freed the pool: b's queue got it in the same transaction.
    mine = await waitlists.my_ticket_waitlist_entry(runtime, attendee("wai"), b.id)
    assert (mine.status, mine.offered_quantity) == ("offered", 2)
    assert await used(runtime, hall.id) == 2
    await buy(runtime, "wai", event_id, (b, 2))  # the offer pays for the order
    assert await used(runtime, hall.id) == 2
    async with runtime.db.transaction() as tx:
        pool = (await tx.scalars(select(CapacityPool).where(CapacityPool.id == hall.id))).one()
        assert pool.quantity_used == 2
    await assert_no_drift(runtime)


async def test_a_cancelled_registration_offers_its_place_to_a_ticket_queue(
    runtime: Runtime,
) -> None:
    event_id = await make_event(runtime, max_attendees=3)
    a = await make_type(runtime, event_id, 10)
    await registrations.register(
        runtime, attendee("reg"), event_id, RegistrationDraft(party_size=2)
    )
    await buy(runtime, "t", event_id, (a, 1))
    entry = await waitlists.join_ticket_waitlist(
        runtime, attendee("q"), a.id, TicketWaitlistDraft(quantity=1)
    )
    assert entry.status == "waiting"  # the type has stock, the event has no place
    await registrations.cancel_registration(runtime, attendee("reg"), event_id)
    mine = await waitlists.my_ticket_waitlist_entry(runtime, attendee("q"), a.id)
    assert (mine.status, mine.offered_quantity) == ("offered", 1)
    await assert_no_drift(runtime)


async def test_reconcile_fix_rebuilds_every_ticket_counter_from_the_rows(
    runtime: Runtime,
) -> None:
    """Counters of a type, its pool, its bucketed twin and the event cap, knocked off and
    rebuilt by `reconcile --fix` (the overhang and the bucket spread with them)."""
    event_id = await make_event(runtime, max_attendees=50)
    plain = await make_type(runtime, event_id, 10)
    hot = await make_type(runtime, event_id, 8, stock_buckets=2)
    pool = await make_pool(runtime, event_id, 20, plain, hot)
    await buy(runtime, "ra", event_id, (plain, 2), (hot, 3))
    await registrations.register(runtime, attendee("ra"), event_id, RegistrationDraft())
    async with runtime.db.transaction() as tx:
        for statement in (
            "UPDATE ticket_types SET quantity_reserved = 7 WHERE id = :plain",
            "UPDATE capacity_pools SET quantity_used = 1 WHERE id = :pool",
            "UPDATE event_capacity SET tickets = 0, registered = 4 WHERE event_id = :event",
            "UPDATE ticket_stock_buckets SET quantity_free = 0 WHERE ticket_type_id = :hot",
        ):
            params = {"plain": plain.id, "pool": pool.id, "event": event_id, "hot": hot.id}
            await tx.execute(text(statement), params)
    async with runtime.db.transaction() as tx:
        fixed = {(d.table, d.row_id, d.column) for d in await reconcile(tx, fix=True)}
    assert {
        ("ticket_types", plain.id, "quantity_reserved"),
        ("capacity_pools", pool.id, "quantity_used"),
        ("event_capacity", event_id, "tickets"),
        ("event_capacity", event_id, "registered"),
        ("ticket_stock_buckets", hot.id, "quantity_free"),
    } <= fixed
    await assert_no_drift(runtime)
    seen = await pools.get_pool(runtime, pool.id)
    assert (seen.quantity_used, seen.over_capacity_by) == (5, 0)
    assert (await tickets.get_ticket_type(runtime, hot.id)).quantity_available == 5
