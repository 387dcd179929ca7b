"""Batched admission (capacity/batching.py) and sold-out marks (capacity/soldout.py).

One process: orders queued together are applied in one transaction, in arrival order,
each refused on its own; the savepoint is what keeps a refused order's rows out (control
test); sold-out marks refuse without the database and let go within their TTL of a
release in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select, update

from headcount import origin
from headcount.capacity import allotments, events, orders, sold_out_news, tickets
from headcount.capacity.allotments import HoldDraft, HoldReleaseDraft
from headcount.capacity.batching import HoldBatches
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import OrderView, TicketTypeView
from headcount.config import Settings
from headcount.domain.errors import HeadcountError, InvalidQuantity, RateLimited, SoldOut
from headcount.domain.tickets import OrderLine, OrderStatus
from headcount.ledger import inventory
from headcount.ledger.changes import Change
from headcount.ledger.models import Order, OrderItem, TicketType
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support import services
from support.auth import attendee, organizer
from support.databases import postgres_database

ORG = organizer("org-batch")


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime.from_settings(
        Settings(database_url=database_url, env="test", db_statement_timeout_ms=60_000)
    )
    yield runtime
    await runtime.close()


async def stock(rt: Runtime, total: int, *, buckets: int = 1, **terms: Any) -> TicketTypeView:
    event = await events.create_event(rt, ORG, EventDraft(name="Batch"))
    return await tickets.create_ticket_type(
        rt,
        ORG,
        event.id,
        TicketTypeDraft(name="Drop", quantity_total=total, stock_buckets=buckets, **terms),
    )


def draft(tt: TicketTypeView, quantity: int = 1) -> OrderDraft:
    return OrderDraft(
        event_id=tt.event_id, items=[OrderItemInput(ticket_type_id=tt.id, quantity=quantity)]
    )


async def outcomes(calls: Sequence[Awaitable[OrderView]]) -> list[OrderView | HeadcountError]:
    """Each call's answer or refusal, started in list order (their arrival order)."""
    tasks = [asyncio.ensure_future(c) for c in calls]
    found: list[OrderView | HeadcountError] = []
    for task in tasks:
        try:
            found.append(await task)
        except HeadcountError as exc:
            found.append(exc)
    return found


async def no_drift(rt: Runtime) -> None:
    async with rt.db.transaction() as tx:
        assert [str(d) for d in await reconcile(tx)] == []


@pytest.mark.parametrize("buckets", [1, 4])
async def test_one_process_is_served_in_arrival_order(rt: Runtime, buckets: int) -> None:
    """40 buyers of one ticket each, 12 in stock: exactly the first 12 to arrive get one,
    and they were applied in batches, not one transaction each."""
    tt = await stock(rt, 12, buckets=buckets)
    before = rt.hold_batches.batches
    found = await outcomes(
        [orders.create_order(rt, attendee(f"arr-{n}"), draft(tt)) for n in range(40)]
    )
    won = [n for n, o in enumerate(found) if isinstance(o, OrderView)]
    assert won == list(range(12))
    assert all(isinstance(o, SoldOut) for o in found[12:])
    assert rt.hold_batches.largest > 1
    assert rt.hold_batches.batches - before < 12
    assert (await tickets.get_ticket_type(rt, tt.id)).quantity_reserved == 12
    await no_drift(rt)


