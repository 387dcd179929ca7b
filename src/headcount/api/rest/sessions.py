"""/sessions: agenda items, RSVPs and their waitlists."""

from __future__ import annotations

from fastapi import APIRouter

from headcount.api.rest.routes import Call, call_routes, event_resource
from headcount.capacity import sessions

router = APIRouter(tags=["sessions"])


# The session resource's routes by verb, the others by name.
DOCS = {
    "update": """Raising `max_participants` confirms waitlist heads at once; lowering below the
    confirmed seats is refused (409).""",
    "rsvp": """`confirmed`, or `waitlisted` with `position`; 409 `session_full` without a waitlist;
    403 `not_registered` unless you are registered for the event.""",
    "leave": "Give up your seat (the head of the waitlist gets it) or your waitlist place.",
    "my_session_waitlist_entry": """
    Your position while waiting, or what became of your entry (`promoted`, `left`).""",
}
event_resource(router, "session", sessions, docs=DOCS, update_refusals=(401, 403, 404, 409))

RSVP, WAITLIST = "/sessions/{session_id}/rsvp", "/sessions/{session_id}/waitlist"
CALLS = [
    Call(f"POST {RSVP}", sessions.rsvp, (401, 403, 404, 409)),
    Call(f"GET {RSVP}", sessions.my_rsvp, (401, 404)),
    Call(f"DELETE {RSVP}", sessions.leave, (401, 404)),
    Call(f"GET {WAITLIST}", sessions.session_waitlist, (401, 403, 404)),
    Call(f"GET {WAITLIST}/me", sessions.my_waitlist_entry, (401, 404), "my_session_waitlist_entry"),
]
call_routes(router, CALLS, DOCS)
