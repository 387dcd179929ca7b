"""Placing an order: its row, within the buyer's quota, and its items, before any stock.

Rows first, stock last (docs/concurrency.md, "Hot inventory"): the caller reserves the
lines' stock only after this, so the ticket-type row locks the reservation takes are held
until COMMIT and not across these inserts. Statements are built once, at import: on the
benchmarked order path, building a statement costs more CPU than running it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.ids import is_well_formed
from headcount.domain.tickets import OrderLine
from headcount.ledger import quotas
from headcount.ledger.models import Order, OrderItem

_INSERT_ITEM = insert(OrderItem.__table__)  # type: ignore[arg-type]


async def event_of(tx: AsyncSession, order_id: str) -> str | None:
    """The order's event (None: no such order), for routes that name only the order: the
    statements that lock and change it then name the event too (docs/scale-out.md)."""
    if not is_well_formed(order_id):
        return None
    found = await tx.scalar(select(Order.event_id).where(Order.id == order_id))
    return None if found is None else str(found)


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


async def place_together(
    tx: AsyncSession, rows: Sequence[dict[str, Any]], lines: Sequence[OrderLine]
) -> None:
    """A batch's pending orders (their quota already counted under the buyers' locks) and
    their one item each: two multi-row INSERTs."""
    if not rows:
        return
    await tx.execute(quotas.INSERT_ORDER, list(rows))
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
