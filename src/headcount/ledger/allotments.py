"""Organizer holds ("allotments"): their rows and the statements that move their units.

An allotment's units are held stock: the ticket type's `quantity_reserved` (or its
buckets), its pools and its event's cap count them exactly as they count a pending
order's items, because they are taken and given back by the same statements
(`inventory.reserve`, `inventory.release_hold`). This module keeps only the allotment's
own row; `usage.ordered` adds the units to what the rows say is held, so `reconcile`
and the event-cap recount see them.

A hold on a pool (`pool_id`, no ticket type) is counted in that pool's `quantity_used`
and the event's cap only: no type's stock holds it, so `held` leaves it out and
`held_in_pools` / `held_in_pools_of_events` give its units to the pool and event checks.

Lock order (ledger/locks.py): an allotment row sits with the order rows (step 3). Its
units are taken by one conditional UPDATE on the row (`take_units`), which also takes
the row lock; the ticket-type, pool and event rows a release moves come after it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from headcount.domain.ids import is_well_formed
from headcount.ledger import locks, rows
from headcount.ledger.models import Base, EventRow, Name, non_negative

ONE_TARGET = "(ticket_type_id IS NULL) <> (pool_id IS NULL)"


class OrganizerHold(EventRow, Base):
    __tablename__ = "organizer_holds"

    # Exactly one of the two is set (the CHECK `one_target`): a type's stock, or a pool's.
    ticket_type_id: Mapped[str | None] = mapped_column(ForeignKey("ticket_types.id"), index=True)
    pool_id: Mapped[str | None] = mapped_column(ForeignKey("capacity_pools.id"), index=True)
    name: Mapped[Name]
    # Units still set aside; only ever shrinks after creation (split, release, redeem).
    quantity: Mapped[int] = mapped_column(Integer)
    redemption_code: Mapped[str | None] = mapped_column(String(100))
    release_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        non_negative("quantity"),
        CheckConstraint(ONE_TARGET, name="one_target"),
        # The sweeper's query: holds whose release time came, soonest first.
        Index("ix_organizer_holds_release_at", "release_at"),
    )


async def find(
    tx: AsyncSession, hold_id: str, *, event_id: str | None = None, lock: bool = False
) -> OrganizerHold:
    """The hold (of `event_id` when known). Locked, it is always read with its event
    named: a path without one looks the event up first (docs/scale-out.md)."""
    if lock and event_id is None and is_well_formed(hold_id):
        event_id = await tx.scalar(
            select(OrganizerHold.event_id).where(OrganizerHold.id == hold_id)
        )
    return await rows.find(tx, OrganizerHold, hold_id, noun="hold", lock=lock, event_id=event_id)


async def of_event(tx: AsyncSession, event_id: str) -> list[OrganizerHold]:
    found = await tx.scalars(
        select(OrganizerHold)
        .where(OrganizerHold.event_id == event_id)
        .order_by(OrganizerHold.created_at, OrganizerHold.id)
    )
    return list(found.all())


async def take_units(
    tx: AsyncSession, hold_id: str, n: int, now: datetime, *, event_id: str
) -> int | None:
    """Take `n` units off the hold in one conditional UPDATE: what is left, or None if the
    hold has fewer (a racing split or release took them first; nothing changed)."""
    left = await tx.scalar(
        update(OrganizerHold)
        .where(
            OrganizerHold.id == hold_id,
            OrganizerHold.event_id == event_id,
            OrganizerHold.quantity >= n,
        )
        .values(quantity=OrganizerHold.quantity - n, updated_at=now)
        .returning(OrganizerHold.quantity)
        .execution_options(synchronize_session=False)
    )
    return None if left is None else int(left)


async def due(
    tx: AsyncSession, now: datetime, *, limit: int, pooled: bool = False
) -> list[OrganizerHold]:
    """Holds (on a ticket type, or on a pool: `pooled`) whose release time came and that
    still hold units, claimed (SKIP LOCKED): sweepers on every replica never wait on, or
    release twice, the same hold."""
    on_pool = OrganizerHold.pool_id.is_not(None) if pooled else OrganizerHold.pool_id.is_(None)
    query = (
        select(OrganizerHold)
        .where(OrganizerHold.release_at <= now, OrganizerHold.quantity > 0, on_pool)
        .order_by(OrganizerHold.release_at, OrganizerHold.id)
        .limit(limit)
    )
    return list((await tx.scalars(locks.claimed(query))).all())


async def held(
    tx: AsyncSession, ticket_type_ids: Collection[str] | None = None, *, lasting: bool = False
) -> dict[str, int]:
    """Units set aside per ticket type, from the rows; types without holds are absent.
    `lasting`: only holds with no release time, which nothing but the organizer ends."""
    return await _held_by(tx, OrganizerHold.ticket_type_id, ticket_type_ids, lasting=lasting)


async def held_in_pools(
    tx: AsyncSession, pool_ids: Collection[str] | None = None, *, lasting: bool = False
) -> dict[str, int]:
    """Units pool holds set aside per pool, from the rows; pools without any are absent.
    `lasting` as in `held`."""
    return await _held_by(tx, OrganizerHold.pool_id, pool_ids, lasting=lasting)


async def held_in_pools_of_events(
    tx: AsyncSession, event_ids: Collection[str] | None = None
) -> dict[str, int]:
    """Units pool holds set aside per event: what its ticket counter counts beside its
    types' use while the event has a cap."""
    on_pools = OrganizerHold.pool_id.is_not(None)
    return await _held_by(tx, OrganizerHold.event_id, event_ids, lasting=False, where=on_pools)


async def _held_by(
    tx: AsyncSession,
    key: InstrumentedAttribute[Any],
    ids: Collection[str] | None,
    *,
    lasting: bool,
    where: ColumnElement[bool] | None = None,
) -> dict[str, int]:
    """Units of live holds summed per `key` (rows whose key is null are left out)."""
    query = (
        select(key, func.sum(OrganizerHold.quantity))
        .where(OrganizerHold.quantity > 0, key.is_not(None))
        .group_by(key)
    )
    if where is not None:
        query = query.where(where)
    if lasting:
        query = query.where(OrganizerHold.release_at.is_(None))
    if ids is not None:
        query = query.where(key.in_(sorted(set(ids))))
    return {k: int(n or 0) for k, n in (await tx.execute(query)).all() if k is not None}


async def lapsing_in_pools(
    tx: AsyncSession, event_id: str, pool_ids: Collection[str] | None = None
) -> int:
    """Units of the event's pool holds (on these pools; None: any) that a release time
    will give back by itself: room that may yet open without anyone deciding it."""
    query = select(func.coalesce(func.sum(OrganizerHold.quantity), 0)).where(
        OrganizerHold.event_id == event_id,
        OrganizerHold.pool_id.is_not(None),
        OrganizerHold.quantity > 0,
        OrganizerHold.release_at.is_not(None),
    )
    if pool_ids is not None:
        query = query.where(OrganizerHold.pool_id.in_(sorted(set(pool_ids))))
    return int(await tx.scalar(query) or 0)
