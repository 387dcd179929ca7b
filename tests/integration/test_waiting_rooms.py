"""Waiting rooms through the service layer (SQLite and PostgreSQL, in-process queue store):
the 403 gate, passes bound to user and room, admissions, sold out and reopening, the
organizer's figures and live changes, and what each decision records in the change log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from headcount.capacity import (
    allotments,
    events,
    orders,
    pools,
    queue_pump,
    snapshot,
    tickets,
    waiting_rooms,
)
from headcount.capacity.allotments import HoldDraft, HoldReleaseDraft
from headcount.capacity.events import EventDraft
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.pools import PoolDraft
from headcount.capacity.tickets import TicketTypeDraft
from headcount.capacity.views import QueueTicketView, TicketTypeView
from headcount.capacity.waiting_rooms import WaitingRoomDraft, WaitingRoomPatch
from headcount.domain.errors import Conflict, Forbidden, NotFound, QueuePassRequired, RateLimited
from headcount.domain.queue import QueueOrder, RoomStatus, TicketState
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.changes import Reader, only

ORG = organizer("org-queue")


async def on_sale(rt: Runtime, total: int = 100, *, names: int = 1) -> list[TicketTypeView]:
    event = await events.create_event(rt, ORG, EventDraft(name="On-sale"))
    return [
        await tickets.create_ticket_type(
            rt, ORG, event.id, TicketTypeDraft(name=f"T{i}", quantity_total=total)
        )
        for i in range(names)
    ]


def room_draft(**overrides: object) -> WaitingRoomDraft:
    fields: dict[str, object] = {
        "opens_at": datetime.now(UTC) - timedelta(seconds=1),
        "active_limit": 2,
        "admit_per_minute": 6_000,
        "pass_ttl_seconds": 60,
    }
    fields.update(overrides)
    return WaitingRoomDraft.model_validate(fields)


def order(tt: TicketTypeView, queue_pass: str | None = None, quantity: int = 1) -> OrderDraft:
    return OrderDraft(
        event_id=tt.event_id,
        items=[OrderItemInput(ticket_type_id=tt.id, quantity=quantity)],
        queue_pass=queue_pass,
    )


async def admitted(rt: Runtime, who: str, event_id: str) -> QueueTicketView:
    ticket = await waiting_rooms.join_queue(rt, attendee(who), event_id)
    assert ticket.state is TicketState.ADMITTED, ticket
    assert ticket.queue_pass is not None
    return ticket


async def test_orders_behind_a_room_need_the_callers_own_pass(runtime: Runtime) -> None:
    (tt,) = await on_sale(runtime)
    room = await waiting_rooms.create_waiting_room(runtime, ORG, tt.event_id, room_draft())
    with pytest.raises(QueuePassRequired) as refused:
        await orders.create_order(runtime, attendee("ann"), order(tt))
    assert refused.value.status == 403
    assert refused.value.room_id == room.id

    ann = await admitted(runtime, "ann", tt.event_id)
    assert ann.queue_pass is not None
    forged = ann.queue_pass[:-3] + ("AAA" if not ann.queue_pass.endswith("AAA") else "BBB")
    for wrong in (forged, "qp1.x.y.z.sig", ann.ticket):
        with pytest.raises(QueuePassRequired):
            await orders.create_order(runtime, attendee("ann"), order(tt, wrong))
    with pytest.raises(QueuePassRequired):  # someone else's pass
        await orders.create_order(runtime, attendee("bob"), order(tt, ann.queue_pass))
    held = await orders.create_order(runtime, attendee("ann"), order(tt, ann.queue_pass))
    assert held.status == "pending"
    # Buying frees the slot: the pass is used up, and ann is out of the shop.
    after = await waiting_rooms.ticket_status(runtime, ann.ticket)
    assert after.state is TicketState.GONE
    with pytest.raises(QueuePassRequired):
        await orders.create_order(runtime, attendee("ann"), order(tt, ann.queue_pass))
    seen = await tickets.get_ticket_type(runtime, tt.id)
    assert seen.quantity_reserved == 1  # refused orders held nothing


async def test_another_rooms_pass_is_refused(runtime: Runtime) -> None:
    (first,) = await on_sale(runtime)
    (second,) = await on_sale(runtime)
    for tt in (first, second):
        await waiting_rooms.create_waiting_room(runtime, ORG, tt.event_id, room_draft())
    ann = await admitted(runtime, "ann", first.event_id)
    with pytest.raises(QueuePassRequired):
        await orders.create_order(runtime, attendee("ann"), order(second, ann.queue_pass))


async def test_a_room_for_chosen_ticket_types_leaves_the_others_alone(runtime: Runtime) -> None:
    gated, free = await on_sale(runtime, names=2)
    draft = room_draft(ticket_type_ids=[gated.id])
    await waiting_rooms.create_waiting_room(runtime, ORG, gated.event_id, draft)
    await orders.create_order(runtime, attendee("ann"), order(free))
    with pytest.raises(QueuePassRequired):
        await orders.create_order(runtime, attendee("ann"), order(gated))


async def test_queue_positions_eta_and_admission_in_arrival_order(runtime: Runtime) -> None:
    (tt,) = await on_sale(runtime)
    draft = room_draft(active_limit=1, admit_per_minute=60)
    await waiting_rooms.create_waiting_room(runtime, ORG, tt.event_id, draft)
    first = await waiting_rooms.join_queue(runtime, attendee("v0"), tt.event_id)
    assert first.state is TicketState.ADMITTED  # an empty shop admits at once
    waiting = [
        await waiting_rooms.join_queue(runtime, attendee(f"v{i}"), tt.event_id) for i in range(1, 4)
    ]
    assert [(t.position, t.people_ahead) for t in waiting] == [(1, 0), (2, 1), (3, 2)]
    assert [t.eta_seconds for t in waiting] == [1, 2, 3]  # 60 a minute: one a second
    again = await waiting_rooms.join_queue(runtime, attendee("v2"), tt.event_id)
    assert (again.ticket, again.position) == (waiting[1].ticket, 2)
    await waiting_rooms.leave_queue(runtime, attendee("v0"), first.ticket)  # abandons
    await asyncio.sleep(1.05)  # the rate's next token
    await queue_pump.pump(runtime)
    assert (await waiting_rooms.ticket_status(runtime, waiting[0].ticket)).state is (
        TicketState.ADMITTED
    )
    assert (await waiting_rooms.ticket_status(runtime, waiting[1].ticket)).position == 1


async def test_organizer_view_patch_and_change_log(runtime: Runtime) -> None:
    (tt,) = await on_sale(runtime)
    log = Reader(runtime, tt.event_id)
    await log.new()
    room = await waiting_rooms.create_waiting_room(
        runtime, ORG, tt.event_id, room_draft(order=QueueOrder.RANDOM)
    )
    created = only(await log.new(), "waiting_room.created")
    assert created.payload["after"]["active_limit"] == 2
    with pytest.raises(Conflict):
        await waiting_rooms.create_waiting_room(runtime, ORG, tt.event_id, room_draft())
    with pytest.raises(Forbidden):
        await waiting_rooms.get_waiting_room(runtime, attendee("ann"), tt.event_id)

    for who in ("a", "b", "c"):
        await waiting_rooms.join_queue(runtime, attendee(who), tt.event_id)
    steps = [c for c in await log.new() if c.type == "queue.admitted"]
    assert [[a["visitor_id"] for a in c.payload["admitted"]] for c in steps] == [["a"], ["b"]]
    seen = await waiting_rooms.get_waiting_room(runtime, ORG, tt.event_id)
    assert seen.figures is not None
    assert (seen.figures.queued, seen.figures.active_buyers) == (1, 2)
    assert seen.figures.admitted_last_minute == 2
    assert seen.figures.median_wait_seconds is not None

    snap = await snapshot.capacity_snapshot(runtime, tt.event_id)  # the dashboard's source
    assert snap.waiting_room is not None
    assert snap.waiting_room.figures == seen.figures

    patched = await waiting_rooms.update_waiting_room(
        runtime, ORG, tt.event_id, WaitingRoomPatch(active_limit=3)
    )
    assert (patched.id, patched.active_limit) == (room.id, 3)
    changed = only(await log.new(), "waiting_room.changed")
    assert changed.payload["before"] == {"active_limit": 2}
    await queue_pump.pump(runtime)  # the new limit applies at the next step
    seen = await waiting_rooms.get_waiting_room(runtime, ORG, tt.event_id)
    assert seen.figures is not None
    assert seen.figures.active_buyers == 3


async def test_sold_out_tells_everyone_queued_and_reopens_in_order(runtime: Runtime) -> None:
    (tt,) = await on_sale(runtime, total=1)
    draft = room_draft(active_limit=1)
    await waiting_rooms.create_waiting_room(runtime, ORG, tt.event_id, draft)
    log = Reader(runtime, tt.event_id)
    buyer = await admitted(runtime, "buyer", tt.event_id)
    queued = [
        await waiting_rooms.join_queue(runtime, attendee(f"q{i}"), tt.event_id) for i in range(5)
    ]
    bought = await orders.create_order(runtime, attendee("buyer"), order(tt, buyer.queue_pass))
    await orders.confirm_order(runtime, ORG, bought.id)
    await log.new()
    await queue_pump.pump(runtime, stock_every=0)
    sold = only(await log.new(), "queue.sold_out")
    assert sold.payload["queued"] == 5
    room = await waiting_rooms.get_waiting_room(runtime, ORG, tt.event_id)
    assert room.status is RoomStatus.SOLD_OUT
    told = [await waiting_rooms.ticket_status(runtime, t.ticket) for t in queued]
    assert all(t.state is TicketState.SOLD_OUT for t in told)
    assert told[0].waitlist_ticket_type_ids == [tt.id]
    positions = [t.position for t in told]

    await orders.cancel_order(runtime, ORG, bought.id)  # refunded: stock is back
    await queue_pump.pump(runtime, stock_every=0)
    only(await log.new(), "queue.reopened")
    again = [await waiting_rooms.ticket_status(runtime, t.ticket) for t in queued]
    states = {t.state for t in again}
    assert states <= {TicketState.WAITING, TicketState.ADMITTED}
    # Same order as before: whoever is still waiting keeps their relative place.
    still = [t.position for t in again if t.position is not None]
    assert still == sorted(still)
    assert len(positions) == 5


async def _sold_out_after_pump(rt: Runtime, event_id: str) -> bool:
    await queue_pump.pump(rt, stock_every=0)
    room = await waiting_rooms.get_waiting_room(rt, ORG, event_id)
    return room.status is RoomStatus.SOLD_OUT


@pytest.mark.parametrize("limit", ["pool", "event cap"])
async def test_a_room_sells_out_when_its_pool_or_event_cap_is_spent(
    runtime: Runtime, limit: str
) -> None:
    """The room's type still has stock of its own, but the pool it shares with another
    type (or the event's cap) is spent by sales of that other type: the room is sold out,
    though not while a hold on the other type may still lapse."""
    cap = 2 if limit == "event cap" else None
    event = await events.create_event(runtime, ORG, EventDraft(name="Shared", max_attendees=cap))
    roomed, other = [
        await tickets.create_ticket_type(
            runtime, ORG, event.id, TicketTypeDraft(name=name, quantity_total=10)
        )
        for name in ("Roomed", "Other")
    ]
    if limit == "pool":
        await pools.create_pool(
            runtime,
            ORG,
            event.id,
            PoolDraft(name="Hall", capacity=2, ticket_type_ids=[roomed.id, other.id]),
        )
    draft = room_draft(ticket_type_ids=[roomed.id])
    await waiting_rooms.create_waiting_room(runtime, ORG, event.id, draft)
    bought = [await orders.create_order(runtime, attendee(f"b{n}"), order(other)) for n in (1, 2)]
    assert not await _sold_out_after_pump(runtime, event.id)  # a hold may still lapse
    await orders.confirm_order(runtime, ORG, bought[0].id)
    assert not await _sold_out_after_pump(runtime, event.id)
    await orders.confirm_order(runtime, ORG, bought[1].id)
    assert await _sold_out_after_pump(runtime, event.id)
    await orders.cancel_order(runtime, ORG, bought[1].id)  # refunded: room again
    assert not await _sold_out_after_pump(runtime, event.id)


async def test_an_organizer_hold_without_release_time_does_not_keep_a_room_open(
    runtime: Runtime,
) -> None:
    """Units an organizer set aside for good never lapse; one set aside until a release
    time may come back, so the room stays open until then."""
    (tt,) = await on_sale(runtime, total=2)
    await waiting_rooms.create_waiting_room(runtime, ORG, tt.event_id, room_draft())
    later = datetime.now(UTC) + timedelta(hours=1)
    timed = await allotments.create_hold(
        runtime,
        ORG,
        tt.event_id,
        HoldDraft(name="Press", ticket_type_id=tt.id, quantity=1, release_at=later),
    )
    buyer = await admitted(runtime, "buyer", tt.event_id)
    bought = await orders.create_order(runtime, attendee("buyer"), order(tt, buyer.queue_pass))
    await orders.confirm_order(runtime, ORG, bought.id)
    assert not await _sold_out_after_pump(runtime, tt.event_id)
    await allotments.release_hold(runtime, ORG, timed.id, HoldReleaseDraft())
    await allotments.create_hold(
        runtime, ORG, tt.event_id, HoldDraft(name="Staff", ticket_type_id=tt.id, quantity=1)
    )
    assert await _sold_out_after_pump(runtime, tt.event_id)


async def test_a_timed_hold_on_a_shared_pool_keeps_a_room_open_until_it_lapses(
    runtime: Runtime,
) -> None:
    """A hold on the pool itself with a release time may give its places back to the
    room's type; one without a release time never does by itself."""
    event = await events.create_event(runtime, ORG, EventDraft(name="Pool holds"))
    roomed, other = [
        await tickets.create_ticket_type(
            runtime, ORG, event.id, TicketTypeDraft(name=name, quantity_total=10)
        )
        for name in ("Roomed", "Other")
    ]
    pool = await pools.create_pool(
        runtime,
        ORG,
        event.id,
        PoolDraft(name="Hall", capacity=2, ticket_type_ids=[roomed.id, other.id]),
    )
    await waiting_rooms.create_waiting_room(
        runtime, ORG, event.id, room_draft(ticket_type_ids=[roomed.id])
    )
    sold = await orders.create_order(runtime, attendee("ph-b1"), order(other))
    await orders.confirm_order(runtime, ORG, sold.id)

    def on_pool(name: str, release_at: datetime | None = None) -> HoldDraft:
        return HoldDraft(name=name, pool_id=pool.id, quantity=1, release_at=release_at)

    later = datetime.now(UTC) + timedelta(hours=1)
    timed = await allotments.create_hold(runtime, ORG, event.id, on_pool("Press", later))
    assert not await _sold_out_after_pump(runtime, event.id)  # the hold may lapse
    await allotments.release_hold(runtime, ORG, timed.id, HoldReleaseDraft())
    await allotments.create_hold(runtime, ORG, event.id, on_pool("Staff"))
    assert await _sold_out_after_pump(runtime, event.id)


async def test_rooms_for_unknown_ticket_types_or_without_rights_are_refused(
    runtime: Runtime,
) -> None:
    (tt,) = await on_sale(runtime)
    with pytest.raises(Forbidden):
        await waiting_rooms.create_waiting_room(runtime, attendee("ann"), tt.event_id, room_draft())
    draft = room_draft(ticket_type_ids=["tt_doesnotexist00"])
    with pytest.raises(NotFound):
        await waiting_rooms.create_waiting_room(runtime, ORG, tt.event_id, draft)


async def test_passes_used_concurrently_never_exceed_the_active_limit(runtime: Runtime) -> None:
    """Hammer: 3 admitted buyers fire 10 orders each with their pass, at once, while 20
    more queue and pumps run alongside; the shop never holds more than 3, and nobody
    without a pass of their own gets an order."""
    (tt,) = await on_sale(runtime, total=1_000)
    draft = room_draft(active_limit=3, admit_per_minute=600_000)
    await waiting_rooms.create_waiting_room(runtime, ORG, tt.event_id, draft)
    passes = {who: (await admitted(runtime, who, tt.event_id)).queue_pass for who in "abc"}
    queued = [f"q{i}" for i in range(20)]
    for who in queued:
        await waiting_rooms.join_queue(runtime, attendee(who), tt.event_id)
    peaks: list[int] = []

    async def buy(who: str) -> str | None:
        try:
            made = await orders.create_order(runtime, attendee(who), order(tt, passes[who]))
        except (QueuePassRequired, RateLimited):
            # Orders sent together with one pass are all checked before the first is
            # held and ends it; the per-user hold limit bounds what one pass buys.
            return None
        return made.owner_id

    async def watch() -> None:
        for _ in range(30):
            seen = await waiting_rooms.get_waiting_room(runtime, ORG, tt.event_id)
            assert seen.figures is not None
            peaks.append(seen.figures.active_buyers)
            await queue_pump.pump(runtime)
            await asyncio.sleep(0)

    owners = await asyncio.gather(*(buy(w) for w in "abc" * 10), watch())
    bought = {o for o in owners if isinstance(o, str)}
    assert bought == {"a", "b", "c"}
    assert max(peaks) <= 3
    seen = await waiting_rooms.get_waiting_room(runtime, ORG, tt.event_id)
    assert seen.figures is not None
    assert seen.figures.active_buyers <= 3
    assert seen.figures.admitted_total == 3 + 20 - seen.figures.queued
