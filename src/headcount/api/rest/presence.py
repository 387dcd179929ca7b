"""Live presence and huddles over REST: stream viewers, booths, breakout rooms, leases.

For clients that cannot hold a WebSocket: join returns a lease; renew it with
`POST /leases/{id}/heartbeat` well within `ttl_seconds`; `DELETE /leases/{id}` leaves.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import IdempotencyKey, id_path, problems
from headcount.capacity import booths, breakouts, huddles, leases, viewers
from headcount.capacity.booths import BoothDraft, BoothPatch
from headcount.capacity.breakouts import BreakoutRoomDraft, BreakoutRoomPatch
from headcount.capacity.huddles import HuddleDraft, HuddlePatch
from headcount.capacity.views import (
    BoothView,
    BreakoutRoomView,
    HuddleMembershipView,
    HuddleView,
    LeaseView,
)

router = APIRouter()
EventId = Annotated[str, id_path("event")]
BoothId = Annotated[str, id_path("booth")]
SessionId = Annotated[str, id_path("session")]
RoomId = Annotated[str, id_path("breakout room")]
HuddleId = Annotated[str, id_path("huddle")]
LeaseId = Annotated[str, id_path("lease")]

# --- stream viewers -----------------------------------------------------------------


@router.post(
    "/events/{event_id}/viewers",
    status_code=201,
    tags=["viewers"],
    responses=problems(401, 404, 409, 503),
)
async def join_stream(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, key: IdempotencyKey = None
) -> LeaseView:
    """Take a viewer place (409 `viewer_limit_reached` when the stream is at its cap)."""
    return await viewers.join_stream(rt, who, event_id, idempotency_key=key)


# --- leases ---------------------------------------------------------------------------


@router.post(
    "/leases/{lease_id}/heartbeat", tags=["leases"], responses=problems(401, 404, 410, 503)
)
async def heartbeat(rt: RuntimeDep, who: PrincipalDep, lease_id: LeaseId) -> LeaseView:
    """Renew your lease; 410 `lease_expired` means it ran out: join again."""
    return await leases.heartbeat(rt, who, lease_id)


@router.delete(
    "/leases/{lease_id}", status_code=204, tags=["leases"], responses=problems(401, 404, 503)
)
async def leave(rt: RuntimeDep, who: PrincipalDep, lease_id: LeaseId) -> Response:
    """Leave now; the place is free at once."""
    await leases.release(rt, who, lease_id)
    return Response(status_code=204)


# --- booths ---------------------------------------------------------------------------


@router.post(
    "/events/{event_id}/booths",
    status_code=201,
    tags=["booths"],
    responses=problems(401, 403, 404),
)
async def create_booth(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, body: BoothDraft
) -> BoothView:
    return await booths.create_booth(rt, who, event_id, body)


@router.get("/events/{event_id}/booths", tags=["booths"], responses=problems(404))
async def list_booths(rt: RuntimeDep, event_id: EventId) -> list[BoothView]:
    return await booths.list_booths(rt, event_id)


@router.get("/booths/{booth_id}", tags=["booths"], responses=problems(404))
async def get_booth(rt: RuntimeDep, booth_id: BoothId) -> BoothView:
    return await booths.get_booth(rt, booth_id)


@router.patch("/booths/{booth_id}", tags=["booths"], responses=problems(401, 403, 404))
async def update_booth(
    rt: RuntimeDep, who: PrincipalDep, booth_id: BoothId, body: BoothPatch
) -> BoothView:
    """Lowering `max_visitors` turns nobody out; newcomers wait until below it."""
    return await booths.update_booth(rt, who, booth_id, body)


@router.post(
    "/booths/{booth_id}/visits",
    status_code=201,
    tags=["booths"],
    responses=problems(401, 404, 409, 503),
)
async def enter_booth(
    rt: RuntimeDep, who: PrincipalDep, booth_id: BoothId, key: IdempotencyKey = None
) -> LeaseView:
    """Enter the booth: a lease, or 409 `booth_full`."""
    return await booths.enter_booth(rt, who, booth_id, idempotency_key=key)


@router.get("/booths/{booth_id}/visits", tags=["booths"], responses=problems(401, 403, 404, 503))
async def list_visits(rt: RuntimeDep, who: PrincipalDep, booth_id: BoothId) -> list[LeaseView]:
    return await booths.list_visits(rt, who, booth_id)


# --- breakout rooms -------------------------------------------------------------------


@router.post(
    "/sessions/{session_id}/breakout-rooms",
    status_code=201,
    tags=["breakout rooms"],
    responses=problems(401, 403, 404),
)
async def create_room(
    rt: RuntimeDep, who: PrincipalDep, session_id: SessionId, body: BreakoutRoomDraft
) -> BreakoutRoomView:
    return await breakouts.create_room(rt, who, session_id, body)


@router.get(
    "/sessions/{session_id}/breakout-rooms", tags=["breakout rooms"], responses=problems(404)
)
async def list_rooms(rt: RuntimeDep, session_id: SessionId) -> list[BreakoutRoomView]:
    return await breakouts.list_rooms(rt, session_id)


@router.get("/breakout-rooms/{room_id}", tags=["breakout rooms"], responses=problems(404))
async def get_room(rt: RuntimeDep, room_id: RoomId) -> BreakoutRoomView:
    return await breakouts.get_room(rt, room_id)


@router.patch(
    "/breakout-rooms/{room_id}", tags=["breakout rooms"], responses=problems(401, 403, 404)
)
async def update_room(
    rt: RuntimeDep, who: PrincipalDep, room_id: RoomId, body: BreakoutRoomPatch
) -> BreakoutRoomView:
    """Resize or rename; a smaller capacity evicts nobody."""
    return await breakouts.update_room(rt, who, room_id, body)


@router.post(
    "/breakout-rooms/{room_id}/close",
    tags=["breakout rooms"],
    responses=problems(401, 403, 404, 503),
)
async def close_room(rt: RuntimeDep, who: PrincipalDep, room_id: RoomId) -> BreakoutRoomView:
    """Close the room and release everyone in it."""
    return await breakouts.close_room(rt, who, room_id)


@router.post(
    "/breakout-rooms/{room_id}/join",
    status_code=201,
    tags=["breakout rooms"],
    responses=problems(401, 404, 409, 503),
)
async def join_room(
    rt: RuntimeDep, who: PrincipalDep, room_id: RoomId, key: IdempotencyKey = None
) -> LeaseView:
    """Join: a lease, or 409 `room_full` / `room_closed`."""
    return await breakouts.join_room(rt, who, room_id, idempotency_key=key)


@router.get(
    "/breakout-rooms/{room_id}/participants",
    tags=["breakout rooms"],
    responses=problems(401, 403, 404, 503),
)
async def list_participants(rt: RuntimeDep, who: PrincipalDep, room_id: RoomId) -> list[LeaseView]:
    return await breakouts.list_participants(rt, who, room_id)


# --- huddles --------------------------------------------------------------------------


@router.post(
    "/events/{event_id}/huddles",
    status_code=201,
    tags=["huddles"],
    responses=problems(401, 403, 404),
)
async def create_huddle(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, body: HuddleDraft
) -> HuddleView:
    return await huddles.create_huddle(rt, who, event_id, body)


@router.get("/events/{event_id}/huddles", tags=["huddles"], responses=problems(404))
async def list_huddles(rt: RuntimeDep, event_id: EventId) -> list[HuddleView]:
    return await huddles.list_huddles(rt, event_id)


@router.get("/huddles/{huddle_id}", tags=["huddles"], responses=problems(404))
async def get_huddle(rt: RuntimeDep, huddle_id: HuddleId) -> HuddleView:
    return await huddles.get_huddle(rt, huddle_id)


@router.patch("/huddles/{huddle_id}", tags=["huddles"], responses=problems(401, 403, 404))
async def update_huddle(
    rt: RuntimeDep, who: PrincipalDep, huddle_id: HuddleId, body: HuddlePatch
) -> HuddleView:
    return await huddles.update_huddle(rt, who, huddle_id, body)


@router.post("/huddles/{huddle_id}/join", tags=["huddles"], responses=problems(401, 404, 409))
async def join_huddle(
    rt: RuntimeDep, who: PrincipalDep, huddle_id: HuddleId
) -> HuddleMembershipView:
    """`{joined: true}`, or 409 `huddle_full` with `huddle_full: true`."""
    return await huddles.join_huddle(rt, who, huddle_id)


@router.post("/huddles/{huddle_id}/leave", tags=["huddles"], responses=problems(401, 404))
async def leave_huddle(
    rt: RuntimeDep, who: PrincipalDep, huddle_id: HuddleId
) -> HuddleMembershipView:
    return await huddles.leave_huddle(rt, who, huddle_id)


@router.get("/huddles/{huddle_id}/members", tags=["huddles"], responses=problems(401, 403, 404))
async def list_members(rt: RuntimeDep, who: PrincipalDep, huddle_id: HuddleId) -> list[str]:
    return await huddles.list_members(rt, who, huddle_id)
