"""The atomic statements behind event registration. Never read-then-write in Python.

`admit` is the only way `registered` grows: one conditional UPDATE that reads the cap from
`events.max_attendees` in the same statement, so raising the cap admits the very next
request and lowering it stops admissions without touching anyone already registered.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.attendance import RegistrationStatus
from headcount.ledger import draws, locks
from headcount.ledger.attendance import EventCapacity, Registration
from headcount.ledger.models import Event

_NO_SYNC = {"synchronize_session": False}


async def admit(tx: AsyncSession, event_id: str, heads: int) -> int | None:
    """Count `heads` more people in if the cap allows; returns the new total or None.

    The statement returns the counts and the cap it judged by, so the admission that
    fills the event records `event.full` itself.
    """
    cap = select(Event.max_attendees).where(Event.id == event_id).scalar_subquery()
    row = await tx.execute(
        update(EventCapacity)
        .where(
            EventCapacity.event_id == event_id,
            # One rule with tickets: the cap counts people, registered or ticketed.
            or_(cap.is_(None), EventCapacity.registered + EventCapacity.tickets + heads <= cap),
        )
        .values(registered=EventCapacity.registered + heads)
        .returning(EventCapacity.registered, EventCapacity.tickets, cap)
        .execution_options(**_NO_SYNC)
    )
    found = row.first()
    if found is None:
        return None
    draws.people_moved(tx, event_id, found, delta=heads)
    return int(found[0])


async def insert_new(
    tx: AsyncSession,
    *,
    registration_id: str,
    event_id: str,
    attendee_id: str,
    party_size: int,
    now: datetime,
) -> bool:
    """Write a first registration row; False when the attendee already has one.

    `ON CONFLICT DO NOTHING` on the unique (event, attendee) key: a concurrent duplicate
    waits for the first transaction, then inserts nothing and takes the existing-row path.
    """
    dialect = tx.get_bind().dialect.name
    factory = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row = await tx.execute(
        factory(Registration)
        .values(
            id=registration_id,
            event_id=event_id,
            attendee_id=attendee_id,
            party_size=party_size,
            status=RegistrationStatus.ACTIVE.value,
            created_at=now,
            updated_at=now,
            cancelled_at=None,
        )
        .on_conflict_do_nothing(index_elements=["event_id", "attendee_id"])
        .returning(Registration.id)
    )
    return row.first() is not None


async def release(tx: AsyncSession, event_id: str, heads: int) -> None:
    """People leave. The CHECK constraint forbids going below zero."""
    cap = select(Event.max_attendees).where(Event.id == event_id).scalar_subquery()
    found = (
        await tx.execute(
            update(EventCapacity)
            .where(EventCapacity.event_id == event_id)
            .values(registered=EventCapacity.registered - heads)
            .returning(EventCapacity.registered, EventCapacity.tickets, cap)
            .execution_options(**_NO_SYNC)
        )
    ).first()
    if found is not None:
        draws.people_moved(tx, event_id, found, delta=-heads)


async def people(tx: AsyncSession, event_id: str) -> tuple[int, int]:
    """(registered, tickets held or sold) under the event's cap; tickets are 0 while uncapped."""
    found = (
        await tx.execute(
            select(EventCapacity.registered, EventCapacity.tickets).where(
                EventCapacity.event_id == event_id
            )
        )
    ).first()
    return (0, 0) if found is None else (int(found[0] or 0), int(found[1] or 0))


async def own(
    tx: AsyncSession, event_id: str, attendee_id: str, *, lock: bool = False
) -> Registration | None:
    """The attendee's registration for the event, active or cancelled (`lock`: step 5)."""
    query = (
        select(Registration)
        .where(Registration.event_id == event_id, Registration.attendee_id == attendee_id)
        .execution_options(populate_existing=True)
    )
    return (await tx.scalars(locks.exclusive(query) if lock else query)).first()


async def ensure_counter(tx: AsyncSession, event_id: str) -> None:
    """Create the event's counter row if missing (an INSERT that does nothing otherwise)."""
    dialect = tx.get_bind().dialect.name
    factory = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await tx.execute(
        factory(EventCapacity)
        .values(event_id=event_id, registered=0)
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
