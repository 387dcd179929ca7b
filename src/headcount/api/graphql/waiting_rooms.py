"""Waiting rooms: the same service calls as `api/rest/waiting_rooms.py`.

Organizers create and change rooms over REST, as they do events and ticket types; the
organizer's read and everything a visitor does are here too.
"""

from __future__ import annotations

from typing import Any

import strawberry

from headcount.api.graphql.operations import mine, read
from headcount.api.graphql.refusals import result_union
from headcount.capacity import waiting_rooms
from headcount.capacity.views import QueueTicketView, WaitingRoomView

WaitingRoomResult: Any = result_union("WaitingRoomResult", WaitingRoomView)
QueueTicketResult: Any = result_union("QueueTicketResult", QueueTicketView)


@strawberry.type
class WaitingRoomQuery:
    @mine(waiting_rooms.get_waiting_room)
    def waiting_room(self, event_id: strawberry.ID) -> WaitingRoomResult:
        """The event's waiting room with its live figures (the event's organizer only)."""

    @read(waiting_rooms.ticket_status)
    def queue_ticket(self, ticket: str) -> QueueTicketResult:
        """A queue ticket's place now; once admitted, its `queuePass` goes in createOrder."""


@strawberry.type
class WaitingRoomMutation:
    @mine(waiting_rooms.join_queue, mutation=True)
    def join_queue(self, event_id: strawberry.ID) -> QueueTicketResult:
        """Queue for the event's sale; joining again answers the same ticket."""

    @mine(waiting_rooms.leave_queue, mutation=True)
    def leave_queue(self, ticket: str) -> QueueTicketResult:
        """Leave the queue, or give up your pass (the slot goes to the next person)."""
