"""Live presence (stream viewers, booths, breakout rooms) and huddles: the operations.

Same service calls as `api/rest/presence.py`. Joining a stream, booth or room hands out a
lease that must be renewed; that is for REST/WebSocket clients, so GraphQL reads those
counts and offers only the durable huddle membership as mutations.
"""

from __future__ import annotations

from typing import Any

import strawberry

from headcount.api.graphql.operations import by_id, mine, read
from headcount.api.graphql.refusals import result_union
from headcount.api.graphql.types import BreakoutRoomList
from headcount.capacity import huddles, places
from headcount.capacity.spaces import BOOTH, BREAKOUT_ROOM
from headcount.capacity.views import BoothView, BreakoutRoomView, HuddleMembershipView, HuddleView
from headcount.domain.errors import Conflict, HuddleFull

BreakoutRoomListResult: Any = result_union("BreakoutRoomListResult", BreakoutRoomList)
HuddleMembershipResult: Any = result_union(
    "HuddleMembershipResult", HuddleMembershipView, HuddleFull, Conflict
)


@strawberry.type
class PresenceQuery:
    booth = by_id(places.reader(BOOTH), BoothView)

    breakout_room = by_id(places.reader(BREAKOUT_ROOM), BreakoutRoomView)

    @read(places.lister(BREAKOUT_ROOM), wrap=lambda found: BreakoutRoomList(rooms=found))
    def breakout_rooms(self, session_id: strawberry.ID) -> BreakoutRoomListResult:
        """The breakout rooms of one session, with live participant counts."""

    huddle = by_id(huddles.get_huddle, HuddleView)


@strawberry.type
class PresenceMutation:
    @mine(huddles.join_huddle, mutation=True)
    def join_huddle(self, huddle_id: strawberry.ID) -> HuddleMembershipResult:
        """Join a huddle; `HuddleFull` (huddleFull: true) when it has no room."""

    @mine(huddles.leave_huddle, mutation=True)
    def leave_huddle(self, huddle_id: strawberry.ID) -> HuddleMembershipResult: ...
