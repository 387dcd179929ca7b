"""Waiting rooms as this process acts on them: a copy of each room's terms, read from the
ledger at most once per `ROOM_MAX_AGE` however many sockets and orders ask at once.

The order path must not pay a transaction for a room on every order; this process's own
changes refresh its copy at once (`forget`), other processes see a new or changed room
within `ROOM_MAX_AGE`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from headcount.capacity.views import QueueFiguresView, WaitingRoomView
from headcount.domain import queue as rules
from headcount.domain.ids import is_well_formed
from headcount.domain.queue import QueueOrder, RoomStatus, RoomTerms
from headcount.ledger import waiting_rooms as ledger
from headcount.ledger.waiting_rooms import WaitingRoom
from headcount.presence.queues import Queues, queues_of
from headcount.recent import RecentReads
from headcount.runtime import Runtime

ROOM_MAX_AGE = 1.0  # seconds a process may act on its copy of a room's terms


@dataclass(frozen=True, slots=True)
class Room:
    """A room as this process acts on it."""

    id: str
    event_id: str
    ticket_type_ids: frozenset[str] | None
    terms: RoomTerms
    secret: str
    status: RoomStatus
    created_at: datetime
    updated_at: datetime
    opens_at: datetime

    @classmethod
    def of(cls, row: WaitingRoom) -> Room:
        return cls(
            id=row.id,
            event_id=row.event_id,
            ticket_type_ids=None if row.ticket_type_ids is None else frozenset(row.ticket_type_ids),
            terms=RoomTerms(
                room_id=row.id,
                opens_at_ms=rules.epoch_ms(row.opens_at),
                active_limit=row.active_limit,
                admit_per_minute=row.admit_per_minute,
                pass_ttl_ms=row.pass_ttl * 1000,
                order=QueueOrder(row.queue_order),
            ),
            secret=row.secret,
            status=RoomStatus(row.status),
            created_at=row.created_at,
            updated_at=row.updated_at,
            opens_at=row.opens_at,
        )

    def covers(self, ticket_type_ids: Sequence[str]) -> bool:
        types = self.ticket_type_ids
        return types is None or any(t in types for t in ticket_type_ids)

    def view(self, figures: QueueFiguresView | None = None) -> WaitingRoomView:
        return WaitingRoomView(
            id=self.id,
            event_id=self.event_id,
            ticket_type_ids=None if self.ticket_type_ids is None else sorted(self.ticket_type_ids),
            opens_at=self.opens_at,
            active_limit=self.terms.active_limit,
            admit_per_minute=self.terms.admit_per_minute,
            pass_ttl_seconds=self.terms.pass_ttl_ms // 1000,
            order=self.terms.order,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.updated_at,
            figures=figures,
        )


class Copies:
    """This process's copies: each event's room (None: the event has none), read once per
    `ROOM_MAX_AGE` however many sockets and orders ask at once (recent.py)."""

    def __init__(self) -> None:
        self.rooms: RecentReads[str, Room | None] = RecentReads(max_age=ROOM_MAX_AGE)
        self.every: tuple[float, list[Room]] | None = None
        self.stock_checked: dict[str, float] = {}
        # A whole-event room's ticket types, for sold-out tickets' waitlist pointer.
        self.event_types: RecentReads[str, list[str]] = RecentReads(max_age=ROOM_MAX_AGE)


def copies(rt: Runtime) -> Copies:
    found: Copies | None = getattr(rt, "_waiting_rooms", None)
    if found is None:
        found = Copies()
        setattr(rt, "_waiting_rooms", found)  # noqa: B010 - a per-runtime cache, not a field
    return found


def forget(rt: Runtime, event_id: str) -> None:
    """This process changed the event's room: its next look reads the ledger."""
    found = copies(rt)
    found.rooms.forget(event_id)
    found.every = None


async def room_of(rt: Runtime, event_id: str) -> Room | None:
    """The event's room, from this process's copy when it is fresh enough."""
    if not is_well_formed(event_id):
        return None

    async def read() -> Room | None:
        async with rt.db.snapshot() as tx:
            row = await ledger.of_event(tx, event_id)
        return None if row is None else Room.of(row)

    return await copies(rt).rooms.get(event_id, read)


def queues(rt: Runtime) -> Queues:
    return queues_of(rt.presence)


async def every_room(rt: Runtime) -> list[Room]:
    """Every room (the pump's round), from a copy at most `ROOM_MAX_AGE` old."""
    found = copies(rt)
    if found.every is not None and time.monotonic() - found.every[0] < ROOM_MAX_AGE:
        return found.every[1]
    async with rt.db.snapshot() as tx:
        rooms = [Room.of(row) for row in await ledger.every(tx)]
    found.every = (time.monotonic(), rooms)
    return rooms
