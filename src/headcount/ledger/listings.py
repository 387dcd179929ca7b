"""What the collection endpoints list: the rows of one event or one owner, in shown order.

Plain reads, no locks: callers run them in `Database.snapshot()`, so a listing and the
figures read beside it come from one point in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.ledger.attendance import Registration, Session, WaitlistEntry
from headcount.ledger.models import Event, Order, TicketType
from headcount.ledger.pools import CapacityPool

Listed = TypeVar("Listed", Event, Order)
Made = TypeVar("Made", TicketType, CapacityPool)


async def events(tx: AsyncSession, *, organizer_id: str | None, limit: int) -> Sequence[Event]:
    """Newest first; only one organizer's when asked."""
    return await _newest(tx, Event, limit, organizer_id=organizer_id)


async def ticket_types(tx: AsyncSession, event_id: str) -> list[TicketType]:
    """The event's ticket types in the order they were created."""
    return await _of_event(tx, TicketType, event_id)


async def orders(
    tx: AsyncSession, *, event_id: str | None, owner_id: str | None, limit: int
) -> Sequence[Order]:
    """Newest first, of one event and/or one owner."""
    return await _newest(tx, Order, limit, event_id=event_id, owner_id=owner_id)


async def pools(tx: AsyncSession, event_id: str) -> list[CapacityPool]:
    """The event's pools in the order they were created."""
    return await _of_event(tx, CapacityPool, event_id)


async def registrations(tx: AsyncSession, event_id: str, *, limit: int) -> Sequence[Registration]:
    found = await tx.scalars(
        select(Registration)
        .where(Registration.event_id == event_id)
        .order_by(Registration.created_at, Registration.id)
        .limit(limit)
    )
    return found.all()


async def sessions(tx: AsyncSession, event_id: str) -> Sequence[Session]:
    """The event's agenda in time order."""
    found = await tx.scalars(
        select(Session)
        .where(Session.event_id == event_id)
        .order_by(Session.starts_at, Session.created_at, Session.id)
    )
    return found.all()


async def waitlist_entries(
    tx: AsyncSession, event_id: str, attendee_id: str, *, limit: int
) -> Sequence[WaitlistEntry]:
    """Every queue one attendee joined in an event, most recently changed first."""
    found = await tx.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.event_id == event_id, WaitlistEntry.attendee_id == attendee_id)
        .order_by(WaitlistEntry.updated_at.desc(), WaitlistEntry.id)
        .limit(limit)
    )
    return found.all()


async def _newest(
    tx: AsyncSession, model: type[Listed], limit: int, **equal: str | None
) -> Sequence[Listed]:
    """Rows of `model`, newest first, whose named columns equal the values given (not None)."""
    query = select(model).order_by(model.created_at.desc()).limit(limit)
    for column, value in equal.items():
        if value is not None:
            query = query.where(getattr(model, column) == value)
    return (await tx.scalars(query)).all()


async def _of_event(tx: AsyncSession, model: type[Made], event_id: str) -> list[Made]:
    """Rows of one event, oldest first, re-read (not taken from the unit of work's map)."""
    found = await tx.scalars(
        select(model)
        .where(model.event_id == event_id)
        .order_by(model.created_at, model.id)
        .execution_options(populate_existing=True)
    )
    return list(found)
