"""Expire due holds: the sweeper's transaction, safe to run on every replica at once.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so two sweepers (or a sweeper and a
buyer's lazy sweep) never wait on, or double-release, the same order. Lock order is
orders first, then ticket types in ascending id, the same order confirm/cancel use.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.config import Settings
from headcount.domain.tickets import OrderLine, OrderStatus
from headcount.ledger import inventory, locks, offers
from headcount.ledger.models import Order, OrderItem


async def expire_due_holds(
    tx: AsyncSession,
    now: datetime,
    *,
    ticket_type_ids: Collection[str] | None = None,
    limit: int = 500,
    offer_ttl: float = Settings.model_fields["offer_ttl"].default,
) -> list[str]:
    """Mark due pending orders expired and release their stock; return their ids.

    Released stock is offered to the ticket types' waitlists in this same transaction.
    """
    due = (
        select(Order.id)
        .where(Order.status == OrderStatus.PENDING, Order.expires_at <= now)
        .order_by(Order.expires_at)
        .limit(limit)
    )
    if ticket_type_ids is not None:
        due = due.where(
            Order.id.in_(
                select(OrderItem.order_id).where(OrderItem.ticket_type_id.in_(ticket_type_ids))
            )
        )
    order_ids = list((await tx.scalars(locks.claimed(due))).all())
    if not order_ids:
        return []
    totals = await tx.execute(
        select(OrderItem.ticket_type_id, func.sum(OrderItem.quantity))
        .where(OrderItem.order_id.in_(order_ids))
        .group_by(OrderItem.ticket_type_id)
        .order_by(OrderItem.ticket_type_id)
    )
    lines = [OrderLine(tid, int(qty)) for tid, qty in totals.all()]
    await tx.execute(
        update(Order)
        .where(Order.id.in_(order_ids), Order.status == OrderStatus.PENDING)
        .values(status=OrderStatus.EXPIRED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await inventory.release_hold(tx, lines)
    await offers.settle(tx, [line.ticket_type_id for line in lines], now, offer_ttl)
    return order_ids
