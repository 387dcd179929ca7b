"""Row locks taken in the documented order (docs/concurrency.md, "Attendance").

On PostgreSQL these are `SELECT … FOR UPDATE`; on SQLite the clause is not rendered and
`BEGIN IMMEDIATE` already serialises every writer, so the same code is correct on both.
Locking the counter row *first* is what lets a use case then read the attendee's own
claim rows and act on them without a read-then-write race: every transaction that could
change them queues on the same row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.ledger import buckets, draws
from headcount.ledger.attendance import EventCapacity, SessionCapacity
from headcount.ledger.models import TicketType

Query = TypeVar("Query", bound=Select[tuple[object]])


def for_update(query: Query) -> Query:
    """`query` taking its rows FOR UPDATE (rendered on PostgreSQL only)."""
    return query.with_for_update()


async def ensure_event_counter(tx: AsyncSession, event_id: str) -> None:
    """Create the event's counter row if missing, without locking an existing one."""
    dialect = tx.get_bind().dialect.name
    factory = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await tx.execute(
        factory(EventCapacity)
        .values(event_id=event_id, registered=0)
        .on_conflict_do_nothing(index_elements=["event_id"])
    )


async def event_counter(tx: AsyncSession, event_id: str) -> int:
    """Lock (creating it if missing) the event's counter row; returns `registered`."""
    await ensure_event_counter(tx, event_id)
    registered = await tx.scalar(
        select(EventCapacity.registered).where(EventCapacity.event_id == event_id).with_for_update()
    )
    assert registered is not None
    return registered


async def session_counters(tx: AsyncSession, session_ids: Iterable[str]) -> None:
    """Lock session capacity rows in ascending id order."""
    ids = sorted(set(session_ids))
    if ids:
        await tx.execute(
            select(SessionCapacity.session_id)
            .where(SessionCapacity.session_id.in_(ids))
            .order_by(SessionCapacity.session_id)
            .with_for_update()
        )


async def ticket_types(tx: AsyncSession, ticket_type_ids: Iterable[str]) -> None:
    """Lock ticket type rows in ascending id order, before any pool or event counter row."""
    for tid in sorted(set(ticket_type_ids)):
        await ticket_type(tx, tid)


async def ticket_type(tx: AsyncSession, ticket_type_id: str) -> int | None:
    """Lock one ticket type row; returns the stock available (None if there is no row).

    Available is the least of the type's own stock and the room left in its pools and its
    event's cap (issue 4), read without locking those rows: a racing buyer can still take
    that room first, so callers reserving it must handle `PoolExhausted`/`EventFull`.
    """
    row = await tx.execute(
        select(
            TicketType.quantity_total - TicketType.quantity_sold - TicketType.quantity_reserved,
            TicketType.stock_buckets,
        )
        .where(TicketType.id == ticket_type_id)
        # NO KEY UPDATE, like the counter UPDATEs themselves: it does not conflict with the
        # KEY SHARE lock that inserting an order item (a foreign key to this row) takes.
        .with_for_update(key_share=True)
    )
    found = row.first()
    if found is None:
        return None
    own = max(0, int(found[0]))  # negative after a total was lowered below use
    if found[1] > 1:
        # Hot-inventory type: its free units are in its buckets (read unlocked, like pools).
        own = (await buckets.free_units(tx, [ticket_type_id])).get(ticket_type_id, 0)
    shared = (await draws.headroom(tx, [ticket_type_id])).get(ticket_type_id)
    return own if shared is None else min(own, shared)
