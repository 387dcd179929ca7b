"""GraphQL object types: thin mirrors of the service layer's views (`capacity/views.py`).

Each has `of(view)` so resolvers stay one line; field names are the REST names in
camelCase, so the two APIs read alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from headcount.api.graphql import fields
from headcount.api.graphql.attendance import RegistrationCapacity, Session
from headcount.api.graphql.presence import Booth, BreakoutRoom, Huddle, ViewerCapacity
from headcount.capacity import booths, huddles, sessions, snapshot, tickets
from headcount.capacity.views import (
    CapacitySnapshot,
    EventTotalView,
    EventView,
    OrderView,
    PoolView,
    TicketTypeView,
)
from headcount.capacity.views import TicketCapacity as TicketCapacityView
from headcount.domain.identity import Role as DomainRole
from headcount.domain.tickets import OrderStatus as DomainOrderStatus

# Registered once, used in annotations by their domain names (the values are the REST ones).
strawberry.enum(DomainOrderStatus, name="OrderStatus")
strawberry.enum(DomainRole, name="Role")


@strawberry.type(description="Who the bearer token says is asking.")
class Viewer:
    sub: str
    role: DomainRole


@strawberry.type
class VirtualSettings:
    max_concurrent_viewers: int | None
    stream_url: str | None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> VirtualSettings:
        viewers = raw.get("max_concurrent_viewers")
        url = raw.get("stream_url")
        return cls(
            max_concurrent_viewers=int(viewers) if viewers is not None else None,
            stream_url=str(url) if url is not None else None,
        )


@strawberry.type
class TicketType:
    id: strawberry.ID
    event_id: strawberry.ID
    name: str
    quantity_total: int
    quantity_sold: int
    quantity_reserved: int
    quantity_available: int
    is_sold_out: bool
    max_per_order: int | None
    sales_start: datetime | None
    sales_end: datetime | None
    min_per_order: int | None
    max_per_customer: int | None
    pool_ids: list[strawberry.ID]
    over_capacity_by: int
    stock_buckets: int = strawberry.field(
        description="Rows the free stock is spread over (1 unless hot-inventory mode is on)."
    )

    @classmethod
    def of(cls, view: TicketTypeView) -> TicketType:
        return cls(
            id=strawberry.ID(view.id),
            event_id=strawberry.ID(view.event_id),
            name=view.name,
            quantity_total=view.quantity_total,
            quantity_sold=view.quantity_sold,
            quantity_reserved=view.quantity_reserved,
            quantity_available=view.quantity_available,
            is_sold_out=view.is_sold_out,
            max_per_order=view.max_per_order,
            sales_start=view.sales_start,
            sales_end=view.sales_end,
            min_per_order=view.min_per_order,
            max_per_customer=view.max_per_customer,
            pool_ids=[strawberry.ID(p) for p in view.pool_ids],
            over_capacity_by=view.over_capacity_by,
            stock_buckets=view.stock_buckets,
        )


@strawberry.type(
    description="Capacity shared by several ticket types; `capacity` is physical, "
    "`admissionLimit` adds the overbooking allowance."
)
class Pool:
    id: strawberry.ID
    event_id: strawberry.ID
    name: str
    capacity: int | None
    overbook_ratio: float
    admission_limit: int | None
    max_per_customer: int | None
    quantity_used: int
    quantity_available: int | None
    over_capacity_by: int
    is_exhausted: bool
    ticket_type_ids: list[strawberry.ID]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: PoolView) -> Pool:
        fields = view.model_dump()
        fields["id"] = strawberry.ID(view.id)
        fields["event_id"] = strawberry.ID(view.event_id)
        fields["ticket_type_ids"] = [strawberry.ID(t) for t in view.ticket_type_ids]
        return cls(**fields)


@strawberry.type(description="max_attendees caps people: registrations plus tickets.")
class EventTotal:
    max_attendees: int | None
    registered: int
    tickets: int
    remaining: int | None
    over_capacity_by: int

    @classmethod
    def of(cls, view: EventTotalView) -> EventTotal:
        return cls(**view.model_dump())


@strawberry.type(description="Ticket stock of an event, summed over its ticket types.")
class TicketCapacity:
    total: int
    sold: int
    reserved: int
    available: int
    is_sold_out: bool
    ticket_types: list[TicketType]

    @classmethod
    def of(cls, view: TicketCapacityView) -> TicketCapacity:
        return cls(
            total=view.total,
            sold=view.sold,
            reserved=view.reserved,
            available=view.available,
            is_sold_out=view.is_sold_out,
            ticket_types=[TicketType.of(t) for t in view.ticket_types],
        )


@strawberry.type(description="One consistent read of every capacity of an event.")
class CapacitySummary:
    event_id: strawberry.ID
    taken_at: datetime
    max_attendees: int | None
    tickets: TicketCapacity
    registrations: RegistrationCapacity | None
    sessions: list[Session]
    viewers: ViewerCapacity | None
    booths: list[Booth]
    breakout_rooms: list[BreakoutRoom]
    huddles: list[Huddle]
    pools: list[Pool]
    event_total: EventTotal | None
    sections: JSON = strawberry.field(
        description="Further capacity sections contributed by features, keyed by name, "
        "as the REST snapshot's `sections`."
    )

    @classmethod
    def of(cls, view: CapacitySnapshot) -> CapacitySummary:
        return cls(
            event_id=strawberry.ID(view.event_id),
            taken_at=view.taken_at,
            max_attendees=view.max_attendees,
            tickets=TicketCapacity.of(view.tickets),
            registrations=(
                RegistrationCapacity.of(view.registrations) if view.registrations else None
            ),
            sessions=[Session.of(v) for v in view.sessions],
            viewers=ViewerCapacity.of(view.viewers) if view.viewers else None,
            booths=[Booth.of(v) for v in view.booths],
            breakout_rooms=[BreakoutRoom.of(v) for v in view.breakout_rooms],
            huddles=[Huddle.of(v) for v in view.huddles],
            pools=[Pool.of(v) for v in view.pools],
            event_total=EventTotal.of(view.event_total) if view.event_total else None,
            sections=view.model_dump(mode="json")["sections"],
        )


@strawberry.type
class Event:
    id: strawberry.ID
    organizer_id: str
    name: str
    description: str
    starts_at: datetime | None
    ends_at: datetime | None
    max_attendees: int | None
    virtual_settings: VirtualSettings
    created_at: datetime
    updated_at: datetime

    @fields.field("Every capacity of the event, read now.")
    async def capacity(self, info: strawberry.Info) -> CapacitySummary:
        return CapacitySummary.of(await snapshot.capacity_snapshot(info.context.runtime, self.id))

    @strawberry.field
    async def ticket_types(self, info: strawberry.Info) -> list[TicketType]:
        views = await tickets.list_ticket_types(info.context.runtime, self.id)
        return [TicketType.of(v) for v in views]

    @strawberry.field
    async def sessions(self, info: strawberry.Info) -> list[Session]:
        return [Session.of(v) for v in await sessions.list_sessions(info.context.runtime, self.id)]

    @strawberry.field
    async def booths(self, info: strawberry.Info) -> list[Booth]:
        return [Booth.of(v) for v in await booths.list_booths(info.context.runtime, self.id)]

    @strawberry.field
    async def huddles(self, info: strawberry.Info) -> list[Huddle]:
        return [Huddle.of(v) for v in await huddles.list_huddles(info.context.runtime, self.id)]

    @classmethod
    def of(cls, view: EventView) -> Event:
        return cls(
            id=strawberry.ID(view.id),
            organizer_id=view.organizer_id,
            name=view.name,
            description=view.description,
            starts_at=view.starts_at,
            ends_at=view.ends_at,
            max_attendees=view.max_attendees,
            virtual_settings=VirtualSettings.of(view.virtual_settings),
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


@strawberry.type
class OrderItem:
    ticket_type_id: strawberry.ID
    quantity: int


@strawberry.type
class Order:
    id: strawberry.ID
    event_id: strawberry.ID
    owner_id: str
    status: DomainOrderStatus
    expires_at: datetime
    created_at: datetime
    paid_at: datetime | None
    items: list[OrderItem]

    @classmethod
    def of(cls, view: OrderView) -> Order:
        return cls(
            id=strawberry.ID(view.id),
            event_id=strawberry.ID(view.event_id),
            owner_id=view.owner_id,
            status=view.status,
            expires_at=view.expires_at,
            created_at=view.created_at,
            paid_at=view.paid_at,
            items=[
                OrderItem(ticket_type_id=strawberry.ID(i.ticket_type_id), quantity=i.quantity)
                for i in view.items
            ],
        )


@strawberry.type(description="A list result, so it can stand in a union with refusals.")
class OrderList:
    orders: list[Order]


@strawberry.type
class EventList:
    events: list[Event]
