"""Ticket-type waitlists and the attendee's view of every queue they are in.

Rules chosen here:
* Anyone signed in may queue for a ticket type, asking for 1 to `max_per_order` tickets
  (at most 10). Joining when stock is free (and nobody waits) gives an offer at once.
* When stock frees, the head is *offered* it: a hold reserved for them (counted in
  `quantity_reserved`) until `offer_expires_at` (HEADCOUNT_OFFER_TTL). The offer is
  smaller than asked when less stock freed, so stock never sits idle while people wait.
* Accepting = creating an order for that ticket type before the offer expires; the order
  takes over the offer's hold (and reserves any extra quantity normally).
* Declining (leaving while offered) or letting it lapse passes the stock to the next
  person in the same transaction; the entry's `status` tells the attendee what happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from headcount.capacity import keyed
from headcount.capacity.events import load_event, managed_event
from headcount.capacity.tickets import load_ticket_type
from headcount.capacity.views import WaitlistEntryView, WaitlistView
from headcount.domain import attendance
from headcount.domain.attendance import EntryStatus
from headcount.domain.changes import ChangeType
from headcount.domain.errors import NotFound
from headcount.domain.identity import Principal
from headcount.ledger import draws, journal, listings, locks, offers, waitlist
from headcount.ledger.attendance import WaitlistEntry
from headcount.ledger.db import Tx
from headcount.ledger.expiry import expire_due_holds
from headcount.runtime import Runtime


class TicketWaitlistDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(strict=True, default=1, ge=1, le=attendance.MAX_WAITLIST_QUANTITY)


def shown_status(entry: WaitlistEntry, now: datetime) -> EntryStatus:
    """An entry's status as a read shows it: an offer past `offer_expires_at` is `expired`.

    The offer protects nothing any more; the offer sweeper (or the next admission on that
    ticket type) writes the status and passes the stock on. Derived here, so a read never
    writes (docs/guarantees.md, "Reads").
    """
    status = EntryStatus(entry.status)
    lapsed = entry.offer_expires_at is not None and entry.offer_expires_at <= now
    return EntryStatus.EXPIRED if status is EntryStatus.OFFERED and lapsed else status


def _plain_view(entry: WaitlistEntry, now: datetime, position: int | None) -> WaitlistEntryView:
    return WaitlistEntryView.from_row(entry, status=shown_status(entry, now), position=position)


async def entry_view(tx: Tx, entry: WaitlistEntry, now: datetime) -> WaitlistEntryView:
    return _plain_view(entry, now, await waitlist.position(tx, entry))


async def waitlist_view(
    tx: Tx, now: datetime, *, session_id: str | None = None, ticket_type_id: str | None = None
) -> WaitlistView:
    live = await waitlist.entries(tx, session_id=session_id, ticket_type_id=ticket_type_id)
    views: list[WaitlistEntryView] = []
    place = 0
    for entry in live:
        # Positions in one pass over the ordered entries, not one count query per entry.
        waiting = entry.status == EntryStatus.WAITING
        place += waiting
        views.append(_plain_view(entry, now, place if waiting else None))
    return WaitlistView(
        session_id=session_id,
        ticket_type_id=ticket_type_id,
        waiting=sum(1 for v in views if v.status is EntryStatus.WAITING),
        offered=sum(1 for v in views if v.status is EntryStatus.OFFERED),
        entries=views,
    )


async def join_ticket_waitlist(
    rt: Runtime,
    principal: Principal,
    ticket_type_id: str,
    draft: TicketWaitlistDraft,
    *,
    idempotency_key: str | None = None,
) -> WaitlistEntryView:
    """Queue for a ticket type; already queued (or holding an offer) answers the same entry."""

    async def work(tx: Tx, now: datetime) -> WaitlistEntryView:
        ttl = rt.settings.offer_ttl
        tt = await load_ticket_type(tx, ticket_type_id)
        attendance.check_waitlist_quantity(draft.quantity, tt.max_per_order)
        # Lock order: orders → ticket type → entries (ledger/locks.py).
        await expire_due_holds(
            tx, now, event_id=tt.event_id, ticket_type_ids=[tt.id], offer_ttl=ttl
        )
        await offers.settle(tx, [tt.id], now, ttl, event_id=tt.event_id)
        mine = await waitlist.live_entry(
            tx, principal.sub, event_id=tt.event_id, ticket_type_id=tt.id
        )
        if mine is None:
            mine = await waitlist.join(
                tx,
                event_id=tt.event_id,
                attendee_id=principal.sub,
                now=now,
                quantity=draft.quantity,
                ticket_type_id=tt.id,
            )
            journal.entry(tx, ChangeType.WAITLIST_JOINED, mine, now)
            await offers.settle(tx, [tt.id], now, ttl, event_id=tt.event_id)
        return await entry_view(tx, mine, now)

    payload = {"ticket_type_id": ticket_type_id, "quantity": draft.quantity}
    return await _keyed(
        rt, principal, work, operation="waitlists.join", payload=payload, key=idempotency_key
    )


async def leave_ticket_waitlist(
    rt: Runtime, principal: Principal, ticket_type_id: str, *, idempotency_key: str | None = None
) -> WaitlistEntryView:
    """Leave the queue, or decline a live offer (its stock goes to the next person)."""

    async def work(tx: Tx, now: datetime) -> WaitlistEntryView:
        ttl = rt.settings.offer_ttl
        tt = await load_ticket_type(tx, ticket_type_id)
        # With the event's other queued types: a declined offer frees shared room.
        queued = await draws.waitlisted_neighbours(tx, [tt.id], event_id=tt.event_id)
        await locks.ticket_types(tx, queued, event_id=tt.event_id)
        mine = await waitlist.live_entry(
            tx, principal.sub, event_id=tt.event_id, ticket_type_id=tt.id, lock=True
        )
        if mine is not None:
            if shown_status(mine, now) is EntryStatus.EXPIRED:
                await offers.settle(tx, [tt.id], now, ttl, event_id=tt.event_id)
            else:
                gone = EntryStatus.DECLINED if mine.status == EntryStatus.OFFERED else None
                await offers.give_back(tx, mine, gone or EntryStatus.LEFT, now, ttl)
        return await _mine(tx, principal, tt.id, now)

    payload = {"ticket_type_id": ticket_type_id}
    return await _keyed(
        rt, principal, work, operation="waitlists.leave", payload=payload, key=idempotency_key
    )


def _keyed(
    rt: Runtime,
    principal: Principal,
    work: Callable[[Tx, datetime], Awaitable[WaitlistEntryView]],
    *,
    operation: str,
    payload: Mapping[str, object],
    key: str | None,
) -> Awaitable[WaitlistEntryView]:
    """One ticket waitlist's join or leave, at most once per Idempotency-Key."""
    scope = f"{operation}:{payload['ticket_type_id']}"
    return keyed.decided(
        rt, principal, scope, payload, key=key, answer=WaitlistEntryView, work=work
    )


