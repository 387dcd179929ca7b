"""The batcher's queue discipline and its shared follow-ups, without a database."""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from typing import Any, cast

from headcount.capacity.batching import HoldBatches, _next_batch, _Waiting
from headcount.domain.errors import ServiceUnavailable, SoldOut
from headcount.ledger.db import Database


async def _body(_tx: Any) -> None:
    return None


async def _alone() -> None:
    return None


async def test_a_batch_is_the_run_of_batchable_orders_at_the_head() -> None:
    queue = deque(
        [
            _Waiting("a", _body, None),
            _Waiting("b", _body, None),
            _Waiting("", None, _alone),  # keyed: alone, in its turn
            _Waiting("c", _body, None),
        ]
    )
    assert [w.owner for w in _next_batch(queue, 64)] == ["a", "b"]
    alone = _next_batch(queue, 64)
    assert len(alone) == 1
    assert alone[0].alone is not None
    assert [w.owner for w in _next_batch(queue, 64)] == ["c"]
    assert not queue


async def test_a_batch_is_at_most_its_size_and_skips_callers_gone() -> None:
    queue = deque(_Waiting(f"o{n}", _body, None) for n in range(5))
    queue[1].answer.cancel()
    assert [w.owner for w in _next_batch(queue, 3)] == ["o0", "o2", "o3"]
    assert [w.owner for w in _next_batch(queue, 3)] == ["o4"]


async def test_follow_ups_in_flight_are_shared() -> None:
    batches = HoldBatches(cast(Database, None), max_batch=8)
    runs = 0
    gate = asyncio.Event()

    async def expire() -> int:
        nonlocal runs
        runs += 1
        await gate.wait()
        return 3

    waiting = [asyncio.ensure_future(batches.shared("expire:t", expire)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [3] * 10
    assert runs == 1
    assert await batches.shared("expire:t", expire) == 3  # a new one after it ended
    assert runs == 2


async def test_a_database_that_did_not_answer_fails_the_queue_behind_at_once() -> None:
    """Shared fate: the orders queued behind a batch that found no database fail with
    it, not each after a timeout of its own; other failures stay the order's own."""
    batches = HoldBatches(cast(Database, None), max_batch=8, shared_failures=(ServiceUnavailable,))
    started = asyncio.Event()
    release = asyncio.Event()
    ran: list[str] = []

    async def stalled() -> None:
        ran.append("first")
        started.set()
        await release.wait()
        raise ServiceUnavailable("database unreachable")

    async def later(name: str) -> None:
        ran.append(name)

    first = asyncio.ensure_future(batches.alone("t", stalled))
    await started.wait()
    behind = [
        asyncio.ensure_future(batches.alone("t", functools.partial(later, f"o{n}")))
        for n in range(3)
    ]
    await asyncio.sleep(0)
    release.set()
    found = await asyncio.gather(first, *behind, return_exceptions=True)
    assert all(isinstance(f, ServiceUnavailable) for f in found)
    assert ran == ["first"], "the queued orders must not each try the database again"

    async def refused() -> None:
        raise SoldOut("gone")

    failed = await asyncio.gather(
        batches.alone("u", refused),
        batches.alone("u", lambda: later("next")),
        return_exceptions=True,
    )
    assert isinstance(failed[0], SoldOut)
    assert failed[1] is None
    assert ran[-1] == "next"
