"""Ledger tables and statements for the places people gather: booths, rooms, huddles.

Booths and breakout rooms are *durable definitions* (name, limit, open/closed); who is
inside them right now is live presence (leases), not rows. Huddles are durable
membership: `members` counts the `huddle_members` rows of the huddle and changes in the
same transaction, guarded by the `version` column (optimistic locking, see
capacity/huddles.py); reconcile proves the counter equals the rows.

The statements are generic over these tables (and over any row a live space is defined
by, `capacity/spaces.py`): each table has `id`, `event_id`, `created_at`, `updated_at`;
closable ones `status` and `closed_at`; versioned ones `version`. None takes a lock:
SQLite's `BEGIN IMMEDIATE` serialises writers, and on PostgreSQL each change is one
UPDATE on one row (the huddle join's guard is in its WHERE clause).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from headcount.domain.errors import Conflict
from headcount.ledger.models import (
    Base,
    CopiedEvent,
    Event,
    EventRef,
    EventRow,
    Name,
    RowId,
    key_to,
    non_negative,
)
from headcount.ledger.rows import the_row

OPEN, CLOSED = "open", "closed"


class Booth(EventRow, Base):
    __tablename__ = "booths"

    name: Mapped[Name]
    description: Mapped[str] = mapped_column(Text, default="")
    tier: Mapped[str] = mapped_column(String(40))
    chat_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    video_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    max_visitors: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("max_visitors IS NULL OR max_visitors >= 0", name="max_visitors"),
    )


class BreakoutRoom(Base):
    __tablename__ = "breakout_rooms"

    id: Mapped[RowId]
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    # Denormalised from the session so the event's capacity snapshot is one indexed read.
    event_id: Mapped[EventRef]
    name: Mapped[Name]
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    __table_args__ = (
        non_negative("capacity"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
    )


class Huddle(EventRow, Base):
    __tablename__ = "huddles"

    name: Mapped[Name]
    topic: Mapped[str] = mapped_column(Text, default="")
    capacity: Mapped[int] = mapped_column(Integer)
    members: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        non_negative("capacity"),
        # Not `members <= capacity`: lowering the capacity keeps everyone who is in.
        non_negative("members"),
        non_negative("version"),
    )


class HuddleMember(Base):
    __tablename__ = "huddle_members"

    huddle_id: Mapped[str] = key_to("huddles")
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    event_id: Mapped[CopiedEvent]  # the huddle's
    joined_at: Mapped[datetime]


async def add(tx: AsyncSession, row: Base) -> None:
    """Insert a new row now, so a constraint it breaks fails here, not at commit."""
    tx.add(row)
    await tx.flush()


async def listed(tx: AsyncSession, model: type[Any], column: str, value: str) -> list[Any]:
    """Rows of `model` whose `column` is `value`, oldest first (ties by id)."""
    return list(
        await tx.scalars(
            select(model)
            .where(getattr(model, column) == value)
            .order_by(model.created_at, model.id)
        )
    )


async def of_event(tx: AsyncSession, model: type[Any], event: Event) -> list[Any]:
    """The places of `model` in `event`; a space defined by the event itself is the event."""
    if model is Event:
        return [event]
    return await listed(tx, model, "event_id", event.id)


async def change(
    tx: AsyncSession, model: type[Any], row_id: str, values: Mapping[str, Any], *, event_id: str
) -> None:
    """Set `values` on one row; a versioned row's `version` moves too, so a racing
    optimistic writer that read the old row retries against the new one."""
    bump = {"version": model.version + 1} if "version" in model.__table__.c else {}
    await tx.execute(
        update(model)
        .where(the_row(model, row_id, event_id))
        .values(**values, **bump)
        .execution_options(synchronize_session=False)
    )


async def close(
    tx: AsyncSession, model: type[Any], row_id: str, now: datetime, *, event_id: str
) -> None:
    closed = {"status": CLOSED, "closed_at": now, "updated_at": now}
    await change(tx, model, row_id, closed, event_id=event_id)


# Huddle membership: the counter and its rows change in one transaction.


async def is_member(tx: AsyncSession, huddle_id: str, user_id: str) -> bool:
    return await tx.get(HuddleMember, (huddle_id, user_id)) is not None


async def claim(tx: AsyncSession, huddle: Huddle, user_id: str, now: datetime) -> bool:
    """Take a place if the huddle is unchanged since `huddle` was read and has room.

    False: someone else changed it in between (the caller retries the transaction).
    """
    claimed = await tx.execute(
        update(Huddle)
        .where(
            Huddle.id == huddle.id,
            Huddle.event_id == huddle.event_id,
            Huddle.version == huddle.version,
            Huddle.members < Huddle.capacity,
        )
        .values(members=Huddle.members + 1, version=Huddle.version + 1, updated_at=now)
        .returning(Huddle.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.first() is None:
        return False
    await add(
        tx,
        HuddleMember(huddle_id=huddle.id, user_id=user_id, event_id=huddle.event_id, joined_at=now),
    )
    return True


async def give_back(
    tx: AsyncSession, huddle_id: str, user_id: str, now: datetime, *, event_id: str
) -> bool:
    """Remove the membership and free its place; False if `user_id` was not a member."""
    gone = await tx.execute(
        delete(HuddleMember)
        .where(
            HuddleMember.huddle_id == huddle_id,
            HuddleMember.event_id == event_id,
            HuddleMember.user_id == user_id,
        )
        .returning(HuddleMember.user_id)
        .execution_options(synchronize_session=False)
    )
    if gone.first() is None:
        return False
    freed = await tx.execute(
        update(Huddle)
        .where(Huddle.id == huddle_id, Huddle.event_id == event_id, Huddle.members > 0)
        .values(members=Huddle.members - 1, version=Huddle.version + 1, updated_at=now)
        .returning(Huddle.id)
        .execution_options(synchronize_session=False)
    )
    if freed.first() is None:  # pragma: no cover - the CHECK constraint's job
        raise Conflict("huddle counter is out of step with its members; run reconcile")
    return True


async def member_ids(tx: AsyncSession, huddle_id: str) -> list[str]:
    rows = await tx.scalars(
        select(HuddleMember.user_id)
        .where(HuddleMember.huddle_id == huddle_id)
        .order_by(HuddleMember.joined_at, HuddleMember.user_id)
    )
    return list(rows)
