"""The change log: written with the decision or not at all, and paged without skipping.

The interleaving test forces the classic trap on PostgreSQL: the transaction holding the
lower id commits last. A reader paging by id (the naive control) loses that change; a
reader paging by position does not.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from headcount.domain.changes import BadCursor, decode_cursor, encode_cursor
from headcount.domain.ids import new_id
from headcount.ledger import changes
from headcount.ledger.changes import Change
from headcount.ledger.db import Tx
from headcount.runtime import Runtime
from support.changes import note

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _note(tx: Tx, event_id: str, label: str) -> None:
    note(tx, event_id, label, NOW)


async def _sequence(rt: Runtime) -> int:
    async with rt.db.transaction() as tx:
        done = await changes.sequence(tx)
        return 0 if done is None else done.count


async def _by_position(rt: Runtime, event_id: str, after: int) -> list[Change]:
    async with rt.db.transaction() as tx:
        return await changes.page(tx, after=after, limit=1000, event_id=event_id)


async def _by_id(rt: Runtime, event_id: str, after_id: int) -> list[Change]:
    """The naive reader this design exists to avoid: `WHERE id > cursor`."""
    async with rt.db.transaction() as tx:
        rows = await tx.scalars(
            select(Change)
            .where(Change.event_id == event_id, Change.id > after_id)
            .order_by(Change.id)
        )
        return list(rows)


@pytest.mark.postgres
async def test_a_change_that_commits_after_a_later_id_is_not_skipped(pg: Runtime) -> None:
    event_id = new_id("evt")
    async with pg.db.sessions() as slow, pg.db.sessions() as fast:
        await slow.begin()
        _note(slow, event_id, "A")
        await changes.flush(slow)  # A takes the lower id and stays open
        a_id = await slow.scalar(select(Change.id).where(Change.event_id == event_id))
        assert a_id is not None
        await fast.begin()
        _note(fast, event_id, "B")
        await changes.flush(fast)
        await fast.commit()  # B, the higher id, commits first

        # Both readers catch up while A is still in flight.
        await _sequence(pg)
        seen = await _by_position(pg, event_id, after=0)
        naive = await _by_id(pg, event_id, after_id=0)
        assert [c.payload["label"] for c in seen] == ["B"]
        assert [c.payload["label"] for c in naive] == ["B"]
        assert naive[0].id > a_id
        cursor, naive_cursor = seen[-1].position, naive[-1].id

        await slow.commit()  # now A commits

    await _sequence(pg)
    assert cursor is not None
    later = await _by_position(pg, event_id, after=cursor)
    assert [c.payload["label"] for c in later] == ["A"], "the position reader must see A"
    assert await _by_id(pg, event_id, after_id=naive_cursor) == [], (
        "control: paging by id skips A for good (if this fails, the test no longer forces "
        "the interleaving)"
    )


async def test_a_rolled_back_decision_leaves_no_change(runtime: Runtime) -> None:
    event_id = new_id("evt")

    class Refused(Exception):
        pass

    async def refused() -> None:
        async with runtime.db.transaction() as tx:
            _note(tx, event_id, "refused")
            raise Refused

    with pytest.raises(Refused):
        await refused()
    async with runtime.db.transaction() as tx:
        _note(tx, event_id, "kept")
    await _sequence(runtime)
    kept = await _by_position(runtime, event_id, after=0)
    assert [c.payload["label"] for c in kept] == ["kept"]
    assert kept[0].actor_role == "system"


@pytest.mark.postgres
async def test_concurrent_writers_and_sequencers_lose_nothing_and_skip_nothing(
    pg: Runtime,
) -> None:
    """Writers commit (or roll back) in random order while two sequencers and a reader run.

    The reader pages by position only; at the end it must hold exactly the committed
    changes, each once, and positions must be unique.
    """
    event_id = new_id("evt")
    committed: set[str] = set()
    writing = True

    async def writer(n: int) -> None:
        label = f"w{n}"
        try:
            async with pg.db.transaction() as tx:
                _note(tx, event_id, label)
                await changes.flush(tx)  # take an id now, commit later
                await asyncio.sleep(random.uniform(0, 0.05))
                if n % 7 == 0:
                    raise RuntimeError("rolled back on purpose")
        except RuntimeError:
            return
        committed.add(label)

    async def sequencer() -> None:
        while writing:
            await _sequence(pg)
            await asyncio.sleep(0.002)

    seen: list[Change] = []

    async def reader() -> None:
        after = 0
        while writing or len(seen) < len(committed):
            await _sequence(pg)
            for change in await _by_position(pg, event_id, after):
                seen.append(change)
                assert change.position is not None
                after = change.position
            await asyncio.sleep(0.003)

    background = [asyncio.create_task(sequencer()) for _ in range(2)]
    read = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(120)))
    writing = False
    await asyncio.gather(*background)
    await asyncio.wait_for(read, 30)

    labels = [c.payload["label"] for c in seen]
    assert len(labels) == len(set(labels)), "a change was delivered twice"
    assert set(labels) == committed
    positions = [c.position or 0 for c in seen]
    assert positions == sorted(positions)
    assert 0 not in positions


def test_cursors_are_opaque_and_checked() -> None:
    for position in (0, 1, 41, 2**40):
        assert decode_cursor(encode_cursor(position)) == position
    for bad in ("", "41", "chg1.", "chg1.!!!", "chg1." + "A" * 30, "xyz1.AAAAAAAAAAo"):
        with pytest.raises(BadCursor):
            decode_cursor(bad)
