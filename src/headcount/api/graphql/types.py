"""What GraphQL adds to the views: fields resolved from a parent, one other name, and the
shapes only GraphQL has (list results that stand in unions, the caller).

Every other object type is generated from its view on first use (`generate.type_of`).
"""

from __future__ import annotations

import strawberry
from pydantic import BaseModel, ConfigDict

from headcount.api.graphql.generate import object_type
from headcount.api.graphql.operations import by_parent
from headcount.capacity import huddles, places, sessions, snapshot, tickets
from headcount.capacity.spaces import BOOTH
from headcount.capacity.views import (
    BoothView,
    BreakoutRoomView,
    CapacitySnapshot,
    EventView,
    HuddleView,
    OrderView,
    RegistrationView,
    SessionView,
    TicketTypeView,
    WaitlistEntryView,
)
from headcount.domain.attendance import EntryStatus, RegistrationStatus, RsvpStatus
from headcount.domain.identity import Role
from headcount.domain.tickets import OrderStatus

# Registered once under their GraphQL names; values are the REST ones in upper case.
strawberry.enum(OrderStatus, name="OrderStatus")
strawberry.enum(Role, name="Role")
strawberry.enum(RegistrationStatus, name="RegistrationStatus")
strawberry.enum(EntryStatus, name="WaitlistEntryStatus")
strawberry.enum(RsvpStatus, name="RsvpStatus")


@object_type(CapacitySnapshot, name="CapacitySummary")
class CapacitySummary:
    """GraphQL's name for the capacity snapshot; clients match on it, so it stays."""


@object_type(EventView)
class Event:
    capacity = by_parent(
        CapacitySnapshot, snapshot.capacity_snapshot, "Every capacity of the event, read now."
    )
    ticket_types = by_parent(list[TicketTypeView], tickets.list_ticket_types)
    sessions = by_parent(list[SessionView], sessions.list_sessions)
    booths = by_parent(list[BoothView], places.lister(BOOTH))
    huddles = by_parent(list[HuddleView], huddles.list_huddles)


class Me(BaseModel):
    """Who the bearer token says is asking."""

    model_config = ConfigDict(frozen=True)

    sub: str
    role: Role


class EventList(BaseModel):
    events: list[EventView]


class OrderList(BaseModel):
    """A list result, so it can stand in a union with refusals."""

    orders: list[OrderView]


class RegistrationList(BaseModel):
    registrations: list[RegistrationView]


class WaitlistEntryList(BaseModel):
    entries: list[WaitlistEntryView]


class BreakoutRoomList(BaseModel):
    rooms: list[BreakoutRoomView]


class Registered(BaseModel):
    """`created` is false when you were already registered."""

    created: bool
    registration: RegistrationView
