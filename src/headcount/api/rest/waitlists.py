"""/ticket-types/{id}/waitlist: queue for sold-out tickets; offers are accepted by ordering."""

from __future__ import annotations

from fastapi import APIRouter

from headcount.api.rest.routes import Call, call_routes
from headcount.capacity import waitlists

router = APIRouter(tags=["waitlists"])


DOCS = {
    "join_ticket_waitlist": """
    `waiting` with `position`, or `offered` at once when stock is free. Accept an offer
    by `POST /orders` for this ticket type before `offer_expires_at`.""",
    "my_ticket_waitlist_entry": """
    Your position, your offer, or what became of it (`accepted`, `expired`, …).""",
    "leave_ticket_waitlist": """
    Leave the queue, or decline your offer: its stock goes to the next person.""",
    "my_waitlist_entries": """
    Every queue you joined in this event and what happened to you there, newest first.""",
}
WAITLIST = "/ticket-types/{ticket_type_id}/waitlist"
CALLS = [
    Call(
        f"POST {WAITLIST}",
        waitlists.join_ticket_waitlist,
        (401, 404),
        created=True,
        body_optional=True,
    ),
    Call(f"GET {WAITLIST}", waitlists.ticket_waitlist, (401, 403, 404)),
    Call(f"GET {WAITLIST}/me", waitlists.my_ticket_waitlist_entry, (401, 404)),
    Call(f"DELETE {WAITLIST}/me", waitlists.leave_ticket_waitlist, (401, 404)),
    Call(
        "GET /events/{event_id}/waitlist-entries/me",
        waitlists.my_entries,
        (401, 404),
        "my_waitlist_entries",
    ),
]
call_routes(router, CALLS, DOCS)
