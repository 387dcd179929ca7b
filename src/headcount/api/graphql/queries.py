"""Read side: the same service calls as the REST GETs, with refusals typed as in mutations."""

from __future__ import annotations

from typing import Any

import strawberry

from headcount.api.graphql.operations import by_id, field, mine, read
from headcount.api.graphql.refusals import result_union
from headcount.api.graphql.types import EventList, Me, OrderList
from headcount.capacity import events, orders, sessions, snapshot, tickets
from headcount.capacity.views import (
    CapacitySnapshot,
    EventView,
    OrderView,
    SessionView,
    TicketTypeView,
)

MAX_LIMIT = 500

CapacityResult: Any = result_union("CapacityResult", CapacitySnapshot)
OrderResult: Any = result_union("OrderResult", OrderView)
OrderListResult: Any = result_union("OrderListResult", OrderList)


def _limit(value: int) -> int:
    """Out-of-range limits are clamped rather than refused: a list query has no stakes."""
    return max(1, min(value, MAX_LIMIT))


async def _caller(info: strawberry.Info) -> Me | None:
    """The caller, from the bearer token; null without one."""
    who = info.context.optional_principal()
    return Me(sub=who.sub, role=who.role) if who else None


@strawberry.type
class EventQuery:
    me = field()(_caller)
    viewer = field(deprecation_reason="Renamed to `me` (a viewer is someone watching a stream).")(
        _caller
    )

    event = by_id(events.get_event, EventView)

    @field()
    async def events(
        self, info: strawberry.Info, organizer_id: str | None = None, limit: int = 100
    ) -> EventList:
        """Newest first; optionally only one organizer's events."""
        found = await events.list_events(
            info.context.runtime, organizer_id=organizer_id, limit=_limit(limit)
        )
        return EventList(events=found)

    @read(snapshot.capacity_snapshot)
    def capacity(self, event_id: strawberry.ID) -> CapacityResult:
        """One snapshot of every capacity of the event."""

    ticket_type = by_id(tickets.get_ticket_type, TicketTypeView)

    @mine(orders.get_order)
    def order(self, id: strawberry.ID) -> OrderResult:
        """An order the caller owns (or, as organizer, manages)."""

    @field()
    async def orders(
        self, info: strawberry.Info, event_id: strawberry.ID | None = None, limit: int = 100
    ) -> OrderListResult:
        """The caller's own orders; an organizer naming their event sees all of it."""
        found = await orders.list_orders(
            info.context.runtime, info.context.principal(), event_id=event_id, limit=_limit(limit)
        )
        return OrderList(orders=found)

    session = by_id(sessions.get_session, SessionView)
