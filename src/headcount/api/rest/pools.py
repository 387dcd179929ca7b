"""/pools: capacity shared by several ticket types of an event."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import id_path, problems
from headcount.capacity import pools
from headcount.capacity.pools import PoolDraft, PoolPatch
from headcount.capacity.views import PoolView

router = APIRouter(tags=["pools"])
EventId = Annotated[str, id_path("event")]
PoolId = Annotated[str, id_path("pool")]
TicketTypeId = Annotated[str, id_path("ticket type")]


@router.post("/events/{event_id}/pools", status_code=201, responses=problems(401, 403, 404))
async def create_pool(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, body: PoolDraft
) -> PoolView:
    """`ticket_type_ids` attaches types at once; their current sales count immediately."""
    return await pools.create_pool(rt, who, event_id, body)


@router.get("/events/{event_id}/pools", responses=problems(404))
async def list_pools(rt: RuntimeDep, event_id: EventId) -> list[PoolView]:
    return await pools.list_pools(rt, event_id)


@router.get("/pools/{pool_id}", responses=problems(404))
async def get_pool(rt: RuntimeDep, pool_id: PoolId) -> PoolView:
    return await pools.get_pool(rt, pool_id)


@router.patch("/pools/{pool_id}", responses=problems(401, 403, 404))
async def update_pool(
    rt: RuntimeDep, who: PrincipalDep, pool_id: PoolId, body: PoolPatch
) -> PoolView:
    """A capacity below what is in use is allowed: `over_capacity_by` says how far over."""
    return await pools.update_pool(rt, who, pool_id, body)


@router.put("/pools/{pool_id}/ticket-types/{ticket_type_id}", responses=problems(401, 403, 404))
async def attach_ticket_type(
    rt: RuntimeDep, who: PrincipalDep, pool_id: PoolId, ticket_type_id: TicketTypeId
) -> PoolView:
    """Idempotent: attaching an attached type changes nothing."""
    return await pools.attach_ticket_type(rt, who, pool_id, ticket_type_id)


@router.delete("/pools/{pool_id}/ticket-types/{ticket_type_id}", responses=problems(401, 403, 404))
async def detach_ticket_type(
    rt: RuntimeDep, who: PrincipalDep, pool_id: PoolId, ticket_type_id: TicketTypeId
) -> PoolView:
    return await pools.detach_ticket_type(rt, who, pool_id, ticket_type_id)
