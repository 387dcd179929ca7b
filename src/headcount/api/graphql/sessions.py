"""Agenda sessions: seats, RSVPs and their waitlists, as `api/rest/sessions.py` offers them."""

from __future__ import annotations

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


@strawberry.type
class SessionQuery:
    @mine(sessions.my_rsvp)
    def my_rsvp(self, session_id: strawberry.ID) -> RsvpResult:
        """The caller's seat or waitlist place in a session."""

    @mine(sessions.session_waitlist)
    def session_waitlist(self, session_id: strawberry.ID) -> WaitlistResult:
        """A session's waitlist in queue order (the event's organizer only)."""


@strawberry.type
class SessionMutation:
    @change(sessions.rsvp)
    def rsvp_session(self, session_id: strawberry.ID) -> RsvpResult:
        """Take a seat, or a waitlist place with a position; `SessionFull` if neither."""

    @change(sessions.leave)
    def leave_session(self, session_id: strawberry.ID) -> RsvpResult:
        """Give up your seat (the waitlist's head gets it) or your waitlist place."""
