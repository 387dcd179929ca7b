"""/ticket-types: the stock on sale."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import id_path, problems
from headcount.capacity import tickets
from headcount.capacity.tickets import TicketTypeDraft, TicketTypePatch
from headcount.capacity.views import TicketTypeView

router = APIRouter(tags=["tickets"])


@router.post("/events/{event_id}/ticket-types", status_code=201, responses=problems(401, 403, 404))
async def create_ticket_type(
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: Annotated[str, id_path("event")],
    body: TicketTypeDraft,
) -> TicketTypeView:
    return await tickets.create_ticket_type(rt, who, event_id, body)


@router.get("/events/{event_id}/ticket-types", responses=problems(404))
async def list_ticket_types(
    rt: RuntimeDep, event_id: Annotated[str, id_path("event")]
) -> list[TicketTypeView]:
    return await tickets.list_ticket_types(rt, event_id)


@router.get("/ticket-types/{ticket_type_id}", responses=problems(404))
async def get_ticket_type(
    rt: RuntimeDep, ticket_type_id: Annotated[str, id_path("ticket type")]
) -> TicketTypeView:
    return await tickets.get_ticket_type(rt, ticket_type_id)


@router.patch("/ticket-types/{ticket_type_id}", responses=problems(401, 403, 404, 409))
async def update_ticket_type(
    rt: RuntimeDep,
    who: PrincipalDep,
    ticket_type_id: Annotated[str, id_path("ticket type")],
    body: TicketTypePatch,
) -> TicketTypeView:
    return await tickets.update_ticket_type(rt, who, ticket_type_id, body)
