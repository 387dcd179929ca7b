"""The atomic statements that move ticket stock. Never read-then-write in Python.

Each function issues one conditional UPDATE per ticket type, in ascending id order (the
caller passes normalised, sorted lines), inside the caller's transaction. A shortfall
raises, and the caller's transaction rolls back everything reserved before it: orders are
all-or-nothing. On PostgreSQL the row lock taken by UPDATE makes concurrent buyers queue
on the row and re-check the WHERE clause against the committed value; on SQLite
`BEGIN IMMEDIATE` serialises writers. See docs/concurrency.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain.errors import HoldExpired, SoldOut
from headcount.domain.tickets import OrderLine
from headcount.ledger.models import TicketType

_NO_SYNC = {"synchronize_session": False}
_AVAILABLE = TicketType.quantity_total - TicketType.quantity_sold - TicketType.quantity_reserved


async def reserve(
    session: AsyncSession, lines: Sequence[OrderLine], names: Mapping[str, str] | None = None
) -> None:
    """Hold stock for every line or raise `SoldOut` naming the first ticket type short."""
    for line in lines:
        held = await session.execute(
            update(TicketType)
            .where(TicketType.id == line.ticket_type_id, line.quantity <= _AVAILABLE)
            .values(quantity_reserved=TicketType.quantity_reserved + line.quantity)
            .returning(TicketType.id)
            .execution_options(**_NO_SYNC)
        )
        if held.first() is None:
            name = (names or {}).get(line.ticket_type_id, line.ticket_type_id)
            raise SoldOut(
                f"not enough {name!r} tickets left for {line.quantity}",
                ticket_type_id=line.ticket_type_id,
                requested=line.quantity,
            )


async def release_hold(session: AsyncSession, lines: Sequence[OrderLine]) -> None:
    """Give held stock back (cancel or expiry). The CHECK constraint forbids going below 0."""
    for line in lines:
        await session.execute(
            update(TicketType)
            .where(TicketType.id == line.ticket_type_id)
            .values(quantity_reserved=TicketType.quantity_reserved - line.quantity)
            .execution_options(**_NO_SYNC)
        )


async def convert_hold(session: AsyncSession, lines: Sequence[OrderLine]) -> None:
    """Payment confirmed: held stock becomes sold, the total in use does not change."""
    for line in lines:
        await session.execute(
            update(TicketType)
            .where(TicketType.id == line.ticket_type_id)
            .values(
                quantity_reserved=TicketType.quantity_reserved - line.quantity,
                quantity_sold=TicketType.quantity_sold + line.quantity,
            )
            .execution_options(**_NO_SYNC)
        )


async def sell_again(session: AsyncSession, lines: Sequence[OrderLine]) -> None:
    """Confirm an order whose hold already expired: sell only if stock still allows."""
    for line in lines:
        sold = await session.execute(
            update(TicketType)
            .where(TicketType.id == line.ticket_type_id, line.quantity <= _AVAILABLE)
            .values(quantity_sold=TicketType.quantity_sold + line.quantity)
            .returning(TicketType.id)
            .execution_options(**_NO_SYNC)
        )
        if sold.first() is None:
            raise HoldExpired(
                "the order's hold expired and the tickets were taken by someone else",
                ticket_type_id=line.ticket_type_id,
            )


async def refund(session: AsyncSession, lines: Sequence[OrderLine]) -> None:
    """A paid order refunded: its tickets go back on sale."""
    for line in lines:
        await session.execute(
            update(TicketType)
            .where(TicketType.id == line.ticket_type_id)
            .values(quantity_sold=TicketType.quantity_sold - line.quantity)
            .execution_options(**_NO_SYNC)
        )
