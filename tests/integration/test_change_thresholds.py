"""Thresholds are recorded exactly once per transition, under a concurrent hammer.

Buyers, registrants and RSVPs race for a small capacity while some of the winners give
their place back at once, so the capacity fills and frees again and again. Afterwards
the event's log is replayed in position order (the counters from the payloads,
domain/replay.py): every time the replayed count reaches the limit, the threshold must
follow before the next request's changes, and every threshold recorded must be one of
those transitions. So the thresholds alternate, none is missing and none is doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from headcount.capacity import events, orders, registrations, sessions, tickets
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.sessions import SessionDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import OrderView
from headcount.config import Settings
from headcount.domain import replay
from headcount.domain.errors import EventFull, HeadcountError, SessionFull, SoldOut
from headcount.domain.identity import Principal
from headcount.ledger import buckets, locks
from headcount.ledger.changes import Change
from headcount.ledger.db import Tx
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.changes import acting, event_changes
from support.ledger_checks import assert_no_drift
from support.runtimes import open_runtime

ORG = organizer("org-thresholds")
Counted = Callable[[dict[str, int]], int]


@pytest.fixture
async def wide(database_url: str) -> AsyncIterator[Runtime]:
    """Enough connections for the racers to really meet in the database (PostgreSQL)."""
    async with open_runtime(
        database_url,
        db_pool_size=20,
        db_max_overflow=10,
        db_pool_timeout=120,
        db_statement_timeout_ms=120_000,
        max_pending_orders_per_user=0,
        hot_row_concurrency=0,  # no in-process queue: every buyer meets the others
    ) as rt:
        yield rt


def transitions(
    found: list[Change],
    resource: tuple[str, str],
    *,
    limit: int,
    count: Counted,
    types: tuple[str, str],
) -> list[str]:
    """Check the thresholds of `resource` against its replayed count; return them in order.

    `types`: (became full, has room again). Requests are told apart by their request id
    (one per call here): a threshold owed by one request must come before the next
    request's changes, and a crossing undone within one request owes nothing.
    """
    counters: dict[str, int] = {}
    full, owed, request = False, None, None
    seen: list[str] = []
    for change in found:
        if (change.resource_type, change.resource_id) == resource and change.type in types:
            assert change.type == owed, f"{change.type} at {change.position}, owed {owed}"
            seen.append(change.type)
            owed = None
            continue
        before = count(counters)
        replay.fold([(change.type, change.event_id, change.payload)], counters)
        after = count(counters)
        if after == before:
            continue
        if change.request_id != request:
            assert owed is None, f"{owed} missing before {change.type} at {change.position}"
            request = change.request_id
        if (after >= limit) != full:
            full = after >= limit
            wanted = types[0] if full else types[1]
            owed = None if owed is not None else wanted  # a flip back nets out
    assert owed is None, f"{owed} missing at the end"
    return seen


async def churn(
    racers: list[Principal],
    refusal: type[HeadcountError],
    take: Callable[[Principal, int], Awaitable[Any]],
    undo: Callable[[Principal, Any], Awaitable[object]],
) -> None:
    """Every racer takes at once (`refusal` when nothing is left); every third one that
    got in gives it back at once. Each step is a request of its own, so a threshold one
    owes must be recorded before the next request's changes."""

    async def racer(n: int, who: Principal) -> None:
        with contextlib.suppress(refusal):
            with acting(who, f"take-{n}"):
                got = await take(who, n)
            if n % 3 == 0:
                with acting(who, f"undo-{n}"):
                    await undo(who, got)

    await asyncio.gather(*(racer(n, who) for n, who in enumerate(racers)))


async def crossed(
    rt: Runtime,
    event_id: str,
    resource: tuple[str, str],
    *,
    limit: int,
    count: Counted,
    types: tuple[str, str],
) -> list[str]:
    """After a hammer: the event's log owes no threshold of `resource` (`transitions`), they
    alternate, and the ledger has not drifted. Returns the thresholds in order."""
    seen = transitions(
        await event_changes(rt, event_id), resource, limit=limit, count=count, types=types
    )
    assert seen, "the hammer never filled the capacity"
    assert seen == [types[n % 2] for n in range(len(seen))], seen
    await assert_no_drift(rt)
    return seen


@pytest.mark.parametrize("buckets", [1, 8])
async def test_sold_out_and_back_in_stock_once_per_transition(wide: Runtime, buckets: int) -> None:
    """200 buyers for 50 tickets; every third winner cancels at once."""
    rt = wide
    event = await events.create_event(rt, ORG, EventDraft(name="Hammer"))
    tt = await tickets.create_ticket_type(
        rt, ORG, event.id, TicketTypeDraft(name="GA", quantity_total=50, stock_buckets=buckets)
    )

    async def buy(who: Principal, n: int) -> OrderView:
        line = OrderItemInput(ticket_type_id=tt.id, quantity=1 + n % 2)
        return await orders.create_order(rt, who, OrderDraft(event_id=event.id, items=[line]))

    async def cancel(who: Principal, held: OrderView) -> None:
        await orders.cancel_order(rt, who, held.id)

    buyers = [attendee(f"thr-buyer-{buckets}-{n}") for n in range(200)]
    await churn(buyers, SoldOut, buy, cancel)

    def in_use(counters: dict[str, int]) -> int:
        return sum(counters.get(replay.key("ticket_type", tt.id, c), 0) for c in ("held", "sold"))

    types = ("ticket_type.sold_out", "ticket_type.back_in_stock")
    resource = ("ticket_type", tt.id)
    seen = await crossed(rt, event.id, resource, limit=50, count=in_use, types=types)
    left = (await tickets.get_ticket_type(rt, tt.id)).quantity_available
    assert (seen[-1] == types[0]) == (left == 0)


