"""Script calls of one loop turn share a pipeline (presence/batching.py), on real Redis.

Batching must only share Python's overhead: every caller still gets its own answer, the
limit is still exact under a stampede, and a script flushed from Redis is loaded again.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from headcount.presence import Resource
from headcount.presence.redis import RedisPresence


@pytest.fixture
async def engine(redis_url: str) -> AsyncIterator[RedisPresence]:
    found = RedisPresence(redis_url, prefix=f"hcbatch-{secrets.token_hex(6)}")
    try:
        yield found
    finally:
        await found.close()


def _count_pipelines(engine: RedisPresence, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = engine._redis.pipeline

    def spy(transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = real(transaction, shard_hint)
        execute = pipe.execute

        async def counted(raise_on_error: bool = True) -> list[Any]:
            sizes.append(len(pipe.command_stack))
            return await execute(raise_on_error)

        monkeypatch.setattr(pipe, "execute", counted)
        return pipe

    monkeypatch.setattr(engine._redis, "pipeline", spy)
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
    assert len(sizes) <= 10
    # Refusals saw the room full; admissions saw their own count, 1 to 50, once each.
    assert sorted(a.occupancy for a in admitted) == list(range(1, 51))


async def test_calls_after_a_script_flush_load_it_again(
    engine: RedisPresence, redis_url: str
) -> None:
    where = Resource("booth", f"bth_{secrets.token_hex(6)}")
    assert (await engine.admit(where, "first", limit=None, ttl=30)).admitted
    admin = aioredis.from_url(redis_url)
    try:
        await admin.script_flush()
    finally:
        await admin.aclose()
    answers = await asyncio.gather(
        *(engine.admit(where, f"u{i}", limit=None, ttl=30) for i in range(20))
    )
    assert all(a.admitted for a in answers)
    assert await engine.occupancy(where) == 21
