"""The order path's one early read (ledger/basket.py) against what can change after it.

An order reads its event, terms and shares once, lock-free, and skips re-reading its pools
after the stock UPDATE when nothing changed. These tests change things in the gap, from a
second connection, and check the order still sees them: a pool attached after the read
(caught by `membership_version`), and an event cap switched on (which must wait for the
order, because the read holds the event row `FOR KEY SHARE`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.capacity import events, pools, tickets
from headcount.capacity.events import EventDraft, EventPatch
from headcount.capacity.pools import PoolDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.domain.changes import ChangeType
from headcount.domain.errors import PoolExhausted
from headcount.domain.ids import new_id
from headcount.domain.tickets import OrderLine, OrderStatus
from headcount.ledger import basket, inventory, journal
from headcount.ledger.attendance import EventCapacity
from headcount.ledger.models import Order, OrderItem
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import organizer
from support.seed import event_with_ticket_type

ORG = organizer("org-basket")


async def _hold(tx: AsyncSession, event_id: str, lines: list[OrderLine]) -> None:
    """The order and item rows the reservation stands for, as `create_order` writes them."""
    now = datetime.now(UTC)
    order = Order(
        id=new_id("ord"),
        event_id=event_id,
        owner_id="buyer",
        status=OrderStatus.PENDING.value,
        expires_at=now + timedelta(hours=1),
        created_at=now,
        updated_at=now,
    )
    tx.add(order)
    tx.add_all(
        OrderItem(
            order_id=order.id,
            ticket_type_id=li.ticket_type_id,
            event_id=order.event_id,
            quantity=li.quantity,
        )
        for li in lines
    )
    await tx.flush()
    journal.order(
        tx,
        ChangeType.ORDER_CREATED,
        order_id=order.id,
        event_id=event_id,
        owner_id=order.owner_id,
        status=order.status,
        previous_status=None,
        items=[{"ticket_type_id": li.ticket_type_id, "quantity": li.quantity} for li in lines],
        at=now,
    )


async def _balanced(rt: Runtime) -> None:
    async with rt.db.transaction() as tx:
        assert await reconcile(tx) == []


async def _event_and_type(rt: Runtime, total: int = 10, buckets: int = 1) -> tuple[str, str]:
    return await event_with_ticket_type(
        rt,
        ORG,
        EventDraft(name="Basket races"),
        TicketTypeDraft(name="GA", quantity_total=total, stock_buckets=buckets),
    )


@pytest.mark.parametrize("buckets", [1, 4], ids=["one-row", "bucketed"])
async def test_a_pool_attached_after_the_read_is_still_drawn_on(pg: Runtime, buckets: int) -> None:
    runtime = pg
    event_id, tt_id = await _event_and_type(runtime, buckets=buckets)
    full = await pools.create_pool(runtime, ORG, event_id, PoolDraft(name="Full", capacity=0))
    lines = [OrderLine(tt_id, 1)]

    async def order_across_the_attach() -> None:
        async with runtime.db.transaction() as tx:
            seen = await basket.read(tx, event_id, "buyer", lines)
            assert not seen.shared  # no pool yet: the order would skip re-reading
            # Another connection attaches the type to a pool with no room, and commits.
            await pools.attach_ticket_type(runtime, ORG, full.id, tt_id)
            await _hold(tx, event_id, lines)
            await inventory.reserve(
                tx,
                lines,
                event_id=event_id,
                early=seen.early,
                versions=seen.versions,
                bucketed=seen.bucketed,
            )

    with pytest.raises(PoolExhausted):  # raised out of the transaction: it rolls back
        await order_across_the_attach()
    await _balanced(runtime)


async def test_an_unchanged_membership_skips_nothing_that_matters(runtime: Runtime) -> None:
    """With no pool and no cap the reserve is the UPDATE alone, and the books still add up."""
    event_id, tt_id = await _event_and_type(runtime, total=2)
    lines = [OrderLine(tt_id, 1)]
    for _ in range(2):
        async with runtime.db.transaction() as tx:
            seen = await basket.read(tx, event_id, "buyer", lines)
            await _hold(tx, event_id, lines)
            await inventory.reserve(
                tx, lines, event_id=event_id, early=seen.early, versions=seen.versions
            )
    view = await tickets.get_ticket_type(runtime, tt_id)
    assert (view.quantity_reserved, view.quantity_available) == (2, 0)
    await _balanced(runtime)


async def test_switching_the_event_cap_on_waits_for_orders_that_read_it_off(pg: Runtime) -> None:
    runtime = pg
    event_id, tt_id = await _event_and_type(runtime)
    lines = [OrderLine(tt_id, 3)]
    async with runtime.db.transaction() as tx:
        seen = await basket.read(tx, event_id, "buyer", lines)
        assert not seen.shared
        capping = asyncio.create_task(
            events.update_event(runtime, ORG, event_id, EventPatch(max_attendees=5))
        )
        await asyncio.sleep(0.5)
        assert not capping.done(), "the cap changed under an order that read it off"
        await _hold(tx, event_id, lines)
        await inventory.reserve(
            tx, lines, event_id=event_id, early=seen.early, versions=seen.versions
        )
    await asyncio.wait_for(capping, 10)
    # The counter the cap is enforced with includes the 3 held while it was being switched.
    async with runtime.db.transaction() as tx:
        counted = await tx.scalar(
            select(EventCapacity.tickets).where(EventCapacity.event_id == event_id)
        )
    assert counted == 3
    await _balanced(runtime)
