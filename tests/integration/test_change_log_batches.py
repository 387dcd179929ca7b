"""A batch's `order.created` rows ride in its items' INSERT (ledger/orders.place_together).

What must still hold: every committed order of the batch has exactly one change row, with
its own `available` and origin, in arrival order, followed by the sell-out it caused;
a refused order has none; a batch that rolls back leaves none; and the rows are counted,
so the committing process wakes its sequencer and every row gets a position.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from headcount.capacity import events, orders, sequencer, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import OrderView, TicketTypeView
from headcount.domain.errors import SoldOut
from headcount.ledger import changes
from headcount.ledger import orders as orders_ledger
from headcount.ledger.changes import Change
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import attendee, organizer

ORG = organizer("org-ride")


@pytest.fixture
async def rt(runtime: Runtime) -> Runtime:
    return runtime


async def stock(rt: Runtime, total: int) -> TicketTypeView:
    event_id = (await events.create_event(rt, ORG, EventDraft(name="Ride"))).id
    drop = TicketTypeDraft(name="Drop", quantity_total=total)
    return await tickets.create_ticket_type(rt, ORG, event_id, drop)


def draft(tt: TicketTypeView) -> OrderDraft:
    return OrderDraft(
        event_id=tt.event_id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=1)]
    )


async def buy_all(rt: Runtime, tt: TicketTypeView, count: int) -> list[Any]:
    """Each buyer's order or refusal, the buyers arriving in order."""
    buyers = (orders.create_order(rt, attendee(f"ride-{n}"), draft(tt)) for n in range(count))
    return list(await asyncio.gather(*buyers, return_exceptions=True))


async def rows_of(rt: Runtime, event_id: str) -> list[Any]:
    async with rt.db.snapshot() as tx:
        return list(
            (
                await tx.execute(
                    select(Change.type, Change.resource_id, Change.payload, Change.position)
                    .where(Change.event_id == event_id, Change.resource_type != "event")
                    .where(Change.type != "ticket_type.created")
                    .order_by(Change.id)
                )
            ).all()
        )


async def test_a_batch_records_each_committed_order_once_in_arrival_order(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 of 30 buyers win; the log holds their 12 rows, in arrival order, each with the
    stock left after it, then one sell-out; nothing for the 18 refused."""
    tt = await stock(rt, 12)
    counted: list[int] = []
    real_flush = changes.flush

    async def flush(tx: Any) -> int:
        counted.append(await real_flush(tx))
        return counted[-1]

    monkeypatch.setattr(changes, "flush", flush)
    found = await buy_all(rt, tt, 30)
    assert rt.hold_batches.largest > 1
    won = [o for o in found if isinstance(o, OrderView)]
    assert [n for n, o in enumerate(found) if isinstance(o, OrderView)] == list(range(12))
    assert all(isinstance(o, SoldOut) for o in found[12:])
    rows = await rows_of(rt, tt.event_id)
    assert [(t, r) for t, r, _, _ in rows] == [
        *(("order.created", o.id) for o in won),
        ("ticket_type.sold_out", tt.id),
    ]
    assert [p["items"][0]["available"] for _, _, p, _ in rows[:-1]] == list(range(11, -1, -1))
    # Rows that rode are counted as written (the committing process wakes its sequencer).
    assert sum(counted) == len(rows)
    assert await sequencer.sequence_pending(rt) >= len(rows)
    positions = [position for *_, position in await rows_of(rt, tt.event_id)]
    assert None not in positions
    assert positions == sorted(positions)
    async with rt.db.transaction() as tx:
        assert [str(d) for d in await reconcile(tx)] == []


async def test_rows_that_rode_in_a_rolled_back_batch_are_gone(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The items' INSERT (and the change rows riding in it) ran, then the batch failed:
    the batch's orders fail and leave neither an order nor a change row. (The first buyer
    is served alone, by the single path, and keeps its order and its one row.)"""
    tt = await stock(rt, 50)
    real = orders_ledger.place_together
    inserted: list[int] = []

    async def place_then_fail(*args: Any, **kwargs: Any) -> None:
        await real(*args, **kwargs)
        inserted.append(len(args[1]))
        raise RuntimeError("the connection broke after the INSERT")

    monkeypatch.setattr(orders, "place_together", place_then_fail)
    found = await asyncio.gather(
        *(orders.create_order(rt, attendee(f"gone-{n}"), draft(tt)) for n in range(10)),
        return_exceptions=True,
    )
    assert sum(inserted) >= 2, "no batch reached its items' INSERT"
    kept = [o.id for o in found if isinstance(o, OrderView)]
    assert all(isinstance(o, RuntimeError) for o in found if not isinstance(o, OrderView))
    assert len(kept) == 10 - sum(inserted)
    assert [(t, r) for t, r, _, _ in await rows_of(rt, tt.event_id)] == [
        ("order.created", order_id) for order_id in kept
    ]
    assert (await tickets.get_ticket_type(rt, tt.id)).quantity_reserved == len(kept)
