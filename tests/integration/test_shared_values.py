"""Values computed once and shared (presence/shared.py), on memory, Redis and a cluster.

Many processes' feeds asking at once for the same scope and tick: exactly one is told to
compute; once it has filled the value, everyone reads it; a bump (a change) or the next
tick asks for a new computation; a computer that vanished leaves a lock that lapses.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from headcount.presence import MemoryPresence, Presence
from headcount.presence.redis import RedisPresence
from headcount.presence.shared import SharedValues, shared_values
from support.redis_backends import REDIS_BACKENDS, redis_backend_url

TICK_MS = 1_000_000_000  # ~11 days: no tick boundary falls inside a test


@pytest.fixture(params=["memory", *REDIS_BACKENDS])
async def engines(request: pytest.FixtureRequest) -> AsyncIterator[list[Presence]]:
    """Three engines sharing one store, as three API processes would (memory: one)."""
    found: list[Presence]
    if request.param == "memory":
        found = [MemoryPresence()]
    else:
        url = redis_backend_url(request, request.param)
        prefix = f"hcsv-{secrets.token_hex(4)}"
        found = [RedisPresence(url, prefix=prefix) for _ in range(3)]
    try:
        yield found
    finally:
        for engine in found:
            await engine.close()


async def test_one_computes_the_others_read(engines: list[Presence]) -> None:
    stores: list[SharedValues] = [shared_values(e) for e in engines]
    scope = f"capacity.evt_{secrets.token_hex(4)}.1000"
    claims = await asyncio.gather(
        *(
            stores[n % len(stores)].claim(scope, bump=False, tick_ms=TICK_MS, lock_ms=5000)
            for n in range(60)
        )
    )
    owners = [c for c in claims if c.owner]
    assert len(owners) == 1
    assert all(c.value is None for c in claims)  # nobody has it yet: the rest wait
    await stores[0].fill(scope, owners[0].mark, '{"figure": 1}')
    reads = await asyncio.gather(
        *(s.claim(scope, bump=False, tick_ms=TICK_MS, lock_ms=5000) for s in stores)
    )
    assert {(r.value, r.owner) for r in reads} == {('{"figure": 1}', False)}

    changed = await stores[-1].claim(scope, bump=True, tick_ms=TICK_MS, lock_ms=5000)
    assert changed.owner
    assert changed.value is None
    assert changed.mark != owners[0].mark


async def test_a_vanished_computer_lets_another_take_over(engines: list[Presence]) -> None:
    store = shared_values(engines[0])
    scope = f"capacity.evt_{secrets.token_hex(4)}.1000"
    first = await store.claim(scope, bump=False, tick_ms=TICK_MS, lock_ms=100)
    assert first.owner  # … and never fills
    waiting = await store.claim(scope, bump=False, tick_ms=TICK_MS, lock_ms=100)
    assert not waiting.owner
    await asyncio.sleep(0.15)
    taken = await store.claim(scope, bump=False, tick_ms=TICK_MS, lock_ms=100)
    assert taken.owner
    assert taken.mark == first.mark
