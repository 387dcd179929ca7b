"""/events/{id}/waiting-room (organizers) and /events/{id}/queue, /queue/{ticket} (visitors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import problems
from headcount.api.rest.routes import Call, call_routes
from headcount.capacity import waiting_rooms
from headcount.capacity.views import QueueTicketView
from headcount.domain.queue import MAX_TOKEN_LENGTH

router = APIRouter(tags=["waiting rooms"])
Ticket = Annotated[str, Path(min_length=1, max_length=MAX_TOKEN_LENGTH)]


DOCS = {
    "create_waiting_room": """
    Put a queue in front of the event's sale (or of `ticket_type_ids`): from now on,
    orders for those tickets need a pass (403 `queue_pass_required`).""",
    "get_waiting_room": """
    The room with its live figures: queued, active buyers, admissions, median wait.""",
    "update_waiting_room": """
    Change the rate, the active limit, the idle time or the opening, live.""",
    "join_queue": """
    Queue for the sale: a ticket with your position, people ahead and an estimated
    wait. Joining again answers the same ticket. Follow it on `WS /ws/queue/{ticket}`.""",
}
ROOM = "/events/{event_id}/waiting-room"
CALLS = [
    Call(f"POST {ROOM}", waiting_rooms.create_waiting_room, (401, 403, 404, 409), created=True),
    Call(f"GET {ROOM}", waiting_rooms.get_waiting_room, (401, 403, 404)),
    Call(f"PATCH {ROOM}", waiting_rooms.update_waiting_room, (401, 403, 404)),
    Call("POST /events/{event_id}/queue", waiting_rooms.join_queue, (401, 404)),
]
call_routes(router, CALLS, DOCS)


# The ticket is a queue token, not an id: its own length.
@router.get("/queue/{ticket}", responses=problems(404))
async def queue_ticket(rt: RuntimeDep, ticket: Ticket) -> QueueTicketView:
    """Your place now; once `admitted`, `queue_pass` goes in `POST /orders`."""
    return await waiting_rooms.ticket_status(rt, ticket)


@router.delete("/queue/{ticket}", responses=problems(401, 404))
async def leave_queue(rt: RuntimeDep, who: PrincipalDep, ticket: Ticket) -> QueueTicketView:
    """Leave the queue, or give up your pass: the slot goes to the next person."""
    return await waiting_rooms.leave_queue(rt, who, ticket)