async def test_one_refusal_refuses_only_that_order(database_url: str) -> None:
    """Within one batch: bad terms, a buyer at the hold limit and a line larger than what
    is left are refused; every other order in the same transaction is admitted."""
    rt = Runtime.from_settings(
        Settings(database_url=database_url, env="test", max_pending_orders_per_user=1)
    )
    tag = secrets.token_hex(3)  # the hold limit counts a user's orders in every event
    try:
        tt = await stock(rt, 5, max_per_order=3)
        await orders.create_order(rt, attendee(f"greedy-{tag}"), draft(tt))  # at the hold limit now
        before = rt.hold_batches.batches
        found = await outcomes(
            [
                orders.create_order(rt, attendee(f"a-{tag}"), draft(tt, 1)),
                orders.create_order(rt, attendee(f"b-{tag}"), draft(tt, 4)),  # over max_per_order
                orders.create_order(rt, attendee(f"greedy-{tag}"), draft(tt, 1)),  # hold limit
                orders.create_order(rt, attendee(f"c-{tag}"), draft(tt, 2)),
                orders.create_order(rt, attendee(f"d-{tag}"), draft(tt, 2)),  # 1 left: too few
                orders.create_order(rt, attendee(f"e-{tag}"), draft(tt, 1)),
            ]
        )
        kinds = [type(o) for o in found]
        assert kinds == [OrderView, InvalidQuantity, RateLimited, OrderView, SoldOut, OrderView]
        # The orders after the first queued while it ran: one more transaction at most
        # for the five behind it (the sold-out one may be asked again after an expiry
        # check, which finds nothing to expire).
        assert rt.hold_batches.batches - before <= 3
        assert (await tickets.get_ticket_type(rt, tt.id)).quantity_available == 0
        await no_drift(rt)
    finally:
        await rt.close()


async def _late_sell_out(database_url: str, *, isolate: bool) -> tuple[int, int]:
    """One unit; process A's batch places its order row, then process B takes the unit
    before A's stock UPDATE (forced). Returns (units in pending orders, total)."""
    a = Runtime.from_settings(Settings(database_url=database_url, env="test"))
    b = Runtime.from_settings(Settings(database_url=database_url, env="test", hold_batch_max=0))
    a.hold_batches = HoldBatches(a.db, max_batch=64, isolate=isolate)
    real = inventory.reserve
    b_done = asyncio.Event()
    paused = False

    async def reserve_after_b(*args: Any, **kwargs: Any) -> dict[str, int | None]:
        nonlocal paused
        if not paused:  # A's order, the first to get here
            paused = True
            await b_done.wait()
        return await real(*args, **kwargs)

    try:
        # A customer limit keeps the batch on its order-by-order path (the one with
        # savepoints); plain batches take `_hold_together`, which writes nothing before
        # its locked read.
        tt = await stock(a, 1, max_per_customer=5)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(inventory, "reserve", reserve_after_b)
            a_task = asyncio.ensure_future(orders.create_order(a, attendee("a-1"), draft(tt)))
            await asyncio.sleep(0.2)  # A's order row is in; its stock UPDATE waits for B
            await orders.create_order(b, attendee("b-1"), draft(tt))
            b_done.set()
            with contextlib.suppress(SoldOut):
                await a_task
        async with a.db.snapshot() as tx:
            held = await tx.scalar(
                select(func.coalesce(func.sum(OrderItem.quantity), 0))
                .join(Order, Order.id == OrderItem.order_id)
                .where(OrderItem.ticket_type_id == tt.id, Order.status == OrderStatus.PENDING)
            )
        return int(held or 0), 1
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("isolate", [True, False], ids=["savepoint", "control"])
async def test_a_refused_order_in_a_batch_leaves_nothing(isolate: bool) -> None:
    """The guard: each order's savepoint. Refused late (its stock taken by another process
    after its order row went in), the order's rows roll back with its savepoint; without
    the savepoint (control) they commit with the batch, and pending orders hold more
    units than exist: oversold. (A database of its own: the control leaves drift.)"""
    services.need_postgres()
    database = postgres_database("hc_batch_control")
    url = await asyncio.to_thread(database.__enter__)  # it migrates with its own loop
    try:
        held, total = await _late_sell_out(url, isolate=isolate)
    finally:
        await asyncio.to_thread(database.__exit__, None, None, None)
    if isolate:
        assert held == total
    else:
        assert held > total


