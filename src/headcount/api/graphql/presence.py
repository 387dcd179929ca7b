"""Live presence (stream viewers, booths, breakout rooms) and huddles: types and operations.

Same service calls as `api/rest/presence.py`. Joining a stream, booth or room hands out a
lease that must be renewed; that is for REST/WebSocket clients, so GraphQL reads those
counts and offers only the durable huddle membership as mutations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, cast

import strawberry

from headcount.api.graphql import fields
from headcount.api.graphql.convert import flat
from headcount.api.graphql.refusals import (
    COMMON,
    Conflict,
    Forbidden,
    HuddleFull,
    InvalidRequest,
    NotFound,
    Refusal,
    Refused,
    Unauthorized,
    attempt,
)
from headcount.capacity import booths, breakouts, huddles
from headcount.capacity.views import (
    BoothView,
    BreakoutRoomView,
    HuddleMembershipView,
    HuddleView,
)
from headcount.capacity.views import ViewerCapacity as ViewerCapacityView


@strawberry.type(description="Live viewers; counts are null while the presence store is down.")
class ViewerCapacity:
    limit: int | None
    viewers: int | None
    available: int | None
    is_full: bool | None

    @classmethod
    def of(cls, view: ViewerCapacityView) -> ViewerCapacity:
        return flat(cls, view)


@strawberry.type
class Booth:
    id: strawberry.ID
    event_id: strawberry.ID
    name: str
    description: str
    tier: str
    chat_enabled: bool
    video_enabled: bool
    max_visitors: int | None
    visitors: int | None
    is_full: bool | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: BoothView) -> Booth:
        return flat(cls, view)


@strawberry.type
class BreakoutRoom:
    id: strawberry.ID
    session_id: strawberry.ID
    event_id: strawberry.ID
    name: str
    capacity: int
    status: str
    participants: int | None
    is_full: bool | None
    created_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, view: BreakoutRoomView) -> BreakoutRoom:
        return flat(cls, view)


@strawberry.type
class Huddle:
    id: strawberry.ID
    event_id: strawberry.ID
    name: str
    topic: str
    capacity: int
    members: int
    available: int
    is_full: bool
    version: int
    created_at: datetime

    @classmethod
    def of(cls, view: HuddleView) -> Huddle:
        return flat(cls, view)


@strawberry.type
class HuddleMembership:
    joined: bool
    huddle: Huddle

    @classmethod
    def of(cls, view: HuddleMembershipView) -> HuddleMembership:
        return cls(joined=view.joined, huddle=Huddle.of(view.huddle))


@strawberry.type
class BreakoutRoomList:
    rooms: list[BreakoutRoom]


BoothResult = Annotated[
    Booth | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("BoothResult"),
]
BreakoutRoomResult = Annotated[
    BreakoutRoom | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("BreakoutRoomResult"),
]
BreakoutRoomListResult = Annotated[
    BreakoutRoomList | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("BreakoutRoomListResult"),
]
HuddleResult = Annotated[
    Huddle | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("HuddleResult"),
]
HuddleMembershipResult = Annotated[
    HuddleMembership
    | HuddleFull
    | Conflict
    | NotFound
    | Unauthorized
    | Forbidden
    | InvalidRequest
    | Refused,
    strawberry.union("HuddleMembershipResult"),
]

HUDDLE_REFUSALS: tuple[type[Refusal], ...] = (*COMMON, HuddleFull, Conflict)


@strawberry.type
class PresenceQuery:
    @strawberry.field
    async def booth(self, info: strawberry.Info, id: strawberry.ID) -> BoothResult:
        async def work() -> Booth:
            return Booth.of(await booths.get_booth(info.context.runtime, id))

        return cast(BoothResult, await attempt(work, COMMON))

    @strawberry.field
    async def breakout_room(self, info: strawberry.Info, id: strawberry.ID) -> BreakoutRoomResult:
        async def work() -> BreakoutRoom:
            return BreakoutRoom.of(await breakouts.get_room(info.context.runtime, id))

        return cast(BreakoutRoomResult, await attempt(work, COMMON))

    @fields.field("The breakout rooms of one session, with live participant counts.")
    async def breakout_rooms(
        self, info: strawberry.Info, session_id: strawberry.ID
    ) -> BreakoutRoomListResult:
        async def work() -> BreakoutRoomList:
            views = await breakouts.list_rooms(info.context.runtime, session_id)
            return BreakoutRoomList(rooms=[BreakoutRoom.of(v) for v in views])

        return cast(BreakoutRoomListResult, await attempt(work, COMMON))

    @strawberry.field
    async def huddle(self, info: strawberry.Info, id: strawberry.ID) -> HuddleResult:
        async def work() -> Huddle:
            return Huddle.of(await huddles.get_huddle(info.context.runtime, id))

        return cast(HuddleResult, await attempt(work, COMMON))


@strawberry.type
class PresenceMutation:
    @fields.mutation("Join a huddle; `HuddleFull` (huddleFull: true) when it has no room.")
    async def join_huddle(
        self, info: strawberry.Info, huddle_id: strawberry.ID
    ) -> HuddleMembershipResult:
        async def work() -> HuddleMembership:
            who = info.context.principal()
            view = await huddles.join_huddle(info.context.runtime, who, huddle_id)
            return HuddleMembership.of(view)

        return cast(HuddleMembershipResult, await attempt(work, HUDDLE_REFUSALS))

    @strawberry.mutation
    async def leave_huddle(
        self, info: strawberry.Info, huddle_id: strawberry.ID
    ) -> HuddleMembershipResult:
        async def work() -> HuddleMembership:
            who = info.context.principal()
            view = await huddles.leave_huddle(info.context.runtime, who, huddle_id)
            return HuddleMembership.of(view)

        return cast(HuddleMembershipResult, await attempt(work, HUDDLE_REFUSALS))
