"""One attendee's one-line order, as the ticket tests place it."""

from __future__ import annotations

from headcount.capacity import orders
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.views import TicketTypeView
from headcount.runtime import Runtime
from support.auth import attendee


async def buy(rt: Runtime, who: str, tt: TicketTypeView, qty: int = 1) -> str:
    """A pending order of `qty` of `tt` for `who`; its id."""
    item = OrderItemInput(ticket_type_id=tt.id, quantity=qty)
    draft = OrderDraft(event_id=tt.event_id, items=[item])
    return (await orders.create_order(rt, attendee(who), draft)).id
