"""What a ticket draws on besides its own type: capacity pools and the event-wide cap.

`inventory.py` calls `draw` / `give_back` right after its ticket-type UPDATEs, so every
caller (orders, the expiry sweep, waitlist offers) gets pool and event accounting without
changing its call. Lock order (docs/concurrency.md, "Pools"): order rows → ticket-type
rows (ascending id) → pool rows (ascending id) → the event's counter row. Each pool and the
event counter is moved by one conditional UPDATE; nothing is read and then written.

Hot path: one SELECT of the lines' memberships and their event's cap. Events without a cap
never touch `event_capacity` (no extra hot row); the counter is only kept while a cap is
set, and `recount_event_tickets` rebuilds it when a cap appears (`capacity/events.py`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.attendance import EntryStatus
from headcount.domain.tickets import OrderLine
from headcount.ledger import allotments, journal, locks, usage
from headcount.ledger import rows as row_writes
from headcount.ledger.attendance import EventCapacity, WaitlistEntry
from headcount.ledger.db import stock_freed
from headcount.ledger.models import Event, TicketType
from headcount.ledger.pools import CapacityPool, TicketTypePool

_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True, slots=True)
class Shares:
    """How much of each pool and each capped event a set of lines draws on.

    `pool_room` / `event_room` are the committed room at the time of the read (None: no
    limit): enough to refuse early without taking a lock, never enough to admit.
    """

    pools: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    pool_room: dict[str, int | None] = field(default_factory=dict)
    event_room: dict[str, int] = field(default_factory=dict)
    type_short: str | None = None  # a ticket type already short on its own stock

    def __bool__(self) -> bool:
        return bool(self.pools or self.events)

    def already_short(self) -> Shortfall | None:
        """A capacity that is short even before we queue for its lock.

        Same order as the locked path: the ticket types, then pools, then the event.
        """
        if self.type_short is not None:
            return Shortfall(ticket_type_id=self.type_short)
        for pool_id, n in sorted(self.pools.items()):
            room = self.pool_room.get(pool_id)
            if room is not None and room < n:
                return Shortfall(pool_id=pool_id)
        for event_id, n in sorted(self.events.items()):
            if self.event_room.get(event_id, n) < n:
                return Shortfall(event_id=event_id)
        return None


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The first shared capacity that refused: a pool (`pool_id`) or an event's cap."""

    pool_id: str | None = None
    event_id: str | None = None
    ticket_type_id: str | None = None


def over_expr(in_use: Any, limit: Any) -> ColumnElement[int]:
    """max(0, in_use - limit) in SQL that SQLite and PostgreSQL both speak; 0 if unlimited."""
    return case((and_(limit.is_not(None), in_use > limit), in_use - limit), else_=0)


# What `fold_shares` reads, in its order: type, own room, event, cap, people, pool, pool room.
SHARE_COLUMNS: tuple[Any, ...] = (
    TicketType.id,
    TicketType.quantity_total - TicketType.quantity_sold - TicketType.quantity_reserved,
    TicketType.event_id,
    Event.max_attendees,
    EventCapacity.registered + EventCapacity.tickets,
    TicketTypePool.pool_id,
    CapacityPool.admission_limit - CapacityPool.quantity_used,
)


def _shares_query(*, lock_event: bool) -> Select[*tuple[Any, ...]]:
    query: Select[*tuple[Any, ...]] = (
        select(*SHARE_COLUMNS)
        .join(Event, Event.id == TicketType.event_id)
        .outerjoin(EventCapacity, EventCapacity.event_id == Event.id)
        .outerjoin(TicketTypePool, TicketTypePool.ticket_type_id == TicketType.id)
        .outerjoin(CapacityPool, CapacityPool.id == TicketTypePool.pool_id)
        .where(
            Event.id == bindparam("eid"),
            TicketType.event_id == bindparam("eid"),
            TicketType.id.in_(bindparam("ids", expanding=True)),
        )
    )
    return locks.key_shared(query, of=Event) if lock_event else query


# Built once: building a statement costs more CPU than running it (bench/RESULTS.md).
_SHARES = _shares_query(lock_event=False)
_SHARES_LOCKING_EVENT = _shares_query(lock_event=True)


