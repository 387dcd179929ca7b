"""/events: create, read and change events; the capacity snapshot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import EventId, problems
from headcount.capacity import events, snapshot
from headcount.capacity.events import EventDraft, EventPatch
from headcount.capacity.views import CapacitySnapshot, EventView

router = APIRouter(tags=["events"])


@router.post("/events", status_code=201, responses=problems(401, 403))
async def create_event(rt: RuntimeDep, who: PrincipalDep, body: EventDraft) -> EventView:
    return await events.create_event(rt, who, body)


@router.get("/events")
async def list_events(
    rt: RuntimeDep,
    organizer_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[EventView]:
    return await events.list_events(rt, organizer_id=organizer_id, limit=limit)


@router.get("/events/{event_id}", responses=problems(404))
async def get_event(rt: RuntimeDep, event_id: EventId) -> EventView:
    return await events.get_event(rt, event_id)


@router.patch("/events/{event_id}", responses=problems(401, 403, 404))
async def update_event(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, body: EventPatch
) -> EventView:
    return await events.update_event(rt, who, event_id, body)


@router.get("/events/{event_id}/capacity", responses=problems(404))
async def get_capacity(rt: RuntimeDep, event_id: EventId) -> CapacitySnapshot:
    return await snapshot.capacity_snapshot(rt, event_id)
