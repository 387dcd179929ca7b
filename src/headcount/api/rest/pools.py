"""/pools: capacity shared by several ticket types of an event."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import TicketTypeId, id_path, problems
from headcount.api.rest.routes import event_resource
from headcount.capacity import pools
from headcount.capacity.views import PoolView

router = APIRouter(tags=["pools"])
PoolId = Annotated[str, id_path("pool")]


DOCS = {
    "create": "`ticket_type_ids` attaches types at once; their current sales count immediately.",
    "update": "A capacity below what is in use is allowed: `over_capacity_by` says how far over.",
}
event_resource(router, "pool", pools, docs=DOCS)


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
