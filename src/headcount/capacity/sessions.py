"""Sessions (agenda items): seats up to `max_participants`, then a FIFO waitlist.

Rules chosen here:
* Only attendees with an active registration for the event may RSVP. Registration is the
  event's one headcount (`max_attendees`), so a session seat never exists for someone the
  event does not count; a ticket buyer registers like anyone (payment may register them
  one day). Cancelling the registration gives the seats up (capacity/registrations.py).
* RSVP answers `confirmed` when a seat is free, else `waitlisted` with a position, or 409
  `session_full` when the session's waitlist is off. Asking again answers the same thing.
* Leaving frees the seat and, in the same transaction, confirms the head of the waitlist.
  Raising `max_participants` confirms as many heads as there are new seats. Lowering it
  below the confirmed count is refused (409 `conflict`): nobody loses a confirmed seat,
  and the CHECK `current_attendance <= maximum_capacity` stays a true invariant.
* Turning the waitlist off stops new entries; people already waiting keep their place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from headcount.capacity import keyed
from headcount.capacity.decisions import under_event, under_row
from headcount.capacity.events import (
    MAX_LIMIT,
    check_patched_window,
    check_window,
    load_event,
    managed_event,
)
from headcount.capacity.inputs import Patch, new_row
from headcount.capacity.registrations import is_registered
from headcount.capacity.views import RsvpView, SessionView, WaitlistEntryView, WaitlistView
from headcount.capacity.waitlists import entry_view, waitlist_view
from headcount.domain.attendance import EntryStatus, RsvpStatus, SeatSource, SeatStatus
from headcount.domain.changes import ChangeType
from headcount.domain.errors import Conflict, NotFound, NotRegistered, SessionFull
from headcount.domain.identity import Principal
from headcount.ledger import journal, listings, locks, rows, seats, waitlist
from headcount.ledger.attendance import Session, SessionCapacity
from headcount.ledger.db import Tx
from headcount.runtime import Runtime


class SessionDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=10_000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_participants: int = Field(strict=True, ge=0, le=MAX_LIMIT)
    waitlist_enabled: bool = True

    @model_validator(mode="after")
    def _window(self) -> SessionDraft:
        check_window(self.starts_at, self.ends_at)
        return self


class SessionPatch(Patch):
    """Only the fields present are changed; `null` clears a nullable field."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"description", "starts_at", "ends_at"})
    CLEARED: ClassVar[dict[str, object]] = {"description": ""}

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_participants: int | None = Field(strict=True, default=None, ge=0, le=MAX_LIMIT)
    waitlist_enabled: bool | None = None


async def load_session(tx: Tx, session_id: str) -> Session:
    return await rows.find(tx, Session, session_id, noun="session")


async def _locked_session(tx: Tx, session_id: str) -> Session:
    """The session, with its counter row locked first (step 8 of ledger/locks.py): every
    transaction that could change this attendee's seat or queue place waits on it."""
    session = await load_session(tx, session_id)
    await locks.session_counters(tx, [session.id], event_id=session.event_id)
    return session


async def _view(tx: Tx, session: Session) -> SessionView:
    cap = await seats.capacity(tx, session.id)
    assert cap is not None
    return SessionView.from_row(
        session,
        max_participants=cap.maximum_capacity,
        current_attendance=cap.current_attendance,
        remaining=max(0, cap.maximum_capacity - cap.current_attendance),
        is_full=cap.current_attendance >= cap.maximum_capacity,
        waitlist_length=await waitlist.waiting_count(tx, session_id=session.id),
    )


async def session_views(tx: Tx, event_id: str) -> list[SessionView]:
    return [await _view(tx, session) for session in await listings.sessions(tx, event_id)]


async def create_session(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: SessionDraft,
    *,
    session_id: str | None = None,
) -> SessionView:
    async with under_event(rt, principal, event_id) as (tx, event, now):
        session = new_row(Session, draft, now, session_id, "ses", event_id=event.id)
        capacity = SessionCapacity(
            session_id=session.id,
            event_id=event.id,
            maximum_capacity=draft.max_participants,
            current_attendance=0,
        )
        await rows.add(tx, session, capacity)
        journal.audit(
            tx, ChangeType.SESSION_CREATED, ("session", session), None, draft.model_dump(), at=now
        )
        return await _view(tx, session)


