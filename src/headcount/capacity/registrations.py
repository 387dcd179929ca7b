"""Event registration: attendees (and their guests) counted against `max_attendees`.

Rules chosen here (docs/concurrency.md, "Attendance", has the locking side):
* One registration per attendee and event. Registering again while registered returns the
  same registration and counts nobody twice; a different `party_size` changes the guest
  count (growing it needs room under the cap, shrinking it always works).
* `max_attendees` caps *people*: registrations (guests included) plus tickets held or
  sold, two counters on the same `event_capacity` row checked together by both
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

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from headcount.capacity import keyed
from headcount.capacity.events import load_event, managed_event
from headcount.capacity.pools import event_total_view
from headcount.capacity.views import EventTotalView, RegistrationCapacity, RegistrationView, View
from headcount.domain import attendance
from headcount.domain.attendance import RegistrationStatus
from headcount.domain.changes import ChangeType
from headcount.domain.errors import Conflict, EventFull, NotFound
from headcount.domain.identity import Principal
from headcount.domain.ids import new_id
from headcount.ledger import draws, journal, listings, locks, offers, registrations, rows, seats
from headcount.ledger.attendance import Registration
from headcount.ledger.db import Tx
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


class Registered(View):
    """What registering answers: the registration, and whether this call made it active.

    Stored whole for an Idempotency-Key, so a retry answers 201 or 200 as the first did.
    """

    registration: RegistrationView
    created: bool


def registration_view(reg: Registration) -> RegistrationView:
    return RegistrationView.from_row(reg, status=RegistrationStatus(reg.status))


def registrations_of(total: EventTotalView) -> RegistrationCapacity:
    """The event's people cap as registrations see it: tickets held or sold take places too."""
    people = total.registered + total.tickets
    return RegistrationCapacity(
        max_attendees=total.max_attendees,
        registered=total.registered,
        remaining=total.remaining,
        is_full=attendance.is_full(total.max_attendees, people),
    )


async def registration_capacity(tx: Tx, event: Event) -> RegistrationCapacity:
    return registrations_of(await event_total_view(tx, event))


async def is_registered(tx: Tx, event_id: str, attendee_id: str) -> bool:
    reg = await registrations.own(tx, event_id, attendee_id)
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

    async def work(tx: Tx, now: datetime) -> Registered:
        event = await load_event(tx, event_id)
        queued = await _lock_queued_ticket_types(tx, event)
        await registrations.ensure_counter(tx, event.id)
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
            await _admit(tx, event, reg_id, principal.sub, party, now=now)
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
            return Registered(registration=view, created=True)
        reg = await registrations.own(tx, event.id, principal.sub, lock=True)
        if reg is None:  # only if the row vanished between two statements: never deleted
            raise Conflict("your registration changed while registering; try again")
        if reg.status == RegistrationStatus.ACTIVE:
            delta = party - reg.party_size
            if delta:
                await _admit(
                    tx, event, reg.id, principal.sub, party, now=now, previous=reg.party_size
                )
            if delta < 0:
                await registrations.release(tx, event.id, -delta)
                await offers.settle(tx, queued, now, rt.settings.offer_ttl, event_id=event.id)
            if delta:
                await _mark(tx, reg, now, party_size=party)
            return Registered(registration=registration_view(reg), created=False)
        await _admit(tx, event, reg.id, principal.sub, party, now=now)
        await _mark(tx, reg, now, status=RegistrationStatus.ACTIVE, party_size=party)
        return Registered(registration=registration_view(reg), created=True)

    scope, payload = f"registrations.create:{event_id}", {"event_id": event_id, "party_size": party}
    done = await keyed.decided(
        rt, principal, scope, payload, key=idempotency_key, answer=Registered, work=work
    )
    return done.registration, done.created


def _record(
    tx: Tx,
    type_: ChangeType,
    registration_id: str,
    *,
    event_id: str,
    attendee_id: str,
    party_size: int,
    now: datetime,
    **extra: int,
) -> None:
    """A registration's step, recorded before the counter moves (which may fill the event)."""
    status = RegistrationStatus.CANCELLED
    if type_ is not ChangeType.REGISTRATION_CANCELLED:
        status = RegistrationStatus.ACTIVE
    journal.registration(
        tx,
        type_,
        registration_id=registration_id,
        event_id=event_id,
        attendee_id=attendee_id,
        party_size=party_size,
        status=status.value,
        at=now,
        **extra,
    )


