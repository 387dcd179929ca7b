"""Event registration: attendees (and their guests) counted against `max_attendees`.

Rules chosen here (docs/concurrency.md, "Attendance", has the locking side):
* One registration per attendee and event. Registering again while registered returns the
  same registration and counts nobody twice; a different `party_size` changes the guest
  count (growing it needs room under the cap, shrinking it always works).
* `max_attendees` caps *people*: registrations (guests included) plus tickets held or
  sold (issue 4), two counters on the same `event_capacity` row checked together by both
  admission statements. A ticket does not register anyone and a registration needs no
  ticket; someone who does both takes two places.
* Lowering the cap never evicts: `remaining` shows 0 and admissions stop until enough
  people cancel. Raising it admits the very next request (the cap is read by the
  admission statement itself).
* Cancelling a registration also gives up the attendee's session seats and waitlist places
  of that event, so nobody keeps a seat in an event they no longer attend; freed seats go
  to the sessions' waitlists in the same transaction.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from headcount.capacity.events import load_event, require_manager
from headcount.capacity.views import RegistrationCapacity, RegistrationView
from headcount.domain import attendance
from headcount.domain.attendance import EntryStatus, RegistrationStatus, SeatStatus
from headcount.domain.errors import Conflict, EventFull, NotFound
from headcount.domain.identity import Principal
from headcount.domain.ids import new_id
from headcount.ledger import draws, locks, offers, registrations, seats
from headcount.ledger.attendance import Registration, Session, SessionSeat, WaitlistEntry
from headcount.ledger.idempotency import run_idempotent
from headcount.ledger.models import Event
from headcount.runtime import Runtime


class RegistrationDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party_size: int = Field(
        strict=True,
        default=1,
        ge=1,
        le=attendance.MAX_PARTY_SIZE,
        description="the attendee plus their guests; each counts against max_attendees",
    )


def registration_view(reg: Registration) -> RegistrationView:
    return RegistrationView(
        id=reg.id,
        event_id=reg.event_id,
        attendee_id=reg.attendee_id,
        party_size=reg.party_size,
        status=RegistrationStatus(reg.status),
        created_at=reg.created_at,
        updated_at=reg.updated_at,
        cancelled_at=reg.cancelled_at,
    )


async def registration_capacity(tx: AsyncSession, event: Event) -> RegistrationCapacity:
    taken = await registrations.registered(tx, event.id)
    # Tickets held or sold take places under the same cap (issue 4, one rule for people).
    people = taken + await registrations.tickets(tx, event.id)
    return RegistrationCapacity(
        max_attendees=event.max_attendees,
        registered=taken,
        remaining=attendance.remaining(event.max_attendees, people),
        is_full=attendance.is_full(event.max_attendees, people),
    )


async def own_registration(
    tx: AsyncSession, event_id: str, attendee_id: str, *, lock: bool = False
) -> Registration | None:
    query = (
        select(Registration)
        .where(Registration.event_id == event_id, Registration.attendee_id == attendee_id)
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update()
    return (await tx.scalars(query)).first()


async def is_registered(tx: AsyncSession, event_id: str, attendee_id: str) -> bool:
    reg = await own_registration(tx, event_id, attendee_id)
    return reg is not None and reg.status == RegistrationStatus.ACTIVE


async def register(
    rt: Runtime,
    principal: Principal,
    event_id: str,
    draft: RegistrationDraft,
    *,
    idempotency_key: str | None = None,
) -> tuple[RegistrationView, bool]:
    """Register the caller; returns the registration and whether it was newly made active."""
    party = draft.party_size
    attendance.check_party_size(party)

    async def work(tx: AsyncSession) -> dict[str, Any]:
        now = rt.clock()
        event = await load_event(tx, event_id)
        queued = await _lock_queued_ticket_types(tx, event)
        await locks.ensure_event_counter(tx, event.id)
        # A first registration (the common case) writes its row first and takes the hot
        # counter row last, so that lock is held only until COMMIT. A concurrent duplicate
        # waits on the unique (event, attendee) key, then finds this row below.
        reg_id = new_id("reg")
        if await registrations.insert_new(
            tx,
            registration_id=reg_id,
            event_id=event.id,
            attendee_id=principal.sub,
            party_size=party,
            now=now,
        ):
            if await registrations.admit(tx, event.id, party) is None:
                await _refuse(tx, event, party)
            view = RegistrationView(
                id=reg_id,
                event_id=event.id,
                attendee_id=principal.sub,
                party_size=party,
                status=RegistrationStatus.ACTIVE,
                created_at=now,
                updated_at=now,
                cancelled_at=None,
            )
            return {"registration": view.model_dump(mode="json"), "created": True}
        reg = await own_registration(tx, event.id, principal.sub, lock=True)
        if reg is None:  # only if the row vanished between two statements: never deleted
            raise Conflict("your registration changed while registering; try again")
        if reg.status == RegistrationStatus.ACTIVE:
            delta = party - reg.party_size
            if delta > 0 and await registrations.admit(tx, event.id, delta) is None:
                await _refuse(tx, event, delta)
            if delta < 0:
                await registrations.release(tx, event.id, -delta)
                await offers.settle(tx, queued, now, rt.settings.offer_ttl)
            if delta:
                reg.party_size = party
                reg.updated_at = now
                await tx.flush()
            return {"registration": _dump(reg), "created": False}
        if await registrations.admit(tx, event.id, party) is None:
            await _refuse(tx, event, party)
        reg.status = RegistrationStatus.ACTIVE.value
        reg.party_size = party
        reg.updated_at = now
        reg.cancelled_at = None
        await tx.flush()
        return {"registration": _dump(reg), "created": True}

    result = await run_idempotent(
        rt.db,
        owner=principal.sub,
        scope=f"registrations.create:{event_id}",
        key=idempotency_key,
        payload={"event_id": event_id, "party_size": party},
        now=rt.clock(),
        work=work,
    )
    return RegistrationView.model_validate(result["registration"]), bool(result["created"])


def _dump(reg: Registration) -> dict[str, Any]:
    return registration_view(reg).model_dump(mode="json")


async def _refuse(tx: AsyncSession, event: Event, asked: int) -> None:
    summary = await registration_capacity(tx, event)
    raise EventFull(
        f"event {event.name!r} has {summary.remaining} place(s) left; {asked} asked",
        event_id=event.id,
        max_attendees=summary.max_attendees,
        registered=summary.registered,
        remaining=summary.remaining,
    )


async def _lock_queued_ticket_types(tx: AsyncSession, event: Event) -> list[str]:
    """Capped events: ticket types with a queue, locked before the counter row (issue 4).

    A registration given up frees a place that tickets share; promoting their queues moves
    ticket-type rows, which must be locked before the event counter (docs/concurrency.md).
    """
    if event.max_attendees is None:
        return []
    queued = await draws.queued_ticket_types(tx, event.id)
    await locks.ticket_types(tx, queued)
    return queued


async def cancel_registration(
    rt: Runtime, principal: Principal, event_id: str, *, idempotency_key: str | None = None
) -> RegistrationView:
    """Cancel the caller's registration (again: a no-op) and give up their session places."""

    async def work(tx: AsyncSession) -> dict[str, Any]:
        now = rt.clock()
        event = await load_event(tx, event_id)
        queued = await _lock_queued_ticket_types(tx, event)
        reg = await own_registration(tx, event.id, principal.sub, lock=True)
        if reg is None:
            raise NotFound(f"you are not registered for event {event_id!r}")
        if reg.status == RegistrationStatus.CANCELLED:
            return _dump(reg)
        await registrations.release(tx, event.id, reg.party_size)
        # Places under the cap are shared with tickets: queued buyers get them first.
        await offers.settle(tx, queued, now, rt.settings.offer_ttl)
        reg.status = RegistrationStatus.CANCELLED.value
        reg.cancelled_at = now
        reg.updated_at = now
        await tx.flush()
        await _leave_sessions(tx, event.id, principal.sub, now)
        return _dump(reg)

    result = await run_idempotent(
        rt.db,
        owner=principal.sub,
        scope=f"registrations.cancel:{event_id}",
        key=idempotency_key,
        payload={"event_id": event_id},
        now=rt.clock(),
        work=work,
    )
    return RegistrationView.model_validate(result)


