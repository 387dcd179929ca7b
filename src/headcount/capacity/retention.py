"""Retention: changes older than HEADCOUNT_CHANGE_RETENTION_DAYS leave the log, in batches.

A background duty on every replica (`DUTIES` in api/app.py); one replica prunes at a time
(the others skip their turn). Only changes every consumer has taken go: consumers that
page the log themselves register what they still need with `changes.retain_for`
(ledger/changes.py), and pruning stops below the lowest such position. What is pruned is
folded into the counters' baselines first, so `reconcile` can still replay the log.
"""

from __future__ import annotations

from datetime import timedelta

from headcount import metrics
from headcount.ledger import changes
from headcount.runtime import Runtime

BATCH = 1_000  # changes per transaction: short locks, small undo
ROUNDS = 20  # batches per duty run, so one run never monopolises a connection


async def prune_changes(rt: Runtime, *, batch: int = BATCH, rounds: int = ROUNDS) -> int:
    """Remove what retention allows now, a batch per transaction; returns how many went."""
    older_than = rt.clock() - timedelta(days=rt.settings.change_retention_days)
    total = 0
    for _ in range(rounds):
        async with rt.db.transaction() as tx:
            gone = await changes.retire(tx, older_than=older_than, batch=batch)
        if gone is None:
            break  # another replica is pruning
        total += gone
        metrics.CHANGES_PRUNED.inc(gone)
        if gone < batch:
            break
    return total
