"""The atomic statements behind session seats, and promotion from the session's waitlist.

`admit` is the only way `current_attendance` grows: one conditional UPDATE. A seat given
up is handed to the head of the waitlist in the same transaction (`promote`), so a
newcomer can never take a freed seat ahead of someone waiting: they would need the same
`session_capacity` row lock, which the releasing transaction holds until it commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.attendance import EntryStatus, SeatSource, SeatStatus
from headcount.ledger import locks, waitlist
from headcount.ledger.attendance import Session, SessionCapacity, SessionSeat, WaitlistEntry

_NO_SYNC = {"synchronize_session": False}


async def admit(tx: AsyncSession, session_id: str) -> bool:
    row = await tx.execute(
        update(SessionCapacity)
        .where(
            SessionCapacity.session_id == session_id,
            SessionCapacity.current_attendance < SessionCapacity.maximum_capacity,
        )
        .values(current_attendance=SessionCapacity.current_attendance + 1)
        .returning(SessionCapacity.current_attendance)
        .execution_options(**_NO_SYNC)
    )
    return row.first() is not None


async def vacate(tx: AsyncSession, session_id: str) -> None:
    """A seat is given up. The CHECK constraint forbids going below zero."""
    await tx.execute(
        update(SessionCapacity)
        .where(SessionCapacity.session_id == session_id)
        .values(current_attendance=SessionCapacity.current_attendance - 1)
        .execution_options(**_NO_SYNC)
    )


async def set_maximum(tx: AsyncSession, session_id: str, maximum: int) -> bool:
    """Atomic: a new limit applies only if it still covers every confirmed seat."""
    row = await tx.execute(
        update(SessionCapacity)
        .where(
            SessionCapacity.session_id == session_id,
            SessionCapacity.current_attendance <= maximum,
        )
        .values(maximum_capacity=maximum)
        .returning(SessionCapacity.session_id)
        .execution_options(**_NO_SYNC)
    )
    return row.first() is not None


async def capacity(tx: AsyncSession, session_id: str) -> SessionCapacity | None:
    return (
        await tx.scalars(
            select(SessionCapacity)
            .where(SessionCapacity.session_id == session_id)
            .execution_options(populate_existing=True)
        )
    ).first()


async def seat_of(tx: AsyncSession, session_id: str, attendee_id: str) -> SessionSeat | None:
    return (
        await tx.scalars(
            select(SessionSeat)
            .where(SessionSeat.session_id == session_id, SessionSeat.attendee_id == attendee_id)
            .execution_options(populate_existing=True)
        )
    ).first()


async def occupy(
    tx: AsyncSession, session_id: str, attendee_id: str, via: SeatSource, now: datetime
) -> SessionSeat:
    """Write the seat row for a place `admit` already counted."""
    seat = await seat_of(tx, session_id, attendee_id)
    if seat is None:
        seat = SessionSeat(
            session_id=session_id,
            attendee_id=attendee_id,
            status=SeatStatus.CONFIRMED.value,
            via=via.value,
            confirmed_at=now,
            updated_at=now,
        )
        tx.add(seat)
    else:
        seat.status = SeatStatus.CONFIRMED.value
        seat.via = via.value
        seat.confirmed_at = now
        seat.updated_at = now
    await tx.flush()
    return seat


async def give_up(tx: AsyncSession, seat: SessionSeat, now: datetime) -> list[WaitlistEntry]:
    """Free a confirmed seat and hand it on; returns the entries promoted."""
    seat.status = SeatStatus.LEFT.value
    seat.updated_at = now
    await tx.flush()
    await vacate(tx, seat.session_id)
    return await promote(tx, seat.session_id, now)


async def leave_event(tx: AsyncSession, event_id: str, attendee_id: str, now: datetime) -> None:
    """Give up every seat and session queue place the attendee holds in the event.

    Every session counter of the event is locked first (ascending id, step 8 of
    ledger/locks.py), before looking: an RSVP racing this either committed first (and its
    seat is seen and given up here) or runs after and finds no registration. Freed seats
    go to the sessions' waitlists in this transaction.
    """
    session_ids = list(await tx.scalars(select(Session.id).where(Session.event_id == event_id)))
    await locks.session_counters(tx, session_ids)
    if not session_ids:
        return
    held = await tx.scalars(
        select(SessionSeat)
        .where(
            SessionSeat.session_id.in_(session_ids),
            SessionSeat.attendee_id == attendee_id,
            SessionSeat.status == SeatStatus.CONFIRMED,
        )
        .order_by(SessionSeat.session_id)
        .execution_options(populate_existing=True)
    )
    for seat in list(held.all()):
        await give_up(tx, seat, now)
    await waitlist.leave(tx, await waitlist.waiting_in(tx, attendee_id, session_ids), now)


async def promote(tx: AsyncSession, session_id: str, now: datetime) -> list[WaitlistEntry]:
    """Confirm waitlist heads, in seq order, while seats are free."""
    promoted: list[WaitlistEntry] = []
    while True:
        first = await waitlist.head(tx, session_id=session_id)
        if first is None or not await admit(tx, session_id):
            return promoted
        first.status = EntryStatus.PROMOTED.value
        first.updated_at = now
        await occupy(tx, session_id, first.attendee_id, SeatSource.WAITLIST, now)
        promoted.append(first)
