"""Organizer holds on a pool alone: room in a shared pool set aside for whichever member
ticket type the holder ends up with (SQLite and PostgreSQL).

A pool hold counts in its pool's `quantity_used` and the event cap, in no type's stock;
each step checks those figures, the member types' counters and that `reconcile` (rows
and the change log replayed) finds no drift. The race at the end runs many orders on two
member types against an organizer creating, splitting and releasing pool holds, and then
checks the pool's use exactly against the rows.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from headcount.capacity import allotments, events, orders, pools, tickets, waitlists
from headcount.capacity.allotments import (
    HoldDraft,
    HoldRedeemDraft,
    HoldReleaseDraft,
    HoldSplitDraft,
)
from headcount.capacity.events import EventDraft
from headcount.capacity.pools import PoolDraft
from headcount.capacity.snapshot import capacity_snapshot
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import OrganizerHoldView, PoolView, TicketTypeView
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.domain.changes import ChangeType
from headcount.domain.errors import (
    EventFull,
    HoldShort,
    HoldTarget,
    InvalidRequest,
    NotFound,
    PoolExhausted,
    SoldOut,
)
from headcount.domain.identity import Role
from headcount.domain.tickets import OrderStatus
from headcount.ledger import allotments as allotment_rows
from headcount.ledger import usage
from headcount.ledger.allotments import OrganizerHold
from headcount.ledger.attendance import EventCapacity
from headcount.ledger.models import Order, OrderItem, TicketType
from headcount.ledger.pools import CapacityPool
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import attendee, bearer, organizer
from support.buying import buy
from support.changes import Reader, only, subset
from support.graphql import gql

ORG = organizer("org-pool-holds")


async def make_hall(
    rt: Runtime, room: int, *, totals: tuple[int, int] = (10, 10), cap: int | None = None
) -> tuple[PoolView, TicketTypeView, TicketTypeView]:
    """A pool of `room` places shared by two ticket types (A, B) of a new event."""
    event = await events.create_event(rt, ORG, EventDraft(name="Hall", max_attendees=cap))
    a, b = [
        await tickets.create_ticket_type(
            rt, ORG, event.id, TicketTypeDraft(name=name, quantity_total=total)
        )
        for name, total in zip(("A", "B"), totals, strict=True)
    ]
    pool = await pools.create_pool(
        rt, ORG, event.id, PoolDraft(name="Hall", capacity=room, ticket_type_ids=[a.id, b.id])
    )
    return pool, a, b


async def pool_hold(rt: Runtime, pool: PoolView, qty: int, **extra: object) -> OrganizerHoldView:
    draft = HoldDraft.model_validate(
        {"name": "Sponsors", "pool_id": pool.id, "quantity": qty, **extra}
    )
    return await allotments.create_hold(rt, ORG, pool.event_id, draft)


async def used(rt: Runtime, pool: PoolView) -> int:
    return (await pools.get_pool(rt, pool.id)).quantity_used


async def reserved(rt: Runtime, tt: TicketTypeView) -> int:
    return (await tickets.get_ticket_type(rt, tt.id)).quantity_reserved


async def event_tickets(rt: Runtime, event_id: str) -> int:
    shown = (await capacity_snapshot(rt, event_id)).event_total
    assert shown is not None
    return shown.tickets


async def assert_no_drift(rt: Runtime) -> None:
    async with rt.db.transaction() as tx:
        assert [str(d) for d in await reconcile(tx)] == []


async def wait_on(rt: Runtime, who: str, tt: TicketTypeView) -> None:
    entry = await waitlists.join_ticket_waitlist(
        rt, attendee(who), tt.id, TicketWaitlistDraft(quantity=1)
    )
    assert entry.status == "waiting"


async def status_of(rt: Runtime, who: str, tt: TicketTypeView) -> str:
    return (await waitlists.my_ticket_waitlist_entry(rt, attendee(who), tt.id)).status


async def test_a_pool_hold_takes_the_pool_and_the_cap_not_a_types_stock(
    runtime: Runtime,
) -> None:
    pool, a, b = await make_hall(runtime, 6, cap=8)
    reader = Reader(runtime, pool.event_id)
    await reader.new()
    made = await pool_hold(runtime, pool, 4)
    assert (made.pool_id, made.ticket_type_id, made.quantity) == (pool.id, None, 4)
    assert await used(runtime, pool) == 4
    assert (await reserved(runtime, a), await reserved(runtime, b)) == (0, 0)
    assert await event_tickets(runtime, pool.event_id) == 4
    # The pool (read alone and in the snapshot) says which of its used units are held.
    assert (await pools.get_pool(runtime, pool.id)).held_by_organizer == 4
    shown = await capacity_snapshot(runtime, pool.event_id)
    assert [(p.id, p.held_by_organizer) for p in shown.pools] == [(pool.id, 4)]
    # Either member type meets the hold's units as taken room.
    with pytest.raises(PoolExhausted):
        await buy(runtime, "ph-ann", a, 3)
    await buy(runtime, "ph-ann", b, 2)
    with pytest.raises(PoolExhausted):
        await buy(runtime, "ph-bo", a)
    created = only(await reader.new(), ChangeType.ORGANIZER_HOLD_CREATED)
    subset(created.payload, pool_id=pool.id, ticket_type_id=None, quantity=4, items=[])
    assert [h.id for h in await allotments.list_holds(runtime, ORG, pool.event_id)] == [made.id]
    await assert_no_drift(runtime)


async def test_a_pool_hold_is_refused_as_an_order_would_be_and_changes_nothing(
    runtime: Runtime,
) -> None:
    pool, a, _ = await make_hall(runtime, 6, cap=5)
    other, _, _ = await make_hall(runtime, 6)
    with pytest.raises(PoolExhausted):
        await pool_hold(runtime, pool, 7)
    with pytest.raises(EventFull):
        await pool_hold(runtime, pool, 6)  # the pool has 6, the cap 5
    both = HoldDraft(name="x", quantity=1, ticket_type_id=a.id, pool_id=pool.id)
    neither = HoldDraft(name="x", quantity=1)
    for draft in (both, neither):
        with pytest.raises(HoldTarget):
            await allotments.create_hold(runtime, ORG, pool.event_id, draft)
    foreign = HoldDraft(name="x", quantity=1, pool_id=other.id)
    with pytest.raises(InvalidRequest):
        await allotments.create_hold(runtime, ORG, pool.event_id, foreign)
    with pytest.raises(NotFound):
        await allotments.create_hold(
            runtime, ORG, pool.event_id, HoldDraft(name="x", quantity=1, pool_id="pool_nope")
        )
    assert await used(runtime, pool) == 0
    assert await event_tickets(runtime, pool.event_id) == 0
    assert await allotments.list_holds(runtime, ORG, pool.event_id) == []
    await assert_no_drift(runtime)


async def test_the_schema_keeps_exactly_one_target(runtime: Runtime) -> None:
    pool, a, _ = await make_hall(runtime, 6)
    now = runtime.clock()

    async def insert(target: dict[str, str]) -> None:
        async with runtime.db.transaction() as tx:
            row = OrganizerHold(
                id=f"hold_bad{len(target)}",
                event_id=pool.event_id,
                name="x",
                quantity=1,
                created_by="x",
                created_at=now,
                updated_at=now,
                **target,
            )
            tx.add(row)
            await tx.flush()

    for target in ({"ticket_type_id": a.id, "pool_id": pool.id}, {}):
        with pytest.raises(IntegrityError):
            await insert(target)


async def test_split_keeps_the_pool_and_release_offers_the_members_queues_first(
    runtime: Runtime,
) -> None:
    pool, a, b = await make_hall(runtime, 3, cap=10)
    made = await pool_hold(runtime, pool, 3)
    await wait_on(runtime, "ph-bo", b)  # first in B's line
    await wait_on(runtime, "ph-cy", b)
    both = await allotments.split_hold(
        runtime, ORG, made.id, HoldSplitDraft(name="Press", quantity=2)
    )
    assert (both.source.quantity, both.split.quantity) == (1, 2)
    assert (both.split.pool_id, both.split.ticket_type_id) == (pool.id, None)
    assert await used(runtime, pool) == 3  # a split moves nothing
    left = await allotments.release_hold(runtime, ORG, both.split.id, HoldReleaseDraft(quantity=1))
    assert left.quantity == 1
    assert (await status_of(runtime, "ph-bo", b), await status_of(runtime, "ph-cy", b)) == (
        "offered",
        "waiting",
    )
    # The offer holds the place on B: the pool's use did not move, the public gets nothing.
    assert (await used(runtime, pool), await reserved(runtime, b)) == (3, 1)
    with pytest.raises(PoolExhausted):
        await buy(runtime, "ph-newcomer", a)
    await allotments.release_hold(runtime, ORG, both.split.id, HoldReleaseDraft())
    assert await status_of(runtime, "ph-cy", b) == "offered"
    with pytest.raises(HoldShort):
        await allotments.release_hold(runtime, ORG, made.id, HoldReleaseDraft(quantity=2))
    # The last unit goes back to the pool and the cap, to the public now nobody waits.
    await allotments.release_hold(runtime, ORG, made.id, HoldReleaseDraft())
    assert (await used(runtime, pool), await event_tickets(runtime, pool.event_id)) == (2, 2)
    await buy(runtime, "ph-newcomer", a)
    await assert_no_drift(runtime)


async def test_redeeming_a_pool_hold_takes_the_named_members_own_stock(
    runtime: Runtime,
) -> None:
    pool, a, b = await make_hall(runtime, 6, totals=(10, 1), cap=6)
    event = await events.create_event(runtime, ORG, EventDraft(name="Elsewhere"))
    stranger = await tickets.create_ticket_type(
        runtime, ORG, event.id, TicketTypeDraft(name="C", quantity_total=5)
    )
    made = await pool_hold(runtime, pool, 4, redemption_code="HALL")
    sam = attendee("ph-sam")
    order = await allotments.redeem_hold(
        runtime, sam, made.id, HoldRedeemDraft(quantity=2, code="HALL", ticket_type_id=a.id)
    )
    assert [(i.ticket_type_id, i.quantity) for i in order.items] == [(a.id, 2)]
    # The pool and the cap counted these units already; A's own stock now holds them.
    assert (await used(runtime, pool), await reserved(runtime, a)) == (4, 2)
    assert await event_tickets(runtime, pool.event_id) == 4
    assert (await allotments.get_hold(runtime, ORG, made.id)).quantity == 2

    async def refused(error: type[Exception], **asked: object) -> None:
        draft = HoldRedeemDraft.model_validate({"quantity": 1, "code": "HALL", **asked})
        before = await figures()
        with pytest.raises(error):
            await allotments.redeem_hold(runtime, sam, made.id, draft)
        assert await figures() == before
        assert before[0] == 2  # the hold keeps its units

    async def figures() -> tuple[int, ...]:
        held = (await allotments.get_hold(runtime, ORG, made.id)).quantity
        return (
            held,
            await used(runtime, pool),
            await reserved(runtime, a),
            await reserved(runtime, b),
        )

    await refused(InvalidRequest)  # no member type named
    await refused(InvalidRequest, ticket_type_id=stranger.id)  # not in the pool
    await buy(runtime, "ph-ann", b)  # B's one ticket is gone
    await refused(SoldOut, ticket_type_id=b.id)
    assert (await used(runtime, pool), await reserved(runtime, b)) == (5, 1)
    # A redeemed order lives as any order: cancelled, its units go back to the public.
    await orders.confirm_order(runtime, ORG, order.id)
    comp = await allotments.redeem_hold(
        runtime, ORG, made.id, HoldRedeemDraft(quantity=2, ticket_type_id=a.id)
    )
    await orders.cancel_order(runtime, ORG, comp.id)
    assert (await allotments.get_hold(runtime, ORG, made.id)).quantity == 0
    assert (await used(runtime, pool), await event_tickets(runtime, pool.event_id)) == (3, 3)
    await assert_no_drift(runtime)


async def test_a_pool_hold_releases_itself_when_its_time_comes(runtime: Runtime) -> None:
    pool, a, _ = await make_hall(runtime, 3, cap=4)
    now = runtime.clock()
    made = await pool_hold(runtime, pool, 2, release_at=now + timedelta(hours=1))
    later = HoldDraft(
        name="T", ticket_type_id=a.id, quantity=1, release_at=now + timedelta(hours=2)
    )
    await allotments.create_hold(runtime, ORG, pool.event_id, later)
    await wait_on(runtime, "ph-bo", a)
    await wait_on(runtime, "ph-cy", a)
    await wait_on(runtime, "ph-di", a)
    assert await allotments.sweep_due_holds(runtime) == 0
    runtime.clock = lambda: now + timedelta(hours=1, seconds=1)
    assert await allotments.sweep_due_holds(runtime) == 1
    assert (await allotments.get_hold(runtime, ORG, made.id)).quantity == 0
    seen = [await status_of(runtime, who, a) for who in ("ph-bo", "ph-cy", "ph-di")]
    assert seen == ["offered", "offered", "waiting"]
    assert await used(runtime, pool) == 3  # the two offers hold what the pool hold held
    runtime.clock = lambda: now + timedelta(hours=2, seconds=1)
    assert await allotments.sweep_due_holds(runtime) == 1  # the type hold, after it
    assert await status_of(runtime, "ph-di", a) == "offered"
    await assert_no_drift(runtime)


async def test_pool_holds_over_rest_and_graphql(http: httpx.AsyncClient) -> None:
    org = bearer("org-pool-holds-http", Role.ORGANIZER)
    made = await http.post("/api/v1/events", json={"name": "Hall over HTTP"}, headers=org)
    event_id = made.json()["id"]
    tt = await http.post(
        f"/api/v1/events/{event_id}/ticket-types",
        json={"name": "GA", "quantity_total": 10},
        headers=org,
    )
    pool = await http.post(
        f"/api/v1/events/{event_id}/pools",
        json={"name": "Hall", "capacity": 5, "ticket_type_ids": [tt.json()["id"]]},
        headers=org,
    )
    assert pool.status_code == 201, pool.text
    pool_id = pool.json()["id"]
    base = f"/api/v1/events/{event_id}/holds"
    held = await http.post(
        base, json={"name": "Sponsors", "pool_id": pool_id, "quantity": 3}, headers=org
    )
    assert held.status_code == 201, held.text
    assert (held.json()["pool_id"], held.json()["ticket_type_id"]) == (pool_id, None)
    short = await http.post(
        base, json={"name": "More", "pool_id": pool_id, "quantity": 3}, headers=org
    )
    assert (short.status_code, short.json()["code"]) == (409, "pool_exhausted")
    answer = await gql(
        http,
        """mutation($e: ID!, $p: ID!) { createOrganizerHold(input: {eventId: $e, poolId: $p,
            name: "Press", quantity: 2}) { ... on OrganizerHold { poolId ticketTypeId
            quantity } ... on Refusal { code } } }""",
        {"e": event_id, "p": pool_id},
        headers=org,
    )
    assert answer["createOrganizerHold"] == {"poolId": pool_id, "ticketTypeId": None, "quantity": 2}
    both = await gql(
        http,
        """mutation($e: ID!, $p: ID!, $t: ID!) { createOrganizerHold(input: {eventId: $e,
            poolId: $p, ticketTypeId: $t, name: "x", quantity: 1}) {
            __typename ... on Refusal { code } } }""",
        {"e": event_id, "p": pool_id, "t": tt.json()["id"]},
        headers=org,
    )
    assert both["createOrganizerHold"] == {"__typename": "HoldTarget", "code": "hold_target"}


# The race: many orders on two member types against an organizer moving pool holds.

ROOM, BUYERS = 24, 48


async def test_orders_racing_pool_holds_never_overfill_the_pool(runtime: Runtime) -> None:
    pool, a, b = await make_hall(runtime, ROOM, totals=(30, 30), cap=ROOM + 2)
    refused: list[str] = []

    async def buyer(i: int) -> None:
        try:
            await buy(runtime, f"ph-buyer-{i}", a if i % 2 else b)
        except (PoolExhausted, SoldOut, EventFull) as exc:
            refused.append(exc.code)

    async def organizer() -> None:
        for round_ in range(6):
            try:
                made = await pool_hold(runtime, pool, 3, name=f"Round {round_}")
            except (PoolExhausted, EventFull) as exc:
                refused.append(exc.code)
                await asyncio.sleep(0)
                continue
            split = await allotments.split_hold(
                runtime, ORG, made.id, HoldSplitDraft(name=f"Split {round_}", quantity=1)
            )
            if round_ % 2:
                await allotments.release_hold(
                    runtime, ORG, split.split.id, HoldReleaseDraft(quantity=1)
                )

    await asyncio.gather(organizer(), *(buyer(i) for i in range(BUYERS)))
    assert refused  # the pool ran out under the race
    await check_exact(runtime, pool, a, b)
    # A release the organizer made after the last buyer was refused left room: late
    # buyers take it, until the pool refuses them too.
    for late in range(ROOM):
        try:
            await buy(runtime, f"ph-late-{late}", a)
        except PoolExhausted:
            break
    # The pool is full now: the waitlist head is offered what a release gives back.
    kept = [h for h in await allotments.list_holds(runtime, ORG, pool.event_id) if h.quantity]
    assert kept
    assert await used(runtime, pool) == ROOM
    await wait_on(runtime, "ph-first", b)
    await wait_on(runtime, "ph-second", b)
    await allotments.release_hold(runtime, ORG, kept[0].id, HoldReleaseDraft(quantity=1))
    assert await status_of(runtime, "ph-first", b) == "offered"
    assert await status_of(runtime, "ph-second", b) == "waiting"
    with pytest.raises(PoolExhausted):
        await buy(runtime, "ph-newcomer", b)
    await check_exact(runtime, pool, a, b)


async def check_exact(rt: Runtime, pool: PoolView, a: TicketTypeView, b: TicketTypeView) -> None:
    """The pool's use is its members' usage plus its holds' units, from the rows, within
    its room; the event counter says the same; `reconcile` finds no drift."""
    async with rt.db.transaction() as tx:
        items = await tx.execute(
            select(func.coalesce(func.sum(OrderItem.quantity), 0))
            .join(Order, Order.id == OrderItem.order_id)
            .where(
                OrderItem.ticket_type_id.in_([a.id, b.id]),
                Order.status.in_([OrderStatus.PENDING, OrderStatus.PAID]),
            )
        )
        ordered = int(items.scalar_one())
        offered = sum((await usage.offered(tx, [a.id, b.id])).values())
        held = (await allotment_rows.held_in_pools(tx, [pool.id])).get(pool.id, 0)
        counter = await tx.scalar(
            select(CapacityPool.quantity_used).where(CapacityPool.id == pool.id)
        )
        tickets_ = await tx.scalar(
            select(EventCapacity.tickets).where(EventCapacity.event_id == pool.event_id)
        )
        members = await tx.scalar(
            select(func.sum(TicketType.quantity_reserved + TicketType.quantity_sold)).where(
                TicketType.id.in_([a.id, b.id])
            )
        )
        assert members == ordered + offered  # the member types' use, from their rows
        assert counter == ordered + offered + held <= ROOM
        assert tickets_ == counter
        assert [str(d) for d in await reconcile(tx)] == []
