"""Joins share a read of their place only when it began after they asked (fresh.py)."""

from __future__ import annotations

import asyncio

import pytest

from headcount.fresh import FreshReads


class Row:
    """A row whose reads the test releases one at a time; each read returns its number."""

    def __init__(self) -> None:
        self.begun = 0
        self.gates: list[asyncio.Event] = []
        self.started = asyncio.Event()

    async def read(self) -> int:
        self.begun += 1
        self.started.set()
        number = self.begun
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return number

    async def wait_begun(self, count: int) -> None:
        while self.begun < count:
            self.started.clear()
            await asyncio.wait_for(self.started.wait(), 5)


async def test_callers_that_arrive_together_share_one_read() -> None:
    reads, row = FreshReads[str, int](), Row()
    callers = [asyncio.ensure_future(reads.get("k", row.read)) for _ in range(50)]
    await row.wait_begun(1)
    row.gates[0].set()
    assert await asyncio.gather(*callers) == [1] * 50
    assert row.begun == 1


async def test_a_read_begun_before_a_caller_arrived_is_never_its_answer() -> None:
    reads, row = FreshReads[str, int](), Row()
    early = asyncio.ensure_future(reads.get("k", row.read))
    await row.wait_begun(1)  # read 1 is running: a limit changed now is not in it
    late = [asyncio.ensure_future(reads.get("k", row.read)) for _ in range(20)]
    await asyncio.sleep(0.01)
    assert row.begun == 1  # one read at a time per key: the late ones wait for the next
    row.gates[0].set()
    assert await early == 1
    await row.wait_begun(2)
    row.gates[1].set()
    assert await asyncio.gather(*late) == [2] * 20  # read 2 began after they all asked
    assert row.begun == 2


async def test_keys_do_not_wait_for_each_other() -> None:
    reads, row = FreshReads[str, int](), Row()
    first = asyncio.ensure_future(reads.get("a", row.read))
    second = asyncio.ensure_future(reads.get("b", row.read))
    await row.wait_begun(2)
    row.gates[1].set()
    assert await second == 2
    row.gates[0].set()
    assert await first == 1


async def test_an_error_reaches_every_waiter_and_is_not_kept() -> None:
    reads = FreshReads[str, int]()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise LookupError("gone")

    results = await asyncio.gather(
        *(reads.get("k", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results)
    assert calls == 1

    async def works() -> int:
        return 7

    assert await reads.get("k", works) == 7


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    reads, row = FreshReads[str, int](), Row()
    quitter = asyncio.ensure_future(reads.get("k", row.read))
    stayer = asyncio.ensure_future(reads.get("k", row.read))
    await row.wait_begun(1)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    row.gates[0].set()
    assert await stayer == 1
