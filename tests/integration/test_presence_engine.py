"""One contract, every backend: the same tests run against in-process memory, one real Redis
and a real Redis Cluster."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from headcount.domain.presence import Count
from headcount.presence import (
    Admission,
    Lease,
    LeaseState,
    MemoryPresence,
    Place,
    Presence,
    Resource,
    Tally,
    parse_lease_id,
)
from headcount.presence.redis import RedisPresence
from support.redis_backends import REDIS_BACKENDS, redis_backend_url


@pytest.fixture(params=["memory", *REDIS_BACKENDS])
async def presence(request: pytest.FixtureRequest) -> AsyncIterator[Presence]:
    engine: Presence
    if request.param == "memory":
        engine = MemoryPresence()
    else:
        url = redis_backend_url(request, request.param)
        engine = RedisPresence(url, prefix=f"hctest-{secrets.token_hex(6)}")
    try:
        yield engine
    finally:
        await engine.close()


def room(kind: str = "booth") -> Resource:
    return Resource(kind, f"bth_{secrets.token_hex(6)}")


async def test_admits_up_to_the_limit_then_refuses(presence: Presence) -> None:
    where = room()
    first = await presence.admit(where, "ann", limit=2, ttl=30)
    second = await presence.admit(where, "bob", limit=2, ttl=30)
    third = await presence.admit(where, "cid", limit=2, ttl=30)
    assert (first.admitted, first.occupancy) == (True, 1)
    assert (second.admitted, second.occupancy) == (True, 2)
    assert (third.admitted, third.occupancy, third.closed) == (False, 2, False)
    assert await presence.occupancy(where) == 2
    assert first.lease is not None
    assert parse_lease_id(first.lease.lease_id) == where


async def test_no_limit_and_zero_limit(presence: Presence) -> None:
    open_room, shut = room(), room()
    for i in range(5):
        assert (await presence.admit(open_room, f"u{i}", limit=None, ttl=30)).admitted
    assert not (await presence.admit(shut, "ann", limit=0, ttl=30)).admitted
    assert await presence.occupancy(shut) == 0


async def test_leave_frees_at_once_and_only_for_the_holder(presence: Presence) -> None:
    where = room()
    lease = (await presence.admit(where, "ann", limit=1, ttl=30)).lease
    assert lease is not None
    assert await presence.release(lease.lease_id, "mallory") == LeaseState.NOT_HOLDER
    assert await presence.occupancy(where) == 1
    released = await presence.release(lease.lease_id, "ann")
    assert not isinstance(released, str)
    assert released.holder == "ann"
    assert await presence.occupancy(where) == 0
    assert await presence.release(lease.lease_id, "ann") == LeaseState.GONE
    assert (await presence.admit(where, "bob", limit=1, ttl=30)).admitted


async def test_unrenewed_leases_expire_and_free_their_place(presence: Presence) -> None:
    where = room()
    kept = (await presence.admit(where, "ann", limit=2, ttl=0.6)).lease
    lost = (await presence.admit(where, "bob", limit=2, ttl=0.6)).lease
    assert kept is not None
    assert lost is not None
    assert not (await presence.admit(where, "cid", limit=2, ttl=0.6)).admitted
    await asyncio.sleep(0.35)
    renewed = await presence.renew(kept.lease_id, "ann", ttl=0.6)
    assert not isinstance(renewed, str)
    assert renewed.expires_at > kept.expires_at
    await asyncio.sleep(0.4)  # bob's lease is now past its expiry, ann's is not
    assert await presence.occupancy(where) == 1
    assert await presence.renew(lost.lease_id, "bob", ttl=0.6) == LeaseState.GONE
    assert [x.holder for x in await presence.leases(where)] == ["ann"]
    assert (await presence.admit(where, "cid", limit=2, ttl=0.6)).admitted


async def test_renew_checks_the_holder(presence: Presence) -> None:
    lease = (await presence.admit(room(), "ann", limit=None, ttl=30)).lease
    assert lease is not None
    assert await presence.renew(lease.lease_id, "bob", ttl=30) == LeaseState.NOT_HOLDER
    assert await presence.renew("booth.bth_nothing.abcdefghijkl", "ann", ttl=30) == "gone"
    assert await presence.renew("garbage", "ann", ttl=30) == LeaseState.GONE


async def test_lowering_the_limit_kicks_nobody(presence: Presence) -> None:
    where = room()
    for i in range(5):
        assert (await presence.admit(where, f"u{i}", limit=5, ttl=30)).admitted
    refused = await presence.admit(where, "late", limit=3, ttl=30)
    assert (refused.admitted, refused.occupancy) == (False, 5)
    leases = await presence.leases(where)
    assert len(leases) == 5
    for lease in leases[:3]:
        await presence.release(lease.lease_id, lease.holder)
    assert (await presence.admit(where, "late", limit=3, ttl=30)).admitted


async def test_close_evicts_everyone_and_refuses_until_reopened(presence: Presence) -> None:
    where = room("room")
    leases = [(await presence.admit(where, f"u{i}", limit=10, ttl=30)).lease for i in range(3)]
    assert await presence.close_resource(where) == 3
    assert await presence.occupancy(where) == 0
    refused = await presence.admit(where, "late", limit=10, ttl=30)
    assert (refused.admitted, refused.closed) == (False, True)
    first = leases[0]
    assert first is not None
    assert await presence.renew(first.lease_id, "u0", ttl=30) == LeaseState.GONE
    await presence.reopen_resource(where)
    assert (await presence.admit(where, "late", limit=10, ttl=30)).admitted


async def test_occupancies_reads_many_resources_at_once(presence: Presence) -> None:
    rooms = [room() for _ in range(3)]
    for n, where in enumerate(rooms):
        for i in range(n):
            await presence.admit(where, f"u{i}", limit=None, ttl=30)
    assert await presence.occupancies(rooms) == {r: n for n, r in enumerate(rooms)}
    assert await presence.occupancies([]) == {}


async def test_concurrent_admissions_never_pass_the_limit(presence: Presence) -> None:
    where = room()
    results = await asyncio.gather(
        *(presence.admit(where, f"u{i}", limit=25, ttl=30) for i in range(300))
    )
    assert sum(r.admitted for r in results) == 25
    assert await presence.occupancy(where) == 25
    assert max(r.occupancy for r in results) == 25


async def test_ping(presence: Presence) -> None:
    await presence.ping()


async def test_memory_prune_forgets_lapsed_resources() -> None:
    now = [1000.0]
    engine = MemoryPresence(clock=lambda: now[0])
    for i in range(3):
        await engine.admit(room(), f"u{i}", limit=None, ttl=5)
    kept = room()
    await engine.admit(kept, "stay", limit=None, ttl=50)
    now[0] += 10
    assert await engine.prune() == 3
    assert await engine.occupancy(kept) == 1
    assert len(engine._rooms) == 1


# --- reconnect grace and one place per person ------------------------------------------
#
# Grace is judged by each engine's own clock (Redis: TIME), so these tests wait for it in
# real time with short TTLs and graces.

USERS, CONNECTIONS = Count.USERS, Count.CONNECTIONS
COUNTS = pytest.mark.parametrize("count", [USERS, CONNECTIONS], ids=["users", "connections"])


async def admitted(
    presence: Presence,
    where: Resource,
    holder: str,
    *,
    limit: int | None = None,
    ttl: float = 30,
    grace: float = 30,
    count: Count = USERS,
) -> Lease:
    answer = await presence.admit(where, holder, limit=limit, ttl=ttl, grace=grace, count=count)
    assert answer.lease is not None, (holder, answer)
    return answer.lease


async def tally(presence: Presence, where: Resource) -> Tally:
    return (await presence.tallies([where]))[where]


@COUNTS
async def test_a_dropped_place_is_kept_for_its_holder_even_when_full(
    presence: Presence, count: Count
) -> None:
    where = room()
    ann = await admitted(presence, where, "ann", limit=2, count=count)
    await admitted(presence, where, "bob", limit=2, count=count)
    dropped = await presence.drop(ann.lease_id, "ann")
    assert not isinstance(dropped, str)
    assert await tally(presence, where) == Tally(places=2, in_grace=1, connections=1)
    assert await presence.renew(ann.lease_id, "ann", ttl=30) == LeaseState.GONE
    refused = await presence.admit(where, "cid", limit=2, ttl=30, grace=30, count=count)
    assert (refused.admitted, refused.occupancy, refused.in_grace) == (False, 2, 1)

    back = await presence.admit(where, "ann", limit=2, ttl=30, grace=30, count=count)
    assert (back.admitted, back.place, back.occupancy, back.in_grace) == (
        True,
        Place.RESUMED,
        2,
        0,
    )
    assert await tally(presence, where) == Tally(places=2, in_grace=0, connections=2)
    # Taken back, it is a live place again: held past the old grace, refused to others.
    assert not (await presence.admit(where, "cid", limit=2, ttl=30, count=count)).admitted


@COUNTS
async def test_a_lapsed_lease_starts_the_grace_and_the_place_is_freed_after_it(
    presence: Presence, count: Count
) -> None:
    where = room()
    ann = await admitted(presence, where, "ann", limit=1, ttl=0.3, grace=0.6, count=count)
    await asyncio.sleep(0.45)  # the lease lapsed (no renewal): its place is in grace
    assert await tally(presence, where) == Tally(places=1, in_grace=1, connections=0)
    assert await presence.renew(ann.lease_id, "ann", ttl=0.3) == LeaseState.GONE
    assert not (await presence.admit(where, "bob", limit=1, ttl=30, count=count)).admitted
    await asyncio.sleep(0.6)  # 0.3 s lease + 0.6 s grace are over
    assert await tally(presence, where) == Tally()
    assert (await presence.admit(where, "bob", limit=1, ttl=30, count=count)).admitted
    late = await presence.admit(where, "ann", limit=1, ttl=30, count=count)
    assert (late.admitted, late.occupancy) == (False, 1)  # after grace: a newcomer like any


@COUNTS
async def test_a_leave_frees_at_once_and_ends_a_grace(presence: Presence, count: Count) -> None:
    where = room()
    ann = await admitted(presence, where, "ann", limit=1, count=count)
    assert not isinstance(await presence.release(ann.lease_id, "ann"), str)
    assert await tally(presence, where) == Tally()  # no grace after a leave
    assert (await presence.admit(where, "bob", limit=1, ttl=30, count=count)).admitted

    other = room()
    cid = await admitted(presence, other, "cid", limit=1, ttl=0.2, grace=30, count=count)
    await asyncio.sleep(0.3)
    assert await tally(presence, other) == Tally(places=1, in_grace=1)
    assert await presence.release(cid.lease_id, "mallory") == LeaseState.GONE
    assert await tally(presence, other) == Tally(places=1, in_grace=1)
    # Leaving with the lapsed lease gives the held place up at once.
    assert await presence.release(cid.lease_id, "cid") == LeaseState.RELINQUISHED
    assert await tally(presence, other) == Tally()
    assert await presence.release(cid.lease_id, "cid") == LeaseState.GONE
    assert (await presence.admit(other, "dan", limit=1, ttl=30, count=count)).admitted


async def test_drop_checks_the_holder(presence: Presence) -> None:
    where = room()
    ann = await admitted(presence, where, "ann")
    assert await presence.drop(ann.lease_id, "mallory") == LeaseState.NOT_HOLDER
    assert await presence.drop("booth.bth_nothing.abcdefghijkl", "ann") == LeaseState.GONE
    assert await presence.drop("garbage", "ann") == LeaseState.GONE
    assert await tally(presence, where) == Tally(places=1, connections=1)
    assert not isinstance(await presence.drop(ann.lease_id, "ann"), str)
    assert await presence.drop(ann.lease_id, "ann") == LeaseState.GONE


async def test_without_grace_a_lost_lease_frees_its_place_at_once(presence: Presence) -> None:
    where = room()
    ann = await admitted(presence, where, "ann", limit=1, grace=0)
    await presence.drop(ann.lease_id, "ann")
    assert await tally(presence, where) == Tally()
    assert (await presence.admit(where, "bob", limit=1, ttl=30)).admitted


async def test_one_user_on_three_sockets_holds_one_place(presence: Presence) -> None:
    where = room()
    first = await presence.admit(where, "ann", limit=1, ttl=30, grace=30, count=USERS)
    more = [await presence.admit(where, "ann", limit=1, ttl=30, count=USERS) for _ in range(2)]
    assert (first.place, first.occupancy) == (Place.NEW, 1)
    # Full at 1, yet ann's other devices join her place: it is hers.
    assert [(a.admitted, a.place, a.occupancy) for a in more] == [(True, Place.SHARED, 1)] * 2
    assert await tally(presence, where) == Tally(places=1, connections=3)
    assert not (await presence.admit(where, "bob", limit=1, ttl=30, count=USERS)).admitted
    leases = [a.lease for a in [first, *more] if a.lease is not None]
    # Closing two of three (a leave and a drop) keeps the place, with no grace yet.
    assert not isinstance(await presence.release(leases[0].lease_id, "ann"), str)
    assert not isinstance(await presence.drop(leases[1].lease_id, "ann"), str)
    assert await tally(presence, where) == Tally(places=1, connections=1)
    assert not (await presence.admit(where, "bob", limit=1, ttl=30, count=USERS)).admitted
    # The last socket's leave frees it.
    assert not isinstance(await presence.release(leases[2].lease_id, "ann"), str)
    assert await tally(presence, where) == Tally()
    assert (await presence.admit(where, "bob", limit=1, ttl=30, count=USERS)).admitted


async def test_counting_connections_each_socket_is_a_place(presence: Presence) -> None:
    where = room()
    answers = [
        await presence.admit(where, "ann", limit=3, ttl=30, count=CONNECTIONS) for _ in range(4)
    ]
    assert [(a.admitted, a.occupancy) for a in answers] == [
        (True, 1),
        (True, 2),
        (True, 3),
        (False, 3),
    ]
    assert await tally(presence, where) == Tally(places=3, connections=3)
    first = answers[0].lease
    assert first is not None
    await presence.release(first.lease_id, "ann")
    assert await tally(presence, where) == Tally(places=2, connections=2)


async def test_counting_connections_a_holder_takes_back_each_of_their_held_places(
    presence: Presence,
) -> None:
    where = room()
    mine = [await admitted(presence, where, "ann", limit=3, count=CONNECTIONS) for _ in range(2)]
    await admitted(presence, where, "bob", limit=3, count=CONNECTIONS)
    for lease in mine:
        await presence.drop(lease.lease_id, "ann")
    assert await tally(presence, where) == Tally(places=3, in_grace=2, connections=1)
    assert not (await presence.admit(where, "bob", limit=3, ttl=30, count=CONNECTIONS)).admitted
    again = [
        await presence.admit(where, "ann", limit=3, ttl=30, count=CONNECTIONS) for _ in range(3)
    ]
    assert [(a.admitted, a.place) for a in again] == [
        (True, Place.RESUMED),
        (True, Place.RESUMED),
        (False, Place.NEW),  # a third socket of ann's is a newcomer: the space is full
    ]
    assert await tally(presence, where) == Tally(places=3, connections=3)
    # A place taken back carries the new lease: leaving with it frees that place.
    back = again[0].lease
    assert back is not None
    assert not isinstance(await presence.release(back.lease_id, "ann"), str)
    assert await tally(presence, where) == Tally(places=2, connections=2)


@COUNTS
async def test_a_place_in_grace_is_only_its_holders(presence: Presence, count: Count) -> None:
    where = room()
    ann = await admitted(presence, where, "ann", limit=1, count=count)
    await presence.drop(ann.lease_id, "ann")
    # Holders that merely share a prefix (or a length) with ann are strangers.
    for stranger in ("an", "ann2", "nna", "3:ann", "ann\x00", "u:ann", "c:ann"):
        for way in (USERS, CONNECTIONS):
            answer = await presence.admit(where, stranger, limit=1, ttl=30, count=way)
            assert not answer.admitted, (stranger, way)
    back = await presence.admit(where, "ann", limit=1, ttl=30, count=count)
    assert (back.admitted, back.place) == (True, Place.RESUMED)


async def test_closing_evicts_places_held_in_grace_too(presence: Presence) -> None:
    where = room("room")
    ann = await admitted(presence, where, "ann", limit=5)
    await admitted(presence, where, "bob", limit=5)
    await presence.drop(ann.lease_id, "ann")
    assert await presence.close_resource(where) == 2
    assert await tally(presence, where) == Tally()
    refused = await presence.admit(where, "ann", limit=5, ttl=30, grace=30)
    assert (refused.admitted, refused.closed) == (False, True)
    await presence.reopen_resource(where)
    assert (await presence.admit(where, "ann", limit=5, ttl=30)).place == Place.NEW


async def test_drop_and_return_under_a_newcomer_stampede(presence: Presence) -> None:
    """200 viewers at a limit of 200 lose their connections without leaving (100 sockets
    dropped, 100 leases left to lapse) while 300 newcomers hammer the join. Every viewer
    who returns within grace gets their place back; no newcomer gets a held place; the
    places never exceed 200; after grace the unreturned places go to newcomers."""
    # A grace long enough that the returns land within it on a loaded CI machine; the
    # wait after it is only what is left of it.
    where, limit, grace = room("viewers"), 200, 6.0
    peak = 0

    def seen(answer: Admission) -> Admission:
        nonlocal peak
        peak = max(peak, answer.occupancy)
        return answer

    async def admit(who: str, ttl: float = 30) -> Admission:
        return seen(await presence.admit(where, who, limit=limit, ttl=ttl, grace=grace))

    dropped = [(await admit(f"v{n}")).lease for n in range(100)]
    lapse_from = time.monotonic() + 0.4  # no lapsing lease's grace starts before this
    lapsing = [(await admit(f"v{n}", ttl=0.4)).lease for n in range(100, 200)]
    lapsed_by = time.monotonic() + 0.4  # every lapsing lease's grace has started by then
    assert all(lease is not None for lease in dropped + lapsing)
    assert not (await admit("early-bird")).admitted
    dropping = time.monotonic()
    await asyncio.gather(*(presence.drop(x.lease_id, x.holder) for x in dropped if x))
    last_grace_ends = max(time.monotonic(), lapsed_by) + grace
    await asyncio.sleep(0.5)  # the silent ones' leases have lapsed too: all 200 in grace
    assert await tally(presence, where) == Tally(places=200, in_grace=200)

    rng = random.Random(18)
    returning = rng.sample([f"v{n}" for n in range(200)], 150)
    newcomers = [f"new{n}" for n in range(300)]
    returns: list[Admission] = []
    stampede: list[Admission] = []
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            stampede.extend(await asyncio.gather(*(admit(who) for who in newcomers)))

    async def sample() -> None:
        while not stop.is_set():
            now = await tally(presence, where)
            seen(Admission(None, now.places))
            await asyncio.sleep(0.01)

    background = [asyncio.create_task(hammer()), asyncio.create_task(sample())]
    for batch in range(0, len(returning), 25):  # returns spread over ~1 s of the grace
        returns += await asyncio.gather(*(admit(who) for who in returning[batch : batch + 25]))
        await asyncio.sleep(0.15)
    stop.set()
    await asyncio.gather(*background)
    graces_end = min(dropping, lapse_from) + grace
    assert time.monotonic() < graces_end, "the returns took longer than the grace"

    assert [a.place for a in returns] == [Place.RESUMED] * 150
    assert all(a.admitted for a in returns)
    assert len(stampede) >= 600, "the newcomers hammered throughout"
    assert [a for a in stampede if a.admitted] == []
    assert await tally(presence, where) == Tally(places=200, in_grace=50, connections=150)

    # The 50 unreturned places' grace is over.
    await asyncio.sleep(max(0.0, last_grace_ends - time.monotonic()) + 0.2)
    after = await asyncio.gather(*(admit(who) for who in newcomers))
    assert sum(a.admitted for a in after) == 50
    assert await tally(presence, where) == Tally(places=200, in_grace=0, connections=200)
    late = [f"v{n}" for n in range(200) if f"v{n}" not in returning][:5]
    assert not any([(await admit(who)).admitted for who in late])  # too late: newcomers now
    assert peak == limit


async def test_redis_keys_always_expire(redis_url: str) -> None:
    """Whatever a script creates (an idle index made by a mere read included) expires,
    so an abandoned resource leaves nothing behind."""
    import redis.asyncio as aioredis

    prefix = f"hctest-{secrets.token_hex(6)}"
    engine = RedisPresence(redis_url, prefix=prefix)
    admin = aioredis.from_url(redis_url)
    try:
        where = room()
        await admitted(engine, where, "ann", ttl=0.2, grace=30)
        await asyncio.sleep(0.3)
        assert await tally(engine, where) == Tally(places=1, in_grace=1)  # a read lapsed it
        keys = [k async for k in admin.scan_iter(match=f"{prefix}:*")]
        assert {k.decode().rsplit(":", 1)[1] for k in keys} == {"places", "idle", "meta"}
        ttls = {k: await admin.pttl(k) for k in keys}
        assert all(ms > 30_000 for ms in ttls.values()), ttls
    finally:
        await admin.aclose()
        await engine.close()
