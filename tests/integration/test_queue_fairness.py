"""Fairness and pace of the queue store, on a simulated clock (in-process store, so three
minutes of a sale run in about a second):

* random rooms: 1,000 early arrivals, repeated, get positions whose distribution passes a
  chi-square uniformity test, whatever their arrival order;
* rate: over three minutes with buyers completing, abandoning and timing out, admissions
  per minute stay within 5 % of `admit_per_minute` and active buyers never exceed
  `active_limit`.

The Redis scripts implement the same rules (`test_queue_store.py` holds both to one
contract); Redis reads its own clock, so the pace there is measured by the bench.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time

import pytest

from headcount.domain.queue import LATE_BASE, QueueOrder, RoomTerms
from headcount.presence.queues import MemoryQueues

# Chi-square critical values at p = 0.001 (a correct shuffle fails one run in 1,000; the
# draws here are seeded, so the test is deterministic).
CHI2_CRITICAL_DF9 = 27.877


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def room(clock: Clock, **kw: object) -> RoomTerms:
    base: dict[str, object] = {
        "room_id": f"wr_{secrets.token_hex(6)}",
        "opens_at_ms": clock.ms + 60_000,
        "active_limit": 1_000_000,
        "admit_per_minute": 600,
        "pass_ttl_ms": 60_000,
        "order": QueueOrder.RANDOM,
    }
    base.update(kw)
    return RoomTerms(**base)  # type: ignore[arg-type]


def chi_square(counts: list[int]) -> float:
    expected = sum(counts) / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


async def test_random_early_positions_are_uniform_and_independent_of_arrival() -> None:
    draws = random.Random(20261129)
    arrivals, repeats, bins = 1_000, 30, 10
    first_bins = [0] * bins  # where the first 100 arrivals end up
    last_bins = [0] * bins  # where the last 100 do
    for _ in range(repeats):
        clock = Clock()
        store = MemoryQueues(clock)
        terms = room(clock)
        names = [f"v{i:04d}" for i in range(arrivals)]
        for name in names:
            clock.ms += 10  # arrivals spread over the 10 s before opening
            await store.join(terms, name, draw=draws.randrange(LATE_BASE))
        for i, name in enumerate(names):
            position = (await store.look(terms, name)).position
            assert position is not None
            target = first_bins if i < 100 else last_bins if i >= arrivals - 100 else None
            if target is not None:
                target[(position - 1) * bins // arrivals] += 1
    assert chi_square(first_bins) < CHI2_CRITICAL_DF9, first_bins
    assert chi_square(last_bins) < CHI2_CRITICAL_DF9, last_bins


async def test_fifo_after_opening_and_early_random_arrivals_go_first() -> None:
    clock = Clock()
    store = MemoryQueues(clock)
    terms = room(clock)
    early = [f"e{i}" for i in range(50)]
    for name in early:
        await store.join(terms, name, draw=secrets.randbelow(LATE_BASE))
    clock.ms = terms.opens_at_ms + 1
    late = [f"l{i}" for i in range(50)]
    for name in late:
        await store.join(terms, name, draw=0)  # a late arrival's draw is never used
    positions = {n: (await store.look(terms, n)).position for n in early + late}
    assert sorted(positions[n] or 0 for n in early) == list(range(1, 51))
    assert [positions[n] for n in late] == list(range(51, 101))


async def test_rate_and_active_limit_hold_over_three_minutes_of_buyers() -> None:
    """600 a minute, at most 110 in the shop (it binds at times), 20 s idle time; buyers
    complete (release after 2-15 s), abandon (after 1-5 s) or time out (never return)."""
    rng = random.Random(7)
    clock = Clock()
    store = MemoryQueues(clock)
    terms = room(
        clock,
        order=QueueOrder.FIFO,
        opens_at_ms=clock.ms,
        active_limit=110,
        admit_per_minute=600,
        pass_ttl_ms=20_000,
    )
    for i in range(3_000):
        await store.join(terms, f"v{i}", draw=0)
    leaving: dict[str, tuple[int, str]] = {}  # visitor → (release at ms, admission)
    per_minute = [0, 0, 0]
    start, tick = clock.ms, 200
    peak = 0
    while clock.ms < start + 180_000:
        for visitor, (at, admission) in list(leaving.items()):
            if at <= clock.ms:
                await store.release(terms, visitor, admission)
                del leaving[visitor]
        for admitted in await store.admit(terms):
            per_minute[(clock.ms - start) // 60_000] += 1
            fate = rng.random()
            if fate < 0.6:
                leaving[admitted.visitor] = (
                    clock.ms + rng.randint(2_000, 15_000),
                    admitted.admission,
                )
            elif fate < 0.8:
                leaving[admitted.visitor] = (
                    clock.ms + rng.randint(1_000, 5_000),
                    admitted.admission,
                )
            # else: times out, its pass lapses after 20 s idle
        figures = await store.figures(terms)
        peak = max(peak, figures.active)
        assert figures.active <= terms.active_limit
        clock.ms += tick
    print("admissions per minute", per_minute, "peak active", peak)
    assert all(570 <= n <= 630 for n in per_minute), per_minute
    assert peak == terms.active_limit  # the limit was reached, so it was what held


@pytest.mark.slow
async def test_redis_keeps_the_pace_and_the_limit_in_real_time(redis_url: str) -> None:
    """The same churn on one Redis, by its own clock, for 20 s at 1,200 a minute (the
    pump stepping every 100 ms): admissions after the first second (the saved-up burst)
    stay within 5 % of the rate, and the shop never holds more than its limit."""
    from headcount.presence.queue_redis import RedisQueues
    from headcount.presence.redis import RedisPresence

    presence = RedisPresence(redis_url, prefix=f"hctest-{secrets.token_hex(6)}")
    store = RedisQueues.beside(presence)
    rng = random.Random(11)
    terms = room(
        Clock(),  # unused: the terms say when the room opens, and Redis keeps the time
        opens_at_ms=0,
        active_limit=100,
        admit_per_minute=1_200,
        pass_ttl_ms=3_000,
        order=QueueOrder.FIFO,
    )
    try:
        for i in range(1_000):
            await store.join(terms, f"v{i}", draw=0)
        leaving: dict[str, tuple[float, str]] = {}
        counted, peak = 0, 0
        start = time.monotonic()
        while (now := time.monotonic() - start) < 21:
            for visitor, (at, admission) in list(leaving.items()):
                if at <= now:
                    await store.release(terms, visitor, admission)
                    del leaving[visitor]
            for admitted in await store.admit(terms):
                counted += now >= 1
                if rng.random() < 0.8:  # completes or abandons; the rest time out
                    leaving[admitted.visitor] = (now + rng.uniform(1, 8), admitted.admission)
            peak = max(peak, (await store.figures(terms)).active)
            await asyncio.sleep(0.1)
        print(f"redis: {counted} admitted in 20 s at 1,200/min (peak active {peak})")
        assert 380 <= counted <= 420, counted  # 20 s at 20 a second
        assert peak <= terms.active_limit
    finally:
        await presence.close()
