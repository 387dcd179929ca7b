"""Write side: each mutation is one service call; refusals come back as typed results."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry

from headcount.api.graphql import fields
from headcount.api.graphql.convert import idempotency_key as checked_key
from headcount.api.graphql.refusals import (
    COMMON,
    Conflict,
    CustomerLimitReached,
    EventFull,
    Forbidden,
    HoldExpired,
    IdempotencyKeyReused,
    InvalidQuantity,
    InvalidRequest,
    NotFound,
    PoolExhausted,
    Refusal,
    Refused,
    SalesClosed,
    SoldOut,
    Unauthorized,
    attempt,
)
from headcount.api.graphql.types import Order
from headcount.capacity import orders
from headcount.capacity.orders import OrderDraft

ORDER_REFUSALS: tuple[type[Refusal], ...] = (
    *COMMON,
    SoldOut,
    PoolExhausted,
    CustomerLimitReached,
    EventFull,
    SalesClosed,
    InvalidQuantity,
    HoldExpired,
    Conflict,
    IdempotencyKeyReused,
)

CreateOrderResult = Annotated[
    Order
    | SoldOut
    | PoolExhausted
    | CustomerLimitReached
    | EventFull
    | SalesClosed
    | InvalidQuantity
    | IdempotencyKeyReused
    | NotFound
    | Unauthorized
    | Forbidden
    | InvalidRequest
    | Refused,
    strawberry.union("CreateOrderResult"),
]
ChangeOrderResult = Annotated[
    Order
    | Conflict
    | SoldOut
    | HoldExpired
    | IdempotencyKeyReused
    | NotFound
    | Unauthorized
    | Forbidden
    | InvalidRequest
    | Refused,
    strawberry.union("ChangeOrderResult"),
]


@strawberry.input
class OrderItemInput:
    ticket_type_id: strawberry.ID
    quantity: int


@strawberry.input
class CreateOrderInput:
    event_id: strawberry.ID
    items: list[OrderItemInput]


@strawberry.type
class OrderMutation:
    @fields.mutation("Hold tickets (all lines or none) until `expiresAt`.")
    async def create_order(
        self,
        info: strawberry.Info,
        input: CreateOrderInput,
        idempotency_key: str | None = None,
    ) -> CreateOrderResult:
        async def work() -> Order:
            who = info.context.principal()  # who is asking is settled before what is asked
            draft = OrderDraft.model_validate(
                {
                    "event_id": input.event_id,
                    "items": [
                        {"ticket_type_id": i.ticket_type_id, "quantity": i.quantity}
                        for i in input.items
                    ],
                }
            )
            view = await orders.create_order(
                info.context.runtime,
                who,
                draft,
                idempotency_key=checked_key(idempotency_key),
            )
            return Order.of(view)

        return cast(CreateOrderResult, await attempt(work, ORDER_REFUSALS))

    @fields.mutation("Payment confirmed (organizer or platform): held → sold.")
    async def confirm_order(
        self, info: strawberry.Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> ChangeOrderResult:
        async def work() -> Order:
            view = await orders.confirm_order(
                info.context.runtime,
                info.context.principal(),
                id,
                idempotency_key=checked_key(idempotency_key),
            )
            return Order.of(view)

        return cast(ChangeOrderResult, await attempt(work, ORDER_REFUSALS))

    @fields.mutation("Release a hold (owner) or refund a paid order (organizer).")
    async def cancel_order(
        self, info: strawberry.Info, id: strawberry.ID, idempotency_key: str | None = None
    ) -> ChangeOrderResult:
        async def work() -> Order:
            view = await orders.cancel_order(
                info.context.runtime,
                info.context.principal(),
                id,
                idempotency_key=checked_key(idempotency_key),
            )
            return Order.of(view)

        return cast(ChangeOrderResult, await attempt(work, ORDER_REFUSALS))
