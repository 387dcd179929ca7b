"""One contract, every backend: the same tests run against in-process memory, one real Redis
and a real Redis Cluster."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from headcount.presence import LeaseState, MemoryPresence, Presence, Resource, parse_lease_id
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
