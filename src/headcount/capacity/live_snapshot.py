"""The live-presence and huddle part of an event's capacity snapshot.

Durable rows (booths, rooms, huddles) are read in the snapshot's transaction; the live
counts come from the presence store in one pipelined round trip. If that store is down,
the counts are `None` and the rest of the snapshot is still served.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.capacity.booths import booth_resource, booth_view
from headcount.capacity.breakouts import OPEN, room_resource, room_view
from headcount.capacity.huddles import huddle_view
from headcount.capacity.viewers import stream
from headcount.capacity.views import BoothView, BreakoutRoomView, HuddleView, ViewerCapacity
from headcount.domain.errors import ServiceUnavailable
from headcount.domain.presence import viewer_limit
from headcount.ledger.models import Event
from headcount.ledger.spaces import Booth, BreakoutRoom, Huddle
from headcount.presence import Resource
from headcount.runtime import Runtime


@dataclass
class LiveRows:
    """The durable rows, read inside the snapshot's transaction."""

    event: Event
    booths: list[Booth]
    rooms: list[BreakoutRoom]
    huddles: list[Huddle]


@dataclass
class LiveSections:
    viewers: ViewerCapacity
    booths: list[BoothView] = field(default_factory=list)
    breakout_rooms: list[BreakoutRoomView] = field(default_factory=list)
    huddles: list[HuddleView] = field(default_factory=list)


async def live_rows(tx: AsyncSession, event: Event) -> LiveRows:
    booths = list(
        await tx.scalars(
            select(Booth).where(Booth.event_id == event.id).order_by(Booth.created_at, Booth.id)
        )
    )
    rooms = list(
        await tx.scalars(
            select(BreakoutRoom)
            .where(BreakoutRoom.event_id == event.id)
            .order_by(BreakoutRoom.created_at, BreakoutRoom.id)
        )
    )
    huddles = list(
        await tx.scalars(
            select(Huddle).where(Huddle.event_id == event.id).order_by(Huddle.created_at, Huddle.id)
        )
    )
    return LiveRows(event, booths, rooms, huddles)


async def live_sections(rt: Runtime, rows: LiveRows) -> LiveSections:
    """Adds the live counts, after the transaction: no database lock waits on Redis."""
    event, booths, rooms, huddles = rows.event, rows.booths, rows.rooms, rows.huddles
    resources: list[Resource] = [stream(event.id)]
    resources += [booth_resource(b.id) for b in booths]
    resources += [room_resource(r.id) for r in rooms if r.status == OPEN]
    counts: dict[Resource, int] | None
    try:
        counts = await rt.presence.occupancies(resources)
    except ServiceUnavailable:
        counts = None

    def live(resource: Resource) -> int | None:
        return None if counts is None else counts.get(resource, 0)

    limit = viewer_limit(event.virtual_settings)
    viewers = live(stream(event.id))
    return LiveSections(
        viewers=ViewerCapacity(
            limit=limit,
            viewers=viewers,
            available=None if limit is None or viewers is None else max(0, limit - viewers),
            is_full=None if viewers is None else (limit is not None and viewers >= limit),
        ),
        booths=[booth_view(b, live(booth_resource(b.id))) for b in booths],
        breakout_rooms=[
            room_view(r, live(room_resource(r.id)) if r.status == OPEN else 0) for r in rooms
        ],
        huddles=[huddle_view(h) for h in huddles],
    )
