"""/orders: hold, confirm, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import problems
from headcount.api.rest.routes import Call, call_routes
from headcount.capacity import orders
from headcount.capacity.views import OrderView

router = APIRouter(tags=["orders"])

ORDER = "/orders/{order_id}"
call_routes(router, [Call("POST /orders", orders.create_order, (401, 404, 409, 429), created=True)])


@router.get("/orders", responses=problems(401, 404))
async def list_orders(
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OrderView]:
    return await orders.list_orders(rt, who, event_id=event_id, limit=limit)


CALLS = [
    Call(f"GET {ORDER}", orders.get_order, (401, 404)),
    Call(f"POST {ORDER}/confirm", orders.confirm_order, (401, 403, 404, 409)),
    Call(f"POST {ORDER}/cancel", orders.cancel_order, (401, 403, 404, 409)),
]
call_routes(router, CALLS)
