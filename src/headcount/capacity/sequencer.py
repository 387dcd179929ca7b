"""The sequencer loop: every replica positions committed changes, within milliseconds.

Changes are written without a position (ledger/changes.py); a reader sees one only once
the sequencer gave it its place in commit order. Every replica runs this loop and
whichever holds the sequencer row does the work (the others skip, never queue), so the
feed keeps moving while any replica lives; no separate process is needed.

When this process commits a unit of work that recorded changes, the database wakes the
loop (`Database.changes_committed`), which positions them after a short gathering pause
(`GATHER`), so one run serves every change committed meanwhile; while changes keep
coming it runs every `BUSY`. Changes committed by
other replicas wake theirs; anything else (a CLI command, a replica that died between
its commit and its run) is found by polling: a read of the partial index on unpositioned
rows every `IDLE_FIRST`, backing off to `IDLE_LONGEST` while nothing comes. So a change
is positioned within about `GATHER` + `BUSY` of its commit while its replica lives, and
within `IDLE_LONGEST` plus one run in any case (docs/changes.md, "Lag").
"""

from __future__ import annotations

import asyncio
import logging

from headcount import metrics, origin
from headcount.domain.errors import HeadcountError
from headcount.ledger import changes
from headcount.runtime import Runtime

log = logging.getLogger(__name__)

GATHER = 0.01  # seconds a woken loop waits for more commits before a run
# Seconds between runs while changes keep coming. Each run is a few statements in this
# process whatever it positions, so a busy replica runs at most ~10 a second: the feed
# trails its writers by about this much, and the writers hardly notice the sequencer.
BUSY = 0.09
IDLE_FIRST = 0.05  # seconds between polls once it goes quiet …
IDLE_LONGEST = 0.25  # … doubling up to this
OUTAGE = 1.0  # seconds to wait after the database refused a run


async def sequence_pending(rt: Runtime, *, probe: bool = True) -> int:
    """Position every committed change now (batch after batch); returns how many.

    `probe`: look first with a read-only snapshot (no write lock on SQLite, no row lock
    anywhere), which is all an idle poll costs.
    """
    total = 0
    while True:
        if probe:
            async with rt.db.snapshot() as tx:
                if not await changes.has_unsequenced(tx):
                    return total
        async with rt.db.transaction() as tx:
            done = await changes.sequence(tx)
        if done is None:
            return total  # another replica holds the sequencer; it takes these too
        if done.count:
            metrics.CHANGES_SEQUENCED.inc(done.count)
            if done.oldest is not None:
                metrics.CHANGE_LAG.observe(max(0.0, (rt.clock() - done.oldest).total_seconds()))
        total += done.count
        if done.count < changes.SEQUENCE_BATCH:
            return total
        probe = False


async def run(rt: Runtime) -> None:
    """The loop (a task of the app's lifespan, on every replica); runs until cancelled."""
    origin.as_system()
    woken = asyncio.Event()
    rt.db.changes_committed = woken.set
    idle = IDLE_FIRST
    try:
        while True:
            try:
                await asyncio.wait_for(woken.wait(), timeout=idle)
                await asyncio.sleep(GATHER)
            except TimeoutError:
                pass
            was_woken = woken.is_set()
            woken.clear()
            try:
                done = await sequence_pending(rt, probe=not was_woken)
            except HeadcountError as exc:  # the database is away: try again shortly
                log.warning("sequencer: %s", exc.detail)
                await asyncio.sleep(OUTAGE)
                continue
            except Exception:
                log.exception("sequencer run failed")
                await asyncio.sleep(OUTAGE)
                continue
            if done or was_woken:
                idle = IDLE_FIRST
                await asyncio.sleep(BUSY)
            else:
                idle = min(idle * 2, IDLE_LONGEST)
    finally:
        rt.db.changes_committed = _nothing


def _nothing() -> None:
    pass