async def _admit(
    tx: Tx,
    event: Event,
    registration_id: str,
    attendee_id: str,
    party: int,
    *,
    now: datetime,
    previous: int | None = None,
) -> None:
    """A registration made active (or resized from `previous`) to `party`: recorded, then
    the places it grew by taken under the event's cap. Recorded first, since the admission
    may fill the event; a refusal rolls both back."""
    extra = {} if previous is None else {"previous_party_size": previous}
    type_ = ChangeType.REGISTRATION_CREATED if previous is None else ChangeType.REGISTRATION_UPDATED
    _record(
        tx,
        type_,
        registration_id,
        event_id=event.id,
        attendee_id=attendee_id,
        party_size=party,
        now=now,
        **extra,
    )
    grown = party - (previous or 0)
    if grown > 0 and await registrations.admit(tx, event.id, grown) is None:
        await _refuse(tx, event, grown)


async def _mark(
    tx: Tx,
    reg: Registration,
    now: datetime,
    *,
    status: RegistrationStatus | None = None,
    party_size: int | None = None,
) -> None:
    """Write a registration's new state: active again, cancelled, or a new party size."""
    if status is not None:
        reg.status = status.value
        reg.cancelled_at = now if status is RegistrationStatus.CANCELLED else None
    if party_size is not None:
        reg.party_size = party_size
    reg.updated_at = now
    await rows.save(tx)


async def _refuse(tx: Tx, event: Event, asked: int) -> None:
    summary = await registration_capacity(tx, event)
    raise EventFull(
        f"event {event.name!r} has {summary.remaining} place(s) left; {asked} asked",
        event_id=event.id,
        max_attendees=summary.max_attendees,
        registered=summary.registered,
        remaining=summary.remaining,
    )


async def _lock_queued_ticket_types(tx: Tx, event: Event) -> list[str]:
    """Capped events: ticket types with a queue, locked before the counter row.

    A registration given up frees a place that tickets share; promoting their queues moves
    ticket-type rows, which must be locked before the event counter (ledger/locks.py).
    """
    if event.max_attendees is None:
        return []
    queued = await draws.queued_ticket_types(tx, event.id)
    await locks.ticket_types(tx, queued, event_id=event.id)
    return queued


async def cancel_registration(
    rt: Runtime, principal: Principal, event_id: str, *, idempotency_key: str | None = None
) -> RegistrationView:
    """Cancel the caller's registration (again: a no-op) and give up their session places."""

    async def work(tx: Tx, now: datetime) -> RegistrationView:
        event = await load_event(tx, event_id)
        queued = await _lock_queued_ticket_types(tx, event)
        reg = await registrations.own(tx, event.id, principal.sub, lock=True)
        if reg is None:
            raise NotFound(f"you are not registered for event {event_id!r}")
        if reg.status == RegistrationStatus.CANCELLED:
            return registration_view(reg)
        _record(
            tx,
            ChangeType.REGISTRATION_CANCELLED,
            reg.id,
            event_id=event.id,
            attendee_id=reg.attendee_id,
            party_size=reg.party_size,
            now=now,
        )
        await registrations.release(tx, event.id, reg.party_size)
        # Places under the cap are shared with tickets: queued buyers get them first.
        await offers.settle(tx, queued, now, rt.settings.offer_ttl, event_id=event.id)
        await _mark(tx, reg, now, status=RegistrationStatus.CANCELLED)
        await seats.leave_event(tx, event.id, principal.sub, now)
        return registration_view(reg)

    scope, payload = f"registrations.cancel:{event_id}", {"event_id": event_id}
    return await keyed.decided(
        rt, principal, scope, payload, key=idempotency_key, answer=RegistrationView, work=work
    )


async def my_registration(rt: Runtime, principal: Principal, event_id: str) -> RegistrationView:
    async with rt.db.snapshot() as tx:
        event = await load_event(tx, event_id)
        reg = await registrations.own(tx, event.id, principal.sub)
        if reg is None:
            raise NotFound(f"you are not registered for event {event_id!r}")
        return registration_view(reg)


async def list_registrations(
    rt: Runtime, principal: Principal, event_id: str, *, limit: int = 1000
) -> list[RegistrationView]:
    async with rt.db.snapshot(may_lag=True) as tx:
        event = await managed_event(tx, principal, event_id)
        found = await listings.registrations(tx, event.id, limit=limit)
        return [registration_view(r) for r in found]


async def get_registration_capacity(rt: Runtime, event_id: str) -> RegistrationCapacity:
    async with rt.db.snapshot(may_lag=True) as tx:
        return await registration_capacity(tx, await load_event(tx, event_id))