async def shares(
    tx: AsyncSession, lines: Sequence[OrderLine], *, event_id: str, lock_event: bool = True
) -> Shares:
    """One SELECT: the pools of these ticket types, their event's cap, and the room left.

    Authoritative only when read *after* the caller's ticket-type UPDATEs: attaching or
    detaching a type locks its row first (`locks.ticket_types`), so a transaction that
    holds the row sees a membership that cannot change under it. On PostgreSQL the event
    row is read `FOR KEY SHARE` (`lock_event`): it does not block other buyers, but an
    organizer switching the cap on or off (`SELECT … FOR UPDATE`) waits for us, so the
    counter is kept exactly while the cap is set.
    """
    qty = {line.ticket_type_id: line.quantity for line in lines}
    if not qty:
        return Shares()
    locking = lock_event and tx.get_bind().dialect.name == "postgresql"
    query = _SHARES_LOCKING_EVENT if locking else _SHARES
    found = await tx.execute(query, {"ids": list(qty), "eid": event_id})
    return fold_shares(found.all(), qty)


def fold_shares(rows: Iterable[Sequence[Any]], qty: Mapping[str, int]) -> Shares:
    """Shares from rows of `SHARE_COLUMNS`."""
    pools: dict[str, int] = defaultdict(int)
    pool_room: dict[str, int | None] = {}
    events: dict[str, int] = {}
    event_room: dict[str, int] = {}
    counted: set[str] = set()
    type_short: str | None = None
    for tid, own, event_id, cap, people, pool_id, room in rows:
        if own < qty[tid] and (type_short is None or tid < type_short):
            type_short = tid
        if pool_id is not None:
            pools[pool_id] += qty[tid]
            pool_room[pool_id] = None if room is None else int(room)
        if cap is not None and tid not in counted:
            counted.add(tid)
            events[event_id] = events.get(event_id, 0) + qty[tid]
            event_room[event_id] = int(cap) - int(people or 0)
    return Shares(dict(pools), events, pool_room, event_room, type_short)


async def draw(tx: AsyncSession, lines: Sequence[OrderLine], *, event_id: str) -> Shortfall | None:
    """Take the lines' quantities from their pools and event cap, or name the first short."""
    return await take(tx, await shares(tx, lines, event_id=event_id), event_id=event_id)


async def take(tx: AsyncSession, found: Shares, *, event_id: str) -> Shortfall | None:
    """The deciding UPDATEs, pools in ascending id then the event counter.

    The caller raises on a shortfall, which rolls back the whole transaction.
    """
    for pool_id, n in sorted(found.pools.items()):
        taken = await tx.execute(
            update(CapacityPool)
            .where(
                CapacityPool.id == pool_id,
                CapacityPool.event_id == event_id,
                or_(
                    CapacityPool.admission_limit.is_(None),
                    CapacityPool.quantity_used + n <= CapacityPool.admission_limit,
                ),
            )
            .values(quantity_used=CapacityPool.quantity_used + n)
            .returning(*_POOL_FIGURES)
            .execution_options(**_NO_SYNC)
        )
        row = taken.first()
        if row is None:
            return Shortfall(pool_id=pool_id)
        pool_moved(tx, pool_id, row, delta=n)
    for capped, n in sorted(found.events.items()):
        if not await _admit_tickets(tx, capped, n):
            return Shortfall(event_id=capped)
    return None


# What a pool UPDATE returns so that it sees its own threshold: use, limit, event.
_POOL_FIGURES = (CapacityPool.quantity_used, CapacityPool.admission_limit, CapacityPool.event_id)


def pool_moved(tx: AsyncSession, pool_id: str, found: Sequence[Any], *, delta: int) -> None:
    """A pool's use moved by `delta` to `found` (`_POOL_FIGURES`): exhausted, or not?"""
    used, limit, event_id = int(found[0]), found[1], found[2]
    figures = {"quantity_used": used, "admission_limit": limit}
    _limit_moved(tx, ("pool", pool_id), event_id, figures, use=(used, limit), delta=delta)


# What an event counter UPDATE returns so that it sees its own threshold.
def _people_figures(event_id: str) -> tuple[Any, ...]:
    cap = select(Event.max_attendees).where(Event.id == event_id).scalar_subquery()
    return (EventCapacity.registered, EventCapacity.tickets, cap)


def people_moved(tx: AsyncSession, event_id: str, found: Sequence[Any], *, delta: int) -> None:
    """The people an event counts moved by `delta` to `found` (registered, tickets, cap)."""
    people, cap = int(found[0]) + int(found[1]), found[2]
    figures = {"max_attendees": cap, "registered": int(found[0]), "tickets": int(found[1])}
    _limit_moved(tx, ("event", event_id), event_id, figures, use=(people, cap), delta=delta)


