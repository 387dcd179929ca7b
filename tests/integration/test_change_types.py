"""Every change type appears, with its payload, when its decision commits, and not when the
decision is refused or rolled back (service layer, SQLite and PostgreSQL).

Each test follows one event with a `Reader` (a consumer's cursor) and checks what each
step recorded: the types, in order, and the payload members docs/changes.md promises.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from headcount import origin
from headcount.capacity import (
    events,
    huddles,
    live,
    orders,
    places,
    pools,
    registrations,
    sessions,
    spaces,
    tickets,
    waitlists,
)
from headcount.capacity.events import EventDraft, EventPatch, VirtualSettings
from headcount.capacity.orders import OrderDraft, OrderItemInput
from headcount.capacity.pools import PoolDraft, PoolPatch
from headcount.capacity.registrations import RegistrationDraft
from headcount.capacity.sessions import SessionDraft, SessionPatch
from headcount.capacity.tickets import TicketTypeDraft, TicketTypePatch
from headcount.capacity.waitlists import TicketWaitlistDraft
from headcount.domain.errors import (
    BoothFull,
    EventFull,
    Forbidden,
    HuddleFull,
    NotFound,
    SessionFull,
    SoldOut,
)
from headcount.runtime import Runtime
from support.auth import attendee, organizer
from support.changes import Reader, acting, only, subset, types_of
from support.ledger_checks import assert_no_drift

ORG = organizer("org-changes")


async def _event(rt: Runtime, **draft: object) -> tuple[str, Reader]:
    with acting(ORG):
        event = await events.create_event(rt, ORG, EventDraft(name="Changes", **draft))  # type: ignore[arg-type]
    log = Reader(rt, event.id)
    created = only(await log.new(), "event.created")
    assert (created.resource_type, created.resource_id) == ("event", event.id)
    assert (created.actor_sub, created.actor_role) == (ORG.sub, "organizer")
    subset(created.payload, event_id=event.id, before=None)
    return event.id, log


async def _type(rt: Runtime, event_id: str, total: int, **draft: object) -> str:
    made = await tickets.create_ticket_type(
        rt,
        ORG,
        event_id,
        TicketTypeDraft(name="GA", quantity_total=total, **draft),  # type: ignore[arg-type]
    )
    return made.id


def _order(event_id: str, ticket_type_id: str, quantity: int) -> OrderDraft:
    return OrderDraft(
        event_id=event_id,
        items=[OrderItemInput(ticket_type_id=ticket_type_id, quantity=quantity)],
    )


async def test_an_order_records_each_step_and_its_thresholds(runtime: Runtime) -> None:
    event_id, log = await _event(runtime)
    tt = await _type(runtime, event_id, 3)
    assert await log.types() == ["ticket_type.created"]

    ann, bob = attendee("chg-ann"), attendee("chg-bob")
    with acting(ann, "req-ann"):
        first = await orders.create_order(runtime, ann, _order(event_id, tt, 2))
    created = only(await log.new(), "order.created")
    assert created.request_id == "req-ann"
    assert (created.resource_type, created.resource_id) == ("order", first.id)
    assert (created.actor_sub, created.actor_role) == (ann.sub, "attendee")
    subset(created.payload, order_id=first.id, owner_id=ann.sub, status="pending")
    subset(created.payload, previous_status=None, expires_at=first.expires_at.isoformat())
    assert created.payload["items"] == [{"ticket_type_id": tt, "quantity": 2, "available": 1}]

    # The last ticket: the order comes first, then the sell-out it caused.
    second = await orders.create_order(runtime, bob, _order(event_id, tt, 1))
    found = await log.new()
    assert types_of(found) == ["order.created", "ticket_type.sold_out"]
    subset(found[1].payload, ticket_type_id=tt, available=0)
    assert found[1].resource_id == tt

    # Refused: nothing recorded, nothing changed.
    with pytest.raises(SoldOut):
        await orders.create_order(runtime, attendee("chg-cid"), _order(event_id, tt, 1))
    with pytest.raises(NotFound):
        await orders.create_order(runtime, attendee("chg-cid"), _order(event_id, "tt_nothere", 1))
    assert await log.new() == []

    with acting(ORG):
        paid = await orders.confirm_order(runtime, ORG, first.id)
    confirmed = only(await log.new(), "order.confirmed")
    subset(confirmed.payload, status="paid", previous_status="pending", order_id=paid.id)
    assert confirmed.actor_sub == ORG.sub

    # Confirming again changes nothing and records nothing.
    await orders.confirm_order(runtime, ORG, first.id)
    assert await log.new() == []

    await orders.cancel_order(runtime, bob, second.id)
    found = await log.new()
    assert types_of(found) == ["order.cancelled", "ticket_type.back_in_stock"]
    subset(found[0].payload, status="cancelled", previous_status="pending")
    subset(found[1].payload, available=1)

    await orders.cancel_order(runtime, ORG, first.id)
    found = await log.new()
    assert types_of(found) == ["order.refunded"]  # it was not sold out: no threshold
    subset(found[0].payload, status="refunded", previous_status="paid")
    assert found[0].payload["items"] == [{"ticket_type_id": tt, "quantity": 2}]
    await assert_no_drift(runtime)


async def test_an_expired_hold_is_the_systems_doing(runtime: Runtime) -> None:
    event_id, log = await _event(runtime)
    tt = await _type(runtime, event_id, 1)
    await log.new()
    held = await orders.create_order(runtime, attendee("chg-late"), _order(event_id, tt, 1))
    assert await log.types() == ["order.created", "ticket_type.sold_out"]

    runtime.clock = lambda: held.expires_at + timedelta(seconds=1)
    token = origin.begin_request("req-lazy")
    try:
        # A buyer's order releases the lapsed hold lazily and takes the ticket at once.
        await orders.create_order(runtime, attendee("chg-next"), _order(event_id, tt, 1))
    finally:
        origin.end_request(token)
    found = await log.new()
    # The release and the new hold are two transactions: back in stock, then sold out.
    assert types_of(found) == [
        "order.expired",
        "ticket_type.back_in_stock",
        "order.created",
        "ticket_type.sold_out",
    ]
    expired = found[0]
    subset(expired.payload, order_id=held.id, status="expired", previous_status="pending")
    assert (expired.actor_sub, expired.actor_role, expired.request_id) == (
        "headcount",
        "system",
        "req-lazy",
    )
    assert (found[2].request_id, found[2].actor_role) == ("req-lazy", None)
    await assert_no_drift(runtime)


async def test_registrations_and_the_event_cap(runtime: Runtime) -> None:
    event_id, log = await _event(runtime, max_attendees=3)
    ann, bob = attendee("chg-reg-ann"), attendee("chg-reg-bob")
    reg, _ = await registrations.register(runtime, ann, event_id, RegistrationDraft(party_size=2))
    created = only(await log.new(), "registration.created")
    subset(created.payload, registration_id=reg.id, attendee_id=ann.sub, party_size=2)
    assert created.resource_id == reg.id

    await registrations.register(runtime, bob, event_id, RegistrationDraft())
    found = await log.new()
    assert types_of(found) == ["registration.created", "event.full"]
    subset(found[1].payload, event_id=event_id, max_attendees=3, registered=3, tickets=0)

    with pytest.raises(EventFull):
        await registrations.register(
            runtime, attendee("chg-reg-cid"), event_id, RegistrationDraft()
        )
    with pytest.raises(EventFull):  # a larger party needs room too
        await registrations.register(runtime, bob, event_id, RegistrationDraft(party_size=2))
    await registrations.register(runtime, bob, event_id, RegistrationDraft())  # same again
    assert await log.new() == []

    await registrations.register(runtime, ann, event_id, RegistrationDraft(party_size=1))
    found = await log.new()
    assert types_of(found) == ["registration.updated", "event.reopened"]
    subset(found[0].payload, party_size=1, previous_party_size=2)

    await registrations.cancel_registration(runtime, bob, event_id)
    cancelled = only(await log.new(), "registration.cancelled")
    subset(cancelled.payload, party_size=1, status="cancelled", attendee_id=bob.sub)

    # The organizer lowers the cap to what is counted: full, by the organizer's change.
    with acting(ORG):
        await events.update_event(runtime, ORG, event_id, EventPatch(max_attendees=1))
    found = await log.new()
    assert types_of(found) == ["event.changed", "event.full"]
    assert found[1].actor_sub == ORG.sub
    changed = found[0].payload
    assert (changed["before"], changed["after"]) == ({"max_attendees": 3}, {"max_attendees": 1})
    await events.update_event(runtime, ORG, event_id, EventPatch(max_attendees=None))
    assert await log.types() == ["event.changed", "event.reopened"]
    await assert_no_drift(runtime)


async def test_sessions_rsvps_and_their_waitlist(runtime: Runtime) -> None:
    event_id, log = await _event(runtime)
    made = await sessions.create_session(
        runtime, ORG, event_id, SessionDraft(title="Tiny", max_participants=1)
    )
    created = only(await log.new(), "session.created")
    assert created.payload["after"]["max_participants"] == 1
    people = [attendee(f"chg-ses-{n}") for n in range(3)]
    for who in people:
        await registrations.register(runtime, who, event_id, RegistrationDraft())
    await log.new()

    await sessions.rsvp(runtime, people[0], made.id)
    found = await log.new()
    assert types_of(found) == ["rsvp.confirmed", "session.full"]
    subset(found[0].payload, session_id=made.id, attendee_id=people[0].sub, via="rsvp")
    subset(found[0].payload, current_attendance=1)
    subset(found[1].payload, session_id=made.id, current_attendance=1, max_participants=1)

    await sessions.rsvp(runtime, people[1], made.id)
    await sessions.rsvp(runtime, people[2], made.id)
    waitlisted = await log.new()
    assert types_of(waitlisted) == ["rsvp.waitlisted", "rsvp.waitlisted"]
    assert [c.payload["seq"] for c in waitlisted] == [1, 2]
    subset(waitlisted[0].payload, session_id=made.id, status="waiting")
    assert waitlisted[0].resource_type == "waitlist_entry"
    await sessions.rsvp(runtime, people[1], made.id)  # asking again: same answer, no change
    assert await log.new() == []

    # The seat given up goes to the head: still full, so no threshold at all.
    with acting(people[0]):
        await sessions.leave(runtime, people[0], made.id)
    found = await log.new()
    assert types_of(found) == ["rsvp.cancelled", "waitlist.promoted"]
    subset(found[0].payload, attendee_id=people[0].sub, current_attendance=0)
    subset(found[1].payload, attendee_id=people[1].sub, status="promoted", current_attendance=1)
    assert found[1].actor_sub == people[0].sub  # promoted by the leaving request

    await sessions.leave(runtime, people[2], made.id)
    left = only(await log.new(), "waitlist.left")
    subset(left.payload, attendee_id=people[2].sub, session_id=made.id, status="left")

    await sessions.update_session(runtime, ORG, made.id, SessionPatch(max_participants=3))
    found = await log.new()
    assert types_of(found) == ["session.changed", "session.reopened"]
    changed = found[0].payload
    assert (changed["before"], changed["after"]) == (
        {"max_participants": 1},
        {"max_participants": 3},
    )

    # Cancelling a registration gives its seat up too.
    await registrations.cancel_registration(runtime, people[1], event_id)
    assert await log.types() == ["registration.cancelled", "rsvp.cancelled"]

    no_waitlist = await sessions.create_session(
        runtime,
        ORG,
        event_id,
        SessionDraft(title="Closed", max_participants=0, waitlist_enabled=False),
    )
    await log.new()
    with pytest.raises(SessionFull):
        await sessions.rsvp(runtime, people[2], no_waitlist.id)
    assert await log.new() == []
    await assert_no_drift(runtime)


async def test_ticket_waitlists_offer_accept_decline_and_lapse(runtime: Runtime) -> None:
    event_id, log = await _event(runtime)
    tt = await _type(runtime, event_id, 1)
    holder, ann, bob = attendee("chg-wl-h"), attendee("chg-wl-ann"), attendee("chg-wl-bob")
    first = await orders.create_order(runtime, holder, _order(event_id, tt, 1))
    await log.new()

    entry = await waitlists.join_ticket_waitlist(runtime, ann, tt, TicketWaitlistDraft())
    joined = only(await log.new(), "waitlist.joined")
    subset(joined.payload, entry_id=entry.id, ticket_type_id=tt, quantity=1, seq=1)
    await waitlists.join_ticket_waitlist(runtime, bob, tt, TicketWaitlistDraft())
    await log.new()

    # A cancellation frees the ticket: offered to the head at once, still sold out.
    await orders.cancel_order(runtime, holder, first.id)
    found = await log.new()
    assert types_of(found) == ["order.cancelled", "waitlist.offered"]
    subset(found[1].payload, entry_id=entry.id, offered_quantity=1, status="offered")
    assert found[1].payload["offer_expires_at"] is not None

    # Declining passes it to the next in line in the same transaction.
    await waitlists.leave_ticket_waitlist(runtime, ann, tt)
    found = await log.new()
    assert types_of(found) == ["waitlist.declined", "waitlist.offered"]
    subset(found[0].payload, attendee_id=ann.sub, status="declined", offered_quantity=1)
    subset(found[1].payload, attendee_id=bob.sub)

    # Bob lets it lapse; the sweeper passes it on (nobody waits: back in stock).
    offer = found[1].payload
    runtime.clock = lambda: waitlists_due(offer["offer_expires_at"])
    await waitlists.sweep_expired_offers(runtime)
    found = await log.new()
    assert types_of(found) == ["waitlist.offer_expired", "ticket_type.back_in_stock"]
    assert found[0].actor_role == "system"

    # Join while stock is free: offered at once; ordering accepts it.
    cid = attendee("chg-wl-cid")
    await waitlists.join_ticket_waitlist(runtime, cid, tt, TicketWaitlistDraft())
    assert await log.types() == ["waitlist.joined", "waitlist.offered", "ticket_type.sold_out"]
    bought = await orders.create_order(runtime, cid, _order(event_id, tt, 1))
    found = await log.new()
    assert types_of(found) == ["order.created", "waitlist.accepted"]
    subset(found[1].payload, order_id=bought.id, used_quantity=1, status="accepted")
    assert found[0].payload["items"][0]["available"] is None  # the offer paid: no statement

    dan = attendee("chg-wl-dan")
    await waitlists.join_ticket_waitlist(runtime, dan, tt, TicketWaitlistDraft())
    await log.new()
    await waitlists.leave_ticket_waitlist(runtime, dan, tt)
    left = only(await log.new(), "waitlist.left")
    subset(left.payload, attendee_id=dan.sub, status="left")
    await assert_no_drift(runtime)


def waitlists_due(expires_at: str) -> datetime:
    return datetime.fromisoformat(expires_at) + timedelta(seconds=1)


async def test_organizers_changes_carry_before_and_after(runtime: Runtime) -> None:
    event_id, log = await _event(runtime, max_attendees=100)
    tt = await _type(runtime, event_id, 5)
    created = only(await log.new(), "ticket_type.created")
    subset(created.payload["after"], quantity_total=5, name="GA", pool_ids=[], stock_buckets=1)

    with pytest.raises(Forbidden):
        await tickets.update_ticket_type(
            runtime, organizer("someone-else"), tt, TicketTypePatch(quantity_total=9)
        )
    assert await log.new() == []

    await tickets.update_ticket_type(runtime, ORG, tt, TicketTypePatch(quantity_total=7))
    changed = only(await log.new(), "ticket_type.changed")
    assert (changed.payload["before"], changed.payload["after"]) == (
        {"quantity_total": 5},
        {"quantity_total": 7},
    )
    await tickets.update_ticket_type(runtime, ORG, tt, TicketTypePatch(quantity_total=7))
    assert await log.new() == []  # nothing moved, nothing recorded

    pool = await pools.create_pool(
        runtime, ORG, event_id, PoolDraft(name="Hall", capacity=2, ticket_type_ids=[tt])
    )
    made = only(await log.new(), "pool.created")
    subset(made.payload["after"], capacity=2, ticket_type_ids=[tt], admission_limit=2)
    await orders.create_order(runtime, attendee("chg-pool"), _order(event_id, tt, 2))
    found = await log.new()
    assert types_of(found) == ["order.created", "pool.exhausted"]
    subset(found[1].payload, pool_id=pool.id, quantity_used=2, admission_limit=2)
    await pools.update_pool(runtime, ORG, pool.id, PoolPatch(capacity=4))
    found = await log.new()
    assert types_of(found) == ["pool.changed", "pool.replenished"]
    assert found[0].payload["after"] == {"admission_limit": 4, "capacity": 4}
    await pools.detach_ticket_type(runtime, ORG, pool.id, tt)
    detached = only(await log.new(), "pool.changed")
    assert detached.payload["after"] == {"ticket_type_ids": []}

    await events.update_event(
        runtime,
        ORG,
        event_id,
        EventPatch(virtual_settings=VirtualSettings(max_concurrent_viewers=50)),
    )
    live_limit = only(await log.new(), "event.changed")
    assert live_limit.payload["before"] == {"virtual_settings": {}}
    assert live_limit.payload["after"] == {"virtual_settings": {"max_concurrent_viewers": 50}}

    ses = await sessions.create_session(
        runtime, ORG, event_id, SessionDraft(title="S", max_participants=5)
    )
    await log.new()
    booth = await places.create(
        runtime, ORG, spaces.BOOTH, event_id, spaces.BoothDraft(name="B", max_visitors=3)
    )
    subset(only(await log.new(), "booth.created").payload["after"], max_visitors=3, name="B")
    await places.update(runtime, ORG, spaces.BOOTH, booth.id, spaces.BoothPatch(max_visitors=4))
    changed = only(await log.new(), "booth.changed")
    assert (changed.payload["before"], changed.payload["after"]) == (
        {"max_visitors": 3},
        {"max_visitors": 4},
    )
    room = await places.create(
        runtime, ORG, spaces.BREAKOUT_ROOM, ses.id, spaces.BreakoutRoomDraft(name="R", capacity=2)
    )
    subset(only(await log.new(), "breakout_room.created").payload["after"], session_id=ses.id)
    await places.update(
        runtime, ORG, spaces.BREAKOUT_ROOM, room.id, spaces.BreakoutRoomPatch(capacity=3)
    )
    assert await log.types() == ["breakout_room.changed"]
    await live.close(runtime, ORG, spaces.BREAKOUT_ROOM, room.id)
    closed = only(await log.new(), "breakout_room.closed")
    subset(closed.payload["after"], status="closed")
    await live.close(runtime, ORG, spaces.BREAKOUT_ROOM, room.id)  # closing again: nothing new
    assert await log.new() == []

    huddle = await places.create(
        runtime, ORG, spaces.HUDDLE, event_id, spaces.HuddleDraft(name="H", capacity=1)
    )
    assert await log.types() == ["huddle.created"]
    await places.update(runtime, ORG, spaces.HUDDLE, huddle.id, spaces.HuddlePatch(capacity=2))
    assert await log.types() == ["huddle.changed"]
    await assert_no_drift(runtime)


async def test_huddles_and_live_spaces(live_runtime: Runtime) -> None:
    rt = live_runtime
    event_id, log = await _event(rt, virtual_settings=VirtualSettings(max_concurrent_viewers=1))
    huddle = await huddles.create_huddle(
        rt, ORG, event_id, spaces.HuddleDraft(name="H", capacity=1)
    )
    await log.new()
    ann, bob = attendee("chg-live-ann"), attendee("chg-live-bob")
    await huddles.join_huddle(rt, ann, huddle.id)
    joined = only(await log.new(), "huddle.joined")
    subset(joined.payload, huddle_id=huddle.id, user_id=ann.sub, members=1)
    with pytest.raises(HuddleFull):
        await huddles.join_huddle(rt, bob, huddle.id)
    await huddles.join_huddle(rt, ann, huddle.id)  # already in: nothing counted twice
    assert await log.new() == []
    await huddles.leave_huddle(rt, ann, huddle.id)
    subset(only(await log.new(), "huddle.left").payload, members=0, user_id=ann.sub)
    await huddles.leave_huddle(rt, ann, huddle.id)
    assert await log.new() == []

    booth = await places.create(
        rt, ORG, spaces.BOOTH, event_id, spaces.BoothDraft(name="B", max_visitors=2)
    )
    await log.new()
    first = await live.join(rt, ann, spaces.BOOTH, booth.id)
    assert await log.new() == []  # a join that leaves room records nothing
    with acting(bob):
        await live.join(rt, bob, spaces.BOOTH, booth.id)
    full = only(await log.new(), "booth.full")
    subset(full.payload, booth_id=booth.id, limit=2, occupancy=2)
    assert full.actor_sub == bob.sub
    with pytest.raises(BoothFull):
        await live.join(rt, attendee("chg-live-cid"), spaces.BOOTH, booth.id)
    assert await log.new() == []
    await live.release(rt, ann, first.lease_id)  # leaving is not recorded …
    assert await log.new() == []
    await live.join(rt, attendee("chg-live-cid"), spaces.BOOTH, booth.id)  # … filling again is
    assert await log.types() == ["booth.full"]

    await live.join(rt, ann, spaces.VIEWERS, event_id)
    stream = only(await log.new(), "stream.full")
    subset(stream.payload, event_id=event_id, limit=1, occupancy=1)


async def test_a_live_space_fills_once_under_a_stampede(live_runtime: Runtime) -> None:
    rt = live_runtime
    event_id, log = await _event(rt)
    booth = await places.create(
        rt, ORG, spaces.BOOTH, event_id, spaces.BoothDraft(name="B", max_visitors=10)
    )
    await log.new()
    tried = await asyncio.gather(
        *(live.join(rt, attendee(f"chg-rush-{n}"), spaces.BOOTH, booth.id) for n in range(60)),
        return_exceptions=True,
    )
    assert sum(not isinstance(t, BaseException) for t in tried) == 10
    assert await log.types() == ["booth.full"]