async def _leave_sessions(tx: AsyncSession, event_id: str, attendee_id: str, now: Any) -> None:
    """Lock every session counter of the event (ascending id), then give places up.

    Locking them all before looking means an RSVP racing this cancel either committed
    first (and its seat is seen and given up here) or runs after and finds no registration.
    """
    session_ids = list(await tx.scalars(select(Session.id).where(Session.event_id == event_id)))
    await locks.session_counters(tx, session_ids)
    if not session_ids:
        return
    held = await tx.scalars(
        select(SessionSeat)
        .where(
            SessionSeat.session_id.in_(session_ids),
            SessionSeat.attendee_id == attendee_id,
            SessionSeat.status == SeatStatus.CONFIRMED,
        )
        .order_by(SessionSeat.session_id)
        .execution_options(populate_existing=True)
    )
    for seat in list(held.all()):
        await seats.give_up(tx, seat, now)
    waiting = await tx.scalars(
        select(WaitlistEntry).where(
            WaitlistEntry.session_id.in_(session_ids),
            WaitlistEntry.attendee_id == attendee_id,
            WaitlistEntry.status == EntryStatus.WAITING,
        )
    )
    for entry in waiting.all():
        entry.status = EntryStatus.LEFT.value
        entry.updated_at = now
    await tx.flush()


async def my_registration(rt: Runtime, principal: Principal, event_id: str) -> RegistrationView:
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        reg = await own_registration(tx, event.id, principal.sub)
        if reg is None:
            raise NotFound(f"you are not registered for event {event_id!r}")
        return registration_view(reg)


async def list_registrations(
    rt: Runtime, principal: Principal, event_id: str, *, limit: int = 1000
) -> list[RegistrationView]:
    async with rt.db.transaction() as tx:
        event = await load_event(tx, event_id)
        require_manager(principal, event)
        rows = await tx.scalars(
            select(Registration)
            .where(Registration.event_id == event.id)
            .order_by(Registration.created_at, Registration.id)
            .limit(limit)
        )
        return [registration_view(r) for r in rows.all()]


async def get_registration_capacity(rt: Runtime, event_id: str) -> RegistrationCapacity:
    async with rt.db.transaction() as tx:
        return await registration_capacity(tx, await load_event(tx, event_id))
