"""/events/{event_id}/registrations: register for an event, cancel, see your registration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import EventId, IdempotencyKey, problems
from headcount.capacity import registrations
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.views import RegistrationCapacity, RegistrationView

router = APIRouter(tags=["registrations"])


@router.post(
    "/events/{event_id}/registrations",
    status_code=201,
    responses={
        **problems(401, 404, 409),
        200: {"description": "Already registered: the same registration back"},
    },
)
async def register(
    rt: RuntimeDep,
    who: PrincipalDep,
    event_id: EventId,
    response: Response,
    *,
    body: Annotated[RegistrationDraft | None, Body()] = None,
    key: IdempotencyKey = None,
) -> RegistrationView:
    """201 when this made you registered; 200 when you already were (nobody counted twice)."""
    view, created = await registrations.register(
        rt, who, event_id, body or RegistrationDraft(), idempotency_key=key
    )
    if not created:
        response.status_code = 200
    return view


@router.get("/events/{event_id}/registrations/me", responses=problems(401, 404))
async def my_registration(rt: RuntimeDep, who: PrincipalDep, event_id: EventId) -> RegistrationView:
    return await registrations.my_registration(rt, who, event_id)


@router.delete("/events/{event_id}/registrations/me", responses=problems(401, 404))
async def cancel_registration(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, key: IdempotencyKey = None
) -> RegistrationView:
    """Cancelling also gives up your session seats and session waitlist places."""
    return await registrations.cancel_registration(rt, who, event_id, idempotency_key=key)


@router.get("/events/{event_id}/registrations", responses=problems(401, 403, 404))
async def list_registrations(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId
) -> list[RegistrationView]:
    return await registrations.list_registrations(rt, who, event_id)


@router.get("/events/{event_id}/registrations/summary", responses=problems(404))
async def registration_summary(rt: RuntimeDep, event_id: EventId) -> RegistrationCapacity:
    """`max_attendees`, `registered`, `remaining`, `is_full` (also in the capacity snapshot)."""
    return await registrations.get_registration_capacity(rt, event_id)
