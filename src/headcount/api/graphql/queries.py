"""Read side: the same service calls as the REST GETs, with refusals typed as in mutations."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry

from headcount.api.graphql import fields
from headcount.api.graphql.refusals import (
    COMMON,
    Forbidden,
    InvalidRequest,
    NotFound,
    Refused,
    Unauthorized,
    attempt,
)
from headcount.api.graphql.types import (
    CapacitySummary,
    Event,
    EventList,
    Order,
    OrderList,
    TicketType,
    Viewer,
)
from headcount.capacity import events, orders, snapshot, tickets

MAX_LIMIT = 500

EventResult = Annotated[
    Event | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("EventResult"),
]
TicketTypeResult = Annotated[
    TicketType | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("TicketTypeResult"),
]
CapacityResult = Annotated[
    CapacitySummary | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("CapacityResult"),
]
OrderResult = Annotated[
    Order | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("OrderResult"),
]
OrderListResult = Annotated[
    OrderList | NotFound | Unauthorized | Forbidden | InvalidRequest | Refused,
    strawberry.union("OrderListResult"),
]


def _limit(value: int) -> int:
    """Out-of-range limits are clamped rather than refused: a list query has no stakes."""
    return max(1, min(value, MAX_LIMIT))


@strawberry.type
class EventQuery:
    @fields.field("The caller, from the bearer token; null without one.")
    def viewer(self, info: strawberry.Info) -> Viewer | None:
        who = info.context.optional_principal()
        return Viewer(sub=who.sub, role=who.role) if who else None

    @strawberry.field
    async def event(self, info: strawberry.Info, id: strawberry.ID) -> EventResult:
        async def work() -> Event:
            return Event.of(await events.get_event(info.context.runtime, id))

        return cast(EventResult, await attempt(work, COMMON))

    @fields.field("Newest first; optionally only one organizer's events.")
    async def events(
        self, info: strawberry.Info, organizer_id: str | None = None, limit: int = 100
    ) -> EventList:
        views = await events.list_events(
            info.context.runtime, organizer_id=organizer_id, limit=_limit(limit)
        )
        return EventList(events=[Event.of(v) for v in views])

    @fields.field("One snapshot of every capacity of the event.")
    async def capacity(self, info: strawberry.Info, event_id: strawberry.ID) -> CapacityResult:
        async def work() -> CapacitySummary:
            return CapacitySummary.of(
                await snapshot.capacity_snapshot(info.context.runtime, event_id)
            )

        return cast(CapacityResult, await attempt(work, COMMON))

    @strawberry.field
    async def ticket_type(self, info: strawberry.Info, id: strawberry.ID) -> TicketTypeResult:
        async def work() -> TicketType:
            return TicketType.of(await tickets.get_ticket_type(info.context.runtime, id))

        return cast(TicketTypeResult, await attempt(work, COMMON))

    @fields.field("An order the caller owns (or, as organizer, manages).")
    async def order(self, info: strawberry.Info, id: strawberry.ID) -> OrderResult:
        async def work() -> Order:
            view = await orders.get_order(info.context.runtime, info.context.principal(), id)
            return Order.of(view)

        return cast(OrderResult, await attempt(work, COMMON))

    @fields.field("The caller's own orders; an organizer naming their event sees all of it.")
    async def orders(
        self, info: strawberry.Info, event_id: strawberry.ID | None = None, limit: int = 100
    ) -> OrderListResult:
        async def work() -> OrderList:
            views = await orders.list_orders(
                info.context.runtime,
                info.context.principal(),
                event_id=event_id,
                limit=_limit(limit),
            )
            return OrderList(orders=[Order.of(v) for v in views])

        return cast(OrderListResult, await attempt(work, COMMON))
