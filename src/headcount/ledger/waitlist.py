"""Waitlist entries: joining in FIFO order, finding the head, reading a position.

Every function here runs inside the caller's transaction *after* the caller locked the
resource's counter row (`session_capacity` or `ticket_types`): that lock is what makes
`seq` = max(seq)+1 safe and the head lookup stable. Promotion itself lives with the
resource (`ledger/seats.py`, `ledger/offers.py`) because what a promotion gives differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.attendance import EntryStatus
from headcount.domain.changes import ChangeType
from headcount.domain.ids import new_id
from headcount.ledger import journal, locks
from headcount.ledger.attendance import WaitlistEntry

LIVE = (EntryStatus.WAITING.value, EntryStatus.OFFERED.value)


class Queue(TypedDict, total=False):
    """Whose queue a call is about, as keywords: a session's or a ticket type's, exactly one
    of them (`_of` refuses neither and both). Declared once, so every function here takes
    the pair the same way."""

    session_id: str | None
    ticket_type_id: str | None


def _of(session_id: str | None = None, ticket_type_id: str | None = None) -> ColumnElement[bool]:
    if (session_id is None) == (ticket_type_id is None):
        raise ValueError("a waitlist belongs to exactly one session or ticket type")
    if session_id is not None:
        return WaitlistEntry.session_id == session_id
    return WaitlistEntry.ticket_type_id == ticket_type_id


async def join(
    tx: AsyncSession,
    *,
    event_id: str,
    attendee_id: str,
    now: datetime,
    quantity: int = 1,
    **queue: Unpack[Queue],
) -> WaitlistEntry:
    """Append to the queue. The caller holds the resource's row lock (see module doc)."""
    last = await tx.scalar(select(func.max(WaitlistEntry.seq)).where(_of(**queue)))
    entry = WaitlistEntry(
        id=new_id("wl"),
        event_id=event_id,
        session_id=queue.get("session_id"),
        ticket_type_id=queue.get("ticket_type_id"),
        attendee_id=attendee_id,
        quantity=quantity,
        seq=int(last or 0) + 1,
        status=EntryStatus.WAITING.value,
        offered_quantity=None,
        offer_expires_at=None,
        order_id=None,
        joined_at=now,
        updated_at=now,
    )
    tx.add(entry)
    await tx.flush()
    return entry


async def live_entry(
    tx: AsyncSession, attendee_id: str, *, event_id: str, lock: bool = False, **queue: Unpack[Queue]
) -> WaitlistEntry | None:
    """The attendee's waiting or offered entry; there is at most one per queue (a partial
    unique index, `ledger/attendance.py`), so the order `_first` reads in picks nothing."""
    live = (
        WaitlistEntry.event_id == event_id,
        _of(**queue),
        WaitlistEntry.attendee_id == attendee_id,
        WaitlistEntry.status.in_(LIVE),
    )
    return await _first(tx, *live, order=WaitlistEntry.seq, lock=lock)


async def waiting_in(
    tx: AsyncSession, attendee_id: str, session_ids: Sequence[str]
) -> list[WaitlistEntry]:
    """The attendee's places still waiting in these sessions' queues."""
    found = await tx.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.session_id.in_(session_ids),
            WaitlistEntry.attendee_id == attendee_id,
            WaitlistEntry.status == EntryStatus.WAITING,
        )
    )
    return list(found.all())


async def leave(tx: AsyncSession, left: Sequence[WaitlistEntry], now: datetime) -> None:
    """Walk away from queue places (status `left`); nothing was held, nothing is released."""
    for entry in left:
        entry.status = EntryStatus.LEFT.value
        entry.updated_at = now
        journal.entry(tx, ChangeType.WAITLIST_LEFT, entry, now)
    await tx.flush()


async def latest_entry(
    tx: AsyncSession, attendee_id: str, **queue: Unpack[Queue]
) -> WaitlistEntry | None:
    """The attendee's most recent entry, live or not: how they learn what happened."""
    mine = (_of(**queue), WaitlistEntry.attendee_id == attendee_id)
    return await _first(tx, *mine, order=WaitlistEntry.seq.desc())


async def head(tx: AsyncSession, *, event_id: str, **queue: Unpack[Queue]) -> WaitlistEntry | None:
    waiting = (
        WaitlistEntry.event_id == event_id,
        _of(**queue),
        WaitlistEntry.status == EntryStatus.WAITING,
    )
    return await _first(tx, *waiting, order=WaitlistEntry.seq, lock=True)


async def _first(
    tx: AsyncSession, *where: ColumnElement[bool], order: Any, lock: bool = False
) -> WaitlistEntry | None:
    """The first entry in `order` of those `where` holds, read afresh (`lock`: and locked)."""
    query = (
        select(WaitlistEntry)
        .where(*where)
        .order_by(order)
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return (await tx.scalars(locks.exclusive(query) if lock else query)).first()


async def position(tx: AsyncSession, entry: WaitlistEntry) -> int | None:
    """1-based place among those still waiting; None once the entry stopped waiting."""
    if entry.status != EntryStatus.WAITING:
        return None
    ahead = await tx.scalar(
        select(func.count())
        .select_from(WaitlistEntry)
        .where(
            _of(entry.session_id, entry.ticket_type_id),
            WaitlistEntry.status == EntryStatus.WAITING,
            WaitlistEntry.seq <= entry.seq,
        )
    )
    return int(ahead or 0)


async def entries(
    tx: AsyncSession, *, live_only: bool = True, limit: int = 1000, **queue: Unpack[Queue]
) -> list[WaitlistEntry]:
    query = select(WaitlistEntry).where(_of(**queue))
    if live_only:
        query = query.where(WaitlistEntry.status.in_(LIVE))
    query = query.order_by(WaitlistEntry.seq).limit(limit)
    return list((await tx.scalars(query)).all())


async def waiting_count(tx: AsyncSession, **queue: Unpack[Queue]) -> int:
    value = await tx.scalar(
        select(func.count())
        .select_from(WaitlistEntry)
        .where(_of(**queue), WaitlistEntry.status == EntryStatus.WAITING)
    )
    return int(value or 0)