async def get_session(rt: Runtime, session_id: str) -> SessionView:
    async with rt.db.snapshot() as tx:
        return await _view(tx, await load_session(tx, session_id))


async def list_sessions(rt: Runtime, event_id: str) -> list[SessionView]:
    async with rt.db.snapshot(may_lag=True) as tx:
        event = await load_event(tx, event_id)
        return await session_views(tx, event.id)


async def update_session(
    rt: Runtime, principal: Principal, session_id: str, patch: SessionPatch
) -> SessionView:
    changes = patch.changes()
    async with under_row(rt, principal, load_session, session_id) as (tx, session, now):
        check_patched_window(
            changes.get("starts_at", session.starts_at), changes.get("ends_at", session.ends_at)
        )
        before = _definition(session, await seats.capacity(tx, session.id))
        maximum = changes.pop("max_participants", None)
        if changes:
            await rows.change(
                tx, Session, session.id, {**changes, "updated_at": now}, event_id=session.event_id
            )
        if maximum is not None:
            # The counter row first (step 8): the limit replaced is the one judged by.
            await locks.session_counters(tx, [session.id], event_id=session.event_id)
            if not await seats.set_maximum(tx, session.id, maximum, event_id=session.event_id):
                cap = await seats.capacity(tx, session.id)
                taken = cap.current_attendance if cap else 0
                raise Conflict(
                    f"max_participants {maximum} is below the {taken} confirmed seats; "
                    "nobody loses a confirmed seat",
                    current_attendance=taken,
                )
            # More seats: the waitlist gets them in this transaction, before any newcomer.
            await seats.promote(tx, session.id, now, event_id=session.event_id)
        changed = await load_session(tx, session.id)
        journal.audit(
            tx,
            ChangeType.SESSION_CHANGED,
            ("session", changed),
            before,
            {**before, **changes, **_maximum(maximum)},
            at=now,
        )
        return await _view(tx, changed)


def _maximum(maximum: int | None) -> dict[str, object]:
    return {} if maximum is None else {"max_participants": maximum}


def _definition(session: Session, cap: SessionCapacity | None) -> dict[str, object]:
    """What an organizer sets on a session, as the audit trail shows it."""
    return {
        "title": session.title,
        "description": session.description,
        "starts_at": session.starts_at,
        "ends_at": session.ends_at,
        "max_participants": cap.maximum_capacity if cap else None,
        "waitlist_enabled": session.waitlist_enabled,
    }


async def _rsvp_view(
    tx: Tx, session_id: str, attendee_id: str, now: datetime, *, include_past: bool = False
) -> RsvpView:
    seat = await seats.seat_of(tx, session_id, attendee_id)
    entry = await waitlist.latest_entry(tx, attendee_id, session_id=session_id)
    shown = await entry_view(tx, entry, now) if entry is not None else None
    status = RsvpStatus.NONE
    if seat is not None and seat.status == SeatStatus.CONFIRMED:
        status = RsvpStatus.CONFIRMED
        # The entry that led to the seat, if it came from the waitlist.
        shown = shown if entry is not None and entry.status == EntryStatus.PROMOTED else None
    elif entry is not None and entry.status == EntryStatus.WAITING:
        status = RsvpStatus.WAITLISTED
    elif not include_past:
        shown = None
    return RsvpView(
        session_id=session_id,
        attendee_id=attendee_id,
        status=status,
        position=shown.position if status is RsvpStatus.WAITLISTED and shown else None,
        waitlist_entry=shown,
    )


async def rsvp(
    rt: Runtime, principal: Principal, session_id: str, *, idempotency_key: str | None = None
) -> RsvpView:
    """Take a seat, or a place in the queue, or be refused with `session_full`."""

    async def work(tx: Tx, now: datetime) -> RsvpView:
        session = await _locked_session(tx, session_id)
        if not await is_registered(tx, session.event_id, principal.sub):
            raise NotRegistered(
                f"register for event {session.event_id!r} before RSVPing to its sessions",
                event_id=session.event_id,
            )
        current = await _rsvp_view(tx, session.id, principal.sub, now)
        if current.status is not RsvpStatus.NONE:
            return current
        if (seated := await seats.admit(tx, session.id, event_id=session.event_id)) is not None:
            await seats.occupy(
                tx, session.id, principal.sub, SeatSource.RSVP, now, event_id=session.event_id
            )
            journal.seat(
                tx,
                ChangeType.RSVP_CONFIRMED,
                event_id=session.event_id,
                session_id=session.id,
                attendee_id=principal.sub,
                via=SeatSource.RSVP.value,
                attendance=seated[0],
                at=now,
            )
        elif session.waitlist_enabled:
            entry = await waitlist.join(
                tx,
                event_id=session.event_id,
                attendee_id=principal.sub,
                now=now,
                session_id=session.id,
            )
            journal.entry(tx, ChangeType.RSVP_WAITLISTED, entry, now)
        else:
            cap = await seats.capacity(tx, session.id)
            raise SessionFull(
                f"session {session.title!r} is full and has no waitlist",
                session_id=session.id,
                max_participants=cap.maximum_capacity if cap else None,
            )
        return await _rsvp_view(tx, session.id, principal.sub, now)

    return await _keyed(rt, principal, "sessions.rsvp", session_id, work, key=idempotency_key)


