"""The SQL of areas: their tree, their `inside` counters and the positions behind them.

Counters move only here, one statement per area in ascending id (ledger/locks.py step 0),
in the transaction that moves the credential's position row: the counter and the rows
that explain it never disagree at a commit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.domain import occupancy
from headcount.ledger import locks
from headcount.ledger.venue import Area, AreaPosition

_NO_SYNC = {"synchronize_session": False}
_ROOM = (Area.max_occupancy.is_(None)) | (Area.inside < Area.max_occupancy)
_MOVE = (
    update(Area)
    .where(Area.id == bindparam("aid", type_=String), Area.event_id == bindparam("eid"))
    .values(inside=Area.inside + bindparam("delta", type_=Integer))
    .returning(Area.inside, Area.max_occupancy)
    .execution_options(**_NO_SYNC)
)
# An online entry: the row lock the UPDATE takes makes concurrent gates queue on the area
# and re-check the room against the committed count (PostgreSQL's READ COMMITTED re-read).
_ENTER = (
    update(Area)
    .where(Area.id == bindparam("aid", type_=String), Area.event_id == bindparam("eid"), _ROOM)
    .values(inside=Area.inside + 1)
    .returning(Area.inside, Area.max_occupancy)
    .execution_options(**_NO_SYNC)
)


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    parent_id: str | None
    name: str
    max_occupancy: int | None
    allow_reentry: bool
    inside: int


async def tree(tx: AsyncSession, event_id: str) -> dict[str, Node]:
    """Every area of the event by id (an event has a handful: one statement)."""
    found = await tx.execute(
        select(
            Area.id,
            Area.parent_id,
            Area.name,
            Area.max_occupancy,
            Area.allow_reentry,
            Area.inside,
        ).where(Area.event_id == event_id)
    )
    return {row[0]: Node(*row) for row in found.all()}


def parents(nodes: Mapping[str, Node]) -> dict[str, str | None]:
    return {n.id: n.parent_id for n in nodes.values()}


@dataclass(frozen=True, slots=True)
class Moved:
    area_id: str
    inside: int
    max_occupancy: int | None

    @property
    def over(self) -> bool:
        return self.max_occupancy is not None and self.inside > self.max_occupancy


async def move(
    tx: AsyncSession, moves: Mapping[str, int], *, event_id: str, enforce: bool
) -> tuple[list[Moved], str | None]:
    """Apply occupancy moves in ascending area id: (the areas as moved, the area refused).

    `enforce`: an entry into an area at its maximum matches nothing and is reported as
    refused (the caller raises, and its transaction rolls back every earlier move).
    Without it (an offline scan: it already happened) the count goes past the maximum and
    the caller flags it.
    """
    moved: list[Moved] = []
    for area_id in sorted(moves):
        delta = moves[area_id]
        statement = _ENTER if enforce and delta > 0 else _MOVE
        bound = {"aid": area_id, "eid": event_id, "delta": delta}
        found = (await tx.execute(statement, bound)).first()
        if found is None:
            return moved, area_id
        moved.append(Moved(area_id, int(found[0]), found[1]))
    return moved, None


async def position(tx: AsyncSession, event_id: str, credential: str) -> str | None:
    return await tx.scalar(
        select(AreaPosition.area_id).where(
            AreaPosition.event_id == event_id, AreaPosition.credential == credential
        )
    )


async def place(
    tx: AsyncSession, event_id: str, credential: str, area_id: str | None, now: datetime
) -> None:
    """Set a credential's position (None: outside). Its credential lock is held."""
    await tx.execute(
        delete(AreaPosition)
        .where(AreaPosition.event_id == event_id, AreaPosition.credential == credential)
        .execution_options(**_NO_SYNC)
    )
    if area_id is not None:
        tx.add(AreaPosition(event_id=event_id, credential=credential, area_id=area_id, since=now))
        await tx.flush()


async def credentials_within(tx: AsyncSession, area_ids: Collection[str]) -> list[str]:
    """Credentials whose position is one of `area_ids` (an area and those below it)."""
    found = await tx.scalars(
        select(AreaPosition.credential)
        .where(AreaPosition.area_id.in_(list(area_ids)))
        .order_by(AreaPosition.credential)
    )
    return list(found)


async def positions(tx: AsyncSession) -> dict[tuple[str, str], str]:
    """Every position: (event, credential) → area. For reconcile."""
    found = await tx.execute(
        select(AreaPosition.event_id, AreaPosition.credential, AreaPosition.area_id)
    )
    return {(e, c): a for e, c, a in found.all()}


async def counters(tx: AsyncSession) -> list[tuple[str, str, str | None, int]]:
    """(area, event, parent, inside) of every area, in id order. For reconcile."""
    found = await tx.execute(
        select(Area.id, Area.event_id, Area.parent_id, Area.inside).order_by(Area.id)
    )
    return [(a, e, p, int(n)) for a, e, p, n in found.all()]


def descendants(area_id: str, nodes: Mapping[str, Node]) -> list[str]:
    """The area and every area below it."""
    links = parents(nodes)
    return [a for a in nodes if occupancy.is_within(a, area_id, links)]


async def count_within(tx: AsyncSession, area_ids: Collection[str]) -> int:
    found = await tx.scalar(
        select(func.count())
        .select_from(AreaPosition)
        .where(AreaPosition.area_id.in_(list(area_ids)))
    )
    return int(found or 0)


async def listed(tx: AsyncSession, event_id: str) -> list[Area]:
    """The event's areas in the order they were made."""
    found = await tx.scalars(
        select(Area).where(Area.event_id == event_id).order_by(Area.created_at, Area.id)
    )
    return list(found)


async def due_checkouts(tx: AsyncSession, now: datetime, *, limit: int) -> list[str]:
    """Claim areas whose auto checkout is due and clear it, so one replica runs each."""
    claimed = await tx.execute(
        locks.claimed(
            select(Area.id, Area.event_id)
            .where(Area.checkout_at.is_not(None), Area.checkout_at <= now)
            .order_by(Area.checkout_at, Area.id)
            .limit(limit)
        )
    )
    due = [(str(area), str(event)) for area, event in claimed.all()]
    for event_id in sorted({event for _, event in due}):
        await tx.execute(
            update(Area)
            .where(Area.id.in_([a for a, e in due if e == event_id]), Area.event_id == event_id)
            .values(checkout_at=None)
            .execution_options(**_NO_SYNC)
        )
    return [area for area, _ in due]
