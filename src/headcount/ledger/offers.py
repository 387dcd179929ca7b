"""Ticket-type waitlists: offers are holds reserved for the head of the queue.

An offer moves stock into `quantity_reserved` exactly like an order's hold does, so the
foundation's invariant `sold + reserved <= total` and its CHECK constraint cover offers
too, and `reconcile` counts active offers beside pending orders. Whenever stock frees
(cancel, refund, hold expiry, a larger `quantity_total`, an offer expiring or declined)
the releasing transaction calls `settle`, which offers the freed stock to the queue before
anyone else can see it as available.

Lock order: ticket type row (ascending id), then its waitlist entries — the same order
orders use (orders → ticket types → entries), see docs/concurrency.md.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount import origin
from headcount.domain.attendance import EntryStatus, offer_size
from headcount.domain.changes import ChangeType
from headcount.domain.errors import EventFull, SoldOut
from headcount.domain.tickets import OrderLine
from headcount.ledger import changes, draws, inventory, journal, locks, waitlist
from headcount.ledger.attendance import WaitlistEntry


async def settle(
    tx: AsyncSession,
    ticket_type_ids: Collection[str],
    now: datetime,
    offer_ttl: float,
    *,
    event_id: str,
) -> int:
    """Expire lapsed offers and offer free stock to the queues of these types of
    `event_id`; returns how many lapsed."""
    lapsed = 0
    # Room freed on one type may open a shared pool or event cap for another type's queue:
    # settle every queued type of the same event. Every ticket-type row is locked first:
    # promoting moves pool rows, and no ticket-type row may be locked after a pool row
    # (docs/concurrency.md, "Pools").
    ticket_type_ids = await draws.waitlisted_neighbours(tx, ticket_type_ids, event_id=event_id)
    await locks.ticket_types(tx, ticket_type_ids, event_id=event_id)
    for tid in ticket_type_ids:
        if await locks.ticket_type(tx, tid, event_id=event_id) is None:
            continue  # no such ticket type
        lapsed += await _expire_due(tx, tid, now, event_id)
        await _promote(tx, tid, now, offer_ttl, event_id)
    return lapsed


async def settle_each_event(
    tx: AsyncSession, due: Collection[tuple[str, str]], now: datetime, offer_ttl: float
) -> int:
    """`settle` the (event, ticket type) pairs of several events, one event at a time in
    ascending id (the order every transaction spanning events locks them in)."""
    lapsed = 0
    for event_id in sorted({event_id for event_id, _ in due}):
        mine = [tid for eid, tid in due if eid == event_id]
        lapsed += await settle(tx, mine, now, offer_ttl, event_id=event_id)
    return lapsed


async def _expire_due(tx: AsyncSession, ticket_type_id: str, now: datetime, event_id: str) -> int:
    lapsed = (
        select(WaitlistEntry)
        .where(
            WaitlistEntry.event_id == event_id,
            WaitlistEntry.ticket_type_id == ticket_type_id,
            WaitlistEntry.status == EntryStatus.OFFERED,
            WaitlistEntry.offer_expires_at <= now,
        )
        .order_by(WaitlistEntry.seq)
        .execution_options(populate_existing=True)
    )
    due = list((await tx.scalars(locks.claimed(lapsed))).all())
    if not due:
        return 0
    freed = 0
    lapsing = origin.system_within()  # the offer ran out; whoever noticed did not decide it
    for entry in due:
        freed += entry.offered_quantity or 0
        entry.status = EntryStatus.EXPIRED.value
        entry.updated_at = now
        journal.entry(tx, ChangeType.WAITLIST_OFFER_EXPIRED, entry, now, by=lapsing)
    await tx.flush()
    await inventory.release_hold(tx, [OrderLine(ticket_type_id, freed)], event_id=event_id)
    return len(due)


async def _promote(
    tx: AsyncSession, ticket_type_id: str, now: datetime, offer_ttl: float, event_id: str
) -> list[WaitlistEntry]:
    offered: list[WaitlistEntry] = []
    races = 0
    while True:
        available = await inventory.locked_room(tx, ticket_type_id, event_id=event_id)
        if not available:
            return offered
        first = await waitlist.head(tx, event_id=event_id, ticket_type_id=ticket_type_id)
        if first is None:
            return offered
        size = offer_size(first.quantity, available)
        try:
            # A savepoint: the pool or event room read above is not locked, and a racing
            # buyer may take it first; then this offer is undone, never the caller's work.
            async with changes.savepoint(tx):
                await inventory.reserve(tx, [OrderLine(ticket_type_id, size)], event_id=event_id)
        except (SoldOut, EventFull):
            races += 1
            if races >= 3:
                return offered
            continue
        first.status = EntryStatus.OFFERED.value
        first.offered_quantity = size
        first.offer_expires_at = now + timedelta(seconds=offer_ttl)
        first.updated_at = now
        await tx.flush()
        journal.entry(tx, ChangeType.WAITLIST_OFFERED, first, now)
        offered.append(first)


async def give_back(
    tx: AsyncSession, entry: WaitlistEntry, status: EntryStatus, now: datetime, ttl: float
) -> None:
    """Leave the queue or decline an offer; a declined offer passes to the next person."""
    assert entry.ticket_type_id is not None
    was_offered = entry.status == EntryStatus.OFFERED
    held = entry.offered_quantity or 0
    entry.status = status.value
    entry.updated_at = now
    await tx.flush()
    said = ChangeType.WAITLIST_DECLINED if was_offered else ChangeType.WAITLIST_LEFT
    journal.entry(tx, said, entry, now)
    if was_offered and held:
        lines = [OrderLine(entry.ticket_type_id, held)]
        await inventory.release_hold(tx, lines, event_id=entry.event_id)
        await _promote(tx, entry.ticket_type_id, now, ttl, entry.event_id)


async def reserve_with_offers(
    tx: AsyncSession,
    lines: Sequence[OrderLine],
    names: Mapping[str, str],
    *,
    event_id: str,
    owner: str,
    order_id: str,
    now: datetime,
    offer_ttl: float,
) -> dict[str, int | None]:
    """`inventory.reserve`, except that the owner's live offers pay for their lines.

    Lines are taken in ascending ticket-type order (the caller normalised them). An offer
    covers up to its size; the rest of the line is reserved normally (and may be sold
    out); an unused part of an offer is released and passed on. Each offer taken becomes
    `accepted` by order `order_id`. Returns what `inventory.reserve` returns (None for a
    line an offer paid for: no stock statement ran).
    """
    left: dict[str, int | None] = {}
    mine_by_line = [
        await waitlist.live_entry(tx, owner, event_id=event_id, ticket_type_id=line.ticket_type_id)
        for line in lines
    ]
    if all(m is None or m.status != EntryStatus.OFFERED for m in mine_by_line):
        # The common case: one call, so every ticket-type row is locked before any pool.
        return await inventory.reserve(tx, lines, names, event_id=event_id)
    # Settling a lapsed offer below promotes the event's other queues too: lock them now.
    ids = [li.ticket_type_id for li in lines]
    neighbours = await draws.waitlisted_neighbours(tx, ids, event_id=event_id)
    await locks.ticket_types(tx, neighbours, event_id=event_id)
    for line, mine in zip(lines, mine_by_line, strict=True):
        tid = line.ticket_type_id
        if mine is None or mine.status != EntryStatus.OFFERED:
            left.update(await inventory.reserve(tx, [line], names, event_id=event_id))
            continue
        await locks.ticket_type(tx, tid, event_id=event_id)
        offer = await waitlist.live_entry(
            tx, owner, event_id=event_id, ticket_type_id=tid, lock=True
        )
        if (
            offer is None
            or offer.status != EntryStatus.OFFERED
            or offer.offer_expires_at is None
            or offer.offer_expires_at <= now
        ):
            # Lapsed: it passes to the next person first; this line then asks like anyone.
            await settle(tx, [tid], now, offer_ttl, event_id=event_id)
            left.update(await inventory.reserve(tx, [line], names, event_id=event_id))
            continue
        size = offer.offered_quantity or 0
        used = min(size, line.quantity)
        left[tid] = None
        if line.quantity > used:
            rest = [OrderLine(tid, line.quantity - used)]
            left.update(await inventory.reserve(tx, rest, names, event_id=event_id))
        offer.status = EntryStatus.ACCEPTED.value
        offer.order_id = order_id
        offer.updated_at = now
        await tx.flush()
        journal.entry(tx, ChangeType.WAITLIST_ACCEPTED, offer, now, used_quantity=used)
        if size > used:
            unused = [OrderLine(tid, size - used)]
            await inventory.release_hold(tx, unused, event_id=event_id)
            await _promote(tx, tid, now, offer_ttl, event_id)
    return left


async def due_ticket_types(
    tx: AsyncSession,
    now: datetime,
    *,
    among: Collection[str] | None = None,
    limit: int = 500,
) -> list[tuple[str, str]]:
    """(event, ticket type) pairs with lapsed offers (a cheap, lock-free look before
    `settle_each_event`)."""
    query = select(WaitlistEntry.event_id, WaitlistEntry.ticket_type_id).where(
        WaitlistEntry.status == EntryStatus.OFFERED,
        WaitlistEntry.offer_expires_at <= now,
        WaitlistEntry.ticket_type_id.is_not(None),
    )
    if among is not None:
        query = query.where(WaitlistEntry.ticket_type_id.in_(list(among)))
    rows = await tx.execute(query.distinct().limit(limit))
    return sorted((eid, tid) for eid, tid in rows.all() if tid is not None)
