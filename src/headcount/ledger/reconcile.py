"""Prove that every counter equals the rows that explain it.

Each check recomputes counters from claim rows and reports the differences; `--fix`
writes the recomputed values. Features add their checks to `CHECKS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from headcount.config import Settings
from headcount.domain import occupancy, replay
from headcount.domain.attendance import EntryStatus, RegistrationStatus, SeatStatus
from headcount.ledger import (
    allotments,
    areas,
    buckets,
    changes,
    draws,
    inventory,
    offers,
    rows,
    seats,
    usage,
)
from headcount.ledger import scans as scan_rows
from headcount.ledger.attendance import (
    EventCapacity,
    Registration,
    SessionCapacity,
    SessionSeat,
    WaitlistEntry,
)
from headcount.ledger.models import Base, Event, TicketType
from headcount.ledger.pools import CapacityPool, TicketTypePool
from headcount.ledger.spaces import Huddle, HuddleMember
from headcount.ledger.venue import Area


@dataclass(frozen=True, slots=True)
class Drift:
    table: str
    row_id: str
    column: str
    counter: int
    from_rows: int
    # What the counter was checked against: its rows, or the change log replayed (which
    # `--fix` cannot rewrite: a decision path that did not record, or a tampered row).
    basis: str = "rows"

    def __str__(self) -> str:
        return (
            f"{self.table}.{self.column} of {self.row_id}: counter {self.counter}, "
            f"{self.basis} say{'' if self.basis == 'rows' else 's'} {self.from_rows}"
        )


Check = Callable[[AsyncSession, bool], Awaitable[list[Drift]]]


async def _compare(
    tx: AsyncSession,
    fix: bool,
    model: type[Base],
    column: str,
    found: Iterable[tuple[str, int, int]],
    *,
    also: Callable[[int], dict[str, Any]] | None = None,
) -> list[Drift]:
    """Drifts of `model.column` from (row id, counter, from rows); `fix` writes the rows' value.

    `also` gives further columns to write beside it (an overhang, a version bump).
    """
    drifts: list[Drift] = []
    for row_id, counter, from_rows in found:
        if counter != from_rows:
            drifts.append(Drift(model.__tablename__, row_id, column, counter, from_rows))
            if fix:
                extra = also(from_rows) if also else {}
                # A repair across events: by key alone.
                await rows.change(tx, model, row_id, {column: from_rows, **extra}, event_id=None)
    return drifts


async def _ticket_counters(tx: AsyncSession) -> Sequence[Row[str, int, int, int]]:
    """(id, reserved, sold, buckets) of every ticket type: what both the row-sum and the
    change-log checks hold the ledger's counters against."""
    found = await tx.execute(
        select(
            TicketType.id,
            TicketType.quantity_reserved,
            TicketType.quantity_sold,
            TicketType.stock_buckets,
        ).order_by(TicketType.id)
    )
    return found.all()


async def ticket_types(tx: AsyncSession, fix: bool) -> list[Drift]:
    """Reserved = pending items plus live offers, sold = paid items (0 for bucketed types)."""
    found = await _ticket_counters(tx)
    orders = await usage.ordered(tx)
    offered = await usage.offered(tx)
    drifts: list[Drift] = []
    for tid, reserved, sold_counter, stock_buckets in found:
        pending, paid = orders.get(tid, (0, 0))
        held_rows, sold_rows = pending + offered.get(tid, 0), paid
        if stock_buckets > 1:
            # Bucketed types keep no counters on their row: those must stay 0 (the rows are
            # checked against the buckets in `stock_buckets`).
            held_rows, sold_rows = 0, 0
        if reserved != held_rows:
            drifts.append(Drift("ticket_types", tid, "quantity_reserved", reserved, held_rows))
        if sold_counter != sold_rows:
            drifts.append(Drift("ticket_types", tid, "quantity_sold", sold_counter, sold_rows))
        if fix and (reserved != held_rows or sold_counter != sold_rows):
            counters = {"quantity_reserved": held_rows, "quantity_sold": sold_rows}
            await rows.change(tx, TicketType, tid, counters, event_id=None)
    return drifts