async def _mine(
    tx: Tx, principal: Principal, ticket_type_id: str, now: datetime
) -> WaitlistEntryView:
    entry = await waitlist.latest_entry(tx, principal.sub, ticket_type_id=ticket_type_id)
    if entry is None:
        raise NotFound(f"you have not joined the waitlist of ticket type {ticket_type_id!r}")
    return await entry_view(tx, entry, now)


async def my_ticket_waitlist_entry(
    rt: Runtime, principal: Principal, ticket_type_id: str
) -> WaitlistEntryView:
    """The caller's latest entry: a lapsed offer shows `expired` before the sweeper runs."""
    async with rt.db.snapshot() as tx:
        tt = await load_ticket_type(tx, ticket_type_id)
        return await _mine(tx, principal, tt.id, rt.clock())


async def ticket_waitlist(rt: Runtime, principal: Principal, ticket_type_id: str) -> WaitlistView:
    async with rt.db.snapshot() as tx:
        tt = await load_ticket_type(tx, ticket_type_id)
        await managed_event(tx, principal, tt.event_id)
        return await waitlist_view(tx, rt.clock(), ticket_type_id=tt.id)


async def my_entries(rt: Runtime, principal: Principal, event_id: str) -> list[WaitlistEntryView]:
    """Every queue the caller joined in this event, newest first: the attendee's feed."""
    async with rt.db.snapshot() as tx:
        event = await load_event(tx, event_id)
        found = await listings.waitlist_entries(tx, event.id, principal.sub, limit=500)
        now = rt.clock()
        return [await entry_view(tx, e, now) for e in found]


async def sweep_expired_offers(rt: Runtime, *, batch: int = 100) -> int:
    """Pass lapsed offers on: a background duty, safe on every replica (row locks, SKIP LOCKED)."""
    total = 0
    while True:
        async with rt.db.transaction() as tx:
            journal.stamp(tx, rt.clock())
            due = await offers.due_ticket_types(tx, rt.clock(), limit=batch)
            lapsed = await offers.settle_each_event(tx, due, rt.clock(), rt.settings.offer_ttl)
        total += lapsed
        if len(due) < batch:
            return total
