"""Viewers, booths, breakout rooms and huddles through the service layer.

Every test runs on SQLite and PostgreSQL, each with the in-process and the Redis presence
engine, so both backends are held to the same behaviour.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import update

from headcount.capacity import events, huddles, live, places, sessions, snapshot
from headcount.capacity.events import EventDraft, EventPatch, VirtualSettings
from headcount.capacity.sessions import SessionDraft
from headcount.capacity.spaces import (
    BOOTH,
    BREAKOUT_ROOM,
    HUDDLE,
    VIEWERS,
    BoothDraft,
    BoothPatch,
    BreakoutRoomDraft,
    BreakoutRoomPatch,
    HuddleDraft,
    HuddlePatch,
    Space,
)
from headcount.domain.errors import (
    BoothFull,
    Forbidden,
    HuddleFull,
    LeaseExpired,
    NotFound,
    RoomClosed,
    RoomFull,
    ViewerLimitReached,
)
from headcount.domain.presence import Count
from headcount.ledger.db import Tx
from headcount.ledger.reconcile import reconcile
from headcount.ledger.spaces import Huddle
from headcount.presence import Admission
from headcount.runtime import Runtime
from support.auth import attendee, organizer

ORG = organizer("org-presence")


@pytest.fixture
def rt(live_runtime: Runtime) -> Runtime:
    return live_runtime


async def make_event(rt: Runtime, viewers_cap: int | None = None) -> str:
    event = await events.create_event(
        rt,
        ORG,
        EventDraft(
            name="Presence test",
            virtual_settings=VirtualSettings(max_concurrent_viewers=viewers_cap),
        ),
    )
    return event.id


async def test_viewers_are_capped_and_a_leave_frees_a_place(rt: Runtime) -> None:
    event_id = await make_event(rt, viewers_cap=2)
    ann = await live.join(rt, attendee("ann"), VIEWERS, event_id)
    bob = await live.join(rt, attendee("bob"), VIEWERS, event_id)
    assert (ann.occupancy, bob.occupancy, bob.limit) == (1, 2, 2)
    with pytest.raises(ViewerLimitReached) as refused:
        await live.join(rt, attendee("cid"), VIEWERS, event_id)
    assert refused.value.extra == {"limit": 2, "viewers": 2}
    await live.release(rt, attendee("ann"), ann.lease_id)
    cid = await live.join(rt, attendee("cid"), VIEWERS, event_id)
    assert cid.occupancy == 2
    view = await snapshot.capacity_snapshot(rt, event_id)
    assert view.viewers is not None
    assert (view.viewers.viewers, view.viewers.limit, view.viewers.is_full) == (2, 2, True)


async def test_uncapped_stream_admits_everyone(rt: Runtime) -> None:
    event_id = await make_event(rt)
    for i in range(5):
        lease = await live.join(rt, attendee(f"u{i}"), VIEWERS, event_id)
    assert (lease.occupancy, lease.limit) == (5, None)


async def test_lowering_the_viewer_cap_kicks_nobody(rt: Runtime) -> None:
    event_id = await make_event(rt, viewers_cap=4)
    held = [await live.join(rt, attendee(f"u{i}"), VIEWERS, event_id) for i in range(4)]
    await events.update_event(
        rt, ORG, event_id, EventPatch(virtual_settings=VirtualSettings(max_concurrent_viewers=2))
    )
    for lease in held:  # everyone is still in, and may keep renewing
        renewed = await live.heartbeat(rt, attendee(lease.holder), lease.lease_id)
        assert (renewed.occupancy, renewed.limit) == (4, 2)
    for n in (0, 1):
        await live.release(rt, attendee(held[n].holder), held[n].lease_id)
        with pytest.raises(ViewerLimitReached):  # 3 then 2 in: not below the cap of 2 yet
            await live.join(rt, attendee("late"), VIEWERS, event_id)
    await live.release(rt, attendee(held[2].holder), held[2].lease_id)
    assert (await live.join(rt, attendee("late"), VIEWERS, event_id)).occupancy == 2


async def test_lease_owner_only_and_unknown_leases(rt: Runtime) -> None:
    event_id = await make_event(rt, viewers_cap=5)
    lease = await live.join(rt, attendee("ann"), VIEWERS, event_id)
    with pytest.raises(NotFound):
        await live.heartbeat(rt, attendee("mallory"), lease.lease_id)
    with pytest.raises(NotFound):
        await live.release(rt, attendee("mallory"), lease.lease_id)
    with pytest.raises(NotFound):
        await live.heartbeat(rt, attendee("ann"), "not-a-lease")
    with pytest.raises(NotFound):
        await live.join(rt, attendee("ann"), VIEWERS, "evt_missing")
    await live.release(rt, attendee("ann"), lease.lease_id)
    with pytest.raises(LeaseExpired):
        await live.heartbeat(rt, attendee("ann"), lease.lease_id)
    await live.release(rt, attendee("ann"), lease.lease_id)  # leaving twice is fine


async def test_missed_heartbeats_keep_the_place_for_the_grace_then_free_it(rt: Runtime) -> None:
    rt.settings = rt.settings.model_copy(update={"presence_ttl": 1, "presence_grace": 1.0})
    event_id = await make_event(rt, viewers_cap=1)
    lease = await live.join(rt, attendee("ann"), VIEWERS, event_id)
    assert (lease.grace_seconds, lease.place) == (1.0, "new")
    with pytest.raises(ViewerLimitReached):
        await live.join(rt, attendee("bob"), VIEWERS, event_id)
    await asyncio.sleep(1.1)  # ann's lease lapsed: her place is held for her
    with pytest.raises(LeaseExpired):
        await live.heartbeat(rt, attendee("ann"), lease.lease_id)
    with pytest.raises(ViewerLimitReached):
        await live.join(rt, attendee("bob"), VIEWERS, event_id)
    view = (await snapshot.capacity_snapshot(rt, event_id)).viewers
    assert view is not None
    assert (view.viewers, view.in_grace, view.available, view.is_full) == (0, 1, 0, True)
    back = await live.join(rt, attendee("ann"), VIEWERS, event_id)
    assert (back.place, back.occupancy) == ("resumed", 1)
    await asyncio.sleep(2.1)  # silent again: TTL, then grace, and the place is free
    assert (await live.join(rt, attendee("bob"), VIEWERS, event_id)).occupancy == 1


async def test_booths(rt: Runtime) -> None:
    event_id = await make_event(rt)
    with pytest.raises(Forbidden):
        await places.create(rt, attendee("ann"), BOOTH, event_id, BoothDraft(name="Nope"))
    booth = await places.create(
        rt,
        ORG,
        BOOTH,
        event_id,
        BoothDraft(name="Acme", tier="gold", video_enabled=True, max_visitors=2),
    )
    assert (booth.tier, booth.chat_enabled, booth.video_enabled, booth.visitors) == (
        "gold",
        True,
        True,
        0,
    )
    ann = await live.join(rt, attendee("ann"), BOOTH, booth.id)
    await live.join(rt, attendee("bob"), BOOTH, booth.id)
    with pytest.raises(BoothFull) as refused:
        await live.join(rt, attendee("cid"), BOOTH, booth.id)
    assert refused.value.extra["visitors"] == 2
    seen = await places.get(rt, BOOTH, booth.id)
    assert (seen.visitors, seen.is_full) == (2, True)
    assert {x.holder for x in await live.holders(rt, ORG, BOOTH, booth.id)} == {"ann", "bob"}
    with pytest.raises(Forbidden):
        await live.holders(rt, attendee("ann"), BOOTH, booth.id)

    await places.update(rt, ORG, BOOTH, booth.id, BoothPatch(max_visitors=3))
    await live.join(rt, attendee("cid"), BOOTH, booth.id)
    await places.update(rt, ORG, BOOTH, booth.id, BoothPatch(max_visitors=1))
    assert (await places.get(rt, BOOTH, booth.id)).visitors == 3  # nobody turned out
    await live.release(rt, attendee("ann"), ann.lease_id)
    with pytest.raises(BoothFull):
        await live.join(rt, attendee("dan"), BOOTH, booth.id)
    listed = await places.listed(rt, BOOTH, event_id)
    assert [(b.id, b.visitors, b.max_visitors) for b in listed] == [(booth.id, 2, 1)]
    with pytest.raises(NotFound):
        await live.join(rt, attendee("ann"), BOOTH, "bth_missing")


async def make_session(rt: Runtime, event_id: str) -> str:
    made = await sessions.create_session(
        rt, ORG, event_id, SessionDraft(title="Keynote", max_participants=50)
    )
    return made.id


async def test_breakout_rooms_join_resize_close(rt: Runtime) -> None:
    event_id = await make_event(rt)
    session_id = await make_session(rt, event_id)
    room = await places.create(
        rt, ORG, BREAKOUT_ROOM, session_id, BreakoutRoomDraft(name="Table 1", capacity=2)
    )
    with pytest.raises(Forbidden):
        await places.create(
            rt, attendee("ann"), BREAKOUT_ROOM, session_id, BreakoutRoomDraft(name="x", capacity=1)
        )
    ann = await live.join(rt, attendee("ann"), BREAKOUT_ROOM, room.id)
    await live.join(rt, attendee("bob"), BREAKOUT_ROOM, room.id)
    with pytest.raises(RoomFull):
        await live.join(rt, attendee("cid"), BREAKOUT_ROOM, room.id)
    resized = await places.update(rt, ORG, BREAKOUT_ROOM, room.id, BreakoutRoomPatch(capacity=3))
    assert (resized.capacity, resized.participants) == (3, 2)
    await live.join(rt, attendee("cid"), BREAKOUT_ROOM, room.id)
    listed = await places.listed(rt, BREAKOUT_ROOM, session_id)
    assert [(r.id, r.participants) for r in listed] == [(room.id, 3)]

    closed = await live.close(rt, ORG, BREAKOUT_ROOM, room.id)
    assert (closed.status, closed.participants) == ("closed", 0)
    assert closed.closed_at is not None
    with pytest.raises(LeaseExpired):
        await live.heartbeat(rt, attendee("ann"), ann.lease_id)
    with pytest.raises(RoomClosed):
        await live.join(rt, attendee("dan"), BREAKOUT_ROOM, room.id)
    again = await live.close(rt, ORG, BREAKOUT_ROOM, room.id)  # repeating is harmless
    assert again.status == "closed"
    view = await snapshot.capacity_snapshot(rt, event_id)
    assert [(r.id, r.status, r.participants) for r in view.breakout_rooms] == [
        (room.id, "closed", 0)
    ]


async def test_huddles_join_leave_and_full(rt: Runtime) -> None:
    event_id = await make_event(rt)
    huddle = await huddles.create_huddle(rt, ORG, event_id, HuddleDraft(name="AI", capacity=2))
    first = await huddles.join_huddle(rt, attendee("ann"), huddle.id)
    assert (first.joined, first.huddle.members, first.huddle.version) == (True, 1, 1)
    again = await huddles.join_huddle(rt, attendee("ann"), huddle.id)  # idempotent
    assert again.huddle.members == 1
    await huddles.join_huddle(rt, attendee("bob"), huddle.id)
    with pytest.raises(HuddleFull) as refused:
        await huddles.join_huddle(rt, attendee("cid"), huddle.id)
    assert refused.value.extra["huddle_full"] is True
    assert sorted(await huddles.list_members(rt, attendee("ann"), huddle.id)) == ["ann", "bob"]
    with pytest.raises(Forbidden):
        await huddles.list_members(rt, attendee("cid"), huddle.id)
    left = await huddles.leave_huddle(rt, attendee("ann"), huddle.id)
    assert (left.joined, left.huddle.members) == (False, 1)
    await huddles.leave_huddle(rt, attendee("ann"), huddle.id)  # twice: nothing changes
    assert (await huddles.get_huddle(rt, huddle.id)).members == 1
    assert (await huddles.join_huddle(rt, attendee("cid"), huddle.id)).huddle.members == 2

    await places.update(rt, ORG, HUDDLE, huddle.id, HuddlePatch(capacity=1))
    assert (await huddles.get_huddle(rt, huddle.id)).members == 2  # nobody removed
    await huddles.leave_huddle(rt, attendee("bob"), huddle.id)
    with pytest.raises(HuddleFull):
        await huddles.join_huddle(rt, attendee("dan"), huddle.id)
    view = await snapshot.capacity_snapshot(rt, event_id)
    assert [(h.id, h.members, h.capacity, h.is_full) for h in view.huddles] == [
        (huddle.id, 1, 1, True)
    ]
    async with rt.db.transaction() as tx:
        assert [d for d in await reconcile(tx) if d.table == "huddles"] == []


async def test_huddle_race_for_the_last_place_has_one_winner(rt: Runtime) -> None:
    event_id = await make_event(rt)
    huddle = await huddles.create_huddle(rt, ORG, event_id, HuddleDraft(name="Last", capacity=4))
    for name in ("a", "b", "c"):
        await huddles.join_huddle(rt, attendee(name), huddle.id)
    results = await asyncio.gather(
        *(huddles.join_huddle(rt, attendee(f"racer-{i}"), huddle.id) for i in range(16)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1, results
    assert all(isinstance(x, HuddleFull) for x in losers), losers
    final = await huddles.get_huddle(rt, huddle.id)
    assert final.members == 4
    async with rt.db.transaction() as tx:
        assert [d for d in await reconcile(tx) if d.table == "huddles"] == []


async def test_reconcile_catches_a_drifted_huddle_counter(rt: Runtime) -> None:
    event_id = await make_event(rt)
    huddle = await huddles.create_huddle(rt, ORG, event_id, HuddleDraft(name="Drift", capacity=3))
    await huddles.join_huddle(rt, attendee("ann"), huddle.id)
    async with rt.db.transaction() as tx:
        await tx.execute(update(Huddle).where(Huddle.id == huddle.id).values(members=3))
    async with rt.db.transaction() as tx:
        drifts = [d for d in await reconcile(tx, fix=True) if d.row_id == huddle.id]
    assert [(d.column, d.counter, d.from_rows) for d in drifts] == [("members", 3, 1)]
    assert (await huddles.get_huddle(rt, huddle.id)).members == 1


async def test_snapshot_shows_every_live_section(rt: Runtime) -> None:
    event_id = await make_event(rt, viewers_cap=10)
    booth = await places.create(rt, ORG, BOOTH, event_id, BoothDraft(name="B", max_visitors=5))
    await live.join(rt, attendee("ann"), BOOTH, booth.id)
    await live.join(rt, attendee("ann"), VIEWERS, event_id)
    view = await snapshot.capacity_snapshot(rt, event_id)
    assert view.viewers is not None
    assert (view.viewers.viewers, view.viewers.available) == (1, 9)
    assert [(b.id, b.visitors, b.is_full) for b in view.booths] == [(booth.id, 1, False)]


async def test_a_retried_join_with_the_same_key_takes_one_place(rt: Runtime) -> None:
    event_id = await make_event(rt, viewers_cap=2)
    ann = attendee("ann")
    first = await live.join(rt, ann, VIEWERS, event_id, idempotency_key="k-1")
    again = await live.join(rt, ann, VIEWERS, event_id, idempotency_key="k-1")
    assert again.lease_id == first.lease_id
    other = await live.join(rt, ann, VIEWERS, event_id, idempotency_key="k-2")
    assert (other.lease_id != first.lease_id, other.place, other.occupancy) == (True, "shared", 1)
    cid = await live.join(rt, attendee("cid"), VIEWERS, event_id, idempotency_key="k-2")
    with pytest.raises(ViewerLimitReached):  # refusals are not stored: asking again re-checks
        await live.join(rt, attendee("bob"), VIEWERS, event_id, idempotency_key="k-1")
    await live.release(rt, attendee("cid"), cid.lease_id)
    bob = await live.join(rt, attendee("bob"), VIEWERS, event_id, idempotency_key="k-1")
    assert bob.holder == "bob"
    assert bob.occupancy == 2


async def test_a_heartbeat_storm_reads_the_displayed_limit_once(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heartbeats show the limit from a shared copy, refreshed by one read at a time."""
    event_id = await make_event(rt, viewers_cap=500)
    held = [await live.join(rt, attendee(f"u{i}"), VIEWERS, event_id) for i in range(200)]
    reads: list[str] = []
    real = live._read

    async def counted(runtime: Runtime, space: Space[Any], place_id: str) -> Any:
        reads.append(place_id)
        return await real(runtime, space, place_id)

    monkeypatch.setattr(live, "_read", counted)
    rt.displayed_limits.max_age = 0.0  # every call finds its copy stale
    beats = await asyncio.gather(
        *(live.heartbeat(rt, attendee(f"u{i}"), lease.lease_id) for i, lease in enumerate(held))
    )
    assert {b.limit for b in beats} == {500}
    assert len(reads) < 10  # one read in flight serves everyone waiting for it
    # A changed limit shows once the copy is older than the allowed age.
    await events.update_event(
        rt, ORG, event_id, EventPatch(virtual_settings=VirtualSettings(max_concurrent_viewers=300))
    )
    beat = await live.heartbeat(rt, attendee("u0"), held[0].lease_id)
    assert beat.limit == 300


