"""Breakout rooms by name, for GraphQL's resolvers (entry `spaces.BREAKOUT_ROOM`).

Rooms are read like every place (`capacity/places.py`); joined, listed and closed like
every live space (`capacity/live.py`). These names go once the resolvers call those.
"""

from __future__ import annotations

from headcount.capacity import places
from headcount.capacity.spaces import BREAKOUT_ROOM
from headcount.capacity.views import BreakoutRoomView
from headcount.runtime import Runtime


async def get_room(rt: Runtime, room_id: str) -> BreakoutRoomView:
    return await places.get(rt, BREAKOUT_ROOM, room_id)


async def list_rooms(rt: Runtime, session_id: str) -> list[BreakoutRoomView]:
    return await places.listed(rt, BREAKOUT_ROOM, session_id)
