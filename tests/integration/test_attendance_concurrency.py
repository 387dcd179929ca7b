"""Hundreds of concurrent attendees against one process, on SQLite and PostgreSQL.

Register at the cap, RSVP at the cap, and leave while others join; afterwards the rows
are read straight from the database and checked exactly: no cap exceeded, no seat empty
while someone waits, waitlist order preserved, counters equal the rows, and reconcile
finds nothing to fix.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import pytest

from headcount.capacity import events, orders, registrations, sessions, tickets, waitlists
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.sessions import SessionDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import OrderView
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.domain.errors import EventFull, HeadcountError, SessionFull, SoldOut
from headcount.runtime import Runtime
from support.attendance_checks import (
    assert_session_invariants,
    assert_ticket_invariants,
    registration_rows,
    session_rows,
    ticket_rows,
)
from support.auth import attendee, organizer
from support.ledger_checks import assert_no_drift
from support.seed import event_with_session

pytestmark = pytest.mark.slow
ORG = organizer("org-conc")
T = TypeVar("T")


async def outcome(call: Awaitable[T]) -> T | HeadcountError:
    try:
        return await call
    except HeadcountError as exc:
        return exc


async def timed(label: str, calls: list[Callable[[], Awaitable[T]]]) -> list[T | HeadcountError]:
    random.shuffle(calls)
    start = time.perf_counter()
    results = await asyncio.gather(*(outcome(c()) for c in calls))
    elapsed = time.perf_counter() - start
    print(f"\n{label}: {len(calls)} concurrent calls in {elapsed:.2f}s")
    return results


async def test_register_at_the_cap(runtime: Runtime, database_url: str) -> None:
    cap, people = 60, 300
    event = await events.create_event(runtime, ORG, EventDraft(name="Cap", max_attendees=cap))
    sizes = {f"r{n}": 1 + n % 3 for n in range(people)}

    def register(who: str) -> Callable[[], Awaitable[object]]:
        draft = RegistrationDraft(party_size=sizes[who])
        return lambda: registrations.register(runtime, attendee(who), event.id, draft)

    # Every fifth attendee double-clicks: two identical requests at once.
    calls = [register(w) for w in sizes] + [register(w) for w in list(sizes)[::5]]
    results = await timed("register at the cap", calls)
    refused = [r for r in results if isinstance(r, HeadcountError)]
    assert {type(r) for r in refused} <= {EventFull}
    rows = registration_rows(database_url, event.id)
    admitted = {w for w in sizes if w in rows.active_attendees}
    assert rows.registered == rows.heads_in_rows == sum(sizes[w] for w in admitted)
    assert rows.registered <= cap
    remaining = cap - rows.registered
    # Room only shrank during the run, so everyone refused asked for more than is left now.
    assert all(sizes[w] > remaining for w in sizes if w not in admitted)
    assert remaining < 3  # 300 people asking for up to 3 places fill 60 places
    await assert_no_drift(runtime)


async def _session_with_registered(
    rt: Runtime, seats: int, people: int, *, waitlist: bool = True
) -> tuple[str, list[str]]:
    event_id, session_id = await event_with_session(
        rt,
        ORG,
        EventDraft(name="RSVP"),
        SessionDraft(title="Small room", max_participants=seats, waitlist_enabled=waitlist),
    )
    who = [f"s{n}" for n in range(people)]
    await asyncio.gather(
        *(registrations.register(rt, attendee(w), event_id, RegistrationDraft()) for w in who)
    )
    return session_id, who


async def test_rsvp_at_the_cap_with_waitlist(runtime: Runtime, database_url: str) -> None:
    seats, people = 20, 200
    sid, who = await _session_with_registered(runtime, seats, people)
    results = await timed(
        "rsvp at the cap",
        [partial(sessions.rsvp, runtime, attendee(w), sid) for w in who],
    )
    answers = [r for r in results if not isinstance(r, HeadcountError)]
    assert len(answers) == people
    assert Counter(a.status for a in answers) == {"confirmed": seats, "waitlisted": people - seats}
    rows = session_rows(database_url, sid)
    assert_session_invariants(rows)
    assert rows.attendance == seats
    # Each answer's position is its rank in seq order: the queue is the order of admission.
    rank = {a: i + 1 for i, (a, _) in enumerate(rows.waiting)}
    assert {a.attendee_id: a.position for a in answers if a.status == "waitlisted"} == rank
    assert [s for _, s in rows.waiting] == list(range(1, people - seats + 1))
    await assert_no_drift(runtime)


async def test_rsvp_at_the_cap_without_waitlist(runtime: Runtime, database_url: str) -> None:
    seats, people = 25, 200
    sid, who = await _session_with_registered(runtime, seats, people, waitlist=False)
    results = await timed(
        "rsvp at the cap, no waitlist",
        [partial(sessions.rsvp, runtime, attendee(w), sid) for w in who],
    )
    assert Counter(type(r).__name__ for r in results) == {
        "RsvpView": seats,
        "SessionFull": people - seats,
    }
    assert all(r.code == "session_full" for r in results if isinstance(r, SessionFull))
    rows = session_rows(database_url, sid)
    assert_session_invariants(rows)
    assert (rows.attendance, rows.waiting) == (seats, [])
    await assert_no_drift(runtime)


async def test_leave_while_others_join(runtime: Runtime, database_url: str) -> None:
    seats, queued, newcomers, leaving, quitting = 20, 30, 150, 10, 5
    sid, who = await _session_with_registered(runtime, seats, seats + queued + newcomers)
    seated, waiting, fresh = who[:seats], who[seats : seats + queued], who[seats + queued :]
    for w in seated + waiting:  # a known queue: sequential RSVPs
        await sessions.rsvp(runtime, attendee(w), sid)
    leavers = seated[:leaving]
    quitters = waiting[-quitting:]  # the tail of the queue walks away; never reaches a seat
    calls: list[Callable[[], Awaitable[object]]] = []
    calls += [partial(sessions.leave, runtime, attendee(w), sid) for w in leavers]
    calls += [partial(sessions.leave, runtime, attendee(w), sid) for w in quitters]
    calls += [partial(sessions.rsvp, runtime, attendee(w), sid) for w in fresh]
    results = await timed("leave while others join", calls)
    assert not [r for r in results if isinstance(r, HeadcountError)]

    rows = session_rows(database_url, sid)
    assert_session_invariants(rows)
    assert rows.attendance == seats
    # The freed seats went to the head of the queue, in order; no newcomer got one.
    assert [a for a, _ in rows.promoted] == waiting[:leaving]
    assert sorted(rows.confirmed) == sorted(seated[leaving:] + waiting[:leaving])
    still = [a for a, _ in rows.waiting]
    assert still[: queued - leaving - quitting] == waiting[leaving:-quitting]
    assert sorted(still[queued - leaving - quitting :]) == sorted(fresh)
    assert sorted(a for a, _ in rows.left) == sorted(quitters)
    await assert_no_drift(runtime)


async def test_ticket_stock_freed_under_load_goes_to_the_queue(
    runtime: Runtime, database_url: str
) -> None:
    stock, queued, newcomers = 10, 20, 150
    event = await events.create_event(runtime, ORG, EventDraft(name="Tickets"))
    tt = await tickets.create_ticket_type(
        runtime, ORG, event.id, TicketTypeDraft(name="GA", quantity_total=stock)
    )

    def order(w: str) -> Callable[[], Awaitable[OrderView]]:
        draft = OrderDraft(
            event_id=event.id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=1)]
        )
        return lambda: orders.create_order(runtime, attendee(w), draft)

    held = [await order(f"h{n}")() for n in range(stock)]
    queue = [f"q{n}" for n in range(queued)]
    for w in queue:
        await waitlists.join_ticket_waitlist(runtime, attendee(w), tt.id, TicketWaitlistDraft())
    calls: list[Callable[[], Awaitable[OrderView]]] = [
        partial(orders.cancel_order, runtime, attendee(o.owner_id), o.id) for o in held
    ]
    calls += [order(f"n{n}") for n in range(newcomers)]
    results = await timed("cancel while others buy", calls)
    refused = [r for r in results if isinstance(r, HeadcountError)]
    assert len(refused) == newcomers
    assert all(isinstance(r, SoldOut) for r in refused)
    rows = ticket_rows(database_url, tt.id)
    assert_ticket_invariants(rows)
    assert [a for a, _ in rows.offered] == queue[:stock]
    assert [a for a, _ in rows.waiting] == queue[stock:]
    await assert_no_drift(runtime)
