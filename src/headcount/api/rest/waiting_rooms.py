"""/events/{id}/waiting-room (organizers) and /events/{id}/queue, /queue/{ticket} (visitors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import EventId, IdempotencyKey, problems
from headcount.capacity import waiting_rooms
from headcount.capacity.views import QueueTicketView, WaitingRoomView
from headcount.capacity.waiting_rooms import WaitingRoomDraft, WaitingRoomPatch
from headcount.domain.queue import MAX_TOKEN_LENGTH

router = APIRouter(tags=["waiting rooms"])
Ticket = Annotated[str, Path(min_length=1, max_length=MAX_TOKEN_LENGTH)]


@router.post(
    "/events/{event_id}/waiting-room", status_code=201, responses=problems(401, 403, 404, 409)
)
async def create_waiting_room(
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: EventId,
    body: WaitingRoomDraft,
    key: IdempotencyKey = None,
) -> WaitingRoomView:
    """Put a queue in front of the event's sale (or of `ticket_type_ids`): from now on,
    orders for those tickets need a pass (403 `queue_pass_required`)."""
    return await waiting_rooms.create_waiting_room(rt, who, event_id, body, idempotency_key=key)


@router.get("/events/{event_id}/waiting-room", responses=problems(401, 403, 404))
async def get_waiting_room(rt: RuntimeDep, who: PrincipalDep, event_id: EventId) -> WaitingRoomView:
    """The room with its live figures: queued, active buyers, admissions, median wait."""
    return await waiting_rooms.get_waiting_room(rt, who, event_id)


@router.patch("/events/{event_id}/waiting-room", responses=problems(401, 403, 404))
async def update_waiting_room(
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: EventId,
    body: WaitingRoomPatch,
    key: IdempotencyKey = None,
) -> WaitingRoomView:
    """Change the rate, the active limit, the idle time or the opening, live."""
    return await waiting_rooms.update_waiting_room(rt, who, event_id, body, idempotency_key=key)


@router.post("/events/{event_id}/queue", responses=problems(401, 404))
async def join_queue(rt: RuntimeDep, who: PrincipalDep, event_id: EventId) -> QueueTicketView:
    """Queue for the sale: a ticket with your position, people ahead and an estimated
    wait. Joining again answers the same ticket. Follow it on `WS /ws/queue/{ticket}`."""
    return await waiting_rooms.join_queue(rt, who, event_id)


@router.get("/queue/{ticket}", responses=problems(404))
async def queue_ticket(rt: RuntimeDep, ticket: Ticket) -> QueueTicketView:
    """Your place now; once `admitted`, `queue_pass` goes in `POST /orders`."""
    return await waiting_rooms.ticket_status(rt, ticket)


@router.delete("/queue/{ticket}", responses=problems(401, 404))
async def leave_queue(rt: RuntimeDep, who: PrincipalDep, ticket: Ticket) -> QueueTicketView:
    """Leave the queue, or give up your pass: the slot goes to the next person."""
    return await waiting_rooms.leave_queue(rt, who, ticket)
