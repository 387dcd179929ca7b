"""Ticket waitlists: the same service calls as `api/rest/waitlists.py`."""

from __future__ import annotations

from typing import Any

import strawberry

from headcount.api.graphql.operations import change, mine
from headcount.api.graphql.refusals import result_union
from headcount.api.graphql.sessions import WaitlistResult
from headcount.api.graphql.types import WaitlistEntryList
from headcount.capacity import waitlists
from headcount.capacity.views import WaitlistEntryView
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.domain.errors import Conflict, IdempotencyKeyReused, InvalidQuantity

WaitlistEntryListResult: Any = result_union("WaitlistEntryListResult", WaitlistEntryList)
WaitlistEntryResult: Any = result_union(
    "WaitlistEntryResult", WaitlistEntryView, InvalidQuantity, IdempotencyKeyReused, Conflict
)


@strawberry.type
class WaitlistQuery:
    @mine(waitlists.ticket_waitlist)
    def ticket_waitlist(self, ticket_type_id: strawberry.ID) -> WaitlistResult:
        """A ticket type's waitlist in queue order (the event's organizer only)."""

    @mine(waitlists.my_entries, wrap=lambda found: WaitlistEntryList(entries=found))
    def my_waitlist_entries(self, event_id: strawberry.ID) -> WaitlistEntryListResult:
        """Every queue the caller joined in this event, newest first."""


@strawberry.type
class WaitlistMutation:
    @change(waitlists.join_ticket_waitlist, draft=TicketWaitlistDraft)
    def join_ticket_waitlist(self, ticket_type_id: strawberry.ID) -> WaitlistEntryResult:
        """Queue for a sold-out ticket type; accept an offer by ordering it."""

    @change(waitlists.leave_ticket_waitlist)
    def leave_ticket_waitlist(self, ticket_type_id: strawberry.ID) -> WaitlistEntryResult:
        """Leave a ticket type's waitlist, or decline its offer (next person gets it)."""
