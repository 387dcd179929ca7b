"""Waiting rooms' terms: the durable half of a queue (the queue itself is in the store).

One room per event, in front of the whole event or of chosen ticket types. The row keeps
what must survive any store restart: the terms, the room's signing secret (so every server
process checks every pass) and whether it is sold out. The status moves only through one
conditional UPDATE (`set_status`), so when every replica's pump sees the stock gone at
once, exactly one records `queue.sold_out`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from headcount.ledger.models import Base, EventRow


class WaitingRoom(EventRow, Base):
    __tablename__ = "waiting_rooms"

    # One room per event: unique rather than only indexed.
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), unique=True, sort_order=-1)
    # NULL: every ticket type of the event.
    ticket_type_ids: Mapped[list[str] | None] = mapped_column(JSON)
    opens_at: Mapped[datetime]
    active_limit: Mapped[int] = mapped_column(Integer)
    admit_per_minute: Mapped[int] = mapped_column(Integer)
    pass_ttl: Mapped[int] = mapped_column(Integer)  # seconds
    queue_order: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    secret: Mapped[str] = mapped_column(String(100))

    __table_args__ = (
        CheckConstraint("active_limit >= 1", name="active_limit"),
        CheckConstraint("admit_per_minute >= 1", name="admit_per_minute"),
        CheckConstraint("pass_ttl >= 1", name="pass_ttl"),
    )


async def of_event(tx: AsyncSession, event_id: str) -> WaitingRoom | None:
    found: WaitingRoom | None = (
        await tx.scalars(
            select(WaitingRoom)
            .where(WaitingRoom.event_id == event_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    return found


async def every(tx: AsyncSession) -> Sequence[WaitingRoom]:
    """Every room (the pump's round): few, one per on-sale."""
    return (await tx.scalars(select(WaitingRoom).order_by(WaitingRoom.id))).all()


async def set_status(tx: AsyncSession, room_id: str, *, was: str, now: str, at: datetime) -> bool:
    """Move the room from status `was` to `now`; False if someone else already did."""
    result: Any = await tx.execute(
        update(WaitingRoom)
        .where(WaitingRoom.id == room_id, WaitingRoom.status == was)
        .values(status=now, updated_at=at)
    )
    return bool(result.rowcount == 1)
