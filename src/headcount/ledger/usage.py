"""What the rows say is in use, per ticket type: the truth every stock counter is checked by.

Held = items of pending orders, organizer holds' units (ledger/allotments.py) and live
waitlist offers; sold = items of paid orders.
Pending orders count until the sweeper expires them (a lapsed hold is still a row), the
same rule the counters follow. Used where no counter is kept (bucketed types, the event
cap being switched on) and by `reconcile`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.attendance import EntryStatus
from headcount.domain.tickets import OrderStatus
from headcount.ledger import allotments
from headcount.ledger.attendance import WaitlistEntry
from headcount.ledger.models import Order, OrderItem


def _quantity_of(status: OrderStatus) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((Order.status == status, OrderItem.quantity), else_=0)), 0)


async def ordered(
    tx: AsyncSession, ticket_type_ids: Collection[str] | None = None
) -> dict[str, tuple[int, int]]:
    """(held by pending orders and organizer holds, sold) per ticket type; types with
    neither are absent."""
    query = (
        select(
            OrderItem.ticket_type_id,
            _quantity_of(OrderStatus.PENDING),
            _quantity_of(OrderStatus.PAID),
        )
        .join(Order, Order.id == OrderItem.order_id)
        .group_by(OrderItem.ticket_type_id)
    )
    if ticket_type_ids is not None:
        query = query.where(OrderItem.ticket_type_id.in_(sorted(set(ticket_type_ids))))
    found = await tx.execute(query)
    use = {tid: (int(held), int(sold)) for tid, held, sold in found.all()}
    for tid, units in (await allotments.held(tx, ticket_type_ids)).items():
        held, sold = use.get(tid, (0, 0))
        use[tid] = (held + units, sold)
    return use


async def offered(
    tx: AsyncSession, ticket_type_ids: Collection[str] | None = None
) -> dict[str, int]:
    """Stock held by live waitlist offers per ticket type; types without are absent."""
    query = (
        select(WaitlistEntry.ticket_type_id, func.sum(WaitlistEntry.offered_quantity))
        .where(
            WaitlistEntry.status == EntryStatus.OFFERED, WaitlistEntry.ticket_type_id.is_not(None)
        )
        .group_by(WaitlistEntry.ticket_type_id)
    )
    if ticket_type_ids is not None:
        query = query.where(WaitlistEntry.ticket_type_id.in_(sorted(set(ticket_type_ids))))
    found = await tx.execute(query)
    return {tid: int(qty or 0) for tid, qty in found.all() if tid is not None}


async def in_use(
    tx: AsyncSession, ticket_type_ids: Collection[str] | None = None
) -> dict[str, int]:
    """Held plus sold per ticket type, from the rows: pending and paid items, live offers."""
    use: dict[str, int] = defaultdict(int)
    for tid, (held, sold) in (await ordered(tx, ticket_type_ids)).items():
        use[tid] += held + sold
    for tid, qty in (await offered(tx, ticket_type_ids)).items():
        use[tid] += qty
    return dict(use)
