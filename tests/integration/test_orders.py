"""The order lifecycle against real databases (SQLite and PostgreSQL), through the service layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from headcount.capacity import events, orders, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft, TicketTypePatch
from headcount.capacity.views import OrderView, TicketTypeView
from headcount.domain.errors import (
    Conflict,
    Forbidden,
    HoldExpired,
    IdempotencyKeyReused,
    InvalidQuantity,
    InvalidRequest,
    NotFound,
    SalesClosed,
    SoldOut,
)
from headcount.domain.identity import Principal, Role
from headcount.ledger.models import Order
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.clock import past_hold
from support.ledger_checks import assert_no_drift

ORG = organizer("org-orders")


async def make_stock(
    rt: Runtime, *totals: int, max_per_order: int | None = None
) -> list[TicketTypeView]:
    event = await events.create_event(rt, ORG, EventDraft(name="Orders test"))
    return [
        await tickets.create_ticket_type(
            rt,
            ORG,
            event.id,
            TicketTypeDraft(name=f"T{i}", quantity_total=total, max_per_order=max_per_order),
        )
        for i, total in enumerate(totals)
    ]


def draft(event_id: str, *lines: tuple[str, int]) -> OrderDraft:
    return OrderDraft(
        event_id=event_id, items=[OrderItemInput(ticket_type_id=t, quantity=q) for t, q in lines]
    )


async def hold_one(rt: Runtime, who: str, tt: TicketTypeView) -> OrderView:
    """`who` holds one ticket of `tt`."""
    return await orders.create_order(rt, attendee(who), draft(tt.event_id, (tt.id, 1)))


@asynccontextmanager
async def lapsed_last_ticket(
    rt: Runtime, who: str
) -> AsyncIterator[tuple[TicketTypeView, OrderView]]:
    """The only ticket of a type, held by `who`, with `rt`'s clock past that hold: what each
    lapsed-hold test starts from, so the stock is exactly the one lapsed unit."""
    (tt,) = await make_stock(rt, 1)
    order = await hold_one(rt, who, tt)
    with past_hold(rt, order):
        yield tt, order


async def test_create_holds_stock_and_confirm_sells_it(runtime: Runtime) -> None:
    (tt,) = await make_stock(runtime, 10)
    order = await orders.create_order(runtime, attendee("ann"), draft(tt.event_id, (tt.id, 3)))
    assert order.status == "pending"
    assert order.expires_at - order.created_at == timedelta(seconds=runtime.settings.hold_ttl)
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_reserved, seen.quantity_sold, seen.quantity_available) == (3, 0, 7)

    paid = await orders.confirm_order(runtime, ORG, order.id)
    assert paid.status == "paid"
    assert paid.paid_at is not None
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_reserved, seen.quantity_sold, seen.quantity_available) == (0, 3, 7)
    await assert_no_drift(runtime)


async def test_multi_item_order_is_all_or_nothing(runtime: Runtime) -> None:
    plenty, scarce = await make_stock(runtime, 100, 1)
    with pytest.raises(SoldOut) as refused:
        await orders.create_order(
            runtime, attendee("bo"), draft(plenty.event_id, (plenty.id, 5), (scarce.id, 2))
        )
    assert refused.value.extra["ticket_type_id"] == scarce.id
    assert (await tickets.get_ticket_type(runtime, plenty.id)).quantity_reserved == 0
    assert (await tickets.get_ticket_type(runtime, scarce.id)).quantity_reserved == 0
    await assert_no_drift(runtime)


async def test_sold_out_exactly_at_total(runtime: Runtime) -> None:
    (tt,) = await make_stock(runtime, 3)
    for n in range(3):
        await hold_one(runtime, f"u{n}", tt)
    with pytest.raises(SoldOut):
        await hold_one(runtime, "late", tt)
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert seen.is_sold_out
    assert seen.quantity_available == 0


async def test_cancel_releases_and_refund_returns_sold_stock(runtime: Runtime) -> None:
    (tt,) = await make_stock(runtime, 5)
    buyer = attendee("cy")
    held = await orders.create_order(runtime, buyer, draft(tt.event_id, (tt.id, 2)))
    cancelled = await orders.cancel_order(runtime, buyer, held.id)
    assert cancelled.status == "cancelled"
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_available == 5
    # Cancelling again is a no-op, not an error and not a second release.
    assert (await orders.cancel_order(runtime, buyer, held.id)).status == "cancelled"
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_available == 5

    paid = await orders.create_order(runtime, buyer, draft(tt.event_id, (tt.id, 2)))
    await orders.confirm_order(runtime, ORG, paid.id)
    with pytest.raises(Forbidden):
        await orders.cancel_order(runtime, buyer, paid.id)
    refunded = await orders.cancel_order(runtime, ORG, paid.id)
    assert refunded.status == "refunded"
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_sold, seen.quantity_available) == (0, 5)
    with pytest.raises(Conflict):
        await orders.confirm_order(runtime, ORG, paid.id)
    await assert_no_drift(runtime)


async def stored_status(rt: Runtime, order_id: str) -> str:
    async with rt.db.transaction() as tx:
        return (await tx.scalars(select(Order.status).where(Order.id == order_id))).one()


async def test_a_lapsed_hold_reads_expired_without_a_write_and_the_sweep_frees_it(
    runtime: Runtime,
) -> None:
    """Reads never write: a lapsed hold is shown `expired`; the sweeper releases its stock."""
    (tt,) = await make_stock(runtime, 2)
    order = await orders.create_order(runtime, attendee("di"), draft(tt.event_id, (tt.id, 2)))
    later = order.expires_at + timedelta(seconds=1)
    runtime.clock = lambda: later
    assert (await orders.get_order(runtime, attendee("di"), order.id)).status == "expired"
    listed = await orders.list_orders(runtime, attendee("di"), event_id=tt.event_id)
    assert [o.status for o in listed] == ["expired"]
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_reserved, seen.quantity_available) == (2, 0)  # until the sweep
    await tickets.list_ticket_types(runtime, tt.event_id)
    assert await stored_status(runtime, order.id) == "pending"  # no read wrote
    assert await orders.sweep_expired_holds(runtime) >= 1
    assert await stored_status(runtime, order.id) == "expired"
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_reserved, seen.quantity_available) == (0, 2)
    await assert_no_drift(runtime)


async def test_buying_past_a_lapsed_hold_expires_it_first(runtime: Runtime) -> None:
    async with lapsed_last_ticket(runtime, "ed") as (tt, first):
        second = await hold_one(runtime, "fi", tt)
        assert second.status == "pending"
        assert (await orders.get_order(runtime, attendee("ed"), first.id)).status == "expired"
    await assert_no_drift(runtime)


async def test_confirming_an_expired_order_resells_if_stock_allows(runtime: Runtime) -> None:
    async with lapsed_last_ticket(runtime, "gu") as (_, order):
        assert await orders.sweep_expired_holds(runtime) >= 1
        assert (await orders.confirm_order(runtime, ORG, order.id)).status == "paid"
    await assert_no_drift(runtime)


async def test_confirming_an_expired_order_fails_when_stock_is_gone(runtime: Runtime) -> None:
    async with lapsed_last_ticket(runtime, "ha") as (tt, order):
        taker = await hold_one(runtime, "ik", tt)
        with pytest.raises(HoldExpired):
            await orders.confirm_order(runtime, ORG, order.id)
        assert (await orders.get_order(runtime, ORG, order.id)).status == "expired"
        assert (await orders.get_order(runtime, ORG, taker.id)).status == "pending"
    await assert_no_drift(runtime)


async def test_idempotency_key_replays_the_first_result(runtime: Runtime) -> None:
    (tt,) = await make_stock(runtime, 10)
    buyer = attendee("jo")
    first = await orders.create_order(
        runtime, buyer, draft(tt.event_id, (tt.id, 2)), idempotency_key="k1"
    )
    again = await orders.create_order(
        runtime, buyer, draft(tt.event_id, (tt.id, 2)), idempotency_key="k1"
    )
    assert again == first
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_reserved == 2
    with pytest.raises(IdempotencyKeyReused):
        await orders.create_order(
            runtime, buyer, draft(tt.event_id, (tt.id, 3)), idempotency_key="k1"
        )
    # Keys belong to their owner: another attendee's identical key is a separate request.
    other = await orders.create_order(
        runtime, attendee("ka"), draft(tt.event_id, (tt.id, 2)), idempotency_key="k1"
    )
    assert other.id != first.id
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_reserved == 4
    await assert_no_drift(runtime)


async def test_quantity_and_terms_are_checked_before_stock(runtime: Runtime) -> None:
    (tt,) = await make_stock(runtime, 10, max_per_order=2)
    with pytest.raises(InvalidQuantity):
        await orders.create_order(runtime, attendee("lu"), draft(tt.event_id, (tt.id, 3)))
    other_event = await events.create_event(runtime, ORG, EventDraft(name="Other"))
    with pytest.raises(InvalidRequest):
        await orders.create_order(runtime, attendee("lu"), draft(other_event.id, (tt.id, 1)))
    with pytest.raises(NotFound):
        await orders.create_order(runtime, attendee("lu"), draft(tt.event_id, ("tt_nope", 1)))
    with pytest.raises(NotFound):
        await orders.create_order(runtime, attendee("lu"), draft("evt_nope", (tt.id, 1)))
    now = runtime.clock()
    await tickets.update_ticket_type(
        runtime, ORG, tt.id, TicketTypePatch(sales_start=now + timedelta(hours=1))
    )
    with pytest.raises(SalesClosed):
        await hold_one(runtime, "lu", tt)
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_reserved == 0


async def test_attendees_see_only_their_own_orders(runtime: Runtime) -> None:
    (tt,) = await make_stock(runtime, 10)
    mine = await hold_one(runtime, "mo", tt)
    with pytest.raises(NotFound):
        await orders.get_order(runtime, attendee("nosy"), mine.id)
    with pytest.raises(NotFound):
        await orders.cancel_order(runtime, attendee("nosy"), mine.id)
    with pytest.raises(NotFound):
        await orders.confirm_order(runtime, organizer("other-org"), mine.id)
    with pytest.raises(Forbidden):
        await orders.confirm_order(runtime, attendee("mo"), mine.id)
    assert [o.id for o in await orders.list_orders(runtime, attendee("nosy"))] == []
    platform = Principal(sub="payments", role=Role.SERVICE)
    assert (await orders.confirm_order(runtime, platform, mine.id)).status == "paid"


async def test_total_below_what_is_held_cancels_nobody_and_stops_sales(runtime: Runtime) -> None:
    """Lowering below use is allowed; the answer says how far over it is."""
    (tt,) = await make_stock(runtime, 5)
    await orders.create_order(runtime, attendee("ot"), draft(tt.event_id, (tt.id, 3)))
    lowered = await tickets.update_ticket_type(
        runtime, ORG, tt.id, TicketTypePatch(quantity_total=2)
    )
    assert (lowered.quantity_total, lowered.quantity_reserved) == (2, 3)
    assert lowered.over_capacity_by == 1
    assert lowered.quantity_available == 0
    assert lowered.is_sold_out
    with pytest.raises(SoldOut):
        await hold_one(runtime, "ot2", tt)
    await assert_no_drift(runtime)
    raised = await tickets.update_ticket_type(
        runtime, ORG, tt.id, TicketTypePatch(quantity_total=8)
    )
    assert raised.quantity_available == 5
    assert raised.over_capacity_by == 0
    async with runtime.db.transaction() as tx:
        assert (
            len((await tx.scalars(select(Order).where(Order.event_id == tt.event_id))).all()) == 1
        )