_LIMITS = {"pool": journal.POOL, "event": journal.EVENT}


def _limit_moved(
    tx: AsyncSession,
    resource: tuple[str, str],
    event_id: str,
    figures: Mapping[str, Any],
    *,
    use: tuple[int, int | None],
    delta: int,
) -> None:
    """Use of `resource`'s limit moved by `delta` to `use` (used, limit): the journal
    records it if that filled the limit or made room under it."""
    used, limit = use
    journal.limit_moved(
        tx,
        _LIMITS[resource[0]],
        event_id=event_id,
        resource=resource,
        was_full=journal.full(used - delta, limit),
        figures=figures,
        is_full=journal.full(used, limit),
    )


async def queued_ticket_types(tx: AsyncSession, event_id: str) -> list[str]:
    """Ticket types of the event with someone waiting or holding an offer."""
    rows = await tx.scalars(
        select(WaitlistEntry.ticket_type_id)
        .where(
            WaitlistEntry.event_id == event_id,
            WaitlistEntry.ticket_type_id.is_not(None),
            WaitlistEntry.status.in_([EntryStatus.WAITING, EntryStatus.OFFERED]),
        )
        .distinct()
    )
    return sorted(tid for tid in rows.all() if tid is not None)


async def waitlisted_neighbours(
    tx: AsyncSession, ticket_type_ids: Collection[str], *, event_id: str
) -> list[str]:
    """These types (of `event_id`) plus every type of the event with a live waitlist entry.

    Room freed on one type can open a pool or the event cap for another type's queue, so
    releasing transactions lock these too (ascending, before any pool row) and settle them.
    """
    ids = set(ticket_type_ids)
    if not ids:
        return []
    ids.update(await queued_ticket_types(tx, event_id))
    return sorted(ids)


async def give_back(tx: AsyncSession, lines: Sequence[OrderLine], *, event_id: str) -> None:
    """Return the lines' quantities to their pools and event counter (never refused)."""
    await give_back_shares(tx, await shares(tx, lines, event_id=event_id), event_id=event_id)


async def give_back_shares(tx: AsyncSession, found: Shares, *, event_id: str) -> None:
    """Return what `found` drew to its pools (ascending) and event counter (never refused)."""
    for pool_id, n in sorted(found.pools.items()):
        await _move_pool(tx, pool_id, -n, event_id)
    for capped, n in sorted(found.events.items()):
        given = await tx.execute(
            update(EventCapacity)
            .where(EventCapacity.event_id == capped)
            .values(tickets=EventCapacity.tickets - n)
            .returning(*_people_figures(capped))
            .execution_options(**_NO_SYNC)
        )
        if (row := given.first()) is not None:
            people_moved(tx, capped, row, delta=-n)


async def pool_shares(tx: AsyncSession, pool_id: str, n: int, *, event_id: str) -> Shares:
    """What a hold on the pool itself draws: `n` of the pool and, while the event has a
    cap, `n` of the cap; no ticket type's stock. The event row is read `FOR KEY SHARE` on
    PostgreSQL as in `shares`, so the cap cannot be switched on or off under the draw."""
    query = select(Event.max_attendees).where(Event.id == event_id)
    if tx.get_bind().dialect.name == "postgresql":
        query = locks.key_shared(query, of=Event)
    cap = (await tx.execute(query)).first()
    capped = cap is not None and cap[0] is not None
    return Shares(pools={pool_id: n}, events={event_id: n} if capped else {})


async def _admit_tickets(tx: AsyncSession, event_id: str, n: int) -> bool:
    """People are people: registrations (with guests) and tickets share `max_attendees`."""
    cap = select(Event.max_attendees).where(Event.id == event_id).scalar_subquery()
    statement = (
        update(EventCapacity)
        .where(
            EventCapacity.event_id == event_id,
            or_(
                cap.is_(None),
                EventCapacity.registered + EventCapacity.tickets + n <= cap,
            ),
        )
        .values(tickets=EventCapacity.tickets + n)
        .returning(EventCapacity.registered, EventCapacity.tickets, cap)
        .execution_options(**_NO_SYNC)
    )
    found = (await tx.execute(statement)).first()
    # Refused, or the counter row is missing (an event capped before it had one): make
    # sure it exists and ask once more. Only the refusal path pays for this.
    if found is None and await ensure_event_counter(tx, event_id):
        found = (await tx.execute(statement)).first()
    if found is None:
        return False
    people_moved(tx, event_id, found, delta=n)
    return True


