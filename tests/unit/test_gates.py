"""The per-process gates in front of hot rows (gates.py): width, independence, no cycles."""

from __future__ import annotations

import asyncio
import contextlib

from headcount.gates import Gates


async def _peak(gates: Gates, keys_per_task: list[list[str]], watch: str) -> int:
    """Run tasks holding their keys' gates; the most that held `watch` at once."""
    inside = peak = 0

    async def task(keys: list[str]) -> None:
        nonlocal inside, peak
        async with gates.through(keys):
            counted = watch in keys
            inside += counted
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= counted

    await asyncio.wait_for(asyncio.gather(*(task(k) for k in keys_per_task)), 10)
    return peak


async def test_at_most_width_orders_per_key_are_inside() -> None:
    assert await _peak(Gates(2), [["tt_a"]] * 40, "tt_a") == 2


async def test_other_keys_are_not_held_back() -> None:
    gates = Gates(1)
    async with gates.through(["tt_a"]):
        await asyncio.wait_for(_peak(gates, [["tt_b"]] * 3, "tt_b"), 1)


async def test_crossing_multi_key_orders_cannot_deadlock() -> None:
    """Keys are taken in ascending order whatever order the caller lists them in."""
    crossing = [["tt_a", "tt_b"], ["tt_b", "tt_a"]] * 30
    assert await _peak(Gates(1), crossing, "tt_a") == 1


async def test_a_spread_key_gets_a_wider_gate_even_while_held() -> None:
    gates = Gates(2)
    async with gates.through(["tt_hot"]):
        gates.spread("tt_hot", 4)
        assert await _peak(gates, [["tt_hot"]] * 40, "tt_hot") == 7  # 8 wide, 1 held here
    assert await _peak(gates, [["tt_hot"]] * 40, "tt_hot") == 8


async def test_width_zero_is_no_gate() -> None:
    assert await _peak(Gates(0), [["tt_a"]] * 20, "tt_a") == 20


class _NoDatabase(Exception):
    pass


async def test_waiters_behind_a_failure_share_its_fate_at_once() -> None:
    gates = Gates(1, shared_failures=(_NoDatabase,))
    tried: list[int] = []

    async def order(n: int) -> str:
        try:
            async with gates.through(["tt_a"]):
                tried.append(n)
                await asyncio.sleep(0.2)
                raise _NoDatabase("the database did not answer")
        except _NoDatabase:
            return "503"

    started = asyncio.get_running_loop().time()
    answers = await asyncio.gather(*(order(n) for n in range(10)))
    took = asyncio.get_running_loop().time() - started
    assert answers == ["503"] * 10
    assert tried == [0]  # the nine behind it never waited out a timeout of their own
    assert took < 0.5
    # Someone arriving after the failure tries the database again.
    assert await order(99) == "503"
    assert tried == [0, 99]


async def test_other_errors_do_not_fail_the_queue() -> None:
    gates = Gates(1, shared_failures=(_NoDatabase,))
    tried: list[int] = []

    async def order(n: int) -> None:
        with contextlib.suppress(ValueError):
            async with gates.through(["tt_a"]):
                tried.append(n)
                await asyncio.sleep(0.01)
                raise ValueError("sold out")

    await asyncio.gather(*(order(n) for n in range(5)))
    assert sorted(tried) == [0, 1, 2, 3, 4]
