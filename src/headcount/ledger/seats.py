"""The atomic statements behind session seats, and promotion from the session's waitlist.

`admit` is the only way `current_attendance` grows: one conditional UPDATE. A seat given
up is handed to the head of the waitlist in the same transaction (`promote`), so a
newcomer can never take a freed seat ahead of someone waiting: they would need the same
`session_capacity` row lock, which the releasing transaction holds until it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.attendance import EntryStatus, SeatSource, SeatStatus
from headcount.domain.changes import ChangeType
from headcount.ledger import journal, locks, waitlist
from headcount.ledger.attendance import Session, SessionCapacity, SessionSeat, WaitlistEntry

_NO_SYNC = {"synchronize_session": False}


# What a counter UPDATE returns so that it sees its own threshold.
_FIGURES = (
    SessionCapacity.current_attendance,
    SessionCapacity.maximum_capacity,
    SessionCapacity.event_id,
)


def _counter(session_id: str, event_id: str) -> tuple[ColumnElement[bool], ...]:
    return (SessionCapacity.session_id == session_id, SessionCapacity.event_id == event_id)


def _moved(tx: AsyncSession, session_id: str, found: Sequence[Any], *, was_full: bool) -> None:
    attendance, maximum, event_id = int(found[0]), int(found[1]), found[2]
    journal.limit_moved(
        tx,
        journal.SESSION,
        event_id=event_id,
        resource=("session", session_id),
        was_full=was_full,
        figures={"current_attendance": attendance, "max_participants": maximum},
        is_full=attendance >= maximum,
    )


async def admit(tx: AsyncSession, session_id: str, *, event_id: str) -> tuple[int, str] | None:
    """Take a seat if one is free: (attendance after, event id), or None (full)."""
    row = await tx.execute(
        update(SessionCapacity)
        .where(
            *_counter(session_id, event_id),
            SessionCapacity.current_attendance < SessionCapacity.maximum_capacity,
        )
        .values(current_attendance=SessionCapacity.current_attendance + 1)
        .returning(*_FIGURES)
        .execution_options(**_NO_SYNC)
    )
    found = row.first()
    if found is None:
        return None
    _moved(tx, session_id, found, was_full=False)  # it admitted, so it had room
    return int(found[0]), found[2]


async def vacate(tx: AsyncSession, session_id: str, *, event_id: str) -> tuple[int, str]:
    """A seat is given up (the CHECK forbids going below zero): (attendance after, event)."""
    found = (
        await tx.execute(
            update(SessionCapacity)
            .where(*_counter(session_id, event_id))
            .values(current_attendance=SessionCapacity.current_attendance - 1)
            .returning(*_FIGURES)
            .execution_options(**_NO_SYNC)
        )
    ).one()
    _moved(tx, session_id, found, was_full=int(found[0]) + 1 >= int(found[1]))
    return int(found[0]), found[2]


async def set_maximum(tx: AsyncSession, session_id: str, maximum: int, *, event_id: str) -> bool:
    """Atomic: a new limit applies only if it still covers every confirmed seat.

    The caller holds the counter row (`locks.session_counters`), so the limit read here
    is the one the change replaces.
    """
    before = await capacity(tx, session_id)
    row = await tx.execute(
        update(SessionCapacity)
        .where(
            *_counter(session_id, event_id),
            SessionCapacity.current_attendance <= maximum,
        )
        .values(maximum_capacity=maximum)
        .returning(*_FIGURES)
        .execution_options(**_NO_SYNC)
    )
    found = row.first()
    if found is None:
        return False
    if before is not None:
        was_full = before.current_attendance >= before.maximum_capacity
        _moved(tx, session_id, found, was_full=was_full)
    return True


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
    tx: AsyncSession,
    session_id: str,
    attendee_id: str,
    via: SeatSource,
    now: datetime,
    *,
    event_id: str,
) -> SessionSeat:
    """Write the seat row for a place `admit` already counted."""
    seat = await seat_of(tx, session_id, attendee_id)
    if seat is None:
        seat = SessionSeat(
            session_id=session_id,
            event_id=event_id,
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
    attendance, event_id = await vacate(tx, seat.session_id, event_id=seat.event_id)
    journal.seat(
        tx,
        ChangeType.RSVP_CANCELLED,
        event_id=event_id,
        session_id=seat.session_id,
        attendee_id=seat.attendee_id,
        via=seat.via,
        attendance=attendance,
        at=now,
    )
    return await promote(tx, seat.session_id, now, event_id=event_id)


async def leave_event(tx: AsyncSession, event_id: str, attendee_id: str, now: datetime) -> None:
    """Give up every seat and session queue place the attendee holds in the event.

    Every session counter of the event is locked first (ascending id, step 8 of
    ledger/locks.py), before looking: an RSVP racing this either committed first (and its
    seat is seen and given up here) or runs after and finds no registration. Freed seats
    go to the sessions' waitlists in this transaction.
    """
    session_ids = list(await tx.scalars(select(Session.id).where(Session.event_id == event_id)))
    await locks.session_counters(tx, session_ids, event_id=event_id)
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


async def promote(
    tx: AsyncSession, session_id: str, now: datetime, *, event_id: str
) -> list[WaitlistEntry]:
    """Confirm waitlist heads, in seq order, while seats are free."""
    promoted: list[WaitlistEntry] = []
    while True:
        first = await waitlist.head(tx, event_id=event_id, session_id=session_id)
        if first is None:
            return promoted
        seated = await admit(tx, session_id, event_id=event_id)
        if seated is None:
            return promoted
        first.status = EntryStatus.PROMOTED.value
        first.updated_at = now
        await occupy(
            tx, session_id, first.attendee_id, SeatSource.WAITLIST, now, event_id=first.event_id
        )
        journal.entry(tx, ChangeType.WAITLIST_PROMOTED, first, now, current_attendance=seated[0])
        promoted.append(first)
