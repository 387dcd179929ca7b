"""Agenda sessions: seats, RSVPs and their waitlists, as `api/rest/sessions.py` offers them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry

from headcount.api.graphql.operations import change, mine
from headcount.api.graphql.refusals import result_union
from headcount.capacity import sessions
from headcount.capacity.views import RsvpView, WaitlistView
from headcount.domain.errors import Conflict, IdempotencyKeyReused, NotRegistered, SessionFull

WaitlistResult: Any = result_union("WaitlistResult", WaitlistView)
RsvpResult: Any = result_union(
    "RsvpResult", RsvpView, SessionFull, NotRegistered, IdempotencyKeyReused, Conflict
)


def _on_session(operation: Callable[[Any], Any], answers: Any, doc: str) -> Any:
    """A field whose one argument is the session's id: the four session fields differ only
    in the service call and the answer, so each is declared by those alone."""

    def declaration(self: Any, session_id: strawberry.ID) -> Any: ...

    declaration.__annotations__["return"] = answers
    declaration.__doc__ = doc
    return operation(declaration)


@strawberry.type
class SessionQuery:
    my_rsvp = _on_session(
        mine(sessions.my_rsvp), RsvpResult, "The caller's seat or waitlist place in a session."
    )
    session_waitlist = _on_session(
        mine(sessions.session_waitlist),
        WaitlistResult,
        "A session's waitlist in queue order (the event's organizer only).",
    )


@strawberry.type
class SessionMutation:
    rsvp_session = _on_session(
        change(sessions.rsvp),
        RsvpResult,
        "Take a seat, or a waitlist place with a position; `SessionFull` if neither.",
    )
    leave_session = _on_session(
        change(sessions.leave),
        RsvpResult,
        "Give up your seat (the waitlist's head gets it) or your waitlist place.",
    )
