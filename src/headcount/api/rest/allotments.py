"""/events/{id}/holds: organizer holds (named stock set aside), split, released, redeemed.

The issue's path says "holds"; the code says allotments, because a pending order is
already "a hold" (`HEADCOUNT_HOLD_TTL`).
"""

from __future__ import annotations

from fastapi import APIRouter

from headcount.api.rest.routes import Call, call_routes
from headcount.capacity import allotments

router = APIRouter(tags=["organizer holds"])


DOCS = {
    "create_hold": """
    Take `quantity` of a ticket type (`ticket_type_id`) out of sale, counted in its pools
    and the event cap like an order (refused as one: `sold_out`, `pool_exhausted`,
    `event_full`); or of a pool's room (`pool_id`), counted in that pool and the event cap.
    Exactly one of the two (422 `hold_target`).""",
    "split_hold": "Move `quantity` units into a new named hold; nothing goes back on sale.",
    "release_hold": """
    Back on sale: all that is left (no body), or `quantity`. The ticket type's waitlist
    is offered the units first, as with a cancelled order.""",
    "redeem_hold": """
    A pending order of `quantity` for the caller, out of the hold (with its `code`, or
    by the organizer); confirm it as any order. A pool hold's order is for the member
    `ticket_type_id` named, out of that type's own stock (`sold_out` if it has none).""",
}
# The service takes a hold's event as a keyword (`event_id=`): a hold is found by its id.
HOLDS, HOLD = "/events/{event_id}/holds", "/events/{event_id}/holds/{hold_id}"
CALLS = [
    Call(f"POST {HOLDS}", allotments.create_hold, (401, 403, 404, 409), created=True),
    Call(f"GET {HOLDS}", allotments.list_holds, (401, 403, 404)),
    Call(f"GET {HOLD}", allotments.get_hold, (401, 403, 404)),
    Call(f"POST {HOLD}/split", allotments.split_hold, (401, 403, 404, 409), created=True),
    Call(f"POST {HOLD}/release", allotments.release_hold, (401, 403, 404, 409), body_optional=True),
    Call(f"POST {HOLD}/redeem", allotments.redeem_hold, (401, 403, 404, 409, 429), created=True),
]
call_routes(router, CALLS, DOCS)
