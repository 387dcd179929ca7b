"""Organizer holds (allotments): stock set aside by the order's own statements, split,
released to the waitlist head first, redeemed as orders, released by the sweeper.

Each step checks the ticket type's counters, its pool and the event cap, and that
`reconcile` (rows and the change log replayed) finds no drift; each refusal checks that
nothing changed.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest

from headcount.capacity import allotments, events, orders, pools, tickets, waitlists
from headcount.capacity.allotments import (
    HoldDraft,
    HoldRedeemDraft,
    HoldReleaseDraft,
    HoldSplitDraft,
)
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.pools import PoolDraft
from headcount.capacity.snapshot import capacity_snapshot
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import OrganizerHoldView, TicketTypeView
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.domain.changes import ChangeType
from headcount.domain.errors import (
    EventFull,
    Forbidden,
    HoldCodeRefused,
    HoldShort,
    InvalidRequest,
    NotFound,
    PoolExhausted,
    SoldOut,
)
from headcount.ledger.reconcile import reconcile
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.changes import Reader, event_changes, only, subset, types_of

# The pending-order quota is per user across events, and the test database is shared by
# the whole session: a name of its own keeps these orders off other modules' "ann".
ANN = f"ann-{secrets.token_hex(3)}"
ORG = organizer("org-holds")


async def make_stock(
    rt: Runtime, total: int, *, cap: int | None = None, pool: int | None = None
) -> TicketTypeView:
    event = await events.create_event(rt, ORG, EventDraft(name="Holds", max_attendees=cap))
    tt = await tickets.create_ticket_type(
        rt, ORG, event.id, TicketTypeDraft(name="GA", quantity_total=total)
    )
    if pool is not None:
        await pools.create_pool(
            rt, ORG, event.id, PoolDraft(name="Hall", capacity=pool, ticket_type_ids=[tt.id])
        )
    return tt


async def hold(rt: Runtime, tt: TicketTypeView, qty: int, **extra: object) -> OrganizerHoldView:
    draft = HoldDraft.model_validate(
        {"name": "Sponsors", "ticket_type_id": tt.id, "quantity": qty, **extra}
    )
    return await allotments.create_hold(rt, ORG, tt.event_id, draft)


async def buy(rt: Runtime, who: str, tt: TicketTypeView, qty: int = 1) -> str:
    item = OrderItemInput(ticket_type_id=tt.id, quantity=qty)
    draft = OrderDraft(event_id=tt.event_id, items=[item])
    return (await orders.create_order(rt, attendee(who), draft)).id


async def counters(rt: Runtime, tt: TicketTypeView) -> tuple[int, int, int]:
    """(reserved, sold, available) of the type as the ledger counts them."""
    seen = await tickets.get_ticket_type(rt, tt.id)
    return seen.quantity_reserved, seen.quantity_sold, seen.quantity_available


async def assert_no_drift(rt: Runtime) -> None:
    async with rt.db.transaction() as tx:
        assert [str(d) for d in await reconcile(tx)] == []


async def test_a_hold_takes_stock_pool_and_event_cap_like_an_order(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 10, cap=8, pool=6)
    made = await hold(runtime, tt, 4)
    assert made.quantity == 4
    assert await counters(runtime, tt) == (4, 0, 2)  # the pool has 2 left
    [pool] = await pools.list_pools(runtime, tt.event_id)
    assert pool.quantity_used == 4
    shown = await capacity_snapshot(runtime, tt.event_id)
    assert (shown.tickets.reserved, shown.tickets.held_by_organizer) == (4, 4)
    # The pool (6) has 2 left: the flash sale sees the hold's units as taken.
    with pytest.raises(PoolExhausted):
        await buy(runtime, ANN, tt, 3)
    await buy(runtime, ANN, tt, 2)
    with pytest.raises(PoolExhausted):
        await hold(runtime, tt, 1)
    assert len(await allotments.list_holds(runtime, ORG, tt.event_id)) == 1
    await assert_no_drift(runtime)


async def test_the_event_cap_refuses_a_hold_and_nothing_changes(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 10, cap=3)
    with pytest.raises(EventFull):
        await hold(runtime, tt, 4)
    with pytest.raises(SoldOut):
        await hold(runtime, tt, 11)
    assert await counters(runtime, tt) == (0, 0, 3)  # the cap leaves 3
    assert await allotments.list_holds(runtime, ORG, tt.event_id) == []
    await assert_no_drift(runtime)


async def test_bad_requests_are_refused_and_change_nothing(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 10)
    other = await make_stock(runtime, 10)
    made = await hold(runtime, tt, 5, redemption_code="PRESS-2026")
    before = await counters(runtime, tt)
    reader = Reader(runtime, tt.event_id)
    await reader.new()
    mine = HoldDraft(name="x", ticket_type_id=tt.id, quantity=1)
    with pytest.raises(Forbidden):
        await allotments.create_hold(runtime, attendee("eve"), tt.event_id, mine)
    theirs = HoldDraft(name="x", ticket_type_id=other.id, quantity=1)
    with pytest.raises(InvalidRequest):
        await allotments.create_hold(runtime, ORG, tt.event_id, theirs)
    with pytest.raises(InvalidRequest):
        await hold(runtime, tt, 1, release_at=runtime.clock() - timedelta(minutes=1))
    with pytest.raises(HoldShort):
        await allotments.split_hold(runtime, ORG, made.id, HoldSplitDraft(name="y", quantity=6))
    with pytest.raises(HoldShort):
        await allotments.release_hold(runtime, ORG, made.id, HoldReleaseDraft(quantity=6))
    with pytest.raises(Forbidden):
        await allotments.release_hold(runtime, attendee("eve"), made.id, HoldReleaseDraft())
    with pytest.raises(HoldCodeRefused):
        await allotments.redeem_hold(
            runtime, attendee("eve"), made.id, HoldRedeemDraft(quantity=1, code="GUESS")
        )
    with pytest.raises(HoldCodeRefused):
        await allotments.redeem_hold(runtime, attendee("eve"), made.id, HoldRedeemDraft())
    with pytest.raises(HoldShort):
        await allotments.redeem_hold(
            runtime, attendee("eve"), made.id, HoldRedeemDraft(quantity=6, code="PRESS-2026")
        )
    with pytest.raises(NotFound):
        await allotments.get_hold(runtime, ORG, made.id, event_id=other.event_id)
    with pytest.raises(NotFound):
        await allotments.release_hold(runtime, ORG, "hold_nope", HoldReleaseDraft())
    assert await counters(runtime, tt) == before
    [still] = await allotments.list_holds(runtime, ORG, tt.event_id)
    assert still.quantity == 5
    assert await orders.list_orders(runtime, attendee("eve")) == []
    assert await reader.new() == []  # nothing refused was recorded
    await assert_no_drift(runtime)


async def test_split_moves_units_between_holds_without_touching_stock(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 10, pool=10)
    made = await hold(runtime, tt, 6)
    reader = Reader(runtime, tt.event_id)
    await reader.new()
    done = await allotments.split_hold(
        runtime, ORG, made.id, HoldSplitDraft(name="Press", quantity=2, redemption_code="P")
    )
    assert (done.source.quantity, done.split.quantity) == (4, 2)
    assert (done.split.name, done.split.redemption_code) == ("Press", "P")
    assert await counters(runtime, tt) == (6, 0, 4)
    [pool] = await pools.list_pools(runtime, tt.event_id)
    assert pool.quantity_used == 6
    found = await reader.new()
    assert types_of(found) == [ChangeType.ORGANIZER_HOLD_SPLIT]
    assert found[0].payload["into_hold_id"] == done.split.id
    assert found[0].payload["remaining"] == 4
    await assert_no_drift(runtime)


async def test_released_units_go_to_the_waitlist_head_first(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 3)
    made = await hold(runtime, tt, 2)
    await buy(runtime, ANN, tt)
    for who in ("bo", "cy"):
        entry = await waitlists.join_ticket_waitlist(
            runtime, attendee(who), tt.id, TicketWaitlistDraft(quantity=1)
        )
        assert entry.status == "waiting"
    left = await allotments.release_hold(runtime, ORG, made.id, HoldReleaseDraft(quantity=1))
    assert left.quantity == 1
    bo = await waitlists.my_ticket_waitlist_entry(runtime, attendee("bo"), tt.id)
    cy = await waitlists.my_ticket_waitlist_entry(runtime, attendee("cy"), tt.id)
    assert (bo.status, bo.offered_quantity) == ("offered", 1)
    assert (cy.status, cy.position) == ("waiting", 1)
    with pytest.raises(SoldOut):
        await buy(runtime, "newcomer", tt)
    # The rest: the next in line.
    left = await allotments.release_hold(runtime, ORG, made.id, HoldReleaseDraft())
    assert left.quantity == 0
    cy = await waitlists.my_ticket_waitlist_entry(runtime, attendee("cy"), tt.id)
    assert cy.status == "offered"
    # Releasing an empty hold moves nothing.
    again = await allotments.release_hold(runtime, ORG, made.id, HoldReleaseDraft())
    assert again.quantity == 0
    assert await counters(runtime, tt) == (3, 0, 0)
    await assert_no_drift(runtime)


async def test_redeeming_turns_held_units_into_an_order_without_taking_stock(
    runtime: Runtime,
) -> None:
    tt = await make_stock(runtime, 5, cap=5)
    made = await hold(runtime, tt, 3, redemption_code="SPONSOR")
    await buy(runtime, ANN, tt, 2)  # the public sold out around the hold
    reader = Reader(runtime, tt.event_id)
    await reader.new()
    order = await allotments.redeem_hold(
        runtime, attendee("sam"), made.id, HoldRedeemDraft(quantity=2, code="SPONSOR")
    )
    assert (order.owner_id, order.status, order.items[0].quantity) == ("sam", "pending", 2)
    assert await counters(runtime, tt) == (5, 0, 0)
    assert types_of(await reader.new()) == [
        ChangeType.ORGANIZER_HOLD_REDEEMED,
        ChangeType.ORDER_CREATED,
    ]
    assert (await allotments.get_hold(runtime, ORG, made.id)).quantity == 1
    # The organizer redeems without the code; the order is then confirmed like any other.
    comp = await allotments.redeem_hold(runtime, ORG, made.id, HoldRedeemDraft())
    await orders.confirm_order(runtime, ORG, order.id)
    await orders.confirm_order(runtime, ORG, comp.id)
    assert await counters(runtime, tt) == (2, 3, 0)
    logged = await event_changes(runtime, tt.event_id)
    created = only(logged, ChangeType.ORGANIZER_HOLD_CREATED)
    subset(created.payload, hold_id=made.id, quantity=3, remaining=3, with_code=True)
    assert "SPONSOR" not in json.dumps([c.payload for c in logged])  # the code stays private
    await assert_no_drift(runtime)


async def test_a_hold_releases_itself_when_its_time_comes(runtime: Runtime) -> None:
    tt = await make_stock(runtime, 2)
    now = runtime.clock()
    made = await hold(runtime, tt, 2, release_at=now + timedelta(hours=1))
    entry = await waitlists.join_ticket_waitlist(
        runtime, attendee("bo"), tt.id, TicketWaitlistDraft(quantity=1)
    )
    assert entry.status == "waiting"
    assert await allotments.sweep_due_holds(runtime) == 0
    runtime.clock = lambda: now + timedelta(hours=1, seconds=1)
    reader = Reader(runtime, tt.event_id)
    await reader.new()
    assert await allotments.sweep_due_holds(runtime) == 1
    assert await allotments.sweep_due_holds(runtime) == 0
    released = [c for c in await reader.new() if c.type == ChangeType.ORGANIZER_HOLD_RELEASED]
    assert [(c.payload["quantity"], c.payload["automatic"]) for c in released] == [(2, True)]
    assert released[0].actor_role == "system"
    assert (await allotments.get_hold(runtime, ORG, made.id)).quantity == 0
    bo = await waitlists.my_ticket_waitlist_entry(runtime, attendee("bo"), tt.id)
    assert bo.status == "offered"
    assert await counters(runtime, tt) == (1, 0, 1)
    await assert_no_drift(runtime)


async def test_holds_on_a_hot_inventory_type_take_and_give_back_its_buckets(
    runtime: Runtime,
) -> None:
    event = await events.create_event(runtime, ORG, EventDraft(name="Hot holds"))
    tt = await tickets.create_ticket_type(
        runtime, ORG, event.id, TicketTypeDraft(name="Hot", quantity_total=8, stock_buckets=4)
    )
    made = await hold(runtime, tt, 5)
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_available == 3
    await buy(runtime, ANN, tt, 3)
    with pytest.raises(SoldOut):
        await buy(runtime, "bo", tt)
    await assert_no_drift(runtime)
    await allotments.release_hold(runtime, ORG, made.id, HoldReleaseDraft(quantity=2))
    await buy(runtime, "bo", tt, 2)
    order = await allotments.redeem_hold(runtime, ORG, made.id, HoldRedeemDraft(quantity=3))
    await orders.confirm_order(runtime, ORG, order.id)
    assert (await tickets.get_ticket_type(runtime, tt.id)).quantity_available == 0
    await assert_no_drift(runtime)