async def huddles(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`huddles.members` must equal the huddle's membership rows."""
    members = func.count(HuddleMember.user_id)
    joined = HuddleMember.huddle_id == Huddle.id
    # A fixed count bumps the version, so joins that read the old one try again.
    bump: dict[str, Any] = {"version": Huddle.version + 1}
    return await _against(tx, fix, Huddle.members, members, of=HuddleMember, on=joined, also=bump)


async def registrations(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`event_capacity.registered` must equal the party sizes of active registrations."""
    heads = func.coalesce(func.sum(Registration.party_size), 0)
    active = and_(
        Registration.event_id == EventCapacity.event_id,
        Registration.status == RegistrationStatus.ACTIVE,
    )
    return await _against(tx, fix, EventCapacity.registered, heads, of=Registration, on=active)


async def session_attendance(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`session_capacity.current_attendance` must equal the confirmed seat rows."""
    seats_ = func.count(SessionSeat.attendee_id)
    confirmed = and_(
        SessionSeat.session_id == SessionCapacity.session_id,
        SessionSeat.status == SeatStatus.CONFIRMED,
    )
    counter = SessionCapacity.current_attendance
    return await _against(tx, fix, counter, seats_, of=SessionSeat, on=confirmed)


async def _against(
    tx: AsyncSession,
    fix: bool,
    counter: InstrumentedAttribute[int],
    from_rows: ColumnElement[int],
    *,
    of: type[Base],
    on: ColumnElement[bool],
    also: dict[str, Any] | None = None,
) -> list[Drift]:
    """A counter column against an aggregate (`from_rows`) of the rows `of` joined `on` it."""
    model = cast("type[Base]", counter.class_)
    key = model.__mapper__.primary_key[0]
    found = await tx.execute(
        select(key, counter, from_rows).outerjoin(of, on).group_by(key, counter).order_by(key)
    )
    extra = (lambda _: also) if also else None
    return await _compare(tx, fix, model, counter.key, found.all(), also=extra)


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
            SessionCapacity.event_id,
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
            TicketType.event_id,
        )
        .join(waiting, waiting.c.ticket_type_id == TicketType.id)
        .where(TicketType.quantity_sold + TicketType.quantity_reserved < TicketType.quantity_total)
        .order_by(TicketType.id)
    )
    event_of: dict[str, str] = {}
    drifts: list[Drift] = []
    for sid, free, queued, event_id in idle_seats.all():
        drifts.append(Drift("session_capacity", sid, "free_seats_while_waiting", free, queued))
        event_of[sid] = event_id
    stock: list[Drift] = []
    for tid, _own_free, queued, event_id in idle_stock.all():
        # The stock an offer could really take: the type's own, bounded by any shared
        # limit (pools, the event's cap) — the same figure promotion itself uses.
        free = await inventory.locked_room(tx, tid, event_id=event_id)
        event_of[tid] = event_id
        if free:
            stock.append(Drift("ticket_types", tid, "free_stock_while_waiting", free, queued))
    if fix:
        now = datetime.now(UTC)
        for drift in drifts:
            await seats.promote(tx, drift.row_id, now, event_id=event_of[drift.row_id])
        ttl = Settings.model_fields["offer_ttl"].default
        for event_id in sorted({event_of[d.row_id] for d in stock}):
            mine = [d.row_id for d in stock if event_of[d.row_id] == event_id]
            await offers.settle(tx, mine, now, ttl, event_id=event_id)
    return drifts + stock


