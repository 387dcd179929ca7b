"""Prove that every counter equals the rows that explain it.

Each check recomputes counters from claim rows and reports the differences; `--fix`
writes the recomputed values. Features add their checks to `CHECKS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.config import Settings
from headcount.domain.attendance import EntryStatus, RegistrationStatus, SeatStatus
from headcount.domain.tickets import OrderStatus
from headcount.ledger import buckets, draws, inventory, offers, seats
from headcount.ledger.attendance import (
    EventCapacity,
    Registration,
    SessionCapacity,
    SessionSeat,
    WaitlistEntry,
)
from headcount.ledger.models import Event, Order, OrderItem, TicketType
from headcount.ledger.pools import CapacityPool, TicketTypePool
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


async def ticket_types(tx: AsyncSession, fix: bool) -> list[Drift]:
    held = func.coalesce(
        func.sum(case((Order.status == OrderStatus.PENDING, OrderItem.quantity), else_=0)), 0
    )
    sold = func.coalesce(
        func.sum(case((Order.status == OrderStatus.PAID, OrderItem.quantity), else_=0)), 0
    )
    rows = await tx.execute(
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
    offered = await _offered_stock(tx)
    hot = set(await tx.scalars(select(TicketType.id).where(TicketType.stock_buckets > 1)))
    for tid, reserved, sold_counter, pending, paid in rows.all():
        # Bucketed types keep no counters on their row: those must stay 0 (the rows are
        # checked against the buckets in `stock_buckets`).
        pending_rows, sold_rows = (0, 0) if tid in hot else (pending, paid)
        held_rows = pending_rows + (0 if tid in hot else offered.get(tid, 0))
        if reserved != held_rows:
            drifts.append(Drift("ticket_types", tid, "quantity_reserved", reserved, held_rows))
        if sold_counter != sold_rows:
            drifts.append(Drift("ticket_types", tid, "quantity_sold", sold_counter, sold_rows))
        if fix and (reserved != held_rows or sold_counter != sold_rows):
            await tx.execute(
                update(TicketType)
                .where(TicketType.id == tid)
                .values(quantity_reserved=held_rows, quantity_sold=sold_rows)
                .execution_options(synchronize_session=False)
            )
    return drifts


async def huddles(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`huddles.members` must equal the huddle's membership rows."""
    rows = await tx.execute(
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
                await tx.execute(
                    update(Huddle)
                    .where(Huddle.id == huddle_id)
                    .values(members=from_rows, version=Huddle.version + 1)
                    .execution_options(synchronize_session=False)
                )
    return drifts


async def _offered_stock(tx: AsyncSession) -> dict[str, int]:
    rows = await tx.execute(
        select(WaitlistEntry.ticket_type_id, func.sum(WaitlistEntry.offered_quantity))
        .where(
            WaitlistEntry.status == EntryStatus.OFFERED, WaitlistEntry.ticket_type_id.is_not(None)
        )
        .group_by(WaitlistEntry.ticket_type_id)
    )
    return {tid: int(qty or 0) for tid, qty in rows.all() if tid is not None}


async def registrations(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`event_capacity.registered` must equal the party sizes of active registrations."""
    heads = func.coalesce(func.sum(Registration.party_size), 0)
    rows = await tx.execute(
        select(EventCapacity.event_id, EventCapacity.registered, heads)
        .outerjoin(
            Registration,
            and_(
                Registration.event_id == EventCapacity.event_id,
                Registration.status == RegistrationStatus.ACTIVE,
            ),
        )
        .group_by(EventCapacity.event_id, EventCapacity.registered)
        .order_by(EventCapacity.event_id)
    )
    drifts: list[Drift] = []
    for event_id, counter, from_rows in rows.all():
        if counter != from_rows:
            drifts.append(Drift("event_capacity", event_id, "registered", counter, from_rows))
            if fix:
                await tx.execute(
                    update(EventCapacity)
                    .where(EventCapacity.event_id == event_id)
                    .values(registered=from_rows)
                    .execution_options(synchronize_session=False)
                )
    return drifts


async def session_attendance(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`session_capacity.current_attendance` must equal the confirmed seat rows."""
    confirmed = func.count(SessionSeat.attendee_id)
    rows = await tx.execute(
        select(SessionCapacity.session_id, SessionCapacity.current_attendance, confirmed)
        .outerjoin(
            SessionSeat,
            and_(
                SessionSeat.session_id == SessionCapacity.session_id,
                SessionSeat.status == SeatStatus.CONFIRMED,
            ),
        )
        .group_by(SessionCapacity.session_id, SessionCapacity.current_attendance)
        .order_by(SessionCapacity.session_id)
    )
    drifts: list[Drift] = []
    for session_id, counter, from_rows in rows.all():
        if counter != from_rows:
            drifts.append(
                Drift("session_capacity", session_id, "current_attendance", counter, from_rows)
            )
            if fix:
                await tx.execute(
                    update(SessionCapacity)
                    .where(SessionCapacity.session_id == session_id)
                    .values(current_attendance=from_rows)
                    .execution_options(synchronize_session=False)
                )
    return drifts


async def waitlists(tx: AsyncSession, fix: bool) -> list[Drift]:
    """Nobody may wait while a seat or ticket is free: `counter` free, `from_rows` waiting.

    `--fix` runs the promotion that should have happened (seats confirmed, offers made).
    """
    waiting = (
        select(
            WaitlistEntry.session_id,
            WaitlistEntry.ticket_type_id,
            func.count().label("waiting"),
        )
        .where(WaitlistEntry.status == EntryStatus.WAITING)
        .group_by(WaitlistEntry.session_id, WaitlistEntry.ticket_type_id)
        .subquery()
    )
    idle_seats = await tx.execute(
        select(
            SessionCapacity.session_id,
            SessionCapacity.maximum_capacity - SessionCapacity.current_attendance,
            waiting.c.waiting,
        )
        .join(waiting, waiting.c.session_id == SessionCapacity.session_id)
        .where(SessionCapacity.current_attendance < SessionCapacity.maximum_capacity)
        .order_by(SessionCapacity.session_id)
    )
    idle_stock = await tx.execute(
        select(
            TicketType.id,
            TicketType.quantity_total - TicketType.quantity_sold - TicketType.quantity_reserved,
            waiting.c.waiting,
        )
        .join(waiting, waiting.c.ticket_type_id == TicketType.id)
        .where(TicketType.quantity_sold + TicketType.quantity_reserved < TicketType.quantity_total)
        .order_by(TicketType.id)
    )
    drifts = [
        Drift("session_capacity", sid, "free_seats_while_waiting", free, queued)
        for sid, free, queued in idle_seats.all()
    ]
    stock: list[Drift] = []
    for tid, _own_free, queued in idle_stock.all():
        # The stock an offer could really take: the type's own, bounded by any shared
        # limit (pools, the event's cap) — the same figure promotion itself uses.
        free = await inventory.locked_room(tx, tid)
        if free:
            stock.append(Drift("ticket_types", tid, "free_stock_while_waiting", free, queued))
    if fix:
        now = datetime.now(UTC)
        for drift in drifts:
            await seats.promote(tx, drift.row_id, now)
        if stock:
            ttl = Settings.model_fields["offer_ttl"].default
            await offers.settle(tx, [d.row_id for d in stock], now, ttl)
    return drifts + stock


async def pools(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`capacity_pools.quantity_used` = held + sold of its member types, from the rows."""
    use = await draws.use_by_ticket_type(tx)
    members = await tx.execute(select(TicketTypePool.pool_id, TicketTypePool.ticket_type_id))
    from_rows: dict[str, int] = {}
    for pool_id, tid in members.all():
        from_rows[pool_id] = from_rows.get(pool_id, 0) + use.get(tid, 0)
    rows = await tx.execute(
        select(CapacityPool.id, CapacityPool.quantity_used).order_by(CapacityPool.id)
    )
    drifts: list[Drift] = []
    for pool_id, counter in rows.all():
        expected = from_rows.get(pool_id, 0)
        if counter != expected:
            drifts.append(Drift("capacity_pools", pool_id, "quantity_used", counter, expected))
            if fix:
                await tx.execute(
                    update(CapacityPool)
                    .where(CapacityPool.id == pool_id)
                    .values(
                        quantity_used=expected,
                        quantity_over=draws.over_expr(
                            literal(expected), CapacityPool.admission_limit
                        ),
                    )
                    .execution_options(synchronize_session=False)
                )
    return drifts


async def event_tickets(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`event_capacity.tickets` = held + sold of the event's types while capped, else 0."""
    use = await draws.use_by_ticket_type(tx)
    per_event: dict[str, int] = {}
    for tid, event_id in (await tx.execute(select(TicketType.id, TicketType.event_id))).all():
        per_event[event_id] = per_event.get(event_id, 0) + use.get(tid, 0)
    rows = await tx.execute(
        select(EventCapacity.event_id, EventCapacity.tickets, Event.max_attendees)
        .join(Event, Event.id == EventCapacity.event_id)
        .order_by(EventCapacity.event_id)
    )
    drifts: list[Drift] = []
    for event_id, counter, cap in rows.all():
        expected = per_event.get(event_id, 0) if cap is not None else 0
        if counter != expected:
            drifts.append(Drift("event_capacity", event_id, "tickets", counter, expected))
            if fix:
                await tx.execute(
                    update(EventCapacity)
                    .where(EventCapacity.event_id == event_id)
                    .values(tickets=expected)
                    .execution_options(synchronize_session=False)
                )
    return drifts


async def stock_buckets(tx: AsyncSession, fix: bool) -> list[Drift]:
    """A bucketed type's free units plus what its rows hold and sell equal its total."""
    hot = list(
        (
            await tx.execute(
                select(TicketType.id, TicketType.quantity_total, TicketType.stock_buckets).where(
                    TicketType.stock_buckets > 1
                )
            )
        ).all()
    )
    found = await buckets.levels(tx, [tid for tid, _, _ in hot])
    drifts: list[Drift] = []
    for tid, total, count in hot:
        level = found.get(tid, buckets.Levels(0, 0, 0))
        should_be_free = total - level.held - level.sold
        if level.free != should_be_free:
            drifts.append(
                Drift("ticket_stock_buckets", tid, "quantity_free", level.free, should_be_free)
            )
            if fix:
                for bucket, free in enumerate(buckets.split(max(0, should_be_free), count)):
                    await tx.execute(
                        update(buckets.StockBucket)
                        .where(
                            buckets.StockBucket.ticket_type_id == tid,
                            buckets.StockBucket.bucket == bucket,
                        )
                        .values(quantity_free=free)
                        .execution_options(synchronize_session=False)
                    )
    return drifts


CHECKS: list[Check] = [ticket_types, stock_buckets, huddles]
CHECKS += [registrations, session_attendance, waitlists]
CHECKS += [pools, event_tickets]


async def reconcile(tx: AsyncSession, *, fix: bool = False) -> list[Drift]:
    drifts: list[Drift] = []
    for check in CHECKS:
        drifts.extend(await check(tx, fix))
    return drifts
