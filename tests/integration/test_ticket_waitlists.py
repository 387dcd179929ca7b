"""Ticket-type waitlists: offers held in quantity_reserved, accepted by ordering, passed on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from headcount.capacity import events, orders, tickets, waitlists
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft, TicketTypePatch
from headcount.capacity.views import TicketTypeView
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.domain.errors import Forbidden, InvalidQuantity, NotFound, SoldOut
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.clock import past_hold
from support.ledger_checks import assert_no_drift

ORG = organizer("org-wl")


async def make_stock(rt: Runtime, total: int, max_per_order: int | None = None) -> TicketTypeView:
    event = await events.create_event(rt, ORG, EventDraft(name="Waitlist test"))
    return await tickets.create_ticket_type(
        rt,
        ORG,
        event.id,
        TicketTypeDraft(name="GA", quantity_total=total, max_per_order=max_per_order),
    )


async def buy(rt: Runtime, who: str, tt: TicketTypeView, qty: int = 1) -> str:
    order = await orders.create_order(
        rt,
        attendee(who),
        OrderDraft(
            event_id=tt.event_id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=qty)]
        ),
    )
    return order.id


async def join(rt: Runtime, who: str, tt: TicketTypeView, qty: int = 1) -> str:
    entry = await waitlists.join_ticket_waitlist(
        rt, attendee(who), tt.id, TicketWaitlistDraft(quantity=qty)
    )
    return entry.status


async def status(rt: Runtime, who: str, tt: TicketTypeView) -> tuple[str, int | None, int | None]:
    entry = await waitlists.my_ticket_waitlist_entry(rt, attendee(who), tt.id)
    return entry.status, entry.position, entry.offered_quantity


async def test_cancel_offers_the_stock_to_the_head_not_to_a_newcomer(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 1)
    held = await buy(runtime, "ann", tt)
    assert await join(runtime, "bo", tt) == "waiting"
    assert await join(runtime, "cy", tt) == "waiting"
    assert await status(runtime, "cy", tt) == ("waiting", 2, None)
    await orders.cancel_order(runtime, attendee("ann"), held)
    assert await status(runtime, "bo", tt) == ("offered", None, 1)
    assert await status(runtime, "cy", tt) == ("waiting", 1, None)
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_reserved, seen.quantity_available) == (1, 0)
    with pytest.raises(SoldOut):
        await buy(runtime, "newcomer", tt)
    await assert_no_drift(runtime)

    # Accepting = ordering within the offer: the order takes the offer's hold over.
    order_id = await buy(runtime, "bo", tt)
    entry = await waitlists.my_ticket_waitlist_entry(runtime, attendee("bo"), tt.id)
    assert (entry.status, entry.order_id) == ("accepted", order_id)
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert (seen.quantity_reserved, seen.quantity_available) == (1, 0)
    await assert_no_drift(runtime)


async def offered_to_bo_before_cy(rt: Runtime) -> TicketTypeView:
    """The one ticket ann held is cancelled: bo, first in the queue, is offered it, and
    cy waits behind."""
    tt = await make_stock(rt, 1)
    held = await buy(rt, "ann", tt)
    await join(rt, "bo", tt)
    await join(rt, "cy", tt)
    await orders.cancel_order(rt, attendee("ann"), held)
    return tt


async def test_lapsed_offer_passes_to_the_next_person(runtime: Runtime) -> None:
    tt = await offered_to_bo_before_cy(runtime)
    offer = await waitlists.my_ticket_waitlist_entry(runtime, attendee("bo"), tt.id)
    assert offer.offer_expires_at is not None
    assert offer.offer_expires_at - offer.updated_at == timedelta(
        seconds=runtime.settings.offer_ttl
    )
    lapsed = offer.offer_expires_at + timedelta(seconds=1)
    runtime.clock = lambda: lapsed
    # Other tests' offers in the shared database may lapse at this clock too.
    assert await waitlists.sweep_expired_offers(runtime) >= 1
    assert await status(runtime, "bo", tt) == ("expired", None, 1)
    assert await status(runtime, "cy", tt) == ("offered", None, 1)
    # bo is too late: the stock is cy's now.
    with pytest.raises(SoldOut):
        await buy(runtime, "bo", tt)
    await buy(runtime, "cy", tt)
    await assert_no_drift(runtime)


async def test_declining_passes_the_offer_on(runtime: Runtime) -> None:
    tt = await offered_to_bo_before_cy(runtime)
    declined = await waitlists.leave_ticket_waitlist(runtime, attendee("bo"), tt.id)
    assert declined.status == "declined"
    assert await status(runtime, "cy", tt) == ("offered", None, 1)
    await assert_no_drift(runtime)


async def test_hold_expiry_refund_and_a_larger_total_all_promote(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 2)
    first = await buy(runtime, "ann", tt)
    paid = await buy(runtime, "dan", tt)
    await orders.confirm_order(runtime, ORG, paid)
    for who in ("w1", "w2", "w3", "w4"):
        await join(runtime, who, tt)
    # Hold expiry (the sweeper).
    order = await orders.get_order(runtime, attendee("ann"), first)
    with past_hold(runtime, order):
        await orders.sweep_expired_holds(runtime)
        assert (await status(runtime, "w1", tt))[0] == "offered"
    # Refund of a paid order.
    await orders.cancel_order(runtime, ORG, paid)
    assert (await status(runtime, "w2", tt))[0] == "offered"
    # Organizer adds stock.
    raised = await tickets.update_ticket_type(
        runtime, ORG, tt.id, TicketTypePatch(quantity_total=4)
    )
    assert raised.quantity_available == 0
    assert (await status(runtime, "w3", tt))[0] == "offered"
    assert (await status(runtime, "w4", tt))[0] == "offered"
    await assert_no_drift(runtime)


async def test_offer_is_smaller_when_less_frees_and_extra_is_reserved_normally(
    runtime: Runtime,
) -> None:
    tt = await make_stock(runtime, 3, max_per_order=3)
    one = await buy(runtime, "ann", tt, 1)
    await buy(runtime, "dan", tt, 2)
    await join(runtime, "bo", tt, 3)
    await orders.cancel_order(runtime, attendee("ann"), one)
    assert await status(runtime, "bo", tt) == ("offered", None, 1)
    # bo asks for 2 while holding an offer of 1: the second ticket is not there.
    with pytest.raises(SoldOut):
        await buy(runtime, "bo", tt, 2)
    assert await status(runtime, "bo", tt) == ("offered", None, 1)
    await buy(runtime, "bo", tt, 1)
    await assert_no_drift(runtime)


async def test_joining_with_free_stock_offers_at_once(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 5, max_per_order=2)
    assert await join(runtime, "eve", tt, 2) == "offered"
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_reserved == 2
    # Joining again answers the same entry.
    assert await join(runtime, "eve", tt, 2) == "offered"
    with pytest.raises(InvalidQuantity):
        await join(runtime, "fay", tt, 3)
    with pytest.raises(Forbidden):
        await waitlists.ticket_waitlist(runtime, attendee("eve"), tt.id)
    listing = await waitlists.ticket_waitlist(runtime, ORG, tt.id)
    assert (listing.waiting, listing.offered) == (0, 1)
    with pytest.raises(NotFound):
        await waitlists.my_ticket_waitlist_entry(runtime, attendee("nobody"), tt.id)
    feed = await waitlists.my_entries(runtime, attendee("eve"), tt.event_id)
    assert [e.status for e in feed] == ["offered"]
    await assert_no_drift(runtime)


async def test_a_lapsed_offer_is_released_when_someone_else_buys(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 1)
    assert await join(runtime, "gus", tt) == "offered"
    offer = await waitlists.my_ticket_waitlist_entry(runtime, attendee("gus"), tt.id)
    assert offer.offer_expires_at is not None
    lapsed = offer.offer_expires_at + timedelta(seconds=1)
    runtime.clock = lambda: lapsed
    await buy(runtime, "hal", tt)
    assert await status(runtime, "gus", tt) == ("expired", None, 1)
    await assert_no_drift(runtime)