async def test_refusals_after_sell_out_need_no_database(rt: Runtime) -> None:
    rt.sold_out.ttl = 3600.0  # a loaded machine must not outlast the mark mid-test
    tt = await stock(rt, 2)
    for n in range(2):
        await orders.create_order(rt, attendee(f"first-{n}"), draft(tt))
    with pytest.raises(SoldOut):  # the database refuses and the type is marked
        await orders.create_order(rt, attendee("late-0"), draft(tt))
    opened = 0
    real = rt.db.transaction

    def counting() -> Any:
        nonlocal opened
        opened += 1
        return real()

    rt.db.transaction = counting  # type: ignore[method-assign]
    try:
        for n in range(1, 50):
            with pytest.raises(SoldOut):
                await orders.create_order(rt, attendee(f"late-{n}"), draft(tt))
    finally:
        rt.db.transaction = real  # type: ignore[method-assign]
    assert opened == 0
    assert rt.sold_out.answered >= 49


async def test_a_release_elsewhere_ends_the_mark_within_its_ttl(database_url: str) -> None:
    """Process A marks the type sold out; process B cancels a hold. A may refuse for at
    most its TTL after B's commit, and then sells the freed ticket. (The TTL is long
    enough that B's cancel on a loaded machine cannot outlast the mark before A asks.)"""
    ttl = 2.0
    a = Runtime.from_settings(
        Settings(database_url=database_url, env="test", sold_out_mark_ttl=ttl)
    )
    b = Runtime.from_settings(Settings(database_url=database_url, env="test"))
    try:
        tt = await stock(a, 1)
        held = await orders.create_order(b, attendee("holder"), draft(tt))
        with pytest.raises(SoldOut):
            await orders.create_order(a, attendee("waiting-0"), draft(tt))
        await orders.cancel_order(b, attendee("holder"), held.id)
        released = time.monotonic()
        n = 0
        while True:
            n += 1
            try:
                await orders.create_order(a, attendee(f"waiting-{n}"), draft(tt))
                break
            except SoldOut:
                assert time.monotonic() - released <= ttl + 0.5, "refused past the TTL"
                await asyncio.sleep(0.02)
        assert a.sold_out.answered >= 1
        await no_drift(a)
    finally:
        await a.close()
        await b.close()


async def test_a_release_elsewhere_ends_the_mark_at_once_on_postgresql(
    postgres_url: str,
) -> None:
    """With PostgreSQL reached directly, a release committed by process B is heard by A
    (NOTIFY in B's transaction, LISTEN in A): A's mark ends within moments, not its TTL.
    C marks the type too but does not listen: it still refuses (the control)."""
    hour = 3600.0
    a, b, c = (
        Runtime.from_settings(
            Settings(database_url=postgres_url, env="test", sold_out_mark_ttl=hour)
        )
        for _ in range(3)
    )
    listening = asyncio.ensure_future(sold_out_news.run(a))
    try:
        tt = await stock(a, 1)
        held = await orders.create_order(b, attendee("holder"), draft(tt))
        for n, marked in enumerate((a, c)):
            with pytest.raises(SoldOut):
                await orders.create_order(marked, attendee(f"marked-{n}"), draft(tt))
        with pytest.raises(SoldOut):  # from the mark: no transaction
            await orders.create_order(a, attendee("from-the-mark"), draft(tt))
        assert a.sold_out.answered == 1
        await orders.cancel_order(b, attendee("holder"), held.id)
        deadline = time.monotonic() + 5
        while a.sold_out.refusal(tt.event_id, [OrderLine(tt.id, 1)], a.clock()) is not None:
            assert time.monotonic() < deadline, "the release was not heard"
            await asyncio.sleep(0.01)
        with pytest.raises(SoldOut):  # C did not listen: its mark stands
            await orders.create_order(c, attendee("control"), draft(tt))
        assert c.sold_out.answered == 1
        sold = await orders.create_order(a, attendee("heard"), draft(tt))
        assert sold.status is OrderStatus.PENDING
        await no_drift(a)
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        for runtime in (a, b, c):
            await runtime.close()