async def ensure_event_counter(tx: AsyncSession, event_id: str) -> bool:
    """Create the event's counter row if missing; returns whether it was created."""
    exists = await tx.scalar(
        select(EventCapacity.event_id).where(EventCapacity.event_id == event_id)
    )
    if exists is not None:
        return False
    factory = postgresql.insert if tx.get_bind().dialect.name == "postgresql" else sqlite.insert
    made = await tx.execute(
        factory(EventCapacity)
        .values(event_id=event_id, registered=0, tickets=0)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(EventCapacity.event_id)
    )
    return made.first() is not None


# Reads: availability for views and waitlist offers, and recounts from the rows.


async def headroom(tx: AsyncSession, ticket_type_ids: Collection[str]) -> dict[str, int]:
    """Per ticket type, the least room left in its pools and its event's cap.

    Ticket types with no limited pool and an uncapped event are absent (no shared limit).
    """
    ids = sorted(set(ticket_type_ids))
    room: dict[str, int] = {}
    if not ids:
        return room
    pools = await tx.execute(
        select(
            TicketTypePool.ticket_type_id,
            CapacityPool.admission_limit - CapacityPool.quantity_used,
        )
        .join(CapacityPool, CapacityPool.id == TicketTypePool.pool_id)
        .where(TicketTypePool.ticket_type_id.in_(ids), CapacityPool.admission_limit.is_not(None))
    )
    for tid, left in pools.all():
        room[tid] = min(room.get(tid, int(left or 0)), int(left or 0))
    events = await tx.execute(
        select(
            TicketType.id,
            Event.max_attendees
            - func.coalesce(EventCapacity.registered, 0)
            - func.coalesce(EventCapacity.tickets, 0),
        )
        .join(Event, Event.id == TicketType.event_id)
        .outerjoin(EventCapacity, EventCapacity.event_id == Event.id)
        .where(TicketType.id.in_(ids), Event.max_attendees.is_not(None))
    )
    for tid, left in events.all():
        room[tid] = min(room.get(tid, int(left or 0)), int(left or 0))
    return {tid: max(0, int(left)) for tid, left in room.items()}


async def members(tx: AsyncSession, pool_ids: Collection[str]) -> dict[str, list[str]]:
    """The ticket types drawing on each of these pools (pools without any are absent)."""
    found: dict[str, list[str]] = defaultdict(list)
    if pool_ids:
        rows = await tx.execute(
            select(TicketTypePool.pool_id, TicketTypePool.ticket_type_id).where(
                TicketTypePool.pool_id.in_(list(pool_ids))
            )
        )
        for pid, tid in rows.all():
            found[pid].append(tid)
    return dict(found)


async def change_pool(
    tx: AsyncSession, pool_id: str, values: dict[str, Any], *, event_id: str
) -> None:
    """Change a pool's columns in one UPDATE; never refused.

    A new `admission_limit` recomputes the overhang in the same statement, from the use
    committed at that moment, so the CHECK `used <= limit + over` holds whatever the limit.
    """
    if "admission_limit" not in values:
        await row_writes.change(tx, CapacityPool, pool_id, values, event_id=event_id)
        return
    limit = values["admission_limit"]
    stock_freed(tx)  # a higher limit may open room to every member
    over = 0 if limit is None else over_expr(CapacityPool.quantity_used, literal(limit))
    this_pool = (CapacityPool.id == pool_id, CapacityPool.event_id == event_id)
    before = (await tx.execute(locks.exclusive(select(*_POOL_FIGURES).where(*this_pool)))).one()
    after = (
        await tx.execute(
            update(CapacityPool)
            .where(*this_pool)
            .values({**values, "quantity_over": over})
            .returning(*_POOL_FIGURES)
            .execution_options(**_NO_SYNC)
        )
    ).one()
    journal.limit_moved(
        tx,
        journal.POOL,
        event_id=after[2],
        resource=("pool", pool_id),
        was_full=journal.full(int(before[0]), before[1]),
        figures={"quantity_used": int(after[0]), "admission_limit": after[1]},
        is_full=journal.full(int(after[0]), after[1]),
    )