async def test_event_full_and_reopened_once_per_transition(wide: Runtime) -> None:
    """100 registrations of 1 or 2 people for 30 places; every third winner cancels at once."""
    rt = wide
    event = await events.create_event(rt, ORG, EventDraft(name="Hammer", max_attendees=30))

    async def register(who: Principal, n: int) -> object:
        return await registrations.register(
            rt, who, event.id, RegistrationDraft(party_size=1 + n % 2)
        )

    async def unregister(who: Principal, _: object) -> None:
        await registrations.cancel_registration(rt, who, event.id)

    registrants = [attendee(f"thr-reg-{n}") for n in range(100)]
    await churn(registrants, EventFull, register, unregister)

    def people(counters: dict[str, int]) -> int:
        return counters.get(replay.key("event", event.id, replay.REGISTERED), 0)

    types = ("event.full", "event.reopened")
    await crossed(rt, event.id, ("event", event.id), limit=30, count=people, types=types)


async def test_session_full_and_reopened_once_per_transition(wide: Runtime) -> None:
    """80 RSVPs for 20 seats without a waitlist; every third seated attendee leaves."""
    rt = wide
    event = await events.create_event(rt, ORG, EventDraft(name="Hammer"))
    made = await sessions.create_session(
        rt, ORG, event.id, SessionDraft(title="S", max_participants=20, waitlist_enabled=False)
    )
    people = [attendee(f"thr-rsvp-{n}") for n in range(80)]
    for who in people:
        await registrations.register(rt, who, event.id, RegistrationDraft())

    async def rsvp(who: Principal, _: int) -> object:
        return await sessions.rsvp(rt, who, made.id)

    async def leave(who: Principal, _: object) -> None:
        await sessions.leave(rt, who, made.id)

    await churn(people, SessionFull, rsvp, leave)

    def seated(counters: dict[str, int]) -> int:
        return counters.get(replay.key("session", made.id, replay.ATTENDANCE), 0)

    types = ("session.full", "session.reopened")
    await crossed(rt, event.id, ("session", made.id), limit=20, count=seated, types=types)


@pytest.mark.postgres
@pytest.mark.parametrize("edge_lock", [True, False], ids=["edge-lock", "control-without"])
async def test_two_buyers_emptying_the_last_buckets_at_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, edge_lock: bool
) -> None:
    """The race the edge lock exists for, forced: two buyers each take the last unit of a
    different bucket, and both reach the sell-out judgment before either commits. With
    the lock the second judges after the first's commit: one `sold_out`. The control
    (the lock made a no-op) records none, though the type is sold out."""
    real, judge = locks.stock_edge, buckets._judge
    both_took, both_judged = asyncio.Barrier(2), asyncio.Barrier(2)

    async def edge(tx: Tx, ticket_type_id: str) -> None:
        await both_took.wait()
        if edge_lock:
            await real(tx, ticket_type_id)

    async def judged(tx: Tx, ticket_type_id: str, *, delta: int) -> None:
        await judge(tx, ticket_type_id, delta=delta)
        if not edge_lock:
            await both_judged.wait()  # neither commits before both judged

    orders_of_buckets = [[0, 1], [1, 0]]  # each buyer tries a different bucket first
    monkeypatch.setattr(locks, "stock_edge", edge)
    monkeypatch.setattr(buckets, "_judge", judged)
    monkeypatch.setattr(random, "sample", lambda _seq, _k: orders_of_buckets.pop(0))
    rt = Runtime.from_settings(
        # Two transactions racing: no batch may put both orders in one.
        Settings(database_url=postgres_url, env="test", hot_row_concurrency=0, hold_batch_max=0)
    )
    try:
        event = await events.create_event(rt, ORG, EventDraft(name="Edge"))
        tt = await tickets.create_ticket_type(
            rt, ORG, event.id, TicketTypeDraft(name="GA", quantity_total=2, stock_buckets=2)
        )
        draft = OrderDraft(
            event_id=event.id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=1)]
        )
        await asyncio.wait_for(
            asyncio.gather(
                orders.create_order(rt, attendee("edge-a"), draft),
                orders.create_order(rt, attendee("edge-b"), draft),
            ),
            30,
        )
        assert (await tickets.get_ticket_type(rt, tt.id)).quantity_available == 0
        sold_out = [c for c in await event_changes(rt, event.id) if c.type.endswith("sold_out")]
        assert len(sold_out) == (1 if edge_lock else 0)
    finally:
        await rt.close()
