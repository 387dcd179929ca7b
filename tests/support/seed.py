"""The event a test needs before it can test anything: made through the service layer,
as an organizer would, so the rows are exactly what production writes."""

from __future__ import annotations

from headcount.capacity import events, sessions, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.sessions import SessionDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.domain.identity import Principal
from headcount.runtime import Runtime


async def event_with_session(
    rt: Runtime, org: Principal, event: EventDraft, session: SessionDraft
) -> tuple[str, str]:
    """(event id, session id) of a new event holding one session."""
    made = await events.create_event(rt, org, event)
    return made.id, (await sessions.create_session(rt, org, made.id, session)).id


async def event_with_ticket_type(
    rt: Runtime, org: Principal, event: EventDraft, ticket_type: TicketTypeDraft
) -> tuple[str, str]:
    """(event id, ticket type id) of a new event selling one ticket type."""
    made = await events.create_event(rt, org, event)
    return made.id, (await tickets.create_ticket_type(rt, org, made.id, ticket_type)).id
