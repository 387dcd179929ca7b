"""Row locks taken in the documented order (docs/concurrency.md, "Attendance").

On PostgreSQL these are `SELECT … FOR UPDATE`; on SQLite the clause is not rendered and
`BEGIN IMMEDIATE` already serialises every writer, so the same code is correct on both.
Locking the counter row *first* is what lets a use case then read the attendee's own
claim rows and act on them without a read-then-write race: every transaction that could
change them queues on the same row.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.ledger.attendance import EventCapacity, SessionCapacity
from headcount.ledger.models import TicketType


async def event_counter(session: AsyncSession, event_id: str) -> int:
    """Lock (creating it if missing) the event's counter row; returns `registered`."""
    dialect = session.get_bind().dialect.name
    factory = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        factory(EventCapacity)
        .values(event_id=event_id, registered=0)
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    registered = await session.scalar(
        select(EventCapacity.registered).where(EventCapacity.event_id == event_id).with_for_update()
    )
    assert registered is not None
    return registered


async def session_counters(session: AsyncSession, session_ids: Iterable[str]) -> None:
    """Lock session capacity rows in ascending id order."""
    ids = sorted(set(session_ids))
    if ids:
        await session.execute(
            select(SessionCapacity.session_id)
            .where(SessionCapacity.session_id.in_(ids))
            .order_by(SessionCapacity.session_id)
            .with_for_update()
        )


async def ticket_type(session: AsyncSession, ticket_type_id: str) -> int | None:
    """Lock one ticket type row; returns the stock available (None if there is no row)."""
    row = await session.execute(
        select(TicketType.quantity_total - TicketType.quantity_sold - TicketType.quantity_reserved)
        .where(TicketType.id == ticket_type_id)
        # NO KEY UPDATE, like the counter UPDATEs themselves: it does not conflict with the
        # KEY SHARE lock that inserting an order item (a foreign key to this row) takes.
        .with_for_update(key_share=True)
    )
    found = row.first()
    return None if found is None else int(found[0])
