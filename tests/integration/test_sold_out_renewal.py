"""A sold-out mark under a steady stream of refusals is renewed by lock-free reads and
never lapses, so no refusal goes back to a write transaction (capacity/soldout.py); a
renewal that finds room, or a per-customer limit, ends the mark."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from headcount.capacity import events, orders, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft, TicketTypePatch
from headcount.capacity.views import TicketTypeView
from headcount.config import Settings
from headcount.domain.errors import SoldOut
from headcount.domain.tickets import OrderLine, OrderStatus
from headcount.runtime import Runtime
from support.auth import attendee, organizer

ORG = organizer("org-renewal")
TTL = 1.0  # a renewal starts half a TTL before the mark would lapse: slack on a busy CI


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime.from_settings(
        Settings(database_url=database_url, env="test", sold_out_mark_ttl=TTL)
    )
    yield runtime
    await runtime.close()


async def sold_out(rt: Runtime) -> TicketTypeView:
    """A type of one ticket, held, then refused once: marked."""
    event = await events.create_event(rt, ORG, EventDraft(name="Renewal"))
    tt = await tickets.create_ticket_type(
        rt, ORG, event.id, TicketTypeDraft(name="Drop", quantity_total=1)
    )
    await orders.create_order(rt, attendee("holder"), draft(tt))
    with pytest.raises(SoldOut):
        await orders.create_order(rt, attendee("first-late"), draft(tt))
    return tt


def draft(tt: TicketTypeView) -> OrderDraft:
    return OrderDraft(
        event_id=tt.event_id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=1)]
    )


def counting_transactions(rt: Runtime) -> list[int]:
    opened = [0]
    real = rt.db.transaction

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened[0] += 1
        return real(*args, **kwargs)

    rt.db.transaction = counting  # type: ignore[method-assign]
    return opened


async def test_steady_refusals_renew_the_mark_without_a_write_transaction(rt: Runtime) -> None:
    """Refusals for three TTLs: every one from the mark. Without renewal the mark lapses
    each TTL and the next order opens a transaction (the control is `opened`)."""
    tt = await sold_out(rt)
    answered = rt.sold_out.answered
    opened = counting_transactions(rt)
    asked = 0
    ends = time.monotonic() + 3 * TTL
    while time.monotonic() < ends:
        asked += 1
        with pytest.raises(SoldOut):
            await orders.create_order(rt, attendee(f"late-{asked}"), draft(tt))
        await asyncio.sleep(0.01)
    assert opened[0] == 0
    assert rt.sold_out.answered - answered == asked


async def test_a_renewal_that_finds_room_ends_the_mark(database_url: str, rt: Runtime) -> None:
    """Another process (its own runtime, no notification heard here) cancels the hold:
    the next renewal read finds the ticket free and the mark goes within its TTL."""
    tt = await sold_out(rt)
    other = Runtime.from_settings(Settings(database_url=database_url, env="test"))
    try:
        mine = await orders.list_orders(other, attendee("holder"))
        await orders.cancel_order(other, attendee("holder"), mine[0].id)
    finally:
        await other.close()
    released = time.monotonic()
    n = 0
    while True:
        n += 1
        try:
            sold = await orders.create_order(rt, attendee(f"waiting-{n}"), draft(tt))
            break
        except SoldOut:
            assert time.monotonic() - released <= TTL + 0.5, "refused past the TTL"
            await asyncio.sleep(0.01)
    assert sold.status is OrderStatus.PENDING


async def test_a_renewal_that_finds_a_per_customer_limit_ends_the_mark(
    database_url: str, rt: Runtime
) -> None:
    """A `max_per_customer` set later, by another process: its refusal comes before
    stock's, so the mark must go (a type with one is never marked)."""
    tt = await sold_out(rt)
    other = Runtime.from_settings(Settings(database_url=database_url, env="test"))
    try:
        patch = TicketTypePatch(max_per_customer=1)
        await tickets.update_ticket_type(other, ORG, tt.id, patch)
    finally:
        await other.close()
    deadline = time.monotonic() + TTL + 0.5
    while rt.sold_out.refusal(tt.event_id, [OrderLine(tt.id, 1)], rt.clock()):
        assert time.monotonic() < deadline, "the mark outlived its TTL"
        with pytest.raises(SoldOut):
            await orders.create_order(rt, attendee("asking"), draft(tt))
        await asyncio.sleep(0.01)