async def pool_ids_of(tx: AsyncSession, ticket_type_ids: Collection[str]) -> dict[str, list[str]]:
    rows = await tx.execute(
        select(TicketTypePool.ticket_type_id, TicketTypePool.pool_id)
        .where(TicketTypePool.ticket_type_id.in_(sorted(set(ticket_type_ids))))
        .order_by(TicketTypePool.ticket_type_id, TicketTypePool.pool_id)
    )
    found: dict[str, list[str]] = defaultdict(list)
    for tid, pid in rows.all():
        found[tid].append(pid)
    return dict(found)


async def recount_event_tickets(tx: AsyncSession, event_id: str, *, keep: bool = True) -> int:
    """Rebuild the event's ticket counter from the rows, or zero it (`keep=False`).

    The caller holds the event row `FOR UPDATE`, which every ticket transaction's
    `FOR KEY SHARE` read in `shares` waits for, so the count cannot miss a sale.
    """
    tids = list(await tx.scalars(select(TicketType.id).where(TicketType.event_id == event_id)))
    total = sum((await usage.in_use(tx, tids)).values()) if tids and keep else 0
    if keep:  # holds on a pool count in the cap beside every type's use
        total += (await allotments.held_in_pools_of_events(tx, [event_id])).get(event_id, 0)
    await ensure_event_counter(tx, event_id)
    await tx.execute(
        update(EventCapacity)
        .where(EventCapacity.event_id == event_id)
        .values(tickets=total)
        .execution_options(**_NO_SYNC)
    )
    return total


# Membership changes. The caller holds the ticket-type row locks (ascending) first, so the
# type's use cannot move while its pool is credited or debited.


async def attach(tx: AsyncSession, ticket_type_id: str, pool_id: str, *, event_id: str) -> bool:
    """Attach a type to a pool: its current use starts counting there. False if attached."""
    known = await tx.scalar(
        select(TicketTypePool.pool_id).where(
            TicketTypePool.ticket_type_id == ticket_type_id, TicketTypePool.pool_id == pool_id
        )
    )
    if known is not None:
        return False
    use = await _type_use(tx, ticket_type_id)
    tx.add(TicketTypePool(ticket_type_id=ticket_type_id, pool_id=pool_id, event_id=event_id))
    await tx.flush()
    await _move_pool(tx, pool_id, use, event_id)
    await _bump_membership(tx, ticket_type_id, event_id)
    return True


async def detach(tx: AsyncSession, ticket_type_id: str, pool_id: str, *, event_id: str) -> bool:
    """Detach a type from a pool: its use stops counting there. False if not attached."""
    row = await tx.get(TicketTypePool, (ticket_type_id, pool_id))
    if row is None:
        return False
    use = await _type_use(tx, ticket_type_id)
    stock_freed(tx)  # the pool's other members gain the type's use
    await tx.delete(row)
    await tx.flush()
    await _move_pool(tx, pool_id, -use, event_id)
    await _bump_membership(tx, ticket_type_id, event_id)
    return True


async def _bump_membership(tx: AsyncSession, ticket_type_id: str, event_id: str) -> None:
    """Tell in-flight orders that read the old membership to read it again (`reserve`)."""
    await tx.execute(
        update(TicketType)
        .where(TicketType.id == ticket_type_id, TicketType.event_id == event_id)
        .values(membership_version=TicketType.membership_version + 1)
        .execution_options(**_NO_SYNC)
    )


async def _type_use(tx: AsyncSession, ticket_type_id: str) -> int:
    value = await tx.scalar(
        select(TicketType.quantity_sold + TicketType.quantity_reserved).where(
            TicketType.id == ticket_type_id
        )
    )
    return int(value or 0)


async def _move_pool(tx: AsyncSession, pool_id: str, delta: int, event_id: str) -> None:
    """Unconditional: a membership change or a give-back never refuses; going over shows as
    overhang, which shrinks with use, so the CHECK stays as tight as it can be."""
    used = CapacityPool.quantity_used + delta
    moved = await tx.execute(
        update(CapacityPool)
        .where(CapacityPool.id == pool_id, CapacityPool.event_id == event_id)
        .values(quantity_used=used, quantity_over=over_expr(used, CapacityPool.admission_limit))
        .returning(*_POOL_FIGURES)
        .execution_options(**_NO_SYNC)
    )
    if (row := moved.first()) is not None:
        pool_moved(tx, pool_id, row, delta=delta)
