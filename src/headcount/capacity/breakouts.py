"""Breakout rooms: durable rooms inside a session, live participants (presence leases).

Closing a room is two steps in a fixed order: mark it closed in the ledger (commit), then
close the presence resource, which evicts every lease and refuses new ones atomically in
the presence store. A join checks the ledger first and the presence store refuses it too,
so a join racing a close cannot slip in after the eviction.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.capacity.events import MAX_LIMIT, load_event, require_manager
from headcount.capacity.live import admit, keyed, lease_view, signal_change
from headcount.capacity.views import BreakoutRoomView, LeaseView
from headcount.domain.errors import NotFound, RoomClosed, RoomFull, ServiceUnavailable
from headcount.domain.identity import Principal
from headcount.domain.ids import is_well_formed, new_id
from headcount.ledger.attendance import Session
from headcount.ledger.spaces import BreakoutRoom
from headcount.presence import Resource
from headcount.runtime import Runtime

KIND = "room"
OPEN, CLOSED = "open", "closed"


class BreakoutRoomDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    capacity: int = Field(strict=True, ge=0, le=MAX_LIMIT)


class BreakoutRoomPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    capacity: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)


def room_resource(room_id: str) -> Resource:
    return Resource(KIND, room_id)


def room_view(room: BreakoutRoom, participants: int | None) -> BreakoutRoomView:
    return BreakoutRoomView(
        id=room.id,
        session_id=room.session_id,
        event_id=room.event_id,
        name=room.name,
        capacity=room.capacity,
        status=room.status,
        participants=participants,
        is_full=None if participants is None else participants >= room.capacity,
        created_at=room.created_at,
        closed_at=room.closed_at,
    )


async def _load(tx: AsyncSession, room_id: str) -> BreakoutRoom:
    if not is_well_formed(room_id):
        raise NotFound(f"no breakout room {room_id!r}")
    room = await tx.get(BreakoutRoom, room_id, populate_existing=True)
    if room is None:
        raise NotFound(f"no breakout room {room_id!r}")
    return room


async def _load_session(tx: AsyncSession, session_id: str) -> Session:
    if not is_well_formed(session_id):
        raise NotFound(f"no session {session_id!r}")
    found = await tx.get(Session, session_id)
    if found is None:
        raise NotFound(f"no session {session_id!r}")
    return found


async def participants_of(rt: Runtime, rooms: list[BreakoutRoom]) -> dict[str, int | None]:
    live = [r for r in rooms if r.status == OPEN]
    try:
        counts = await rt.presence.occupancies([room_resource(r.id) for r in live])
    except ServiceUnavailable:
        return {r.id: (None if r.status == OPEN else 0) for r in rooms}
    by_id = {res.id: n for res, n in counts.items()}
    return {r.id: by_id.get(r.id, 0) for r in rooms}


async def create_room(
    rt: Runtime,
    principal: Principal,
    session_id: str,
    draft: BreakoutRoomDraft,
    *,
    room_id: str | None = None,
) -> BreakoutRoomView:
    now = rt.clock()
    async with rt.db.transaction() as tx:
        session = await _load_session(tx, session_id)
        require_manager(principal, await load_event(tx, session.event_id))
        room = BreakoutRoom(
            id=room_id or new_id("brk"),
            session_id=session.id,
            event_id=session.event_id,
            name=draft.name,
            capacity=draft.capacity,
            status=OPEN,
            created_at=now,
            updated_at=now,
            closed_at=None,
        )
        tx.add(room)
        await tx.flush()
    signal_change(rt, room.event_id)
    return room_view(room, 0)


async def get_room(rt: Runtime, room_id: str) -> BreakoutRoomView:
    async with rt.db.transaction() as tx:
        room = await _load(tx, room_id)
    return room_view(room, (await participants_of(rt, [room]))[room.id])


async def list_rooms(rt: Runtime, session_id: str) -> list[BreakoutRoomView]:
    async with rt.db.transaction() as tx:
        session = await _load_session(tx, session_id)
        rooms = list(
            await tx.scalars(
                select(BreakoutRoom)
                .where(BreakoutRoom.session_id == session.id)
                .order_by(BreakoutRoom.created_at, BreakoutRoom.id)
            )
        )
    counts = await participants_of(rt, rooms)
    return [room_view(r, counts[r.id]) for r in rooms]


async def update_room(
    rt: Runtime, principal: Principal, room_id: str, patch: BreakoutRoomPatch
) -> BreakoutRoomView:
    """Resize (or rename). A smaller capacity evicts nobody; it only stops newcomers."""
    changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None}
    async with rt.db.transaction() as tx:
        room = await _load(tx, room_id)
        require_manager(principal, await load_event(tx, room.event_id))
        if changes:
            changes["updated_at"] = rt.clock()
            await tx.execute(
                update(BreakoutRoom)
                .where(BreakoutRoom.id == room.id)
                .values(**changes)
                .execution_options(synchronize_session=False)
            )
        room = await _load(tx, room.id)
    signal_change(rt, room.event_id)
    return room_view(room, (await participants_of(rt, [room]))[room.id])


async def close_room(rt: Runtime, principal: Principal, room_id: str) -> BreakoutRoomView:
    """Close and release everyone. Safe to repeat: a retry re-runs the eviction."""
    async with rt.db.transaction() as tx:
        room = await _load(tx, room_id)
        require_manager(principal, await load_event(tx, room.event_id))
        if room.status == OPEN:
            now = rt.clock()
            await tx.execute(
                update(BreakoutRoom)
                .where(BreakoutRoom.id == room.id)
                .values(status=CLOSED, closed_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            room = await _load(tx, room.id)
    # After the commit: any join that read "open" before it is refused by the store now.
    await rt.presence.close_resource(room_resource(room.id))
    signal_change(rt, room.event_id)
    return room_view(room, 0)


async def limit_of(rt: Runtime, room_id: str) -> tuple[str, int | None]:
    async with rt.db.transaction() as tx:
        room = await _load(tx, room_id)
        return room.event_id, room.capacity


async def join_room(
    rt: Runtime, principal: Principal, room_id: str, *, idempotency_key: str | None = None
) -> LeaseView:
    async with rt.db.transaction() as tx:  # before the keyed transaction (SQLite)
        room = await _load(tx, room_id)
    if room.status != OPEN:
        raise RoomClosed("the breakout room is closed", room_id=room.id)

    def refuse(participants: int) -> RoomFull:
        return RoomFull(
            f"the breakout room is full ({participants} of {room.capacity}); try another room",
            room_id=room.id,
            capacity=room.capacity,
            participants=participants,
        )

    def closed(_: int) -> RoomClosed:
        return RoomClosed("the breakout room is closed", room_id=room.id)

    return await keyed(
        rt,
        principal,
        f"rooms.join:{room.id}",
        idempotency_key,
        lambda: admit(
            rt,
            room_resource(room.id),
            principal.sub,
            event_id=room.event_id,
            limit=room.capacity,
            refuse=refuse,
            closed=closed,
        ),
    )


async def list_participants(rt: Runtime, principal: Principal, room_id: str) -> list[LeaseView]:
    async with rt.db.transaction() as tx:
        room = await _load(tx, room_id)
        require_manager(principal, await load_event(tx, room.event_id))
    leases = await rt.presence.leases(room_resource(room.id))
    return [lease_view(rt, x, occupancy=len(leases), limit=room.capacity) for x in leases]
