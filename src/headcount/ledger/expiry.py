"""Expire due holds: the sweeper's transaction, safe to run on every replica at once.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so two sweepers (or a sweeper and a
buyer's lazy sweep) never wait on, or double-release, the same order. Lock order is
orders first, then, one event at a time in ascending event id, that event's ticket types
in ascending id, the same order confirm/cancel use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount import origin
from headcount.config import Settings
from headcount.domain.changes import ChangeType
from headcount.domain.tickets import OrderLine, OrderStatus
from headcount.ledger import inventory, journal, locks, offers
from headcount.ledger.models import Order, OrderItem


async def expire_due_holds(
    tx: AsyncSession,
    now: datetime,
    *,
    event_id: str | None = None,
    ticket_type_ids: Collection[str] | None = None,
    limit: int = 500,
    offer_ttl: float = Settings.model_fields["offer_ttl"].default,
) -> list[str]:
    """Mark due pending orders expired and release their stock; return their ids.

    Released stock is offered to the ticket types' waitlists in this same transaction.
    `event_id` (with `ticket_type_ids`: a buyer's lazy sweep) keeps the search in one event;
    the background sweep looks in all of them, then writes one event at a time, in
    ascending event id, each statement naming its event (docs/scale-out.md).
    """
    due = (
        select(Order.id)
        .where(Order.status == OrderStatus.PENDING, Order.expires_at <= now)
        .order_by(Order.expires_at)
        .limit(limit)
    )
    if event_id is not None:
        due = due.where(Order.event_id == event_id)
    if ticket_type_ids is not None:
        due = due.where(
            Order.id.in_(
                select(OrderItem.order_id).where(OrderItem.ticket_type_id.in_(ticket_type_ids))
            )
        )
    order_ids = list((await tx.scalars(locks.claimed(due))).all())
    if not order_ids:
        return []
    items = await tx.execute(
        select(
            OrderItem.order_id,
            OrderItem.ticket_type_id,
            OrderItem.quantity,
            Order.event_id,
            Order.owner_id,
            Order.expires_at,
        )
        .join(Order, Order.id == OrderItem.order_id)
        .where(OrderItem.order_id.in_(order_ids))
        .order_by(OrderItem.order_id, OrderItem.ticket_type_id)
    )
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    expired: dict[str, tuple[str, str, datetime, list[dict[str, Any]]]] = {}
    for order_id, tid, qty, of_event, owner_id, expires_at in items.all():
        totals[of_event][tid] += int(qty)
        found = expired.setdefault(order_id, (of_event, owner_id, expires_at, []))
        found[3].append({"ticket_type_id": tid, "quantity": int(qty)})
    for of_event in sorted(totals):
        await tx.execute(
            update(Order)
            .where(
                Order.id.in_([oid for oid, found in expired.items() if found[0] == of_event]),
                Order.event_id == of_event,
                Order.status == OrderStatus.PENDING,
            )
            .values(status=OrderStatus.EXPIRED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    lapsing = origin.system_within()  # the hold ran out; whoever noticed did not decide it
    for order_id, (of_event, owner_id, expires_at, order_items) in expired.items():
        journal.order(
            tx,
            ChangeType.ORDER_EXPIRED,
            order_id=order_id,
            event_id=of_event,
            owner_id=owner_id,
            status=OrderStatus.EXPIRED.value,
            previous_status=OrderStatus.PENDING.value,
            items=order_items,
            at=now,
            by=lapsing,
            expires_at=expires_at,
        )
    # One event at a time, in ascending id: the lock order across events (ledger/locks.py).
    for of_event, by_type in sorted(totals.items()):
        lines = [OrderLine(tid, qty) for tid, qty in sorted(by_type.items())]
        await inventory.release_hold(tx, lines, event_id=of_event)
        await offers.settle(tx, sorted(by_type), now, offer_ttl, event_id=of_event)
    return order_ids
