"""/ticket-types/{id}/waitlist: queue for sold-out tickets; offers are accepted by ordering."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import EventId, IdempotencyKey, TicketTypeId, problems
from headcount.capacity import waitlists
from headcount.capacity.views import WaitlistEntryView, WaitlistView
from headcount.capacity.waitlists import TicketWaitlistDraft

router = APIRouter(tags=["waitlists"])


@router.post(
    "/ticket-types/{ticket_type_id}/waitlist", status_code=201, responses=problems(401, 404)
)
async def join_ticket_waitlist(
    rt: RuntimeDep,
    who: PrincipalDep,
    ticket_type_id: TicketTypeId,
    body: Annotated[TicketWaitlistDraft | None, Body()] = None,
    key: IdempotencyKey = None,
) -> WaitlistEntryView:
    """`waiting` with `position`, or `offered` at once when stock is free. Accept an offer
    by `POST /orders` for this ticket type before `offer_expires_at`."""
    return await waitlists.join_ticket_waitlist(
        rt, who, ticket_type_id, body or TicketWaitlistDraft(), idempotency_key=key
    )


@router.get("/ticket-types/{ticket_type_id}/waitlist", responses=problems(401, 403, 404))
async def ticket_waitlist(
    rt: RuntimeDep, who: PrincipalDep, ticket_type_id: TicketTypeId
) -> WaitlistView:
    return await waitlists.ticket_waitlist(rt, who, ticket_type_id)


@router.get("/ticket-types/{ticket_type_id}/waitlist/me", responses=problems(401, 404))
async def my_ticket_waitlist_entry(
    rt: RuntimeDep, who: PrincipalDep, ticket_type_id: TicketTypeId
) -> WaitlistEntryView:
    """Your position, your offer, or what became of it (`accepted`, `expired`, …)."""
    return await waitlists.my_ticket_waitlist_entry(rt, who, ticket_type_id)


@router.delete("/ticket-types/{ticket_type_id}/waitlist/me", responses=problems(401, 404))
async def leave_ticket_waitlist(
    rt: RuntimeDep, who: PrincipalDep, ticket_type_id: TicketTypeId, key: IdempotencyKey = None
) -> WaitlistEntryView:
    """Leave the queue, or decline your offer: its stock goes to the next person."""
    return await waitlists.leave_ticket_waitlist(rt, who, ticket_type_id, idempotency_key=key)


@router.get("/events/{event_id}/waitlist-entries/me", responses=problems(401, 404))
async def my_waitlist_entries(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId
) -> list[WaitlistEntryView]:
    """Every queue you joined in this event and what happened to you there, newest first."""
    return await waitlists.my_entries(rt, who, event_id)
