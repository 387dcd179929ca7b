"""/events/{event_id}/registrations: register for an event, cancel, see your registration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import EventId, IdempotencyKey, problems
from headcount.api.rest.routes import Call, call_routes
from headcount.capacity import registrations
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.views import RegistrationView

router = APIRouter(tags=["registrations"])
REGISTRATIONS = "/events/{event_id}/registrations"


@router.post(
    REGISTRATIONS,
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


DOCS = {
    "cancel_registration": """
    Cancelling also gives up your session seats and session waitlist places.""",
    "registration_summary": """
    `max_attendees`, `registered`, `remaining`, `is_full` (also in the capacity snapshot).""",
}
CALLS = [
    Call(f"GET {REGISTRATIONS}/me", registrations.my_registration, (401, 404)),
    Call(f"DELETE {REGISTRATIONS}/me", registrations.cancel_registration, (401, 404)),
    Call(f"GET {REGISTRATIONS}", registrations.list_registrations, (401, 403, 404)),
    Call(
        f"GET {REGISTRATIONS}/summary",
        registrations.get_registration_capacity,
        (404,),
        "registration_summary",
    ),
]
call_routes(router, CALLS, DOCS)
