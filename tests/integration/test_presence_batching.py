"""Script calls of one loop turn share a pipeline (presence/batching.py), on real Redis
and on a real Redis Cluster.

Batching must only share Python's overhead: every caller still gets its own answer, the
limit is still exact under a stampede, and a script flushed from Redis is loaded again.
On a cluster, calls are grouped by the master that owns their slot, and a call sent to
the wrong node (a stale slot map) follows its MOVED or ASK answer.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Hashable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from headcount.presence import Resource
from headcount.presence.batching import Command
from headcount.presence.redis import RedisPresence
from support.redis_backends import REDIS_BACKENDS, redis_backend_url, redis_engine


@pytest.fixture(params=REDIS_BACKENDS)
def url(request: pytest.FixtureRequest) -> str:
    return redis_backend_url(request, request.param)


@pytest.fixture
async def engine(url: str) -> AsyncIterator[RedisPresence]:
    async with redis_engine(url, "hcbatch") as found:
        yield found


def _count_pipelines(engine: RedisPresence, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the pipelines the engine sends (one per node per loop turn)."""
    sizes: list[int] = []
    transport = engine._batch._transport
    real = transport.pipeline

    async def counted(route: Hashable, commands: list[Command]) -> list[Any]:
        sizes.append(len(commands))
        return await real(route, commands)

    monkeypatch.setattr(transport, "pipeline", counted)
    return sizes


async def test_a_stampede_shares_round_trips_and_admits_exactly_the_limit(
    engine: RedisPresence, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _count_pipelines(engine, monkeypatch)
    where = Resource("viewers", f"evt_{secrets.token_hex(6)}")
    answers = await asyncio.gather(
        *(engine.admit(where, f"u{i}", limit=50, ttl=30) for i in range(600))
    )
    admitted = [a for a in answers if a.admitted]
    assert len(admitted) == 50
    assert len({a.lease.lease_id for a in admitted if a.lease}) == 50  # each its own lease
    assert await engine.occupancy(where) == 50
    assert sum(sizes) >= 590
    assert len(sizes) <= 10  # one resource: one slot, one node
    # Refusals saw the room full; admissions saw their own count, 1 to 50, once each.
    assert sorted(a.occupancy for a in admitted) == list(range(1, 51))


async def test_calls_after_a_script_flush_load_it_again(engine: RedisPresence, url: str) -> None:
    where = Resource("booth", f"bth_{secrets.token_hex(6)}")
    assert (await engine.admit(where, "first", limit=None, ttl=30)).admitted
    if engine.clustered:
        admin = RedisCluster.from_url(url.replace("redis+cluster", "redis"))
        try:
            await admin.execute_command("SCRIPT FLUSH", target_nodes=RedisCluster.ALL_NODES)
        finally:
            await admin.aclose()
    else:
        single = aioredis.from_url(url)
        try:
            await single.script_flush()
        finally:
            await single.aclose()
    answers = await asyncio.gather(
        *(engine.admit(where, f"u{i}", limit=None, ttl=30) for i in range(20))
    )
    assert all(a.admitted for a in answers)
    assert await engine.occupancy(where) == 21
