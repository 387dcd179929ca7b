"""/sessions: agenda items, RSVPs and their waitlists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from headcount.api.auth import PrincipalDep, RuntimeDep
from headcount.api.rest.common import IdempotencyKey, id_path, problems
from headcount.capacity import sessions
from headcount.capacity.sessions import SessionDraft, SessionPatch
from headcount.capacity.views import RsvpView, SessionView, WaitlistEntryView, WaitlistView

router = APIRouter(tags=["sessions"])
EventId = Annotated[str, id_path("event")]
SessionId = Annotated[str, id_path("session")]


@router.post("/events/{event_id}/sessions", status_code=201, responses=problems(401, 403, 404))
async def create_session(
    rt: RuntimeDep, who: PrincipalDep, event_id: EventId, body: SessionDraft
) -> SessionView:
    return await sessions.create_session(rt, who, event_id, body)


@router.get("/events/{event_id}/sessions", responses=problems(404))
async def list_sessions(rt: RuntimeDep, event_id: EventId) -> list[SessionView]:
    return await sessions.list_sessions(rt, event_id)


@router.get("/sessions/{session_id}", responses=problems(404))
async def get_session(rt: RuntimeDep, session_id: SessionId) -> SessionView:
    return await sessions.get_session(rt, session_id)


@router.patch("/sessions/{session_id}", responses=problems(401, 403, 404, 409))
async def update_session(
    rt: RuntimeDep, who: PrincipalDep, session_id: SessionId, body: SessionPatch
) -> SessionView:
    """Raising `max_participants` confirms waitlist heads at once; lowering below the
    confirmed seats is refused (409)."""
    return await sessions.update_session(rt, who, session_id, body)


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
