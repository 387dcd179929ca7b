"""Write side: each mutation is one service call; refusals come back as typed results."""

from __future__ import annotations

from typing import Any

import strawberry

from headcount.api.graphql.operations import change, checked_key, field
from headcount.api.graphql.refusals import result_union
from headcount.capacity import orders
from headcount.capacity.orders import OrderDraft
from headcount.capacity.views import OrderView
from headcount.domain.errors import (
    Conflict,
    CustomerLimitReached,
    EventFull,
    HoldExpired,
    IdempotencyKeyReused,
    InvalidQuantity,
    PoolExhausted,
    QueuePassRequired,
    SalesClosed,
    SoldOut,
)

CreateOrderResult: Any = result_union(
    "CreateOrderResult",
    OrderView,
    SoldOut,
    PoolExhausted,
    CustomerLimitReached,
    EventFull,
    SalesClosed,
    InvalidQuantity,
    IdempotencyKeyReused,
    QueuePassRequired,
)
ChangeOrderResult: Any = result_union(
    "ChangeOrderResult", OrderView, Conflict, SoldOut, HoldExpired, IdempotencyKeyReused
)


@strawberry.input
class OrderItemInput:
    ticket_type_id: strawberry.ID
    quantity: int


@strawberry.input
class CreateOrderInput:
    event_id: strawberry.ID
    items: list[OrderItemInput]
    queue_pass: str | None = None


@strawberry.type
class OrderMutation:
    @field(mutation=True)
    async def create_order(
        self, info: strawberry.Info, input: CreateOrderInput, idempotency_key: str | None = None
    ) -> CreateOrderResult:
        """Hold tickets (all lines or none) until `expiresAt`."""
        who = info.context.principal()  # who is asking is settled before what is asked
        items = [{"ticket_type_id": i.ticket_type_id, "quantity": i.quantity} for i in input.items]
        draft = OrderDraft.model_validate(
            {"event_id": input.event_id, "items": items, "queue_pass": input.queue_pass}
        )
        return await orders.create_order(
            info.context.runtime, who, draft, idempotency_key=checked_key(idempotency_key)
        )

    @change(orders.confirm_order)
    def confirm_order(self, id: strawberry.ID) -> ChangeOrderResult:
        """Payment confirmed (organizer or platform): held → sold."""

    @change(orders.cancel_order)
    def cancel_order(self, id: strawberry.ID) -> ChangeOrderResult:
        """Release a hold (owner) or refund a paid order (organizer)."""
