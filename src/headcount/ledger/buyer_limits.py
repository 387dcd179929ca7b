"""`max_per_customer` on ticket types and pools, counted from the order rows under a lock.

No counter is kept (it could drift, and would need a reconcile check): the buyer's
pending (not lapsed) and paid order items are summed *while holding the per-user lock*
that `ledger/locks.py` defines (`user`) — a PostgreSQL transaction-scoped advisory lock, or the
database write lock SQLite's `BEGIN IMMEDIATE` already holds — so twenty parallel orders
by one attendee are counted one after another and cannot beat the limit together.

The lock is taken before any ticket-type row lock and only when a limit applies, so
orders for unlimited types pay one indexed SELECT and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.pools import check_customer_limit
from headcount.domain.tickets import OrderLine, OrderStatus
from headcount.ledger import draws, locks
from headcount.ledger.models import Order, OrderItem, TicketType
from headcount.ledger.pools import CapacityPool, TicketTypePool


async def admit(tx: AsyncSession, owner_id: str, lines: Sequence[OrderLine], now: datetime) -> None:
    """Raise `CustomerLimitReached` if these lines would take the buyer past a limit."""
    asking = {line.ticket_type_id: line.quantity for line in lines}
    rows = await tx.execute(
        select(
            TicketType.id,
            TicketType.name,
            TicketType.max_per_customer,
            CapacityPool.id,
            CapacityPool.name,
            CapacityPool.max_per_customer,
        )
        .outerjoin(TicketTypePool, TicketTypePool.ticket_type_id == TicketType.id)
        .outerjoin(
            CapacityPool,
            and_(
                CapacityPool.id == TicketTypePool.pool_id,
                CapacityPool.max_per_customer.is_not(None),
            ),
        )
        .where(TicketType.id.in_(list(asking)))
    )
    type_limits: dict[str, tuple[str, int]] = {}
    pool_limits: dict[str, tuple[str, int]] = {}
    for tid, tname, tlimit, pid, pname, plimit in rows.all():
        if tlimit is not None:
            type_limits[tid] = (tname, tlimit)
        if pid is not None and plimit is not None:
            pool_limits[pid] = (pname, plimit)
    if not type_limits and not pool_limits:
        return
    await locks.user(tx, owner_id)
    members = await draws.members(tx, sorted(pool_limits))
    counted = set(type_limits).union(*members.values())
    held = await _held(tx, owner_id, counted, now)
    for tid, (name, limit) in sorted(type_limits.items()):
        check_customer_limit(
            already=held.get(tid, 0),
            asking=asking[tid],
            limit=limit,
            what=repr(name),
            ticket_type_id=tid,
        )
    for pid, (name, limit) in sorted(pool_limits.items()):
        check_customer_limit(
            already=sum(held.get(tid, 0) for tid in members.get(pid, [])),
            asking=sum(asking.get(tid, 0) for tid in members.get(pid, [])),
            limit=limit,
            what=f"pool {name!r}",
            pool_id=pid,
        )


async def _held(
    tx: AsyncSession, owner_id: str, ticket_type_ids: set[str], now: datetime
) -> dict[str, int]:
    """The buyer's live holds and purchases per ticket type (lapsed holds hold nothing)."""
    if not ticket_type_ids:
        return {}
    rows = await tx.execute(
        select(OrderItem.ticket_type_id, func.sum(OrderItem.quantity))
        .join(Order, Order.id == OrderItem.order_id)
        .where(
            Order.owner_id == owner_id,
            OrderItem.ticket_type_id.in_(sorted(ticket_type_ids)),
            or_(
                Order.status == OrderStatus.PAID,
                and_(Order.status == OrderStatus.PENDING, Order.expires_at > now),
            ),
        )
        .group_by(OrderItem.ticket_type_id)
    )
    return {tid: int(qty or 0) for tid, qty in rows.all()}
