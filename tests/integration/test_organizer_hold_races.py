"""Organizer holds racing a flash sale (PostgreSQL): nothing is ever oversold.

Buyers in several threads (each its own event loop and connection pool, so truly parallel
clients) buy single tickets while two organizer tasks in another thread create, split and
release holds on the same ticket type, which also draws on a pool and an event cap.
A checker samples the ledger in consistent snapshots throughout: the units in orders plus
the units in holds never exceed the event's cap, and the type's `quantity_reserved` is
exactly the pending orders' plus the holds' units at every checkpoint. At the end every
hold is released, the public drains the rest, and exactly the cap is sold; `reconcile`
(rows and the change log) finds no drift.

The control shows the guard is what keeps it right: a release that reads the hold's units
and writes them back without the conditional UPDATE (`ledger/allotments.take_units`) gives
the same units back twice when two releases race, and the public then buys more tickets
than exist. The ledger's release refuses the second (`hold_short`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import threading
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select, update

from headcount.capacity import allotments, events, orders, pools, tickets
from headcount.capacity.allotments import HoldDraft, HoldReleaseDraft, HoldSplitDraft
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.pools import PoolDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import TicketTypeView
from headcount.config import Settings
from headcount.domain.errors import EventFull, HoldShort, SoldOut
from headcount.domain.tickets import OrderLine, OrderStatus
from headcount.ledger import inventory
from headcount.ledger.allotments import OrganizerHold
from headcount.ledger.models import Order, OrderItem, TicketType
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.databases import postgres_database

ORG = organizer("org-hold-race")
CAP, POOL, TOTAL = 40, 50, 60
BUYER_THREADS, BUYERS_PER_THREAD = 4, 40
ORGANIZER_ROUNDS = 12
# Refusals a racer may meet; anything else fails the test.
EXPECTED = (SoldOut, EventFull, HoldShort)


def _runtime(url: str, pool_size: int = 10) -> Runtime:
    settings = Settings(
        database_url=url, env="test", db_pool_size=pool_size, max_pending_orders_per_user=0
    )
    return Runtime.from_settings(settings)


def _in_thread(url: str, work: Callable[[Runtime], Awaitable[None]]) -> threading.Thread:
    """`work` on its own event loop and connection pool, in a thread of its own."""
    failures: list[BaseException] = []

    async def main() -> None:
        rt = _runtime(url)
        try:
            await work(rt)
        finally:
            await rt.close()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the caller through `failures`
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.failures = failures  # type: ignore[attr-defined]
    thread.start()
    return thread


async def _buy(rt: Runtime, who: str, tt: TicketTypeView) -> bool:
    item = OrderItemInput(ticket_type_id=tt.id, quantity=1)
    try:
        await orders.create_order(rt, attendee(who), OrderDraft(event_id=tt.event_id, items=[item]))
    except EXPECTED:
        return False
    return True


async def _organizer(rt: Runtime, tt: TicketTypeView, seed: int) -> None:
    """Create a hold, split part of it off, release part of each, again and again."""
    rng = random.Random(seed)
    for round_ in range(ORGANIZER_ROUNDS):
        draft = HoldDraft(name=f"h{seed}-{round_}", ticket_type_id=tt.id, quantity=3)
        try:
            made = await allotments.create_hold(rt, ORG, tt.event_id, draft)
        except EXPECTED:
            await asyncio.sleep(0.005)
            continue
        with contextlib.suppress(*EXPECTED):
            split = HoldSplitDraft(name=f"s{seed}-{round_}", quantity=rng.randint(1, 2))
            done = await allotments.split_hold(rt, ORG, made.id, split)
            await allotments.release_hold(rt, ORG, done.split.id, HoldReleaseDraft(quantity=1))
        with contextlib.suppress(*EXPECTED):
            await allotments.release_hold(rt, ORG, made.id, HoldReleaseDraft(quantity=1))
        await asyncio.sleep(rng.random() * 0.01)


async def _in_use(rt: Runtime, tt_id: str) -> tuple[int, int, int]:
    """(orders' units, holds' units, the type's held+sold counters) in one snapshot."""
    async with rt.db.snapshot() as tx:
        ordered = await tx.scalar(
            select(func.coalesce(func.sum(OrderItem.quantity), 0))
            .join(Order, Order.id == OrderItem.order_id)
            .where(
                OrderItem.ticket_type_id == tt_id,
                Order.status.in_([OrderStatus.PENDING, OrderStatus.PAID]),
            )
        )
        held = await tx.scalar(
            select(func.coalesce(func.sum(OrganizerHold.quantity), 0)).where(
                OrganizerHold.ticket_type_id == tt_id
            )
        )
        counted = await tx.scalar(
            select(TicketType.quantity_reserved + TicketType.quantity_sold).where(
                TicketType.id == tt_id
            )
        )
    return int(ordered or 0), int(held or 0), int(counted or 0)


async def test_a_flash_sale_racing_organizer_holds_never_oversells(postgres_url: str) -> None:
    rt = _runtime(postgres_url)
    try:
        event = await events.create_event(rt, ORG, EventDraft(name="Hold race", max_attendees=CAP))
        tt = await tickets.create_ticket_type(
            rt, ORG, event.id, TicketTypeDraft(name="Hot", quantity_total=TOTAL)
        )
        await pools.create_pool(
            rt, ORG, event.id, PoolDraft(name="Hall", capacity=POOL, ticket_type_ids=[tt.id])
        )
        # Some stock is held before the doors open, so the buyers meet holds from the start.
        opening = HoldDraft(name="Sponsors", ticket_type_id=tt.id, quantity=10)
        await allotments.create_hold(rt, ORG, event.id, opening)

        async def buyers(thread: int, runtime: Runtime) -> None:
            async def one(n: int) -> None:
                await asyncio.sleep(random.random() * 0.05)
                await _buy(runtime, f"b{thread}-{n}", tt)

            await asyncio.gather(*(one(n) for n in range(BUYERS_PER_THREAD)))

        async def organizers(runtime: Runtime) -> None:
            await asyncio.gather(_organizer(runtime, tt, 1), _organizer(runtime, tt, 2))

        threads = [
            _in_thread(postgres_url, functools.partial(buyers, i)) for i in range(BUYER_THREADS)
        ]
        threads.append(_in_thread(postgres_url, organizers))
        checkpoints = 0
        while any(t.is_alive() for t in threads):
            ordered, held, counted = await _in_use(rt, tt.id)
            assert ordered + held <= CAP, f"oversold: {ordered} ordered + {held} held > {CAP}"
            assert counted == ordered + held, f"counter {counted} != rows {ordered}+{held}"
            checkpoints += 1
            await asyncio.sleep(0.01)
        for thread in threads:
            thread.join()
            assert thread.failures == []  # type: ignore[attr-defined]

        ordered, held, counted = await _in_use(rt, tt.id)
        assert ordered + held <= CAP
        assert counted == ordered + held
        assert held > 0 or ordered == CAP  # the race left units somewhere worth releasing
        for found in await allotments.list_holds(rt, ORG, event.id):
            await allotments.release_hold(rt, ORG, found.id, HoldReleaseDraft())
        drained = 0
        while await _buy(rt, f"late-{drained}", tt):
            drained += 1
        ordered, held, counted = await _in_use(rt, tt.id)
        print(
            f"\nhold race: {checkpoints} checkpoints, {ordered} sold of cap {CAP} "
            f"({drained} after the holds were released)"
        )
        assert (ordered, held, counted) == (CAP, 0, CAP)
        assert checkpoints >= 3
        async with rt.db.transaction() as tx:
            assert [str(d) for d in await reconcile(tx)] == []
    finally:
        await rt.close()


async def _naive_release(rt: Runtime, hold_id: str, n: int) -> None:
    """The bug: read the hold's units, think, write them back lowered, give stock back."""
    async with rt.db.transaction() as tx:
        found = await tx.get(OrganizerHold, hold_id)
        assert found is not None
        if found.quantity < n:
            raise HoldShort("not enough")
        units, tid, event_id = found.quantity, found.ticket_type_id, found.event_id
        assert tid is not None  # a hold on a ticket type
        await asyncio.sleep(0.05)  # the application's time between its read and its write
        await tx.execute(
            update(OrganizerHold).where(OrganizerHold.id == hold_id).values(quantity=units - n)
        )
        await inventory.release_hold(tx, [OrderLine(tid, n)], event_id=event_id)


async def _real_release(rt: Runtime, hold_id: str, n: int) -> None:
    await allotments.release_hold(rt, ORG, hold_id, HoldReleaseDraft(quantity=n))


async def _race_releases(
    rt: Runtime, release: Callable[[Runtime, str, int], Awaitable[None]]
) -> int:
    """10 tickets sold, a 3-unit hold, two racing releases of it, then the public buys all
    it can: the units sold in all."""
    event = await events.create_event(rt, ORG, EventDraft(name="Release control"))
    tt = await tickets.create_ticket_type(
        rt, ORG, event.id, TicketTypeDraft(name="Hot", quantity_total=13)
    )
    sold = 0
    while sold < 10 and await _buy(rt, f"c-{sold}", tt):
        sold += 1
    made = await allotments.create_hold(
        rt, ORG, event.id, HoldDraft(name="Press", ticket_type_id=tt.id, quantity=3)
    )

    async def attempt() -> None:
        with contextlib.suppress(HoldShort):
            await release(rt, made.id, 3)

    await asyncio.gather(attempt(), attempt())
    while sold < 20 and await _buy(rt, f"c-{sold}", tt):
        sold += 1
    return sold


async def test_control_a_release_without_the_guard_sells_units_twice(postgres_url: str) -> None:
    # A database of its own: the naive run leaves drift on purpose. It is made and
    # migrated in a thread (migrations run their own event loop).
    own = postgres_database()
    url = await asyncio.to_thread(own.__enter__)
    rt = _runtime(url)
    try:
        naive = await _race_releases(rt, _naive_release)
        real = await _race_releases(rt, _real_release)
    finally:
        await rt.close()
        await asyncio.to_thread(own.__exit__, None, None, None)
    print(f"\nrelease control: naive sold {naive} of 13; guarded sold {real} of 13")
    assert naive > 13, "the naive release did not oversell: the test would prove nothing"
    assert real == 13
