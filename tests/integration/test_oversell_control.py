"""Control experiment: the race is real, and the atomic statement is what stops it.

The same 200 concurrent buyers run twice against PostgreSQL: once through a naive
read-check-write reservation (the bug every flash-sale post-mortem describes), once
through the ledger's conditional UPDATE. The naive run must oversell — otherwise this
test could not tell a correct implementation from a lucky one — and the real one must not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, func, select, update

from headcount.capacity import events, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.config import Settings
from headcount.domain.errors import SoldOut
from headcount.domain.ids import new_id
from headcount.domain.tickets import OrderLine, OrderStatus
from headcount.ledger import inventory
from headcount.ledger.db import Tx
from headcount.ledger.models import Event, Order, OrderItem, TicketType
from headcount.runtime import Runtime
from support.auth import organizer

BUYERS = 200
STOCK = 20
Reserve = Callable[[Runtime, str], Awaitable[None]]


async def naive_reserve(rt: Runtime, tt_id: str) -> None:
    async with rt.db.transaction() as tx:
        tt = (await tx.execute(select(TicketType).where(TicketType.id == tt_id))).scalar_one()
        left = tt.quantity_total - tt.quantity_sold - tt.quantity_reserved
        if left < 1:
            raise SoldOut("sold out")
        await asyncio.sleep(0.005)  # the application's time between its read and its write
        await tx.execute(
            update(TicketType)
            .where(TicketType.id == tt_id)
            .values(quantity_reserved=tt.quantity_reserved + 1)
            .execution_options(synchronize_session=False)
        )
        await _add_order(rt, tx, tt.event_id, tt_id)


async def atomic_reserve(rt: Runtime, tt_id: str) -> None:
    async with rt.db.transaction() as tx:
        event_id = (
            await tx.execute(select(TicketType.event_id).where(TicketType.id == tt_id))
        ).scalar_one()
        await inventory.reserve(tx, [OrderLine(tt_id, 1)], event_id=event_id)
        await asyncio.sleep(0.005)  # same think time, now after the atomic step
        await _add_order(rt, tx, event_id, tt_id)


async def _add_order(rt: Runtime, tx: Tx, event_id: str, tt_id: str) -> None:
    now = rt.clock()
    order = Order(
        id=new_id("ord"),
        event_id=event_id,
        owner_id="control",
        status=OrderStatus.PENDING,
        expires_at=now,
        created_at=now,
        updated_at=now,
        paid_at=None,
    )
    tx.add(order)
    tx.add(OrderItem(order_id=order.id, ticket_type_id=tt_id, event_id=event_id, quantity=1))


async def _flash_sale(rt: Runtime, reserve: Reserve) -> tuple[int, int]:
    event = await events.create_event(rt, organizer(), EventDraft(name="Control"))
    tt = await tickets.create_ticket_type(
        rt, organizer(), event.id, TicketTypeDraft(name="Hot", quantity_total=STOCK)
    )

    async def buyer() -> None:
        with contextlib.suppress(SoldOut):
            await reserve(rt, tt.id)

    await asyncio.gather(*(buyer() for _ in range(BUYERS)))
    async with rt.db.transaction() as tx:
        held = await tx.scalar(
            select(func.sum(OrderItem.quantity)).where(OrderItem.ticket_type_id == tt.id)
        )
    return int(held or 0), STOCK


async def _erase_control_rows(rt: Runtime) -> None:
    """The naive run leaves drift on purpose; erase this test's rows so `reconcile` over
    the shared test database stays meaningful for every other test."""
    async with rt.db.transaction() as tx:
        mine = select(Order.id).where(Order.owner_id == "control")
        await tx.execute(delete(OrderItem).where(OrderItem.order_id.in_(mine)))
        await tx.execute(delete(Order).where(Order.owner_id == "control"))
        await tx.execute(
            update(TicketType)
            .where(
                TicketType.name == "Hot",
                TicketType.event_id.in_(select(Event.id).where(Event.name == "Control")),
            )
            .values(quantity_reserved=0)
        )


async def test_naive_read_then_write_oversells_and_atomic_update_does_not(
    postgres_url: str,
) -> None:
    rt = Runtime.from_settings(
        Settings(database_url=postgres_url, env="test", db_pool_size=20, db_max_overflow=20)
    )
    try:
        naive_held, total = await _flash_sale(rt, naive_reserve)
        atomic_held, _ = await _flash_sale(rt, atomic_reserve)
    finally:
        await _erase_control_rows(rt)
        await rt.close()
    print(f"\ncontrol: naive held {naive_held} of {total}; atomic held {atomic_held} of {total}")
    assert naive_held > total, "the naive version did not oversell: the test would prove nothing"
    assert atomic_held == total