async def test_a_release_in_the_same_process_ends_the_mark_at_once(rt: Runtime) -> None:
    rt.sold_out.ttl = 3600.0
    tt = await stock(rt, 1)
    held = await orders.create_order(rt, attendee("holder"), draft(tt))
    with pytest.raises(SoldOut):
        await orders.create_order(rt, attendee("late"), draft(tt))
    await orders.cancel_order(rt, attendee("holder"), held.id)
    assert (
        await orders.create_order(rt, attendee("late"), draft(tt))
    ).status is OrderStatus.PENDING


async def test_an_organizer_hold_released_in_the_same_process_ends_the_mark(
    rt: Runtime,
) -> None:
    rt.sold_out.ttl = 3600.0
    tt = await stock(rt, 2)
    hold = await allotments.create_hold(
        rt, ORG, tt.event_id, HoldDraft(name="Press", ticket_type_id=tt.id, quantity=1)
    )
    await orders.create_order(rt, attendee("first"), draft(tt))
    with pytest.raises(SoldOut):
        await orders.create_order(rt, attendee("late"), draft(tt))
    await allotments.release_hold(rt, ORG, hold.id, HoldReleaseDraft())
    assert (
        await orders.create_order(rt, attendee("late"), draft(tt))
    ).status is OrderStatus.PENDING


async def test_a_keyed_retry_after_sell_out_replays_its_order(rt: Runtime) -> None:
    """A retry with the key of an order that got the last ticket is its order, not a
    refusal from the mark."""
    tt = await stock(rt, 1)
    first = await orders.create_order(rt, attendee("k"), draft(tt), idempotency_key="key-1")
    with pytest.raises(SoldOut):
        await orders.create_order(rt, attendee("other"), draft(tt))
    again = await orders.create_order(rt, attendee("k"), draft(tt), idempotency_key="key-1")
    assert again.id == first.id


async def test_each_order_in_a_batch_is_recorded_as_its_callers(rt: Runtime) -> None:
    """The batch runs in whoever started it; each order's `order.created` still names its
    own request and buyer."""
    tt = await stock(rt, 20)

    async def buy(n: int) -> OrderView:
        token = origin.begin_request(f"req-{n}")
        origin.set_actor(f"who-{n}", "attendee")
        try:
            return await orders.create_order(rt, attendee(f"who-{n}"), draft(tt))
        finally:
            origin.end_request(token)

    bought = await asyncio.gather(*(buy(n) for n in range(10)))
    assert rt.hold_batches.largest > 1
    async with rt.db.snapshot() as tx:
        rows = (
            await tx.execute(
                select(Change.resource_id, Change.request_id, Change.actor_sub).where(
                    Change.type == "order.created", Change.event_id == tt.event_id
                )
            )
        ).all()
    by_order = {rid: (req, sub) for rid, req, sub in rows}
    for n, view in enumerate(bought):
        assert by_order[view.id] == (f"req-{n}", f"who-{n}")


