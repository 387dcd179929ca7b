"""Placing an order: its row, within the buyer's quota, and its items, before any stock.

Rows first, stock last (docs/concurrency.md, "Hot inventory"): the caller reserves the
lines' stock only after this, so the ticket-type row locks the reservation takes are held
until COMMIT and not across these inserts. Statements are built once, at import: on the
benchmarked order path, building a statement costs more CPU than running it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.ids import is_well_formed
from headcount.domain.tickets import OrderLine
from headcount.ledger import changes, quotas
from headcount.ledger.models import Order, OrderItem

_INSERT_ITEM = insert(OrderItem.__table__)  # type: ignore[arg-type]


async def event_of(tx: AsyncSession, order_id: str) -> str | None:
    """The order's event (None: no such order), for routes that name only the order: the
    statements that lock and change it then name the event too (docs/scale-out.md)."""
    if not is_well_formed(order_id):
        return None
    found = await tx.scalar(select(Order.event_id).where(Order.id == order_id))
    return None if found is None else str(found)


async def placement(tx: AsyncSession, order_id: str) -> tuple[str, list[str]] | None:
    """The order's event and ticket types, ascending (None: no such order). Both are fixed
    when the order is placed, so they are read before the transaction that changes it: a
    confirm or cancel joins its ticket type's batch (`capacity/batching.py`)."""
    if not is_well_formed(order_id):
        return None
    found = (
        await tx.execute(
            select(OrderItem.event_id, OrderItem.ticket_type_id).where(
                OrderItem.order_id == order_id
            )
        )
    ).all()
    if not found:
        return None
    return str(found[0][0]), sorted(str(row[1]) for row in found)


async def place(
    tx: AsyncSession,
    order: dict[str, Any],
    lines: Sequence[OrderLine],
    *,
    quota: int,
    owner_locked: bool,
) -> None:
    """Insert a pending order and its items; `RateLimited` if the buyer is at `quota`.

    `order` holds the order row's columns; `owner_locked`: the caller already took the
    buyer's lock (`locks.user`, folded into its earlier read).
    """
    await quotas.insert_pending_order(tx, order, limit=quota, locked=owner_locked)
    await tx.execute(
        _INSERT_ITEM,
        [
            {
                "order_id": order["id"],
                "ticket_type_id": li.ticket_type_id,
                "event_id": order["event_id"],
                "quantity": li.quantity,
            }
            for li in lines
        ],
    )


# A batch's items in one statement (PostgreSQL): a parameter per column, not per value.
_ITEMS = (
    "INSERT INTO order_items (order_id, ticket_type_id, event_id, quantity) "
    "SELECT * FROM unnest(CAST(:order_id AS varchar[]), CAST(:ticket_type_id AS varchar[]), "
    "CAST(:event_id AS varchar[]), CAST(:quantity AS integer[]))"
)
_INSERT_ITEMS = text(_ITEMS)
# The same, with the batch's `order.created` rows riding along: the items are the batch's
# last rows and its stock UPDATE (`inventory.hold_total`) its last lock, so as with a row
# inserted just before COMMIT a later transaction on the ticket type gets larger ids
# (ledger/changes.py), and recording costs the batch no statement of its own.
_INSERT_ITEMS_LOGGED = text(changes.riding(_ITEMS))


async def place_together(
    tx: AsyncSession,
    rows: Sequence[dict[str, Any]],
    lines: Sequence[OrderLine],
    created: Sequence[changes.Pending] = (),
) -> None:
    """A batch's pending orders (their quota already counted under the buyers' locks) and
    their one item each: two multi-row INSERTs. `created`: their recorded changes, which
    ride in the second on PostgreSQL (the caller holds the stock's row lock already)."""
    if not rows:
        return
    if len(lines) != len(rows):
        raise ValueError("one line per order")
    await tx.execute(quotas.INSERT_ORDER, list(rows))
    if tx.get_bind().dialect.name != "postgresql":
        await tx.execute(
            _INSERT_ITEM,
            [
                {
                    "order_id": row["id"],
                    "ticket_type_id": li.ticket_type_id,
                    "event_id": row["event_id"],
                    "quantity": li.quantity,
                }
                for row, li in zip(rows, lines, strict=True)
            ],
        )
        return
    items = {
        "order_id": [row["id"] for row in rows],
        "ticket_type_id": [li.ticket_type_id for li in lines],
        "event_id": [row["event_id"] for row in rows],
        "quantity": [li.quantity for li in lines],
    }
    if not created:
        await tx.execute(_INSERT_ITEMS, items)
        return
    await tx.execute(_INSERT_ITEMS_LOGGED, {**items, **changes.arrays_of(created)})
    changes.written(tx, *created)