async def test_only_a_keyed_join_holds_a_transaction_across_the_admission(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A join reads its limit in one short transaction, then admits outside any: a stream
    start must not hold a database connection across a Redis call. With a key, the key's
    transaction surrounds the admission, so a concurrent retry waits and replays."""
    event_id = await make_event(rt, viewers_cap=5)
    opened: list[str] = []
    open_during_admission: list[int] = []
    transaction, admit = rt.db.transaction, rt.presence.admit

    @asynccontextmanager
    async def counted() -> AsyncIterator[Tx]:
        opened.append("tx")
        async with transaction() as tx:
            yield tx
        opened.append("done")

    async def watched(*args: Any, **kwargs: Any) -> Admission:
        open_during_admission.append(opened.count("tx") - opened.count("done"))
        return await admit(*args, **kwargs)

    monkeypatch.setattr(rt.db, "transaction", counted)
    monkeypatch.setattr(rt.presence, "admit", watched)
    await live.join(rt, attendee("ann"), VIEWERS, event_id)
    assert (opened.count("tx"), open_during_admission) == (1, [0])
    await live.join(rt, attendee("bob"), VIEWERS, event_id, idempotency_key="k-1")
    assert (opened.count("tx"), open_during_admission) == (3, [0, 1])


# --- reconnect grace and one place per person -------------------------------------------


def with_grace(rt: Runtime, grace: float, ttl: int = 30) -> None:
    rt.settings = rt.settings.model_copy(update={"presence_grace": grace, "presence_ttl": ttl})


async def viewers_now(rt: Runtime, event_id: str) -> tuple[int | None, int | None, bool | None]:
    view = (await snapshot.capacity_snapshot(rt, event_id)).viewers
    assert view is not None
    return view.viewers, view.in_grace, view.is_full


async def test_a_dropped_viewer_gets_the_place_back_and_a_leave_ends_it(rt: Runtime) -> None:
    with_grace(rt, 30)
    event_id = await make_event(rt, viewers_cap=2)
    ann = await live.join(rt, attendee("ann"), VIEWERS, event_id)
    bob = await live.join(rt, attendee("bob"), VIEWERS, event_id)
    with pytest.raises(NotFound):  # only the holder may say their connection is gone
        await live.drop(rt, attendee("mallory"), bob.lease_id)
    await live.drop(rt, attendee("ann"), ann.lease_id)
    assert await viewers_now(rt, event_id) == (1, 1, True)
    with pytest.raises(ViewerLimitReached) as refused:
        await live.join(rt, attendee("cid"), VIEWERS, event_id)
    assert refused.value.extra == {"limit": 2, "viewers": 2}
    back = await live.join(rt, attendee("ann"), VIEWERS, event_id)
    assert (back.place, back.occupancy, back.grace_seconds) == ("resumed", 2, 30.0)
    assert await viewers_now(rt, event_id) == (2, 0, True)
    await live.release(rt, attendee("ann"), back.lease_id)  # a leave: no grace
    assert await viewers_now(rt, event_id) == (1, 0, False)
    assert (await live.join(rt, attendee("cid"), VIEWERS, event_id)).place == "new"


async def test_a_leave_after_the_lease_lapsed_gives_up_the_held_place(rt: Runtime) -> None:
    with_grace(rt, 30, ttl=1)
    event_id = await make_event(rt, viewers_cap=1)
    ann = await live.join(rt, attendee("ann"), VIEWERS, event_id)
    await asyncio.sleep(1.1)
    assert await viewers_now(rt, event_id) == (0, 1, True)
    await live.release(rt, attendee("ann"), ann.lease_id)
    assert await viewers_now(rt, event_id) == (0, 0, False)
    assert (await live.join(rt, attendee("bob"), VIEWERS, event_id)).place == "new"


async def test_grace_comes_from_the_event_then_the_space_then_the_setting(rt: Runtime) -> None:
    with_grace(rt, 30)
    event = await events.create_event(
        rt,
        ORG,
        EventDraft(
            name="Grace",
            virtual_settings=VirtualSettings(max_concurrent_viewers=1, reconnect_grace_seconds=0),
        ),
    )
    ann = await live.join(rt, attendee("ann"), VIEWERS, event.id)
    assert ann.grace_seconds == 0
    await live.drop(rt, attendee("ann"), ann.lease_id)  # no grace: free at once
    bob = await live.join(rt, attendee("bob"), VIEWERS, event.id)
    patched = VirtualSettings(max_concurrent_viewers=1, reconnect_grace_seconds=45)
    await events.update_event(rt, ORG, event.id, EventPatch(virtual_settings=patched))
    with pytest.raises(ViewerLimitReached):
        await live.join(rt, attendee("cid"), VIEWERS, event.id)
    await live.release(rt, attendee("bob"), bob.lease_id)
    assert (await live.join(rt, attendee("cid"), VIEWERS, event.id)).grace_seconds == 45
    seen = await events.get_event(rt, event.id)
    assert seen.virtual_settings.reconnect_grace_seconds == 45

    booth = await places.create(rt, ORG, BOOTH, event.id, BoothDraft(name="B", max_visitors=1))
    assert (await live.join(rt, attendee("ann"), BOOTH, booth.id)).grace_seconds == 30
    # A space's own grace (a registry setting) wins over HEADCOUNT_PRESENCE_GRACE.
    no_grace = dataclasses.replace(BOOTH, grace=0.0)
    other = await places.create(rt, ORG, BOOTH, event.id, BoothDraft(name="C", max_visitors=1))
    dan = await live.join(rt, attendee("dan"), no_grace, other.id)
    assert dan.grace_seconds == 0.0
    await live.drop(rt, attendee("dan"), dan.lease_id)
    assert (await live.join(rt, attendee("eve"), no_grace, other.id)).place == "new"


async def test_one_viewer_on_three_devices_is_one_place(rt: Runtime) -> None:
    with_grace(rt, 30)
    event_id = await make_event(rt, viewers_cap=1)
    ann = [await live.join(rt, attendee("ann"), VIEWERS, event_id) for _ in range(3)]
    assert [(x.place, x.occupancy) for x in ann] == [("new", 1), ("shared", 1), ("shared", 1)]
    assert await viewers_now(rt, event_id) == (1, 0, True)
    with pytest.raises(ViewerLimitReached):
        await live.join(rt, attendee("bob"), VIEWERS, event_id)
    await live.release(rt, attendee("ann"), ann[0].lease_id)
    await live.drop(rt, attendee("ann"), ann[1].lease_id)
    assert await viewers_now(rt, event_id) == (1, 0, True)  # closing 2 of 3 keeps it
    with pytest.raises(ViewerLimitReached):
        await live.join(rt, attendee("bob"), VIEWERS, event_id)
    await live.drop(rt, attendee("ann"), ann[2].lease_id)
    assert await viewers_now(rt, event_id) == (0, 1, True)  # the last one: grace
    assert (await live.join(rt, attendee("ann"), VIEWERS, event_id)).place == "resumed"


async def test_a_space_counting_connections_gives_each_socket_a_place(rt: Runtime) -> None:
    with_grace(rt, 30)
    event_id = await make_event(rt)
    booth = await places.create(rt, ORG, BOOTH, event_id, BoothDraft(name="B", max_visitors=3))
    per_socket = dataclasses.replace(BOOTH, count=Count.CONNECTIONS)
    ann = [await live.join(rt, attendee("ann"), per_socket, booth.id) for _ in range(3)]
    assert [x.occupancy for x in ann] == [1, 2, 3]
    with pytest.raises(BoothFull):
        await live.join(rt, attendee("ann"), per_socket, booth.id)
    await live.drop(rt, attendee("ann"), ann[0].lease_id)
    seen = await places.get(rt, BOOTH, booth.id)
    assert (seen.visitors, seen.in_grace, seen.is_full) == (2, 1, True)
    with pytest.raises(BoothFull):
        await live.join(rt, attendee("bob"), per_socket, booth.id)
    assert (await live.join(rt, attendee("ann"), per_socket, booth.id)).place == "resumed"


async def test_drop_and_return_through_the_service_layer(rt: Runtime) -> None:
    """Viewers at their limit lose their sockets (no leave) while half as many newcomers
    again hammer the join: every viewer who returns within grace is let in, no newcomer
    gets a held place, the places never exceed the limit, and after grace newcomers get
    the rest. The shape of the 200/300 engine and WebSocket tests, scaled to 60/90 so
    that four database-and-engine runs stay well inside the grace on a loaded machine."""
    grace, limit = 4.0, 60
    with_grace(rt, grace)
    event_id = await make_event(rt, viewers_cap=limit)
    held = [await live.join(rt, attendee(f"v{n}"), VIEWERS, event_id) for n in range(limit)]
    dropping = time.monotonic()
    await asyncio.gather(*(live.drop(rt, attendee(x.holder), x.lease_id) for x in held))
    dropped = time.monotonic()
    assert await viewers_now(rt, event_id) == (0, limit, True)

    returning = random.Random(18).sample([x.holder for x in held], 45)
    newcomers = [f"new{n}" for n in range(90)]
    occupancies: list[int] = []
    refusals: list[int] = []
    let_in: list[str] = []

    async def try_join(who: str) -> None:
        try:
            lease = await live.join(rt, attendee(who), VIEWERS, event_id)
        except ViewerLimitReached as refused:
            refusals.append(refused.extra["viewers"])
            return
        occupancies.append(lease.occupancy)
        let_in.append(who)

    async def hammer() -> int:
        """Rounds of all the newcomers while the returns run (and at least one), each
        started well inside the grace: past it, the held places are rightly free."""
        rounds = 0
        while rounds < 1 or not returns.done():
            assert time.monotonic() < dropping + grace - 1.5, "too slow to hammer in grace"
            await asyncio.gather(*(try_join(who) for who in newcomers))
            rounds += 1
        return rounds

    returns = asyncio.gather(*(try_join(who) for who in returning))  # scheduled first
    rounds, _ = await asyncio.gather(hammer(), returns)
    assert time.monotonic() < dropping + grace, "the returns took longer than the grace"
    assert sorted(let_in) == sorted(returning), "only returning viewers were let in"
    assert len(refusals) == len(newcomers) * rounds
    assert max(occupancies + refusals) == limit
    assert await viewers_now(rt, event_id) == (45, 15, True)

    await asyncio.sleep(dropped + grace + 0.2 - time.monotonic())  # the rest's grace is over
    let_in.clear()
    await asyncio.gather(*(try_join(who) for who in newcomers))
    assert len(let_in) == 15
    assert set(let_in) <= set(newcomers)
    assert await viewers_now(rt, event_id) == (limit, 0, True)