async def leave(
    rt: Runtime, principal: Principal, session_id: str, *, idempotency_key: str | None = None
) -> RsvpView:
    """Give up a seat (the head of the waitlist gets it) or a place in the queue."""

    async def work(tx: Tx, now: datetime) -> RsvpView:
        session = await _locked_session(tx, session_id)
        seat = await seats.seat_of(tx, session.id, principal.sub)
        if seat is not None and seat.status == SeatStatus.CONFIRMED:
            await seats.give_up(tx, seat, now)
        elif entry := await waitlist.live_entry(
            tx, principal.sub, event_id=session.event_id, session_id=session.id
        ):
            await waitlist.leave(tx, [entry], now)
        return await _rsvp_view(tx, session.id, principal.sub, now, include_past=True)

    return await _keyed(rt, principal, "sessions.leave", session_id, work, key=idempotency_key)


def _keyed(
    rt: Runtime,
    principal: Principal,
    operation: str,
    session_id: str,
    work: Callable[[Tx, datetime], Awaitable[RsvpView]],
    *,
    key: str | None,
) -> Awaitable[RsvpView]:
    """One session's RSVP or leave, decided once per Idempotency-Key."""
    return keyed.decided(
        rt,
        principal,
        f"{operation}:{session_id}",
        {"session_id": session_id},
        key=key,
        answer=RsvpView,
        work=work,
    )


async def my_rsvp(rt: Runtime, principal: Principal, session_id: str) -> RsvpView:
    async with rt.db.snapshot() as tx:
        session = await load_session(tx, session_id)
        return await _rsvp_view(tx, session.id, principal.sub, rt.clock(), include_past=True)


async def my_waitlist_entry(
    rt: Runtime, principal: Principal, session_id: str
) -> WaitlistEntryView:
    """The caller's latest entry in this session's queue: position, or what became of it."""
    async with rt.db.snapshot() as tx:
        session = await load_session(tx, session_id)
        entry = await waitlist.latest_entry(tx, principal.sub, session_id=session.id)
        if entry is None:
            raise NotFound(f"you have not joined the waitlist of session {session_id!r}")
        return await entry_view(tx, entry, rt.clock())


async def session_waitlist(rt: Runtime, principal: Principal, session_id: str) -> WaitlistView:
    async with rt.db.snapshot() as tx:
        session = await load_session(tx, session_id)
        await managed_event(tx, principal, session.event_id)
        return await waitlist_view(tx, rt.clock(), session_id=session.id)


async def load_demo_sessions(rt: Runtime, event_id: str, organizer: Principal) -> None:
    """Demo agenda: small caps, one session already full so the waitlist is visible."""
    from headcount.capacity.registrations import RegistrationDraft, register
    from headcount.domain.identity import Role

    for sid, title, seats_, with_waitlist in (
        ("ses_demo_keynote", "Opening keynote", 40, True),
        ("ses_demo_workshop", "Hands-on workshop", 3, True),
        ("ses_demo_networking", "Speed networking", 2, False),
        ("ses_demo_ama", "Ask the speakers", 5, True),
    ):
        await create_session(
            rt,
            organizer,
            event_id,
            SessionDraft(title=title, max_participants=seats_, waitlist_enabled=with_waitlist),
            session_id=sid,
        )
    for n in range(1, 5):
        guest = Principal(sub=f"demo-guest-{n}", role=Role.ATTENDEE)
        await register(rt, guest, event_id, RegistrationDraft())
        await rsvp(rt, guest, "ses_demo_workshop")
