"""/sessions: agenda items, RSVPs and their waitlists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import IdempotencyKey, id_path, problems
from headcount.api.rest.routes import event_resource
from headcount.capacity import sessions
from headcount.capacity.views import RsvpView, WaitlistEntryView, WaitlistView

router = APIRouter(tags=["sessions"])
SessionId = Annotated[str, id_path("session")]


DOCS = {
    "update": """Raising `max_participants` confirms waitlist heads at once; lowering below the
    confirmed seats is refused (409).""",
}
event_resource(router, "session", sessions, docs=DOCS, update_refusals=(401, 403, 404, 409))


@router.post("/sessions/{session_id}/rsvp", responses=problems(401, 403, 404, 409))
async def rsvp(
    rt: RuntimeDep, who: PrincipalDep, session_id: SessionId, key: IdempotencyKey = None
) -> RsvpView:
    """`confirmed`, or `waitlisted` with `position`; 409 `session_full` without a waitlist;
    403 `not_registered` unless you are registered for the event."""
    return await sessions.rsvp(rt, who, session_id, idempotency_key=key)


@router.get("/sessions/{session_id}/rsvp", responses=problems(401, 404))
async def my_rsvp(rt: RuntimeDep, who: PrincipalDep, session_id: SessionId) -> RsvpView:
    return await sessions.my_rsvp(rt, who, session_id)


@router.delete("/sessions/{session_id}/rsvp", responses=problems(401, 404))
async def leave(
    rt: RuntimeDep, who: PrincipalDep, session_id: SessionId, key: IdempotencyKey = None
) -> RsvpView:
    """Give up your seat (the head of the waitlist gets it) or your waitlist place."""
    return await sessions.leave(rt, who, session_id, idempotency_key=key)


@router.get("/sessions/{session_id}/waitlist", responses=problems(401, 403, 404))
async def session_waitlist(
    rt: RuntimeDep, who: PrincipalDep, session_id: SessionId
) -> WaitlistView:
    return await sessions.session_waitlist(rt, who, session_id)


@router.get("/sessions/{session_id}/waitlist/me", responses=problems(401, 404))
async def my_session_waitlist_entry(
    rt: RuntimeDep, who: PrincipalDep, session_id: SessionId
) -> WaitlistEntryView:
    """Your position while waiting, or what became of your entry (`promoted`, `left`)."""
    return await sessions.my_waitlist_entry(rt, who, session_id)
