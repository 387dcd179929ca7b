"""Prove that every counter equals the rows that explain it.

Each check recomputes counters from claim rows and reports the differences; `--fix`
writes the recomputed values. Features add their checks to `CHECKS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.tickets import OrderStatus
from headcount.ledger.models import Order, OrderItem, TicketType
from headcount.ledger.spaces import Huddle, HuddleMember


@dataclass(frozen=True, slots=True)
class Drift:
    table: str
    row_id: str
    column: str
    counter: int
    from_rows: int

    def __str__(self) -> str:
        return (
            f"{self.table}.{self.column} of {self.row_id}: counter {self.counter}, "
            f"rows say {self.from_rows}"
        )


Check = Callable[[AsyncSession, bool], Awaitable[list[Drift]]]


async def ticket_types(session: AsyncSession, fix: bool) -> list[Drift]:
    held = func.coalesce(
        func.sum(case((Order.status == OrderStatus.PENDING, OrderItem.quantity), else_=0)), 0
    )
    sold = func.coalesce(
        func.sum(case((Order.status == OrderStatus.PAID, OrderItem.quantity), else_=0)), 0
    )
    rows = await session.execute(
        select(
            TicketType.id,
            TicketType.quantity_reserved,
            TicketType.quantity_sold,
            held,
            sold,
        )
        .outerjoin(OrderItem, OrderItem.ticket_type_id == TicketType.id)
        .outerjoin(Order, and_(Order.id == OrderItem.order_id))
        .group_by(TicketType.id, TicketType.quantity_reserved, TicketType.quantity_sold)
        .order_by(TicketType.id)
    )
    drifts: list[Drift] = []
    for tid, reserved, sold_counter, held_rows, sold_rows in rows.all():
        if reserved != held_rows:
            drifts.append(Drift("ticket_types", tid, "quantity_reserved", reserved, held_rows))
        if sold_counter != sold_rows:
            drifts.append(Drift("ticket_types", tid, "quantity_sold", sold_counter, sold_rows))
        if fix and (reserved != held_rows or sold_counter != sold_rows):
            await session.execute(
                update(TicketType)
                .where(TicketType.id == tid)
                .values(quantity_reserved=held_rows, quantity_sold=sold_rows)
                .execution_options(synchronize_session=False)
            )
    return drifts


async def huddles(session: AsyncSession, fix: bool) -> list[Drift]:
    """`huddles.members` must equal the huddle's membership rows."""
    rows = await session.execute(
        select(Huddle.id, Huddle.members, func.count(HuddleMember.user_id))
        .outerjoin(HuddleMember, HuddleMember.huddle_id == Huddle.id)
        .group_by(Huddle.id, Huddle.members)
        .order_by(Huddle.id)
    )
    drifts: list[Drift] = []
    for huddle_id, counter, from_rows in rows.all():
        if counter != from_rows:
            drifts.append(Drift("huddles", huddle_id, "members", counter, from_rows))
            if fix:
                await session.execute(
                    update(Huddle)
                    .where(Huddle.id == huddle_id)
                    .values(members=from_rows, version=Huddle.version + 1)
                    .execution_options(synchronize_session=False)
                )
    return drifts


CHECKS: list[Check] = [ticket_types, huddles]


async def reconcile(session: AsyncSession, *, fix: bool = False) -> list[Drift]:
    drifts: list[Drift] = []
    for check in CHECKS:
        drifts.extend(await check(session, fix))
    return drifts
