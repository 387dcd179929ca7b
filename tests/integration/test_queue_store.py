"""The queue store's contract, on every backend: in-process memory, one Redis, a Redis
Cluster. Order, the active limit under concurrent admitting steps, passes bound to their
admission number, sold out and reopening in the same order."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from headcount.domain.queue import QueueOrder, RoomStatus, RoomTerms, TicketState
from headcount.presence.queues import MemoryQueues, Queues, wall_ms
from headcount.presence.redis import RedisPresence
from support.redis_backends import REDIS_BACKENDS, redis_backend_url


@pytest.fixture(params=["memory", *REDIS_BACKENDS])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Queues]:
    if request.param == "memory":
        yield MemoryQueues()
        return
    from headcount.presence.queue_redis import RedisQueues

    url = redis_backend_url(request, request.param)
    presence = RedisPresence(url, prefix=f"hctest-{secrets.token_hex(6)}")
    try:
        yield RedisQueues.beside(presence)
    finally:
        await presence.close()


def terms(
    *,
    limit: int = 1_000_000,
    rate: int = 600_000,
    ttl_ms: int = 60_000,
    order: QueueOrder = QueueOrder.FIFO,
    opens_at_ms: int = 0,
) -> RoomTerms:
    return RoomTerms(
        room_id=f"wr_{secrets.token_hex(6)}",
        opens_at_ms=opens_at_ms,
        active_limit=limit,
        admit_per_minute=rate,
        pass_ttl_ms=ttl_ms,
        order=order,
    )


async def test_fifo_positions_and_admission_follow_arrival(store: Queues) -> None:
    room = terms(limit=3, rate=600_000)
    names = [f"v{i:03d}" for i in range(10)]
    for i, name in enumerate(names):
        spot = await store.join(room, name, draw=secrets.randbelow(2**40))
        assert (spot.state, spot.position, spot.queued) == (TicketState.WAITING, i + 1, i + 1)
    again = await store.join(room, names[4], draw=0)
    assert (again.position, again.queued) == (5, 10)  # joining twice: the same place
    admitted = await store.admit(room)
    assert [a.visitor for a in admitted] == names[:3]  # the active limit stops it at 3
    assert [a.admission for a in admitted] == ["1", "2", "3"]
    assert (await store.look(room, names[3])).position == 1
    mine = await store.look(room, names[0])
    assert mine.state is TicketState.ADMITTED
    assert mine.admission == "1"
    assert await store.admit(room) == []  # full: nobody else until a slot frees
    assert await store.release(room, names[0], "1")
    assert [a.visitor for a in await store.admit(room)] == [names[3]]


async def test_a_pass_is_its_admission_only(store: Queues) -> None:
    room = terms(limit=1)
    await store.join(room, "ann", draw=0)
    (first,) = await store.admit(room)
    assert await store.touch(room, "ann", first.admission) is not None
    assert await store.touch(room, "ann", "999") is None  # not this admission
    assert await store.touch(room, "bob", first.admission) is None  # not this visitor
    assert await store.release(room, "ann", first.admission)
    assert not await store.release(room, "ann", first.admission)  # used once
    assert await store.touch(room, "ann", first.admission) is None
    assert (await store.look(room, "ann")).state is TicketState.GONE


async def test_leaving_gives_up_the_place(store: Queues) -> None:
    room = terms(limit=1, opens_at_ms=wall_ms() + 3_600_000)
    for name in ("ann", "bob", "cid"):
        await store.join(room, name, draw=0)
    assert await store.leave(room, "bob")
    assert not await store.leave(room, "bob")
    assert (await store.look(room, "cid")).position == 2
    assert (await store.look(room, "bob")).state is TicketState.GONE
    assert await store.admit(room) == []  # not open yet


async def test_concurrent_admitting_steps_never_exceed_the_active_limit(store: Queues) -> None:
    """Hammer: 40 admitting steps at once (as 40 replicas' pumps would) over 300 queued
    visitors with a limit of 25: exactly 25 admitted, each once, the first 25 in order."""
    room = terms(limit=25)
    names = [f"v{i:03d}" for i in range(300)]
    for name in names:
        await store.join(room, name, draw=0)
    rounds = await asyncio.gather(*(store.admit(room) for _ in range(40)))
    admitted = [a.visitor for batch in rounds for a in batch]
    assert sorted(admitted) == names[:25]
    figures = await store.figures(room)
    assert (figures.active, figures.queued, figures.admitted_total) == (25, 275, 25)


async def test_sold_out_stops_admitting_and_joining_then_reopens_in_order(store: Queues) -> None:
    room = terms(limit=1)
    await store.join(room, "in", draw=0)
    (inside,) = await store.admit(room)
    names = [f"v{i}" for i in range(5)]
    for name in names:
        await store.join(room, name, draw=0)
    assert await store.set_status(room, RoomStatus.SOLD_OUT) == 5
    assert (await store.look(room, "in")).state is TicketState.SOLD_OUT  # in the shop: told
    assert await store.release(room, "in", inside.admission)
    assert await store.admit(room) == []
    assert (await store.look(room, "v2")).state is TicketState.SOLD_OUT
    late = await store.join(room, "late", draw=0)
    assert (late.state, late.position) == (TicketState.SOLD_OUT, None)
    await store.set_status(room, RoomStatus.OPEN)
    spot = await store.look(room, "v2")
    assert (spot.state, spot.position) == (TicketState.WAITING, 3)
    assert [a.visitor for a in await store.admit(room)] == ["v0"]


async def test_a_lapsed_pass_frees_its_slot(store: Queues) -> None:
    room = terms(limit=1, ttl_ms=300)
    await store.join(room, "ann", draw=0)
    await store.join(room, "bob", draw=0)
    (ann,) = await store.admit(room)
    assert ann.visitor == "ann"
    await asyncio.sleep(0.45)
    (bob,) = await store.admit(room)
    assert bob.visitor == "bob"
    assert await store.touch(room, "ann", ann.admission) is None


async def test_random_early_arrivals_go_before_later_ones(store: Queues) -> None:
    room = terms(order=QueueOrder.RANDOM, opens_at_ms=wall_ms() + 3_600_000)
    draws = {"a": 900, "b": 100, "c": 500}
    for name, draw in draws.items():
        await store.join(room, name, draw=draw)
    assert [(await store.look(room, n)).position for n in "abc"] == [3, 1, 2]


async def test_a_waiting_socket_not_seen_lately_loses_its_place_at_the_head(
    store: Queues,
) -> None:
    """Live-space queues: sockets mark themselves seen; a head that stopped (dropped, its
    process killed) is pruned, one that keeps looking is not, and a sale's visitor (never
    marked) is never pruned."""
    room = terms()
    for name in ("gone", "here", "later"):
        await store.join(room, name, draw=0, live=True)
    await asyncio.sleep(0.3)
    await store.look(room, "here", live=True)
    assert await store.prune(room, stale_ms=200) == 1  # only the head; "later" waits
    assert (await store.look(room, "gone")).state is TicketState.GONE
    assert (await store.look(room, "here", live=True)).position == 1
    assert await store.prune(room, stale_ms=200) == 0
    sale = terms()
    await store.join(sale, "buyer", draw=0)
    await asyncio.sleep(0.3)
    assert await store.prune(sale, stale_ms=200) == 0
