"""/orders: hold, confirm, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import IdempotencyKey, id_path, problems
from headcount.capacity import orders
from headcount.capacity.orders import OrderDraft
from headcount.capacity.views import OrderView

router = APIRouter(tags=["orders"])
OrderId = Annotated[str, id_path("order")]


@router.post("/orders", status_code=201, responses=problems(401, 404, 409, 429))
async def create_order(
    rt: RuntimeDep, who: PrincipalDep, body: OrderDraft, key: IdempotencyKey = None
) -> OrderView:
    return await orders.create_order(rt, who, body, idempotency_key=key)


@router.get("/orders", responses=problems(401, 404))
async def list_orders(
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OrderView]:
    return await orders.list_orders(rt, who, event_id=event_id, limit=limit)


@router.get("/orders/{order_id}", responses=problems(401, 404))
async def get_order(rt: RuntimeDep, who: PrincipalDep, order_id: OrderId) -> OrderView:
    return await orders.get_order(rt, who, order_id)


@router.post("/orders/{order_id}/confirm", responses=problems(401, 403, 404, 409))
async def confirm_order(
    rt: RuntimeDep, who: PrincipalDep, order_id: OrderId, key: IdempotencyKey = None
) -> OrderView:
    return await orders.confirm_order(rt, who, order_id, idempotency_key=key)


@router.post("/orders/{order_id}/cancel", responses=problems(401, 403, 404, 409))
async def cancel_order(
    rt: RuntimeDep, who: PrincipalDep, order_id: OrderId, key: IdempotencyKey = None
) -> OrderView:
    return await orders.cancel_order(rt, who, order_id, idempotency_key=key)
