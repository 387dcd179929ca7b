"""/pools: capacity shared by several ticket types of an event."""

from __future__ import annotations

from fastapi import APIRouter

from headcount.api.rest.routes import Call, call_routes, event_resource
from headcount.capacity import pools

router = APIRouter(tags=["pools"])


# The pool resource's routes by verb, the others by name.
DOCS = {
    "create": "`ticket_type_ids` attaches types at once; their current sales count immediately.",
    "update": "A capacity below what is in use is allowed: `over_capacity_by` says how far over.",
    "attach_ticket_type": "Idempotent: attaching an attached type changes nothing.",
}
event_resource(router, "pool", pools, docs=DOCS)

MEMBER = "/pools/{pool_id}/ticket-types/{ticket_type_id}"
CALLS = [
    Call(f"PUT {MEMBER}", pools.attach_ticket_type, (401, 403, 404)),
    Call(f"DELETE {MEMBER}", pools.detach_ticket_type, (401, 403, 404)),
]
call_routes(router, CALLS, DOCS)