@pytest.mark.parametrize("guarded", [True, False], ids=["guard", "control-without"])
async def test_a_plain_batch_that_read_stale_stock_is_stopped_by_its_guard(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, guarded: bool
) -> None:
    """Two processes' plain batches both read the last 3 tickets, the read's lock made a
    no-op, and each grants all 3. With the UPDATE's guard the second batch finds it
    refused, rolls back and runs order by order: sold out, 3 held. Without the guard
    (control) the second UPDATE goes through to the database's last line, the CHECK
    constraint, and the batch fails with a 500-class error instead of an answer."""
    both_read = asyncio.Barrier(2)

    async def stale_free(tx: Any, ticket_type_id: str, *, event_id: str) -> int | None:
        free = await tx.scalar(
            select(
                TicketType.quantity_total - TicketType.quantity_sold - TicketType.quantity_reserved
            ).where(TicketType.id == ticket_type_id, TicketType.event_id == event_id)
        )
        await both_read.wait()
        return int(free)

    async def unguarded(
        tx: Any, ticket_type_id: str, total: int, *, event_id: str
    ) -> tuple[int, str, int]:
        found = (
            await tx.execute(
                update(TicketType)
                .where(TicketType.id == ticket_type_id, TicketType.event_id == event_id)
                .values(quantity_reserved=TicketType.quantity_reserved + total)
                .returning(TicketType.membership_version, TicketType.event_id)
                .execution_options(synchronize_session=False)
            )
        ).one()
        return int(found[0]), str(found[1]), 0

    monkeypatch.setattr(inventory, "locked_free", stale_free)
    if not guarded:
        monkeypatch.setattr(inventory, "hold_total", unguarded)
    a = Runtime.from_settings(Settings(database_url=postgres_url, env="test"))
    b = Runtime.from_settings(Settings(database_url=postgres_url, env="test"))
    try:
        tt = await stock(a, 3)
        calls = [
            orders.create_order(rt, attendee(f"stale-{name}-{n}"), draft(tt))
            for name, rt in (("a", a), ("b", b))
            for n in range(3)
        ]
        found = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=60)
        held = (await tickets.get_ticket_type(a, tt.id)).quantity_reserved
        if guarded:
            assert sum(isinstance(f, OrderView) for f in found) == held == 3
            assert sum(isinstance(f, SoldOut) for f in found) == 3
        else:
            assert held == 3
            failed = [f for f in found if not isinstance(f, OrderView | HeadcountError)]
            assert failed, "without the guard only the CHECK constraint stopped the oversell"
    finally:
        await a.close()
        await b.close()


async def test_confirms_and_cancels_ride_the_types_batches(rt: Runtime) -> None:
    """Confirms and cancels of one-type orders queue with the type's holds: twenty at
    once take fewer transactions than twenty, a keyed one is served alone in its turn, and
    mixed with new holds every count still equals the rows."""
    tag = secrets.token_hex(3)
    tt = await stock(rt, 30)
    buyers = [attendee(f"cc-{tag}-{n}") for n in range(20)]
    held = [await orders.create_order(rt, b, draft(tt)) for b in buyers]

    before = rt.hold_batches.batches
    found = await outcomes(
        [orders.confirm_order(rt, ORG, o.id) for o in held[:10]]
        + [
            orders.cancel_order(rt, b, o.id)
            for b, o in zip(buyers[10:19], held[10:19], strict=True)
        ]
        + [orders.cancel_order(rt, buyers[19], held[19].id, idempotency_key=f"k-{tag}")]
    )
    assert [o.status for o in found if isinstance(o, OrderView)] == [OrderStatus.PAID] * 10 + [
        OrderStatus.CANCELLED
    ] * 10
    assert 0 < rt.hold_batches.batches - before < 20
    assert rt.hold_batches.largest > 1  # the holds above came one at a time
    again = await orders.cancel_order(rt, buyers[19], held[19].id, idempotency_key=f"k-{tag}")
    assert again.status is OrderStatus.CANCELLED

    # Holds, refunds and confirms of the same type at once: 20 free, 25 buyers.
    late = [attendee(f"cc-late-{tag}-{n}") for n in range(25)]
    mixed = await outcomes(
        [orders.create_order(rt, b, draft(tt)) for b in late[:12]]
        + [orders.cancel_order(rt, ORG, o.id) for o in held[:5]]  # refunds: 5 more free
        + [orders.create_order(rt, b, draft(tt)) for b in late[12:]]
    )
    admitted = sum(isinstance(o, OrderView) and o.status is OrderStatus.PENDING for o in mixed)
    refunded = sum(isinstance(o, OrderView) and o.status is OrderStatus.REFUNDED for o in mixed)
    assert refunded == 5
    assert 20 <= admitted <= 25
    assert all(isinstance(o, OrderView | SoldOut) for o in mixed)
    after = await tickets.get_ticket_type(rt, tt.id)
    assert (after.quantity_sold, after.quantity_reserved) == (5, admitted)
    await no_drift(rt)