async def pools(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`capacity_pools.quantity_used` = held + sold of its member types, plus the units of
    holds on the pool itself, from the rows."""
    use = await usage.in_use(tx)
    members = await tx.execute(select(TicketTypePool.pool_id, TicketTypePool.ticket_type_id))
    from_rows: dict[str, int] = await allotments.held_in_pools(tx)
    for pool_id, tid in members.all():
        from_rows[pool_id] = from_rows.get(pool_id, 0) + use.get(tid, 0)
    found = await tx.execute(
        select(CapacityPool.id, CapacityPool.quantity_used).order_by(CapacityPool.id)
    )

    def overhang(used: int) -> dict[str, Any]:
        return {"quantity_over": draws.over_expr(literal(used), CapacityPool.admission_limit)}

    counted = ((pid, used, from_rows.get(pid, 0)) for pid, used in found.all())
    return await _compare(tx, fix, CapacityPool, "quantity_used", counted, also=overhang)


async def event_tickets(tx: AsyncSession, fix: bool) -> list[Drift]:
    """`event_capacity.tickets` = held + sold of the event's types, plus its pool holds'
    units, while capped, else 0."""
    use = await usage.in_use(tx)
    per_event: dict[str, int] = await allotments.held_in_pools_of_events(tx)
    for tid, event_id in (await tx.execute(select(TicketType.id, TicketType.event_id))).all():
        per_event[event_id] = per_event.get(event_id, 0) + use.get(tid, 0)
    found = await tx.execute(
        select(EventCapacity.event_id, EventCapacity.tickets, Event.max_attendees)
        .join(Event, Event.id == EventCapacity.event_id)
        .order_by(EventCapacity.event_id)
    )
    counted = (
        (event_id, tickets, per_event.get(event_id, 0) if cap is not None else 0)
        for event_id, tickets, cap in found.all()
    )
    return await _compare(tx, fix, EventCapacity, "tickets", counted)


async def stock_buckets(tx: AsyncSession, fix: bool) -> list[Drift]:
    """A bucketed type's free units plus what its rows hold and sell equal its total."""
    hot = list(
        (
            await tx.execute(
                select(
                    TicketType.id,
                    TicketType.quantity_total,
                    TicketType.stock_buckets,
                    TicketType.event_id,
                ).where(TicketType.stock_buckets > 1)
            )
        ).all()
    )
    found = await buckets.levels(tx, [tid for tid, _, _, _ in hot])
    drifts: list[Drift] = []
    for tid, total, count, event_id in hot:
        level = found.get(tid, buckets.Levels(0, 0, 0))
        should_be_free = total - level.held - level.sold
        if level.free != should_be_free:
            drifts.append(
                Drift("ticket_stock_buckets", tid, "quantity_free", level.free, should_be_free)
            )
            if fix:
                for bucket, free in enumerate(buckets.split(max(0, should_be_free), count)):
                    await buckets.set_free(tx, tid, bucket, free, event_id=event_id)
    return drifts


async def area_occupancy(tx: AsyncSession, fix: bool) -> list[Drift]:
    """Positions are the fold of each credential's scans; `areas.inside` counts them.

    Both are recomputed from `scans` alone (domain/occupancy.py), and also checked against
    the change log's `moves`; `--fix` rewrites positions and counters from the scans.
    """
    counted = await areas.counters(tx)
    links_of: dict[str, dict[str, str | None]] = {}
    for area_id, event_id, parent_id, _ in counted:
        links_of.setdefault(event_id, {})[area_id] = parent_id
    folded: dict[tuple[str, str], str] = {}
    for (event_id, credential), steps in (await scan_rows.every(tx)).items():
        if (at := occupancy.fold(steps, links_of.get(event_id, {}))) is not None:
            folded[(event_id, credential)] = at
    stored = await areas.positions(tx)
    # A position is a row or its absence: counted 1 or 0, with the areas named.
    drifts = [
        Drift(
            "area_positions",
            f"{e}/{c}",
            f"area {stored.get((e, c))} (scans: {folded.get((e, c))})",
            int((e, c) in stored),
            int((e, c) in folded),
        )
        for e, c in sorted(set(folded) | set(stored))
        if stored.get((e, c)) != folded.get((e, c))
    ]
    inside: dict[str, int] = {}
    for (event_id, _), at in folded.items():
        for area_id in occupancy.lineage(at, links_of[event_id]):
            inside[area_id] = inside.get(area_id, 0) + 1
    found = ((a, n, inside.get(a, 0)) for a, _, _, n in counted)
    drifts += await _compare(tx, fix, Area, "inside", found)
    if fix and drifts:
        now = datetime.now(UTC)
        for event_id, credential in set(folded) | set(stored):
            at = folded.get((event_id, credential))
            await areas.place(tx, event_id, credential, at, now)
    log = await changes.replayed(tx)
    for area_id, _, _, counter in counted:
        now_counted = inside.get(area_id, 0) if fix else counter
        from_log = log.get(replay.key("area", area_id, replay.INSIDE), 0)
        if now_counted != from_log:
            drifts.append(Drift("areas", area_id, "inside", now_counted, from_log, "change log"))
    return drifts


async def change_log(tx: AsyncSession, _fix: bool) -> list[Drift]:
    """Replaying the change log (baselines, then every change left) gives the counters.

    Per ticket type held, offered and sold units; per event its registered people and,
    while capped, its tickets; per session its seats; per pool its use (the sum of its
    member types' use); per huddle its members. Compared with the counters as they stand
    after the checks above (which `--fix` may have just rebuilt from their rows), and for
    bucketed types with the rows, which are their counters. Run it while the ledger is
    quiet, like every check here. Drift here is never fixed: the log is history.
    """
    log = await changes.replayed(tx)
    # With what `--fix` decided above in this transaction (a missed promotion run now).
    replay.fold([(c.type, c.event_id, c.payload) for c in changes.pending(tx)], log)

    def logged(kind: str, row_id: str, counter: str) -> int:
        return log.get(replay.key(kind, row_id, counter), 0)

    def check(table: str, row_id: str, column: str, counter: int, from_log: int) -> None:
        if counter != from_log:
            drifts.append(Drift(table, row_id, column, counter, from_log, basis="change log"))

    drifts: list[Drift] = []
    orders = await usage.ordered(tx)
    offered = await usage.offered(tx)
    use: dict[str, int] = {}
    for tid, reserved, sold, stock_buckets in await _ticket_counters(tx):
        held_log = logged("ticket_type", tid, replay.HELD)
        offered_log = logged("ticket_type", tid, replay.OFFERED)
        sold_log = logged("ticket_type", tid, replay.SOLD)
        use[tid] = held_log + offered_log + sold_log
        check("ticket_types", tid, "offered", offered.get(tid, 0), offered_log)
        if stock_buckets > 1:  # no counters on the row: its rows are the counters
            pending, paid = orders.get(tid, (0, 0))
            check("ticket_types", tid, "held", pending, held_log)
            check("ticket_types", tid, "sold", paid, sold_log)
        else:
            check("ticket_types", tid, "quantity_reserved", reserved, held_log + offered_log)
            check("ticket_types", tid, "quantity_sold", sold, sold_log)
    counted = await tx.execute(
        select(EventCapacity.event_id, EventCapacity.registered, EventCapacity.tickets)
    )
    capped = set(await tx.scalars(select(Event.id).where(Event.max_attendees.is_not(None))))
    per_event: dict[str, int] = {}
    for tid, event_id in (await tx.execute(select(TicketType.id, TicketType.event_id))).all():
        per_event[event_id] = per_event.get(event_id, 0) + use.get(tid, 0)
    pool_events = dict((await tx.execute(select(CapacityPool.id, CapacityPool.event_id))).all())
    for pool_id, event_id in pool_events.items():  # what holds on the pool itself hold
        per_event[event_id] = per_event.get(event_id, 0) + logged("pool", pool_id, replay.HELD)
    for event_id, registered, tickets in counted.all():
        check(
            "event_capacity",
            event_id,
            "registered",
            registered,
            logged("event", event_id, replay.REGISTERED),
        )
        expected = per_event.get(event_id, 0) if event_id in capped else 0
        check("event_capacity", event_id, "tickets", tickets, expected)
    seated = await tx.execute(
        select(SessionCapacity.session_id, SessionCapacity.current_attendance)
    )
    for sid, attendance in seated.all():
        check(
            "session_capacity",
            sid,
            "current_attendance",
            attendance,
            logged("session", sid, replay.ATTENDANCE),
        )
    members = await draws.members(tx, list(await tx.scalars(select(CapacityPool.id))))
    for pool_id, used in (
        await tx.execute(select(CapacityPool.id, CapacityPool.quantity_used))
    ).all():
        from_log = sum(use.get(tid, 0) for tid in members.get(pool_id, []))
        from_log += logged("pool", pool_id, replay.HELD)
        check("capacity_pools", pool_id, "quantity_used", used, from_log)
    for hid, joined in (await tx.execute(select(Huddle.id, Huddle.members))).all():
        check("huddles", hid, "members", joined, logged("huddle", hid, replay.MEMBERS))
    return drifts


CHECKS: list[Check] = [ticket_types, stock_buckets, huddles]
CHECKS += [registrations, session_attendance, waitlists]
CHECKS += [pools, event_tickets, area_occupancy]
# Last: after `--fix` rebuilt counters from their rows, the log is checked against them.
CHECKS += [change_log]


async def reconcile(tx: AsyncSession, *, fix: bool = False) -> list[Drift]:
    drifts: list[Drift] = []
    for check in CHECKS:
        drifts.extend(await check(tx, fix))
    return drifts
