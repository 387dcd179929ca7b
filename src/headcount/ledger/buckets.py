"""Hot inventory: a ticket type's free stock split across bucket rows.

A ticket type under extreme demand is bounded by its one row's lock: every buyer queues
on it, and its throughput is one over the lock hold time (docs/concurrency.md). In
bucket mode (`ticket_types.stock_buckets > 1`) the *free* units live in N rows of
`ticket_stock_buckets` instead, and a buyer takes from one bucket chosen at random with
one conditional UPDATE (`free = free - n WHERE free >= n`), so up to N buyers proceed in
parallel. Free units are fungible: a release or refund may return them to any bucket, so
no allocation needs remembering, and `CHECK (quantity_free >= 0)` on every bucket is the
last line of defence — the sum of free units can never go below zero, so the ticket type
can never be oversold.

Exactness: `quantity_available` is the sum of the buckets; held and sold units are the
order rows (and waitlist offers) that explain them, read when asked, so the public
counters stay exact without a hot counter; `reconcile` proves
`free + held + sold == total`.

Lock order: at most one bucket of a ticket type is locked by the fast path; the slow path
(a bucket short of stock) locks all buckets of that ticket type in ascending bucket
number, holding none of them before. Ticket types are still visited in ascending id, so
the global order (orders → ticket types/buckets → pools → event counter) is unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from headcount.domain.errors import Conflict
from headcount.ledger import journal, locks, usage
from headcount.ledger.models import Base, CopiedEvent, TicketType, key_to, non_negative

MAX_BUCKETS = 64
# Single-bucket attempts (a random unlocked bucket with room) before the locked sweep.
_FAST_TRIES = 2
_NO_SYNC = {"synchronize_session": False}


class StockBucket(Base):
    __tablename__ = "ticket_stock_buckets"

    ticket_type_id: Mapped[str] = key_to("ticket_types")
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[CopiedEvent]  # the ticket type's
    quantity_free: Mapped[int] = mapped_column(Integer)

    __table_args__ = (non_negative("quantity_free", "free"),)


def split(total: int, buckets: int) -> list[int]:
    """Spread `total` over `buckets` as evenly as possible."""
    base, extra = divmod(total, buckets)
    return [base + (1 if b < extra else 0) for b in range(buckets)]


async def create(
    tx: AsyncSession, ticket_type_id: str, event_id: str, total: int, buckets: int
) -> None:
    await tx.execute(
        insert(StockBucket),
        [
            {
                "ticket_type_id": ticket_type_id,
                "bucket": b,
                "event_id": event_id,
                "quantity_free": free,
            }
            for b, free in enumerate(split(total, buckets))
        ],
    )


# Built once (the fast path runs them on every order of a hot type; bench/RESULTS.md).
# The fast path never waits on a bucket: its candidate is one nobody holds (`claimed`,
# SKIP LOCKED), picked at random among those with room. A fast attempt that queued on a
# bucket another buyer held, then missed, used to leave that buyer's waiters and the
# slow path's ascending sweep waiting on each other under load (a deadlock in
# tests/integration/test_hot_inventory.py); now only the slow path ever waits for buckets,
# and it does so in ascending order.
_CANDIDATE = locks.claimed(
    select(StockBucket.bucket)
    .where(
        StockBucket.ticket_type_id == bindparam("tid", type_=String),
        StockBucket.event_id == bindparam("eid", type_=String),
        StockBucket.quantity_free >= bindparam("n", type_=Integer),
    )
    .order_by(func.random())
    .limit(1)
).scalar_subquery()
_TAKE_FROM = (
    update(StockBucket)
    .where(
        StockBucket.ticket_type_id == bindparam("tid", type_=String),
        StockBucket.event_id == bindparam("eid", type_=String),
        StockBucket.bucket == _CANDIDATE,
        StockBucket.quantity_free >= bindparam("n", type_=Integer),
    )
    .values(quantity_free=StockBucket.quantity_free - bindparam("n", type_=Integer))
    .returning(StockBucket.quantity_free)
    .execution_options(**_NO_SYNC)
)
_FREE_BY_BUCKET = locks.shared(
    select(StockBucket.bucket, StockBucket.quantity_free, TicketType.membership_version)
    .join(TicketType, TicketType.id == StockBucket.ticket_type_id)
    .where(
        StockBucket.ticket_type_id == bindparam("tid", type_=String),
        StockBucket.event_id == bindparam("eid", type_=String),
        TicketType.event_id == bindparam("eid", type_=String),
    ),
    of=TicketType,
)


async def _take_from(tx: AsyncSession, ticket_type_id: str, event_id: str, n: int) -> bool:
    """Take `n` from one free, unlocked bucket with room; False if none is at hand."""
    taken = (await tx.execute(_TAKE_FROM, {"tid": ticket_type_id, "eid": event_id, "n": n})).first()
    if taken is None:
        return False
    if taken[0] == 0:
        # This bucket is empty now; the type is sold out only if every other one is too.
        # Buyers emptying two last buckets at once would each see the other's still full:
        # the edge lock orders their judgments, and the second sees the first's commit.
        await locks.stock_edge(tx, ticket_type_id)
        await _judge(tx, ticket_type_id, delta=-n)
    return True


async def _judge(tx: AsyncSession, ticket_type_id: str, *, delta: int) -> None:
    """Whether the type's free units (summed now) crossed zero by this unit's `delta`."""
    found = (
        await tx.execute(
            select(func.sum(StockBucket.quantity_free), TicketType.event_id)
            .join(TicketType, TicketType.id == StockBucket.ticket_type_id)
            .where(StockBucket.ticket_type_id == ticket_type_id)
            .group_by(TicketType.event_id)
        )
    ).first()
    if found is not None:
        journal.stock_moved(tx, ticket_type_id, found[1], available=int(found[0]), delta=delta)


async def _free_by_bucket(
    tx: AsyncSession, ticket_type_id: str, event_id: str
) -> tuple[dict[int, int], int]:
    """The buckets' free units, read without locking them, under a SHARE lock on the type.

    The SHARE lock on the ticket-type row is what the one-row path's UPDATE lock gives
    pools (ledger/draws.py): membership changes lock the row NO KEY UPDATE and so wait for
    us (and we for them), while SHARE holders never wait for each other — buyers of a
    bucketed type still run in parallel. Also returns the type's `membership_version`
    as of that lock, which `inventory.reserve` compares with its early read.
    """
    rows = (await tx.execute(_FREE_BY_BUCKET, {"tid": ticket_type_id, "eid": event_id})).all()
    version = int(rows[0][2]) if rows else -1
    return {int(bucket): int(free) for bucket, free, _ in rows}, version


async def take(tx: AsyncSession, ticket_type_id: str, n: int, *, event_id: str) -> int | None:
    """Take `n` free units and return the type's membership version, or None (sold out, or
    not bucketed) having taken nothing.

    One unlocked read of the buckets first: it tells a plain type (no rows) and a sold-out
    one (too few free units, refused without queueing on any lock — a unit released after
    this read is for the next request), and which buckets are worth trying. The decision
    itself is still each bucket's conditional UPDATE.
    """
    spread, version = await _free_by_bucket(tx, ticket_type_id, event_id)
    if sum(spread.values()) < n:
        return None
    tries = min(_FAST_TRIES, sum(1 for units in spread.values() if units >= n))
    for _ in range(tries):
        if await _take_from(tx, ticket_type_id, event_id, n):
            return version
    # Slow path, near sell-out or for a large line: lock every bucket in order, take from
    # several. Exact: it sees every free unit of the ticket type.
    rows = await _lock_all(tx, ticket_type_id, event_id)
    if sum(free for _, free in rows) < n:
        return None
    await _take_in_order(tx, ticket_type_id, event_id, rows, n)
    if sum(free for _, free in rows) == n:
        # Every bucket is ours and now empty: sold out, judged under their locks.
        await _judge(tx, ticket_type_id, delta=-n)
    return version


async def _lock_all(tx: AsyncSession, ticket_type_id: str, event_id: str) -> list[tuple[int, int]]:
    """Every bucket of the type as (bucket, free), locked in ascending bucket number."""
    rows = await tx.execute(
        locks.no_key_exclusive(
            select(StockBucket.bucket, StockBucket.quantity_free)
            .where(StockBucket.ticket_type_id == ticket_type_id, StockBucket.event_id == event_id)
            .order_by(StockBucket.bucket)
        )
    )
    return [(int(bucket), int(free)) for bucket, free in rows.all()]


async def _take_in_order(
    tx: AsyncSession, ticket_type_id: str, event_id: str, rows: list[tuple[int, int]], n: int
) -> int:
    """Take up to `n` units from locked buckets, first bucket first; returns how many."""
    left = n
    for bucket, free in rows:
        if left == 0:
            break
        part = min(free, left)
        if part:
            await tx.execute(
                update(StockBucket)
                .where(_bucket(ticket_type_id, event_id, bucket))
                .values(quantity_free=StockBucket.quantity_free - part)
                .execution_options(**_NO_SYNC)
            )
            left -= part
    return n - left


async def give(
    tx: AsyncSession, ticket_type_id: str, buckets: int, n: int, *, event_id: str
) -> None:
    """Return `n` units to a random bucket (they are fungible)."""
    await give_to(tx, ticket_type_id, random.randrange(buckets), n, event_id=event_id)


def _bucket(ticket_type_id: str, event_id: str, bucket: int) -> ColumnElement[bool]:
    return and_(
        StockBucket.ticket_type_id == ticket_type_id,
        StockBucket.event_id == event_id,
        StockBucket.bucket == bucket,
    )


async def set_free(
    tx: AsyncSession, ticket_type_id: str, bucket: int, free: int, *, event_id: str
) -> None:
    """Overwrite a bucket's free units (reconcile's fix; admission never does this)."""
    await tx.execute(
        update(StockBucket)
        .where(_bucket(ticket_type_id, event_id, bucket))
        .values(quantity_free=free)
        .execution_options(**_NO_SYNC)
    )


async def give_to(
    tx: AsyncSession, ticket_type_id: str, bucket: int, n: int, *, event_id: str
) -> None:
    """Return units to a bucket. Releasers hold the type's row exclusively (buyers share
    it), so the sum read when this bucket was empty cannot move under the judgment."""
    free = await tx.scalar(
        update(StockBucket)
        .where(_bucket(ticket_type_id, event_id, bucket))
        .values(quantity_free=StockBucket.quantity_free + n)
        .returning(StockBucket.quantity_free)
        .execution_options(**_NO_SYNC)
    )
    if n > 0 and free == n:
        await _judge(tx, ticket_type_id, delta=n)


async def withdraw(tx: AsyncSession, ticket_type_id: str, n: int, *, event_id: str) -> int:
    """Remove up to `n` free units (a lowered total); returns how many could be removed."""
    locked = await _lock_all(tx, ticket_type_id, event_id)
    return await _take_in_order(tx, ticket_type_id, event_id, locked, n)


async def resize(
    tx: AsyncSession, ticket_type_id: str, delta: int, buckets: int, *, event_id: str
) -> None:
    """Add `delta` units to the type's total (or remove them, if negative).

    Raising spreads the new units over the buckets. Lowering withdraws free units under
    the buckets' locks; going below what is sold and held is refused for this mode (the
    free units it would need do not exist), so lower it in steps as holds lapse.
    """
    if delta > 0:
        for bucket, extra in enumerate(split(delta, buckets)):
            if extra:
                await give_to(tx, ticket_type_id, bucket, extra, event_id=event_id)
    elif delta < 0:
        removed = await withdraw(tx, ticket_type_id, -delta, event_id=event_id)
        if removed < -delta:
            raise Conflict(
                f"only {removed} of the {-delta} units to remove are free; a hot-inventory "
                "type cannot drop below what is sold and held",
                free=removed,
            )


async def free_units(tx: AsyncSession, ticket_type_ids: Collection[str]) -> dict[str, int]:
    """Free units per bucketed ticket type (plain ones are absent)."""
    if not ticket_type_ids:
        return {}
    rows = await tx.execute(
        select(StockBucket.ticket_type_id, func.sum(StockBucket.quantity_free))
        .where(StockBucket.ticket_type_id.in_(list(ticket_type_ids)))
        .group_by(StockBucket.ticket_type_id)
    )
    return {tid: int(free) for tid, free in rows.all()}


async def _count(tx: AsyncSession, ticket_type_id: str, event_id: str) -> int:
    """The type's bucket count, under a SHARE lock on its row (see `_free_by_bucket`)."""
    value = await tx.scalar(
        locks.shared(
            select(TicketType.stock_buckets).where(
                TicketType.id == ticket_type_id, TicketType.event_id == event_id
            )
        )
    )
    return int(value or 1)


async def give_line(tx: AsyncSession, ticket_type_id: str, n: int, *, event_id: str) -> None:
    """The bucket path of a release; a no-op for a type that is not bucketed."""
    count = await _count(tx, ticket_type_id, event_id)
    if count > 1:
        await give(tx, ticket_type_id, count, n, event_id=event_id)


@dataclass(frozen=True, slots=True)
class Levels:
    """A bucketed type's public counters: free from the buckets, the rest from the rows."""

    sold: int
    held: int
    free: int


async def levels(tx: AsyncSession, ticket_type_ids: Collection[str]) -> dict[str, Levels]:
    """Exact counters for the bucketed types among `ticket_type_ids` (others are absent).

    Held = items of pending orders plus live waitlist offers; sold = items of paid orders.
    Read in the caller's transaction, so on PostgreSQL one statement's snapshot each.
    """
    free = await free_units(tx, ticket_type_ids)
    if not free:
        return {}
    orders = await usage.ordered(tx, free)
    offers = await usage.offered(tx, free)
    levels: dict[str, Levels] = {}
    for tid, units in free.items():
        held, sold = orders.get(tid, (0, 0))
        levels[tid] = Levels(sold=sold, held=held + offers.get(tid, 0), free=units)
    return levels
